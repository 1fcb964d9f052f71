/**
 * The command line: `serve` (the webhook), `review` and `inject` (offline,
 * against a cluster folder), `rbac` (the ClusterRole for the filers list).
 * Every failure ends as one line on stderr and an exit code (see
 * commands/exit.ts).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Runtime } from "effect"
import { Command } from "effect/cli"
import { injectCommand } from "./commands/inject.ts"
import { rbacCommand } from "./commands/rbac.ts"
import { reviewCommand } from "./commands/review.ts"
import { serveCommand } from "./commands/serve.ts"

const root = Command.make("filer-sidecar-injector").pipe(
  Command.withDescription("Mounts NetApp filer shares into Kubeflow notebook pods (a mutating admission webhook)"),
  Command.withSubcommands([serveCommand, reviewCommand, injectCommand, rbacCommand])
)

export const main = root.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer)
)

export const runMain = () =>
  NodeRuntime.runMain(main, {
    disableErrorReporting: true,
    // SIGTERM interrupts the server, which then drains: that is a clean exit, not 130.
    teardown: (exit, onExit) => {
      if (exit._tag === "Success") return onExit(0)
      const interruptedOnly = exit.cause.reasons.every((reason) => reason._tag === "Interrupt")
      if (interruptedOnly) return onExit(0)
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      // Failures that reach here were printed already (CommandFailed, or effect/cli's usage errors).
      if (failure !== undefined) return onExit(Runtime.getErrorExitCode(failure.error))
      // A defect: say so once, without a stack trace that could carry request data.
      process.stderr.write(`error: unexpected failure (${exit.cause.reasons[0]?._tag ?? "unknown"})\n`)
      return onExit(1)
    }
  })
