/**
 * How the standard OpenTelemetry variables turn tracing on, and that
 * without them nothing is installed at all.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Tracer } from "effect"
import {
  defaultServiceName,
  displayUrl,
  tracingConfigFromEnv,
  tracingLayerFromEnv
} from "../../src/observability/Tracing.ts"
import { observation, parseLogs } from "./support.ts"

describe("tracing configuration from the environment", () => {
  it("is off when no endpoint is set", () => {
    assert.deepStrictEqual(tracingConfigFromEnv({}), { _tag: "Off", problem: "" })
    assert.deepStrictEqual(tracingConfigFromEnv({ OTEL_SERVICE_NAME: "x" }), { _tag: "Off", problem: "" })
  })

  it("sends traces to <endpoint>/v1/traces, protobuf by default, as the service named", () => {
    const config = tracingConfigFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.monitoring:4318/",
      OTEL_SERVICE_NAME: "filer-sidecar-injector-prod"
    })
    assert.deepStrictEqual(config, {
      _tag: "Otlp",
      url: "http://otel-collector.monitoring:4318/v1/traces",
      serviceName: "filer-sidecar-injector-prod",
      protocol: "http/protobuf",
      headers: {},
      compression: "none",
      exportInterval: undefined
    })
    const base = tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example/otlp" })
    assert.strictEqual(base._tag === "Otlp" && base.url, "https://collector.example/otlp/v1/traces")
    assert.strictEqual(base._tag === "Otlp" && base.serviceName, defaultServiceName)
    const named = tracingConfigFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=injector-a"
    })
    assert.strictEqual(named._tag === "Otlp" && named.serviceName, "injector-a")
  })

  it("takes the traces endpoint as is, and the signal's own settings over the general ones", () => {
    const config = tracingConfigFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://ignored:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://tempo:4318/custom/traces",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Bearer%20abc,x-tenant=team",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
      OTEL_BSP_SCHEDULE_DELAY: "250"
    })
    assert.strictEqual(config._tag, "Otlp")
    if (config._tag !== "Otlp") return
    assert.strictEqual(config.url, "http://tempo:4318/custom/traces")
    assert.strictEqual(config.protocol, "http/json")
    assert.deepStrictEqual(config.headers, { authorization: "Bearer abc", "x-tenant": "team" })
    assert.strictEqual(config.compression, "gzip")
    assert.isTrue(config.exportInterval !== undefined && Duration.toMillis(config.exportInterval) === 250)
  })

  it("is off when turned off, or with a problem when a value cannot be used", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }
    assert.strictEqual(tracingConfigFromEnv({ ...endpoint, OTEL_SDK_DISABLED: "true" })._tag, "Off")
    assert.strictEqual(tracingConfigFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })._tag, "Off")
    assert.strictEqual(tracingConfigFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "console,otlp" })._tag, "Otlp")
    const problem = (env: Record<string, string>) => {
      const config = tracingConfigFromEnv(env)
      return config._tag === "Off" ? config.problem : "(on)"
    }
    assert.include(problem({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }), "not an http(s) URL")
    assert.include(problem({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }), "\"grpc\" is not supported")
    assert.include(problem({ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: "no-equals-sign" }), "key=value")
    assert.include(problem({ ...endpoint, OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" }), "gzip or none")
  })

  it("never shows a URL's user info or query", () => {
    assert.strictEqual(displayUrl("https://user:token@collector:4318/v1/traces?key=abc"), "https://collector:4318/v1/traces")
  })
})

const currentTracer = Effect.gen(function*() {
  return yield* Tracer.Tracer
})

describe("the tracing layer", () => {
  it.effect("installs no tracer without an endpoint (and says so at debug level only)", () => {
    const observed = observation()
    return Effect.gen(function*() {
      const before = yield* currentTracer
      assert.strictEqual(yield* Effect.provide(currentTracer, tracingLayerFromEnv({})), before)
      assert.deepStrictEqual(parseLogs(observed.logs).map((line) => line.level), ["DEBUG"])
    }).pipe(Effect.provide(observed.layer))
  })

  it.effect("warns, and installs nothing, when the configuration cannot be used", () => {
    const observed = observation()
    return Effect.gen(function*() {
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }
      const before = yield* currentTracer
      assert.strictEqual(yield* Effect.provide(currentTracer, tracingLayerFromEnv(env)), before)
      const [line] = parseLogs(observed.logs)
      assert.strictEqual(line.level, "WARN")
      assert.include(line.message, "not exporting traces")
    }).pipe(Effect.provide(observed.layer))
  })
})
