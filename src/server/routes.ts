/**
 * The webhook's HTTP surface:
 *   POST /inject   AdmissionReview in, AdmissionReview out (the original's path)
 *   GET  /healthz  alive
 *   GET  /readyz   200 once configuration and TLS are in place, 503 otherwise; warnings below
 *   GET  /metrics  Prometheus metrics, ready or not (observability/Metrics.ts)
 * Bad input gets the status docs/behaviour.md ("The response") lists and a JSON body naming the problem:
 * 400 (not JSON, not an AdmissionReview, no uid), 401 (no verified client certificate, when
 * they are required), 404, 405, 413, 415, and 429 past the bound on admissions in flight.
 */
import { ByteSize, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { eventFor } from "../admission/events/eventFor.ts"
import { EventRecorder } from "../admission/events/EventRecorder.ts"
import { admit, parseJson } from "../admission/pipeline.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { observeAdmission } from "../observability/Admission.ts"
import { countResponses, logRejectedReview, logUnverifiedCaller, metricsPath, metricsResponse } from "../observability/Http.ts"
import { initializeMetrics, recordInFlight, recordOverload, recordReady } from "../observability/Metrics.ts"
import { unverifiedCaller } from "./callers.ts"
import { type InFlightLimit, makeInFlightLimit, type Overload } from "./inFlight.ts"
import { Readiness } from "./Readiness.ts"
import { ServerSettings } from "./ServerSettings.ts"

export const injectPath = "/inject"

/** A JSON error body: `{"error": "..."}`. */
const problem = (status: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(JSON.stringify({ error: message }), { status, contentType: "application/json", headers })

const methodNotAllowed = (allow: string) =>
  problem(405, `method not allowed; use ${allow}`, { allow })

const isJsonContentType = (value: string | undefined) => {
  if (value === undefined) return false
  const type = value.split(";")[0].trim().toLowerCase()
  return type === "application/json" || type.endsWith("+json")
}

/** Seconds a refused caller is asked to wait: an admission takes milliseconds, rarely more than the budget. */
const retryAfterSeconds = 1

const overloaded = (overload: Overload, settings: { readonly maxInFlight: number; readonly maxBufferedBodyBytes: number }) =>
  Effect.as(
    recordOverload(overload),
    problem(
      429,
      overload === "requests_in_flight"
        ? `too many admission requests in flight (at most ${settings.maxInFlight}, MAX_IN_FLIGHT); retry after ${retryAfterSeconds} s`
        : `the admissions in flight hold too many body bytes (at most ${settings.maxBufferedBodyBytes}, MAX_BUFFERED_BODY_BYTES); retry after ${retryAfterSeconds} s`,
      { "retry-after": String(retryAfterSeconds) }
    )
  )

/** The body, read within the size limit, then the admission's answer. */
const readAndAnswer = (request: HttpServerRequest.HttpServerRequest, maxBodyBytes: number) =>
  Effect.gen(function*() {
    const body = yield* request.text.pipe(
      Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
      Effect.result
    )
    if (body._tag === "Failure") {
      const reason = body.failure.reason
      const tooLarge = reason._tag === "RequestParseError" && reason.reason === "BodyTooLarge"
      return tooLarge
        ? problem(413, `body is larger than the ${maxBodyBytes}-byte limit`)
        : problem(400, "cannot read the request body")
    }
    const recorder = yield* EventRecorder
    return yield* parseJson(body.success).pipe(
      Effect.flatMap((input) =>
        observeAdmission(input, admit(input)).pipe(
          // Queued, not sent: the answer never waits for an Event (docs/behaviour.md, "Events").
          Effect.tap((admission) => {
            const intent = eventFor(input, admission)
            return intent === undefined ? Effect.void : recorder.record(intent)
          })
        )
      ),
      Effect.map(({ review }) =>
        HttpServerResponse.text(JSON.stringify(review), { status: 200, contentType: "application/json" })
      ),
      Effect.catchTag("AdmissionDecodeError", (error) => Effect.as(logRejectedReview(error), problem(400, error.message)))
    )
  })

/**
 * POST /inject. The checks that cost nothing come first (the caller, the
 * method, the content type, the declared length); then the bound on what the
 * admissions in flight hold, before the body is read: reading it is what
 * takes memory.
 */
const answerReview = (options: RouteOptions, limit: InFlightLimit) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (options.clientCertificates) {
      const unverified = unverifiedCaller(request)
      if (unverified !== undefined) return yield* Effect.as(logUnverifiedCaller(unverified), problem(401, unverified))
    }
    if (request.method !== "POST") return methodNotAllowed("POST")
    if (!isJsonContentType(request.headers["content-type"])) {
      return problem(415, `Content-Type must be application/json, got ${JSON.stringify(request.headers["content-type"] ?? "")}`)
    }
    const settings = yield* ServerSettings
    const { maxBodyBytes } = settings
    const declared = Number(request.headers["content-length"])
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      return problem(413, `body of ${declared} bytes is larger than the ${maxBodyBytes}-byte limit`)
    }
    // A body without a Content-Length (chunked) may grow to the limit: it holds that much room.
    const holds = Number.isFinite(declared) && declared >= 0 ? declared : maxBodyBytes
    return yield* limit.withRoom(holds, readAndAnswer(request, maxBodyBytes), (overload) => overloaded(overload, settings))
  })

const healthz = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET")
  return HttpServerResponse.text("ok\n")
})

/** Why this replica should get no admissions now, or undefined when it is ready. */
const notReadyReason = (tlsReady: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const config = yield* ClusterConfig
    return (yield* readiness.shuttingDown)
      ? "shutting down"
      : !(yield* config.ready)
      ? "cluster configuration (filers-list, sidecar template) not loaded"
      : !(yield* tlsReady)
      ? "TLS material not loaded"
      : undefined
  })

/**
 * 200 `ok` or 503 `not ready: <why>`, then one `warning: ...` line for each
 * thing worth knowing that leaves the replica ready (Readiness.warn).
 */
const readyz = (tlsReady: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET")
    const reason = yield* notReadyReason(tlsReady)
    yield* recordReady(reason === undefined)
    const warnings = (yield* (yield* Readiness).warnings).map((warning) => `warning: ${warning}\n`).join("")
    return reason === undefined
      ? HttpServerResponse.text(`ok\n${warnings}`)
      : HttpServerResponse.text(`not ready: ${reason}\n${warnings}`, { status: 503 })
  })

/** Answers whether ready or not: a replica that is not ready is the one worth looking at. */
const metrics = (tlsReady: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET")
    return yield* metricsResponse(Effect.map(notReadyReason(tlsReady), (reason) => reason === undefined))
  })

export interface RouteOptions {
  /** `/inject` answers only callers whose client certificate the TLS layer verified (`--client-ca-file`). */
  readonly clientCertificates: boolean
}

/** The routes, as a layer for HttpRouter.serve. `tlsReady` comes from the TLS layer in use. */
export const routes = (tlsReady: Effect.Effect<boolean>, options: RouteOptions = { clientCertificates: false }) =>
  Layer.mergeAll(
    Layer.unwrap(Effect.gen(function*() {
      const { maxBufferedBodyBytes, maxInFlight } = yield* ServerSettings
      const limit = makeInFlightLimit({ maxRequests: maxInFlight, maxBytes: maxBufferedBodyBytes, observe: recordInFlight })
      return HttpRouter.add("*", injectPath, countResponses(answerReview(options, limit)))
    })),
    HttpRouter.add("*", "/healthz", countResponses(healthz)),
    HttpRouter.add("*", "/readyz", countResponses(readyz(tlsReady))),
    HttpRouter.add("*", metricsPath, countResponses(metrics(tlsReady))),
    HttpRouter.add("*", "*", countResponses(Effect.sync(() => problem(404, "not found; the webhook answers POST /inject")))),
    Layer.effectDiscard(initializeMetrics)
  )
