/**
 * How the commands end: every failure becomes one line on stderr and an exit
 * code, never a stack trace. 2 means the input cannot be answered at all
 * (as `review` promises); 1 is anything else (bad settings, unreadable
 * cluster folder).
 */
import { Console, Effect, Runtime } from "effect"

export class CommandFailed extends Error {
  override readonly [Runtime.errorExitCode]: number
  constructor(message: string, exitCode: number) {
    super(message)
    this[Runtime.errorExitCode] = exitCode
  }
}

/** Prints `error: <message>` on stderr, then fails with the exit code. */
export const failWith = (message: string, exitCode: number): Effect.Effect<never, CommandFailed> =>
  Console.error(`error: ${message.replace(/\s*\n\s*/g, " ")}`).pipe(
    Effect.andThen(Effect.fail(new CommandFailed(message, exitCode)))
  )
