/**
 * The injector's metrics, served on `GET /metrics` in the Prometheus text
 * format (effect's `PrometheusMetrics` over effect's `Metric` registry).
 *
 * Every label takes its value from a small fixed set: skip reasons are the
 * codes decide and plan give each skip, failure causes and call outcomes the
 * typed reasons of the errors, and no name that comes from a user
 * (namespace, pod, SVM, share, Secret) ever becomes a label.
 */
import { type Context, Effect, Metric } from "effect"
import type { Outcome } from "../admission/outcome.ts"
import { podSkipCodes } from "../domain/decide.ts"
import { filerSkipCodes } from "../domain/plan.ts"
import { failureNames } from "../admission/errors.ts"
import type { KubeOutcome } from "./Failures.ts"

export const metricPrefix = "filer_sidecar_injector"

// Seconds: most admissions answer in a few ms; the budget is 7 s by default.
const latencyBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

// -----------------------------------------------------------------------------
// Label values

export const decisions = ["injected", "skipped", "denied", "admitted-without-filers", "invalid-pod"] as const
export type DecisionLabel = (typeof decisions)[number]

/** Why a pod was admitted unchanged: the pipeline's codes, and `other` kept for continuity of the series. */
export const podSkipReasons = [...podSkipCodes, "other"] as const
export type PodSkipReason = (typeof podSkipReasons)[number]

/** Why an SVM or a share was skipped (or mounted without its env var): plan's codes, and `other`. */
export const filerSkipReasons = [...filerSkipCodes, "other"] as const
export type FilerSkipReason = (typeof filerSkipReasons)[number]

/** What an infrastructure failure was (Failures.ts names each cause); `other` kept for continuity of the series. */
export const failureCauses = [
  "transient",
  "forbidden",
  "not_found",
  "conflict",
  "request_failed",
  "timeout",
  "configuration",
  "other"
] as const
export type FailureCause = (typeof failureCauses)[number]

/** How one Kubernetes API call ended (Failures.ts, where the pipeline's spans can use it too). */
export { type KubeOutcome, kubeOutcomes } from "./Failures.ts"

/** What became of one Event the webhook meant to record (docs/behaviour.md, "Events"). */
export const eventResults = ["created", "updated", "dropped_overflow", "dropped_refused"] as const
export type EventResult = (typeof eventResults)[number]

export const configObjects = ["filers-list", "filer-sidecar-injector-json", "other"] as const
export type ConfigObjectLabel = (typeof configObjects)[number]
export const reloadResults = ["loaded", "invalid", "missing", "watch-error"] as const
export type ReloadResultLabel = (typeof reloadResults)[number]

export const httpRoutes = ["/inject", "/healthz", "/readyz", "/metrics", "other"] as const
export type HttpRouteLabel = (typeof httpRoutes)[number]

/** The bound an admission request met when it was refused with 429 (server/inFlight.ts). */
export const overloadLimits = ["requests_in_flight", "buffered_body_bytes"] as const
export type OverloadLimitLabel = (typeof overloadLimits)[number]


/** `ConfigMap das/filers-list` (as ClusterConfig names it) → `filers-list`. */
export const configObject = (object: string): ConfigObjectLabel => {
  const name = object.slice(object.lastIndexOf("/") + 1)
  return name === "filers-list" || name === "filer-sidecar-injector-json" ? name : "other"
}

/** A request path (query string included or not) → the route it is counted under. */
export const httpRoute = (url: string): HttpRouteLabel => {
  const path = url.split("?")[0]
  switch (path) {
    case "/inject":
    case "/healthz":
    case "/readyz":
    case "/metrics":
      return path
    default:
      return "other"
  }
}

// -----------------------------------------------------------------------------
// The metrics

const name = (suffix: string) => `${metricPrefix}_${suffix}`

type Attributes = Readonly<Record<string, string>>

const counter = (suffix: string, description: string) => (attributes?: Attributes) =>
  Metric.counter(name(suffix), { description, incremental: true, ...(attributes === undefined ? {} : { attributes }) })

const histogram = (suffix: string, description: string) => (attributes?: Attributes) =>
  Metric.histogram(name(suffix), {
    description,
    boundaries: latencyBoundaries,
    ...(attributes === undefined ? {} : { attributes })
  })

const gauge = (suffix: string, description: string) => (attributes?: Attributes) =>
  Metric.gauge(name(suffix), { description, ...(attributes === undefined ? {} : { attributes }) })

/**
 * One metric per label combination, made once and kept: `key` joins the
 * label values. (A metric made once with its attributes is much cheaper to
 * update than `Metric.withAttributes`, which rebuilds its series key on
 * every update.)
 */
const labelled = <M>(make: (attributes: Attributes) => M) => {
  const cache = new Map<string, M>()
  return (key: string, attributes: () => Attributes): M => {
    let found = cache.get(key)
    if (found === undefined) {
      found = make(attributes())
      cache.set(key, found)
    }
    return found
  }
}

const admissionsBy = labelled(counter("admissions_total", "AdmissionReviews answered, by decision"))
const admissionDuration = histogram(
  "admission_duration_seconds",
  "Time to answer one AdmissionReview, from the parsed body to the answer"
)()
const sidecarsInjected = counter("sidecars_injected_total", "goofys sidecars injected (one per share mounted)")()
const podSkipsBy = labelled(counter("pod_skips_total", "Pods admitted unchanged, by reason"))
const filerSkipsBy = labelled(
  counter("filer_skips_total", "SVMs and shares skipped (or mounted without their env var) with a warning, by reason")
)
const failuresBy = labelled(
  counter(
    "infrastructure_failures_total",
    "Admissions whose filers could not be looked up (then denied, or admitted without filers), by cause"
  )
)
const kubeRequestsBy = labelled(counter("kube_requests_total", "Kubernetes API calls, by resource, verb and outcome"))
const kubeDurationBy = labelled(
  histogram("kube_request_duration_seconds", "Duration of Kubernetes API calls (watches excluded), by resource and verb")
)
const configReloadsBy = labelled(
  counter("config_reloads_total", "Reload attempts of the injector's configuration ConfigMaps, by object and result")
)
const configCurrentBy = labelled(
  gauge(
    "config_current",
    "1 when the latest version of the configuration object is in use, 0 while it is missing or invalid " +
      "(the last good version, if any, is still served)"
  )
)
const ready = gauge(
  "ready",
  "1 when this replica is ready for admissions (configuration and TLS loaded, not shutting down), else 0"
)()
const secretsUnreadable = gauge(
  "secrets_unreadable",
  "Connection Secrets of filers-list the injector may not get, as its last SelfSubjectAccessReviews answered " +
    "(their SVMs are skipped: secret_forbidden)"
)()
const sharesCacheSynced = gauge(
  "existing_shares_cache_synced",
  "1 while the existing-shares cache follows the cluster (listed, its watch open), 0 while admissions read them live"
)()
const sharesCacheNamespaces = gauge(
  "existing_shares_cache_namespaces",
  "Namespaces whose existing-shares the cache holds (one it does not hold is read live)"
)()
const eventsBy = labelled(
  counter("events_total", "Events recorded (created, or a repeat counted on the first) or dropped, by result")
)
const httpRequestsBy = labelled(counter("http_requests_total", "HTTP requests answered, by route and status code"))
const admissionsInFlight = gauge("admissions_in_flight", "Admission requests being answered now (MAX_IN_FLIGHT bounds it)")()
const bodyBytesInFlight = gauge(
  "admission_body_bytes_in_flight",
  "Body bytes the admission requests being answered hold now (MAX_BUFFERED_BODY_BYTES bounds it)"
)()
const overloadRejectionsBy = labelled(
  counter(
    "http_overload_rejections_total",
    "Admission requests answered 429 before their body was read, by the bound they met (requests or body bytes in flight)"
  )
)

const byDecision = (decision: string) => admissionsBy(decision, () => ({ decision }))

// -----------------------------------------------------------------------------
// Recording: synchronous updates of the registry in the fiber's context
// (these run on every admission and every Kubernetes call).

/** Runs `record` with the current context (whose MetricRegistry holds the series). */
const recording = (record: (context: Context.Context<never>) => void): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    record(fiber.context)
    return Effect.void
  })

/** Counts one answered admission. */
export const recordAdmission = (outcome: Outcome, seconds: number): Effect.Effect<void> =>
  recording((context) => {
    byDecision(outcome.decision).updateUnsafe(1, context)
    admissionDuration.updateUnsafe(seconds, context)
    if (outcome.sharesMounted > 0 && outcome.decision === "injected") {
      sidecarsInjected.updateUnsafe(outcome.sharesMounted, context)
    }
    if (outcome.decision === "skipped") {
      const reason: PodSkipReason = outcome.skipCode ?? "other"
      podSkipsBy(reason, () => ({ reason })).updateUnsafe(1, context)
    }
    if (outcome.failure !== undefined) {
      const cause: FailureCause = failureNames[outcome.failure].label
      failuresBy(cause, () => ({ cause })).updateUnsafe(1, context)
    }
    for (const [reason, count] of Object.entries(outcome.skipCounts) as Array<[FilerSkipReason, number]>) {
      filerSkipsBy(reason, () => ({ reason })).updateUnsafe(count, context)
    }
  })

/** Counts one Kubernetes call, and its duration unless `seconds` is undefined (a watch, an interrupted call). */
export const recordKubeCallUnsafe = (
  context: Context.Context<never>,
  call: { readonly resource: string; readonly verb: string },
  outcome: KubeOutcome,
  seconds: number | undefined
): void => {
  const { resource, verb } = call
  kubeRequestsBy(`${resource} ${verb} ${outcome}`, () => ({ resource, verb, outcome })).updateUnsafe(1, context)
  if (seconds !== undefined) kubeDurationBy(`${resource} ${verb}`, () => ({ resource, verb })).updateUnsafe(seconds, context)
}

export const recordKubeCall = (
  call: { readonly resource: string; readonly verb: string },
  outcome: KubeOutcome,
  seconds: number | undefined
): Effect.Effect<void> => recording((context) => recordKubeCallUnsafe(context, call, outcome, seconds))

/** For `ClusterConfig`'s reload observer: `object` as it names it (`ConfigMap das/filers-list`). */
export const recordConfigReload = (object: string, result: ReloadResultLabel): Effect.Effect<void> =>
  recording((context) => {
    const label = configObject(object)
    configReloadsBy(`${label} ${result}`, () => ({ object: label, result })).updateUnsafe(1, context)
    if (result !== "watch-error") {
      configCurrentBy(label, () => ({ object: label })).updateUnsafe(result === "loaded" ? 1 : 0, context)
    }
  })

/** For SharesCache's observer: whether it is in sync, and how many namespaces it holds. */
export const recordSharesCache = (state: { readonly inSync: boolean; readonly namespaces: number }): Effect.Effect<void> =>
  recording((context) => {
    sharesCacheSynced.updateUnsafe(state.inSync ? 1 : 0, context)
    sharesCacheNamespaces.updateUnsafe(state.namespaces, context)
  })

export const recordEvent = (result: EventResult): Effect.Effect<void> =>
  recording((context) => eventsBy(result, () => ({ result })).updateUnsafe(1, context))

export const recordReady = (isReady: boolean): Effect.Effect<void> =>
  recording((context) => ready.updateUnsafe(isReady ? 1 : 0, context))

/** How many connection Secrets the last review of the injector's own access found it may not get. */
export const recordSecretsUnreadable = (count: number): Effect.Effect<void> =>
  recording((context) => secretsUnreadable.updateUnsafe(count, context))

export const recordHttpRequest = (url: string, status: number): Effect.Effect<void> =>
  recording((context) => {
    const route = httpRoute(url)
    const code = String(status)
    httpRequestsBy(`${route} ${code}`, () => ({ route, code })).updateUnsafe(1, context)
  })

/** What the admission requests being answered hold now. */
export const recordInFlight = (requests: number, bytes: number): Effect.Effect<void> =>
  recording((context) => {
    admissionsInFlight.updateUnsafe(requests, context)
    bodyBytesInFlight.updateUnsafe(bytes, context)
  })

/** Counts one admission request refused with 429. */
export const recordOverload = (limit: OverloadLimitLabel): Effect.Effect<void> =>
  recording((context) => overloadRejectionsBy(limit, () => ({ limit })).updateUnsafe(1, context))

/**
 * Every admission decision, the 429 counts, what is in flight and readiness at 0, so the series exist (and
 * `rate()` works) before the first admission. Call once at start.
 */
export const initializeMetrics: Effect.Effect<void> = recording((context) => {
  for (const decision of decisions) byDecision(decision).updateUnsafe(0, context)
  sidecarsInjected.updateUnsafe(0, context)
  for (const result of eventResults) eventsBy(result, () => ({ result })).updateUnsafe(0, context)
  for (const limit of overloadLimits) overloadRejectionsBy(limit, () => ({ limit })).updateUnsafe(0, context)
  admissionsInFlight.updateUnsafe(0, context)
  bodyBytesInFlight.updateUnsafe(0, context)
  ready.updateUnsafe(0, context)
})
