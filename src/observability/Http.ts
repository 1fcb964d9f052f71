/**
 * The HTTP side of observability: `GET /metrics` in the Prometheus text
 * format, the count of answered requests by route and status, and the log
 * lines of a request that is not an AdmissionReview or whose caller is not verified.
 */
import { Cause, Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { recordHttpRequest, recordReady } from "./Metrics.ts"

export const metricsPath = "/metrics"

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * Every metric of the registry in the current context. `isReady` refreshes
 * the readiness gauge first; the answer itself never depends on it.
 */
export const metricsResponse = <R>(
  isReady: Effect.Effect<boolean, never, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.gen(function*() {
    yield* recordReady(yield* isReady)
    const body = yield* PrometheusMetrics.format()
    return HttpServerResponse.text(body, { contentType: prometheusContentType })
  })

/** A route handler whose answers are counted in `http_requests_total` (a defect counts as the 500 it becomes). */
export const countResponses = <E, R>(
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const { url } = yield* HttpServerRequest.HttpServerRequest
    return yield* handler.pipe(
      Effect.tap((response) => recordHttpRequest(url, response.status)),
      Effect.tapCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : recordHttpRequest(url, 500))
    )
  })

/** The body was not an AdmissionReview we can answer (HTTP 400): one line, at info. */
export const logRejectedReview = (error: { readonly _tag: string; readonly message: string }): Effect.Effect<void> =>
  Effect.logInfo("request rejected: not an AdmissionReview that can be answered").pipe(
    Effect.annotateLogs({ status: 400, "error.tag": error._tag, "error.message": error.message })
  )

/** A caller without a verified client certificate, where one is required (HTTP 401): one line, at info. */
export const logUnverifiedCaller = (problem: string): Effect.Effect<void> =>
  Effect.logInfo("request rejected: the caller has no verified client certificate").pipe(
    Effect.annotateLogs({ status: 401, "error.message": problem })
  )
