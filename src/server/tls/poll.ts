/**
 * Following files mounted from a Secret (the serving pair, the client CA):
 * the kubelet and cert-manager rotate them by swapping the `..data` symlink
 * of the mounted folder, which `fs.watch` on a file does not see, so they are
 * read again every interval. New content that cannot be used yet (half
 * written, out of step) is logged once and skipped; what was in use stays.
 */
import { Duration, Effect, Schedule, type Scope } from "effect"
import type { PlatformError } from "effect/PlatformError"
import { createHash } from "node:crypto"
import { TlsMaterialError } from "./material.ts"

/** A file that cannot be read, as a TlsMaterialError naming it. */
export const fileProblem = (file: string, error: PlatformError): TlsMaterialError => {
  const reason = error.reason
  const problem = reason._tag === "NotFound"
    ? "file not found"
    : reason._tag === "PermissionDenied"
    ? "permission denied"
    : `cannot read: ${reason._tag}${reason.description === undefined ? "" : ` (${reason.description})`}`
  return new TlsMaterialError({ source: file, problem })
}

/** A digest of the texts, so each content is checked (and logged) once. */
export const digestOf = (texts: ReadonlyArray<string>): string => {
  const hash = createHash("sha256")
  for (const text of texts) hash.update(text).update("\u0000")
  return hash.digest("hex")
}

export interface PollOptions<A> {
  /** The files' texts. */
  readonly read: Effect.Effect<ReadonlyArray<string>, TlsMaterialError>
  /** The texts in use now. */
  readonly initial: ReadonlyArray<string>
  /** Makes new texts usable, or says why not. */
  readonly check: (texts: ReadonlyArray<string>) => Effect.Effect<A, TlsMaterialError>
  /** Puts what `check` made in use. */
  readonly publish: (checked: A) => Effect.Effect<void>
  /** What is in use now, for the log lines of problems. */
  readonly inUse: () => Record<string, unknown>
  readonly messages: {
    /** The files cannot be read (mid-swap, for an instant). */
    readonly unreadable: string
    /** They changed but `check` refused them. */
    readonly unusable: string
    /** A round failed with a defect. */
    readonly defect: string
  }
  readonly interval: Duration.Input
}

/** Reads the files every `interval` until the scope closes, publishing each new usable content. */
export const pollFiles = <A>(options: PollOptions<A>): Effect.Effect<void, never, Scope.Scope> => {
  let seen = digestOf(options.initial)
  let lastReadProblem: string | undefined

  const round = Effect.gen(function*() {
    const read = yield* Effect.result(options.read)
    if (read._tag === "Failure") {
      if (read.failure.message !== lastReadProblem) {
        lastReadProblem = read.failure.message
        yield* Effect.logWarning(options.messages.unreadable).pipe(
          Effect.annotateLogs({ problem: read.failure.message, ...options.inUse() })
        )
      }
      return
    }
    lastReadProblem = undefined
    const next = digestOf(read.success)
    if (next === seen) return
    seen = next
    const checked = yield* Effect.result(options.check(read.success))
    if (checked._tag === "Failure") {
      yield* Effect.logWarning(options.messages.unusable).pipe(
        Effect.annotateLogs({ problem: checked.failure.message, ...options.inUse() })
      )
      return
    }
    yield* options.publish(checked.success)
  })

  return round.pipe(
    // A bug in one round must not stop the reloads for good.
    Effect.catchDefect((defect) =>
      Effect.logError(options.messages.defect).pipe(
        Effect.annotateLogs({ defect: defect instanceof Error ? defect.message : String(defect) })
      )
    ),
    Effect.repeat(Schedule.spaced(options.interval)),
    Effect.forkScoped,
    Effect.asVoid
  )
}
