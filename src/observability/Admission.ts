/**
 * One admission, observed: `observeAdmission` is the server's per-admission
 * log line and metrics, applied by the webhook route only (the offline
 * commands print data on stdout and keep their stderr as it was). The span
 * attributes are the pipeline's own (`outcomeAttributes`, applied inside
 * `admit`), so every caller's traces have them.
 *
 * Nothing here reads the pod or the Secrets: only the `Outcome`, whose
 * fields are names, counts and reasons.
 */
import { Cause, Clock, Effect } from "effect"
import type { Admission, Outcome } from "../admission/outcome.ts"
import { recordAdmission } from "./Metrics.ts"
import { failureNames } from "../admission/errors.ts"

const warnDecisions: ReadonlySet<Outcome["decision"]> = new Set(["denied", "admitted-without-filers", "invalid-pod"])

/** The annotations of the per-admission log line. */
export const outcomeAnnotations = (uid: string, outcome: Outcome, durationMs: number): Record<string, unknown> => ({
  uid,
  namespace: outcome.namespace,
  pod: outcome.pod,
  decision: outcome.decision,
  // A failure's reason is its error.message, below.
  ...(outcome.reason === "" || outcome.failure !== undefined ? {} : { reason: outcome.reason }),
  svms: outcome.svms,
  sharesMounted: outcome.sharesMounted,
  // The first few reasons and the count: a namespace may list thousands of SVMs and shares.
  skipped: outcome.skipped,
  skippedCount: outcome.skippedCount,
  warnings: outcome.warnings,
  durationMs: Math.round(durationMs * 1000) / 1000,
  ...(outcome.failure === undefined
    ? {}
    : { "error.tag": failureNames[outcome.failure].tag, "error.message": outcome.reason })
})

const logOutcome = (uid: string, outcome: Outcome, durationMs: number) => {
  const message = `admission ${outcome.decision}`
  const log = warnDecisions.has(outcome.decision) ? Effect.logWarning(message) : Effect.logInfo(message)
  return log.pipe(Effect.annotateLogs(outcomeAnnotations(uid, outcome, durationMs)))
}

/** What a defect is, in two words: its name and message, never a stack. */
const defectAnnotations = (cause: Cause.Cause<unknown>): Record<string, string> => {
  const defect = Cause.squash(cause)
  return defect instanceof Error
    ? { "error.tag": defect.name, "error.message": defect.message.slice(0, 200) }
    : { "error.tag": "Defect", "error.message": "a value that is not an Error" }
}

/** `request.uid` of a parsed body, when it is a string: known before the review is decoded. */
const uidOf = (input: unknown): string | undefined => {
  if (typeof input !== "object" || input === null || !("request" in input)) return undefined
  const request = input.request
  if (typeof request !== "object" || request === null || !("uid" in request)) return undefined
  return typeof request.uid === "string" ? request.uid.slice(0, 128) : undefined
}

/**
 * The webhook's admission of `input`, logged (one line, at info, or warn when
 * the pod is denied or admitted without its filers) and counted. Every line
 * logged meanwhile carries the request's uid. A defect (a bug) is logged
 * with its name and message, then goes on to become an HTTP 500.
 */
export const observeAdmission = <E, R>(
  input: unknown,
  admission: Effect.Effect<Admission, E, R>
): Effect.Effect<Admission, E, R> => {
  const uid = uidOf(input)
  return Effect.flatMap(Clock.currentTimeNanos, (start) =>
    admission.pipe(
      Effect.tap(({ outcome, review }) =>
        Effect.flatMap(Clock.currentTimeNanos, (end) => {
          const seconds = Number(end - start) / 1e9
          return Effect.andThen(
            recordAdmission(outcome, seconds),
            logOutcome(review.response.uid, outcome, seconds * 1000)
          )
        })
      ),
      Effect.tapCause((cause) =>
        Cause.hasDies(cause)
          ? Effect.logError("admission failed: a bug in the injector; answering 500").pipe(
            Effect.annotateLogs(defectAnnotations(cause))
          )
          : Effect.void
      ),
      uid === undefined ? (self) => self : Effect.annotateLogs({ uid })
    ))
}
