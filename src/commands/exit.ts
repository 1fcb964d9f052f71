/**
 * How the commands end: every failure becomes one line on stderr and an exit
 * code, never a stack trace. 2 means the input cannot be answered at all
 * (as `review` promises) or the command line is wrong (an unknown flag, no
 * command); 1 is anything else (bad settings, unreadable cluster folder).
 * Nothing exits 0 without doing its job; `--help` and `--version` asked for
 * are that job.
 */
import { Console, Effect, Runtime } from "effect"
import { CliError, CliOutput } from "effect/cli"

export class CommandFailed extends Error {
  override readonly [Runtime.errorExitCode]: number
  constructor(message: string, exitCode: number) {
    super(message)
    this[Runtime.errorExitCode] = exitCode
  }
}

const oneLine = (message: string) => message.replace(/\s*\n\s*/g, " ").trim()

/** Prints `error: <message>` on stderr, then fails with the exit code. */
export const failWith = (message: string, exitCode: number): Effect.Effect<never, CommandFailed> =>
  Console.error(`error: ${oneLine(message)}`).pipe(
    Effect.andThen(Effect.fail(new CommandFailed(message, exitCode)))
  )

/**
 * effect/cli's output: help and the version, when asked for, on stdout; the
 * usage shown for a missing command, and each parse error as one line, on
 * stderr (stdout stays for what a command prints).
 */
export const cliPresenter = CliOutput.layerPresenter({
  present: (event) => {
    if (event._tag === "InvalidInvocation") {
      const help = `${event.commandPath.join(" ")} --help`
      return Console.error(event.errors.map((error) => `error: ${oneLine(error.message)} (see ${help})`).join("\n"))
    }
    if (event._tag === "Help" && event.reason === "Implicit") {
      return Console.error(CliOutput.defaultFormatter({ colors: false }).formatHelpDoc(event.helpDoc))
    }
    return CliOutput.defaultPresenter.present(event)
  }
})

/** The exit code of a run that failed with `error`: a command line effect/cli refused (it showed the usage) is 2. */
export const exitCodeOf = (error: unknown): number =>
  CliError.isCliError(error) && error._tag === "ShowHelp" ? 2 : Runtime.getErrorExitCode(error)
