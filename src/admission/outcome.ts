/**
 * What one admission ended in, as a value: the pipeline returns it beside
 * its answer, and the outer ring (the log line, metrics, span attributes)
 * reads it. A leaf module, so both sides import it and neither imports the
 * other: it depends only on domain types and the failures' names (errors.ts).
 *
 * Its fields are names, counts and reasons, never the pod or a Secret.
 */
import type { AdmissionReviewResponse } from "../domain/admission.ts"
import type { PodSkipCode } from "../domain/decide.ts"
import type { FilerSkipCode, Skip } from "../domain/plan.ts"
import { skippedCount } from "../domain/status.ts"
import { failureNames, type InfrastructureCause } from "./errors.ts"

/** What happened, for the log line, span attributes and metrics. */
export interface Outcome {
  readonly decision: "injected" | "skipped" | "denied" | "admitted-without-filers" | "invalid-pod"
  /** Why it was skipped or denied; empty when injected. */
  readonly reason: string
  /** When skipped: the reason as a code. */
  readonly skipCode?: PodSkipCode
  readonly namespace: string
  readonly pod: string
  readonly svms: number
  readonly sharesMounted: number
  /** When shares were mounted: how many of each SVM, in plan order (the `FilersMounted` Event names them). */
  readonly mounted?: ReadonlyArray<{ readonly svm: string; readonly shares: number }>
  /** Reasons of the first skipped SVMs or shares, at most `loggedSkips`: a namespace may list thousands. */
  readonly skipped: ReadonlyArray<string>
  /** How many SVMs and shares were skipped, as the status annotation counts them. */
  readonly skippedCount: number
  /** The skips by code (a share limit once per SVM), for metrics and spans. */
  readonly skipCounts: Readonly<Partial<Record<FilerSkipCode, number>>>
  readonly warnings: number
  /** What kind of infrastructure failure, if one decided the answer. */
  readonly failure?: InfrastructureCause
}

/** The most skip reasons an outcome (and so the log line) names. */
export const loggedSkips = 5

/** What an outcome says about a plan's skips: counts, and the first few reasons. */
export const skipSummary = (
  skips: ReadonlyArray<Skip>
): Pick<Outcome, "skipped" | "skippedCount" | "skipCounts"> => {
  const skipCounts: Partial<Record<FilerSkipCode, number>> = {}
  for (const skip of skips) skipCounts[skip.code] = (skipCounts[skip.code] ?? 0) + 1
  return {
    skipped: skips.slice(0, loggedSkips).map((skip) => skip.reason),
    skippedCount: skippedCount(skips),
    skipCounts
  }
}

/** The answer to one AdmissionReview, and what it was. */
export interface Admission {
  readonly review: AdmissionReviewResponse
  readonly outcome: Outcome
}

/** The outcome as span attributes (`admission.*`). */
export const outcomeAttributes = (outcome: Outcome): Record<string, unknown> => ({
  "admission.decision": outcome.decision,
  "admission.reason": outcome.reason,
  "admission.svms": outcome.svms,
  "admission.shares_mounted": outcome.sharesMounted,
  "admission.shares_skipped": outcome.skippedCount,
  "admission.skip_reasons": Object.keys(outcome.skipCounts).sort(),
  "admission.warnings": outcome.warnings,
  ...(outcome.failure === undefined ? {} : { "admission.failure": failureNames[outcome.failure].tag })
})
