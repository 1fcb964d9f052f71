/**
 * The command line: `serve` (the webhook), `review` and `inject` (offline,
 * against a cluster folder), `explain` (what it does for a notebook), `rbac` (the ClusterRole for the filers list).
 * Every failure ends as one line on stderr and an exit code (see
 * commands/exit.ts). The Go injector's arguments are translated first
 * (commands/legacyArgs.ts).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { cliPresenter, exitCodeOf, failWith } from "./commands/exit.ts"
import { explainCommand } from "./commands/explain.ts"
import { injectCommand } from "./commands/inject.ts"
import { rbacCommand } from "./commands/rbac.ts"
import { DeprecatedInvocation, interpretArgs } from "./commands/legacyArgs.ts"
import { reviewCommand } from "./commands/review.ts"
import { serveCommand } from "./commands/serve.ts"

const root = Command.make("filer-sidecar-injector").pipe(
  Command.withDescription("Mounts NetApp filer shares into Kubeflow notebook pods (a mutating admission webhook)"),
  Command.withSubcommands([serveCommand, reviewCommand, injectCommand, explainCommand, rbacCommand])
)

/** Runs the command line `argv` (the arguments after the program's name). */
export const main = (argv: ReadonlyArray<string>) => {
  const invocation = interpretArgs(argv)
  const run = invocation._tag === "UsageError"
    ? failWith(invocation.message, 2)
    : Command.runWith(root, { version: "0.1.0" })(invocation.args).pipe(
      Effect.provideService(DeprecatedInvocation, invocation.deprecation)
    )
  return run.pipe(Effect.provide(cliPresenter), Effect.provide(NodeServices.layer))
}

export const runMain = (argv: ReadonlyArray<string> = process.argv.slice(2)) =>
  NodeRuntime.runMain(main(argv), {
    disableErrorReporting: true,
    // SIGTERM interrupts the server, which then drains: that is a clean exit, not 130.
    teardown: (exit, onExit) => {
      if (exit._tag === "Success") return onExit(0)
      const interruptedOnly = exit.cause.reasons.every((reason) => reason._tag === "Interrupt")
      if (interruptedOnly) return onExit(0)
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      // Failures that reach here were printed already (CommandFailed, or effect/cli's usage errors).
      if (failure !== undefined) return onExit(exitCodeOf(failure.error))
      // A defect: say so once, without a stack trace that could carry request data.
      process.stderr.write(`error: unexpected failure (${exit.cause.reasons[0]?._tag ?? "unknown"})\n`)
      return onExit(1)
    }
  })
