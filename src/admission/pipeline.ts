/**
 * The admission pipeline, one Effect program from an AdmissionReview to its
 * answer:
 *
 *   decode ─▶ decide ─▶ resolve ─▶ plan ─▶ render ─▶ diff ─▶ encode
 *
 * Only `resolve` does I/O. Its failures, and a Pod that does not decode, are
 * answers (see respond.ts); the only error out is an AdmissionDecodeError,
 * for input that cannot be answered at all.
 */
import { Effect, JsonPatch, Option, Result, Schema } from "effect"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { GoofysRetryPolicy } from "../cluster/GoofysRetryPolicy.ts"
import type { KubeClient } from "../cluster/KubeClient.ts"
import type { KubeRetry } from "../cluster/retry.ts"
import type { SharesCache } from "../cluster/SharesCache.ts"
import {
  type AdmissionRequest,
  type AdmissionResponse,
  AdmissionReviewRequest,
  reviewResponse
} from "../domain/admission.ts"
import { checkSelection, formatChoiceWarning, parseChoices } from "../domain/choices.ts"
import { decidePod, decideRequest } from "../domain/decide.ts"
import type { Json, JsonObject } from "../domain/json.ts"
import { isJsonObject } from "../domain/json.ts"
import { plan } from "../domain/plan.ts"
import { Pod, podDisplayName } from "../domain/pod.ts"
import { render } from "../domain/render.ts"
import { describeIssue } from "../domain/schemaErrors.ts"
import { maxWarnings, skipWarnings } from "../domain/warnings.ts"
import { spanned, whenTracing } from "../observability/Traced.ts"
import { AdmissionSettings } from "./AdmissionSettings.ts"
import { AdmissionDecodeError } from "./errors.ts"
import { type Admission, type Outcome, outcomeAttributes, skipSummary } from "./outcome.ts"
import { resolve } from "./resolve.ts"
import { allow, allowWithPatch, answerInfrastructureFailure, rejectInvalidPod } from "./respond.ts"

export type AdmissionServices =
  | KubeClient
  | ClusterConfig
  | SharesCache
  | KubeRetry
  | AdmissionSettings
  | GoofysRetryPolicy

const decodeReviewSchema = Schema.decodeUnknownResult(AdmissionReviewRequest)

// The steps' spans, made only when a tracer can see them: per admission they
// would cost more than the steps they time (test/bench/RESULTS.md).
const spans = {
  decode: spanned("decode"),
  decide: spanned("decide"),
  plan: spanned("plan"),
  render: spanned("render"),
  diff: spanned("diff"),
  encode: spanned("encode")
}

/**
 * The outcome as attributes of the `admission` span, inside `admit` so that
 * every caller's traces have them. Spans only: the log line and metrics are
 * the server's (src/observability/Admission.ts wraps the route).
 */
const annotateAdmissionSpan = <E, R>(self: Effect.Effect<Admission, E, R>): Effect.Effect<Admission, E, R> =>
  whenTracing(Effect.tap(self, ({ outcome }) => Effect.annotateCurrentSpan(outcomeAttributes(outcome))), self)

/** JSON text to a parsed value; the server and the CLI both start here. */
export const parseJson = (text: string): Effect.Effect<unknown, AdmissionDecodeError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) =>
      new AdmissionDecodeError({
        problem: `body is not JSON: ${error instanceof Error ? error.message.slice(0, 100) : "parse error"}`
      })
  })

/** The AdmissionReview with its `request.object` kept raw. */
export const decodeReview = (
  input: unknown
): Effect.Effect<{ readonly request: AdmissionRequest; readonly object: unknown }, AdmissionDecodeError> =>
  Effect.suspend(() => {
    if (!isJsonObject(input)) return Effect.fail(new AdmissionDecodeError({ problem: "body is not a JSON object" }))
    const decoded = decodeReviewSchema(input)
    if (Result.isFailure(decoded)) {
      return Effect.fail(new AdmissionDecodeError({ problem: `not an AdmissionReview v1: ${describeIssue(decoded.failure.issue)}` }))
    }
    // Schema drops keys it does not know: the diff must start from the object as sent.
    const request = input.request as JsonObject
    return Effect.succeed({ request: decoded.success.request, object: request.object })
  }).pipe(spans.decode)

const decodePod = Schema.decodeUnknownResult(Pod)

const base64Json = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64")

const summary = (namespace: string, pod: string) => ({
  namespace,
  pod,
  svms: 0,
  sharesMounted: 0,
  skipped: [],
  skippedCount: 0,
  skipCounts: {},
  warnings: 0
})

/** Answers one AdmissionReview (already parsed from JSON). */
export const admit = Effect.fnUntraced(function*(input: unknown) {
  const { object, request } = yield* decodeReview(input)
  const uid = request.uid
  yield* Effect.annotateCurrentSpan({ uid, namespace: request.namespace ?? "", operation: request.operation ?? "" })
  const answer = (response: AdmissionResponse, outcome: Outcome): Admission => ({
    review: reviewResponse(response),
    outcome
  })
  const namespace = request.namespace ?? ""

  const early = decideRequest(request)
  if (early !== undefined && early._tag === "Skip") {
    return answer(allow(uid, []), {
      decision: "skipped",
      reason: early.reason,
      skipCode: early.code,
      ...summary(namespace, request.name ?? "")
    })
  }

  const decodedPod = decodePod(object)
  if (Result.isFailure(decodedPod)) {
    const problem = describeIssue(decodedPod.failure.issue)
    return answer(rejectInvalidPod(uid, problem), {
      decision: "invalid-pod",
      reason: problem,
      ...summary(namespace, request.name ?? "")
    })
  }
  const pod = decodedPod.success
  const podName = podDisplayName(pod)
  yield* Effect.annotateCurrentSpan({ pod: podName })

  const decision = yield* Effect.sync(() => decidePod(request, pod)).pipe(spans.decide)
  if (decision._tag === "Skip") {
    const warnings = decision.warning === undefined ? [] : [decision.warning]
    return answer(allow(uid, warnings), {
      decision: "skipped",
      reason: decision.reason,
      skipCode: decision.code,
      ...summary(namespace, podName),
      warnings: warnings.length
    })
  }

  const settings = yield* AdmissionSettings
  // The pod's own choices, within the operator's bounds: refused ones are warnings, never a denial.
  const chosen = parseChoices(pod.metadata?.annotations, {
    defaults: settings.sidecarResources,
    maxima: settings.sidecarMaxima
  })
  const choices = chosen.choices
  const resolved = yield* resolve(decision.namespace, settings.requestBudget, choices.shares).pipe(Effect.result)
  if (Result.isFailure(resolved)) {
    const failure = resolved.failure
    yield* Effect.logWarning(`cannot resolve filers for ${decision.namespace}/${podName}: ${failure.problem}`)
    const response = answerInfrastructureFailure(uid, failure, settings.onInfrastructureFailure)
    return answer(response, {
      decision: response.allowed ? "admitted-without-filers" : "denied",
      reason: failure.problem,
      ...summary(decision.namespace, podName),
      warnings: response.warnings?.length ?? 0,
      failure: failure.cause
    })
  }
  if (Option.isNone(resolved.success)) {
    return answer(allow(uid, []), {
      decision: "skipped",
      reason: "no existing-shares ConfigMap in the namespace",
      skipCode: "no_existing_shares",
      ...summary(decision.namespace, podName)
    })
  }
  const { config, secrets, shares } = resolved.success.value

  const planned = yield* Effect.sync(() =>
    plan({ pod, shares, filers: config.filers, secrets, maxShares: settings.maxSharesPerPod, selection: choices.shares })
  ).pipe(spans.plan)
  const goofys = yield* GoofysRetryPolicy
  const rawPod = object as JsonObject
  const mutated = yield* Effect.sync(() =>
    render({
      pod: rawPod,
      notebookContainer: decision.notebookContainer,
      plan: planned,
      template: config.template,
      settings: { credentialMode: settings.credentialMode, sidecarResources: settings.sidecarResources, goofys },
      choices
    })
  ).pipe(spans.render)
  const patch = yield* Effect.sync(() => JsonPatch.get(rawPod as Json, mutated as Json)).pipe(spans.diff)

  // The pod's own choices first (a handful at most), then the skips within what is left of the 25.
  const choiceWarnings = [...chosen.problems, ...checkSelection(choices.shares, shares)].map(formatChoiceWarning)
  const warnings = [...choiceWarnings, ...skipWarnings(planned.skips, patch.length > 0, maxWarnings - choiceWarnings.length)]
  const sharesMounted = planned.svms.reduce((n, svm) => n + svm.shares.length, 0)
  const unchanged = sharesMounted === 0
    ? { reason: "no share could be mounted", skipCode: "nothing_to_mount" as const }
    : { reason: "already injected", skipCode: "already_injected" as const }
  const outcome: Outcome = {
    decision: patch.length === 0 ? "skipped" : "injected",
    ...(patch.length === 0 ? unchanged : { reason: "" }),
    namespace: decision.namespace,
    pod: podName,
    svms: planned.svms.length,
    sharesMounted,
    mounted: planned.svms.filter((svm) => svm.shares.length > 0).map((svm) => ({ svm: svm.svm, shares: svm.shares.length })),
    ...skipSummary(planned.skips),
    warnings: warnings.length
  }
  const response = yield* Effect.sync(() =>
    patch.length === 0 ? allow(uid, warnings) : allowWithPatch(uid, base64Json(patch), warnings)
  ).pipe(spans.encode)
  return answer(response, outcome)
}, annotateAdmissionSpan, spanned("admission"))
