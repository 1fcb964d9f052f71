/**
 * Tracing: every admission is one trace (the HTTP server's request span, the
 * `admission` span under it, a span per pipeline stage and per Kubernetes
 * call). Spans are Effect's own; they leave the process only when an OTLP
 * endpoint is configured with the standard OpenTelemetry variables:
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT          base URL; traces go to <base>/v1/traces
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   full URL of the traces endpoint (wins)
 *   OTEL_SERVICE_NAME                    default filer-sidecar-injector (or service.name of
 *                                        OTEL_RESOURCE_ATTRIBUTES)
 *   OTEL_EXPORTER_OTLP_PROTOCOL          http/protobuf (default) or http/json
 *   OTEL_EXPORTER_OTLP_HEADERS           k=v,k2=v2 (e.g. a collector token)
 *   OTEL_EXPORTER_OTLP_COMPRESSION       gzip or none (default)
 *   OTEL_TRACES_EXPORTER=none, OTEL_SDK_DISABLED=true   turn it off
 *   OTEL_RESOURCE_ATTRIBUTES             extra resource attributes
 *
 * Unset, no tracer is installed: Effect keeps its native tracer, the HTTP
 * server skips its tracing middleware, the observability code makes no spans
 * of its own (Traced.ts), nothing is exported.
 *
 * The exporter is effect's (`effect/observability` OtlpTracer over the
 * global `fetch`); no OpenTelemetry SDK is involved.
 */
import { Duration, Effect, Layer, Tracer } from "effect"
import { FetchHttpClient, HttpMiddleware } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"
import { httpRoute } from "./Metrics.ts"

export const defaultServiceName = "filer-sidecar-injector"

export type OtlpProtocol = "http/protobuf" | "http/json"

export interface OtlpTracingConfig {
  readonly _tag: "Otlp"
  /** The traces endpoint, e.g. `http://otel-collector:4318/v1/traces`. */
  readonly url: string
  readonly serviceName: string
  readonly protocol: OtlpProtocol
  /** Sent with every export; may hold a token, so never logged. */
  readonly headers: Readonly<Record<string, string>>
  readonly compression: "gzip" | "none"
  readonly exportInterval: Duration.Duration | undefined
}

export interface TracingOff {
  readonly _tag: "Off"
  /** Why, for the start-up log line; empty when simply not configured. */
  readonly problem: string
}

export type TracingConfig = OtlpTracingConfig | TracingOff

type Env = Readonly<Record<string, string | undefined>>

const value = (env: Env, name: string): string | undefined => {
  const raw = env[name]?.trim()
  return raw === undefined || raw === "" ? undefined : raw
}

const off = (problem = ""): TracingOff => ({ _tag: "Off", problem })

/** `k=v,k2=v2`, each part URI-decoded, as the OTLP exporter specification says. */
const parseHeaders = (raw: string | undefined): Record<string, string> | undefined => {
  const headers: Record<string, string> = {}
  if (raw === undefined) return headers
  for (const part of raw.split(",")) {
    if (part.trim() === "") continue
    const equals = part.indexOf("=")
    if (equals <= 0) return undefined
    try {
      headers[decodeURIComponent(part.slice(0, equals).trim()).toLowerCase()] = decodeURIComponent(
        part.slice(equals + 1).trim()
      )
    } catch {
      return undefined
    }
  }
  return headers
}

/** `service.name` from OTEL_RESOURCE_ATTRIBUTES (OTEL_SERVICE_NAME wins over it, as the specification says). */
const resourceServiceName = (raw: string | undefined): string | undefined => {
  const pairs = parseHeaders(raw)
  const name = pairs?.["service.name"]
  return name === undefined || name === "" ? undefined : name
}

/** The base URL plus `v1/traces`, as the specification builds the per-signal URL. */
const tracesUrl = (base: string): string | undefined => {
  try {
    const url = new URL(base)
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`
    return url.toString()
  } catch {
    return undefined
  }
}

const isHttpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/** An endpoint as it may be logged: no user info, no query (either may hold a token). */
export const displayUrl = (text: string): string => {
  try {
    const url = new URL(text)
    return `${url.protocol}//${url.host}${url.pathname}`
  } catch {
    return "(not a URL)"
  }
}

/** What the OpenTelemetry variables in `env` ask for. Never fails: a bad value turns tracing off, with the problem. */
export const tracingConfigFromEnv = (env: Env): TracingConfig => {
  if (value(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true") return off()
  const exporters = (value(env, "OTEL_TRACES_EXPORTER") ?? "otlp").split(",").map((e) => e.trim().toLowerCase())
  if (!exporters.includes("otlp")) return off()

  const signalEndpoint = value(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  const baseEndpoint = value(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
  if (signalEndpoint === undefined && baseEndpoint === undefined) return off()
  const url = signalEndpoint ?? tracesUrl(baseEndpoint!)
  const endpointVariable = signalEndpoint === undefined ? "OTEL_EXPORTER_OTLP_ENDPOINT" : "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
  if (url === undefined || !isHttpUrl(url)) return off(`${endpointVariable} is not an http(s) URL`)

  const protocol = value(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? value(env, "OTEL_EXPORTER_OTLP_PROTOCOL") ??
    "http/protobuf"
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    return off(`OTLP protocol ${JSON.stringify(protocol.slice(0, 40))} is not supported (use http/protobuf or http/json)`)
  }
  const headers = parseHeaders(value(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") ?? value(env, "OTEL_EXPORTER_OTLP_HEADERS"))
  if (headers === undefined) return off("OTEL_EXPORTER_OTLP_HEADERS is not a list of key=value pairs")
  const compression = value(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") ?? value(env, "OTEL_EXPORTER_OTLP_COMPRESSION") ??
    "none"
  if (compression !== "gzip" && compression !== "none") return off("OTLP compression must be gzip or none")
  const delay = value(env, "OTEL_BSP_SCHEDULE_DELAY")
  const exportInterval = delay !== undefined && /^\d+$/.test(delay) ? Duration.millis(Number(delay)) : undefined

  return {
    _tag: "Otlp",
    url,
    serviceName: value(env, "OTEL_SERVICE_NAME") ?? resourceServiceName(value(env, "OTEL_RESOURCE_ATTRIBUTES")) ??
      defaultServiceName,
    protocol,
    headers,
    compression,
    exportInterval
  }
}

/**
 * The HTTP server's request spans: named `POST /inject` (method and route,
 * as OpenTelemetry names server spans), and only for the webhook's own
 * requests: the kubelet's probes and Prometheus' scrapes would otherwise
 * make a trace every few seconds.
 */
export const serverSpans: Layer.Layer<never> = Layer.mergeAll(
  Layer.succeed(HttpMiddleware.TracerDisabledWhen)((request) => httpRoute(request.url) !== "/inject"),
  Layer.succeed(HttpMiddleware.SpanNameGenerator)((request) => `${request.method} ${httpRoute(request.url)}`)
)

/** Spans exported by OTLP over HTTP, as `config` says. */
export const otlpTracingLayer = (config: OtlpTracingConfig): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: config.url,
    resource: { serviceName: config.serviceName },
    headers: config.headers,
    compression: config.compression,
    ...(config.exportInterval === undefined ? {} : { exportInterval: config.exportInterval })
  }).pipe(
    Layer.provide(config.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(FetchHttpClient.layer),
    Layer.merge(serverSpans)
  )

/**
 * Tracing as the environment configures it: OTLP export when an endpoint is
 * set, else nothing at all. Logs one line saying which (never the headers).
 */
export const tracingLayerFromEnv = (env: Env = process.env): Layer.Layer<never> =>
  Layer.unwrap(
    Effect.sync(() => tracingConfigFromEnv(env)).pipe(
      Effect.flatMap((config) => {
        if (config._tag === "Otlp") {
          return Effect.as(
            Effect.logInfo(`exporting traces by OTLP (${config.protocol}) to ${displayUrl(config.url)}`).pipe(
              Effect.annotateLogs({ serviceName: config.serviceName })
            ),
            otlpTracingLayer(config)
          )
        }
        return Effect.as(
          config.problem === ""
            ? Effect.logDebug("not exporting traces: OTEL_EXPORTER_OTLP_ENDPOINT is not set")
            : Effect.logWarning(`not exporting traces: ${config.problem}`),
          Layer.empty
        )
      })
    )
  )

// -----------------------------------------------------------------------------
// In memory, for tests

export interface MemoryTracer {
  /** Every span started, in start order; ended ones have `status._tag === "Ended"`. */
  readonly spans: Array<Tracer.NativeSpan>
  readonly tracer: Tracer.Tracer
  /** Installs the tracer, with the server spans as in production. */
  readonly layer: Layer.Layer<never>
}

/** A tracer that keeps every span, for assertions on names, nesting and attributes. */
export const memoryTracer = (): MemoryTracer => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer, layer: Layer.merge(Layer.succeed(Tracer.Tracer)(tracer), serverSpans) }
}
