/**
 * Observing the injector in tests: an in-memory tracer, a fresh metric
 * registry, JSON log lines as production writes them, the webhook's routes
 * served over plain HTTP in this process, and a reader of the Prometheus
 * text format.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Effect, Layer, Logger, Metric, References, Tracer } from "effect"
import { HttpBody, HttpClient, HttpRouter } from "effect/http"
import type { RawObject } from "../../src/cluster/objects.ts"
import { memoryTracer } from "../../src/observability/Tracing.ts"
import { Readiness } from "../../src/server/Readiness.ts"
import { routes } from "../../src/server/routes.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"
import { memoryPipeline, type AdmissionOverrides } from "../support/pipelineHarness.ts"

// ---------------------------------------------------------------------------
// Observation: spans, metrics, logs

export interface Observation {
  readonly spans: Array<Tracer.NativeSpan>
  /** Every log line, JSON as `Logger.consoleJson` writes it. */
  readonly logs: Array<string>
  /** Tracer, an empty metric registry and the log capture (all levels). */
  readonly layer: Layer.Layer<never>
}

export const observation = (): Observation => {
  const tracer = memoryTracer()
  const logs: Array<string> = []
  const layer = Layer.mergeAll(
    tracer.layer,
    Layer.succeed(Metric.MetricRegistry)(new Map()),
    Logger.layer([Logger.make((options) => logs.push(Logger.formatJson.log(options)))]),
    Layer.succeed(References.MinimumLogLevel, "All")
  )
  return { spans: tracer.spans, logs, layer }
}

export interface LogLine {
  readonly message: string
  readonly level: string
  readonly annotations: Record<string, unknown>
  readonly cause?: string
}

export const parseLogs = (lines: ReadonlyArray<string>): Array<LogLine> => lines.map((line) => JSON.parse(line) as LogLine)

// ---------------------------------------------------------------------------
// Spans

export const attributesOf = (span: Tracer.Span): Record<string, unknown> => Object.fromEntries(span.attributes)

export const parentOf = (span: Tracer.Span): Tracer.AnySpan | undefined =>
  span.parent._tag === "Some" ? span.parent.value : undefined

export const childrenOf = (spans: ReadonlyArray<Tracer.NativeSpan>, parent: Tracer.Span) =>
  spans.filter((span) => parentOf(span)?.spanId === parent.spanId)

/** Names of the children, sorted (concurrent stages start in any order). */
export const childNames = (spans: ReadonlyArray<Tracer.NativeSpan>, parent: Tracer.Span) =>
  childrenOf(spans, parent).map((span) => span.name).sort()

export const only = <A>(items: ReadonlyArray<A>, what: string): A => {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, found ${items.length}`)
  return items[0]
}

/** Everything a span carries that an exporter would send: name, attributes, events and its failure, if any. */
export const spanText = (span: Tracer.NativeSpan): string => {
  const exit = span.status._tag === "Ended" ? span.status.exit : undefined
  const failure = exit !== undefined && exit._tag === "Failure" ? Cause.pretty(exit.cause) : ""
  const events = span.status._tag === "Ended" ? span.events : []
  return JSON.stringify({ name: span.name, attributes: attributesOf(span), events, failure }, (_key, value) =>
    typeof value === "bigint" ? value.toString() : value)
}

// ---------------------------------------------------------------------------
// The routes, served in this process

/**
 * The webhook's routes (as `serve` mounts them) over plain HTTP on a random
 * port, over a cluster of objects; the HttpClient it provides talks to it.
 */
export const servedRoutes = (
  objects: Iterable<RawObject>,
  settings: AdmissionOverrides = {},
  options: { readonly watchShares?: boolean } = {}
) =>
  HttpRouter.serve(routes(Effect.succeed(true)), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(Readiness.layer),
    Layer.provideMerge(ServerSettings.layerValues()),
    // Logs as the caller's layer says (the harness would turn them off).
    Layer.provideMerge(memoryPipeline(objects, settings, Layer.empty, options))
  )

export interface Answer {
  readonly status: number
  readonly body: string
}

export const post = (path: string, body: unknown) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.post(path, {
      body: typeof body === "string" ? HttpBody.text(body, "application/json") : HttpBody.jsonUnsafe(body)
    })
    return { status: response.status, body: yield* response.text } satisfies Answer
    // The client's own span would become the server span's parent: leave the server its own trace.
  }).pipe(Effect.withTracerEnabled(false))

export const get = (path: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(path)
    return { status: response.status, body: yield* response.text } satisfies Answer
    // The client's own span would become the server span's parent: leave the server its own trace.
  }).pipe(Effect.withTracerEnabled(false))

// ---------------------------------------------------------------------------
// Prometheus text format

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export const parsePrometheus = (text: string): Array<Sample> =>
  text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = sampleLine.exec(line)
    if (match === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? "").matchAll(labelPair)) {
      labels[key] = value.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    }
    const value = match[3] === "+Inf" ? Infinity : match[3] === "-Inf" ? -Infinity : Number(match[3])
    return { name: match[1], labels, value }
  })

/** The value of the one sample named `name` whose labels include `labels`; 0 when there is none. */
export const valueOf = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number => {
  const found = samples.filter((sample) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  )
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value ?? 0
}

// ---------------------------------------------------------------------------
// Credentials

/**
 * Whether `text` holds `secret` plainly, or base64-encoded at any alignment
 * (as part of a larger base64 text too: the middle of each of the three
 * alignments is stable whatever surrounds it).
 */
export const leaks = (text: string, secret: string): boolean => {
  if (text.includes(secret)) return true
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.from("\0".repeat(offset) + secret, "utf8").toString("base64")
    // Drop the characters that depend on the bytes before and after.
    const stable = encoded.slice(offset === 0 ? 0 : 4, encoded.length - 4)
    if (stable.length >= 8 && text.includes(stable)) return true
  }
  return false
}

/** The fixture credentials of manifests/examples/cluster/user-namespace.yaml. */
export const exampleCredentials = [
  "FAKE-ACCESS-fld5-do-not-use",
  "FAKE-SECRET-fld5-do-not-use",
  "FAKE-ACCESS-fld9-do-not-use",
  "FAKE-SECRET-fld9-do-not-use"
] as const
