import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option } from "effect"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { GoofysRetryPolicy } from "../../src/cluster/GoofysRetryPolicy.ts"
import { flagsOverEnvironment, type GivenFlag } from "../../src/commands/flags.ts"
import { logLevel } from "../../src/commands/serve.ts"
import { everySetting } from "../../src/commands/settings.ts"
import { load, settingName } from "../../src/config/setting.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"

/** Every component's settings, read from `env` alone, as each component's `layer` reads them. */
const readAll = (env: Record<string, string>) =>
  Effect.all({
    cluster: load(ClusterSettings.config),
    admission: load(AdmissionSettings.config),
    goofys: load(GoofysRetryPolicy.config),
    server: load(ServerSettings.config),
    logLevel: load(logLevel.config)
  }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

/** How an error names a setting: its flag and variable, or the variable alone (from its definition). */
const nameOf = (env: string) => {
  const setting = everySetting.find((candidate) => candidate.env === env)
  assert.isDefined(setting, `a setting reads ${env}`)
  return settingName(setting!)
}

describe("settings", () => {
  it.effect("default to the values of docs/behaviour.md and the README when nothing is set", () =>
    Effect.gen(function*() {
      const settings = yield* readAll({})
      assert.deepStrictEqual(settings.cluster, ClusterSettings.defaults)
      assert.deepStrictEqual(settings.admission, AdmissionSettings.defaults)
      assert.deepStrictEqual(settings.goofys, GoofysRetryPolicy.defaults)
      assert.deepStrictEqual(settings.server, ServerSettings.defaults)
      assert.strictEqual(settings.cluster.injectorNamespace, "das")
      assert.strictEqual(Duration.toMillis(settings.cluster.kubeCallTimeout), 2000)
      assert.strictEqual(settings.admission.credentialMode, "secretKeyRef")
      assert.strictEqual(settings.admission.onInfrastructureFailure, "deny")
      assert.deepStrictEqual(settings.admission.sidecarResources, {
        requests: { cpu: "100m", memory: "100Mi" },
        limits: { cpu: "500m", memory: "10Gi" }
      })
      assert.strictEqual(settings.admission.maxSharesPerPod, 100)
      assert.strictEqual(Duration.toMillis(settings.admission.requestBudget), 7000)
      assert.strictEqual(settings.goofys.attempts, 5)
      assert.strictEqual(settings.goofys.delaySeconds, 1)
      assert.deepStrictEqual(settings.goofys.flags, [
        "--cheap", "--http-timeout", "1500s", "--dir-mode", "0777", "--file-mode", "0777", "-o", "allow_other", "-f"
      ])
      assert.deepStrictEqual(settings.server, {
        port: 8443,
        host: "0.0.0.0",
        tlsCertFile: undefined,
        tlsKeyFile: undefined,
        registerWebhook: undefined,
        clientCaFile: undefined,
        maxBodyBytes: 7 * 1024 * 1024,
        maxInFlight: 64,
        maxBufferedBodyBytes: 8 * 1024 * 1024,
        shutdownDelay: Duration.millis(2000),
        shutdownGrace: Duration.millis(5000)
      })
      assert.strictEqual(settings.logLevel, "info")
    }))

  it.effect("read each value, goofys flags split on whitespace; empty or blank flags are the defaults", () =>
    Effect.gen(function*() {
      const settings = yield* readAll({
        POD_NAMESPACE: "filers",
        CREDENTIAL_MODE: "plain",
        ON_INFRASTRUCTURE_FAILURE: "admit",
        GOOFYS_ATTEMPTS: "3",
        MAX_SHARES_PER_POD: "20",
        GOOFYS_FLAGS: "  --cheap   -o allow_other ",
        REQUEST_BUDGET_MS: "5000",
        SIDECAR_MEMORY_LIMIT: "2Gi",
        TLS_CERT_FILE: "/tls/tls.crt",
        TLS_KEY_FILE: "/tls/tls.key",
        SHUTDOWN_GRACE_MS: "0",
        LOG_LEVEL: "warn"
      })
      assert.strictEqual(settings.cluster.injectorNamespace, "filers")
      assert.strictEqual(settings.admission.credentialMode, "plain")
      assert.strictEqual(settings.admission.onInfrastructureFailure, "admit")
      assert.strictEqual(settings.goofys.attempts, 3)
      assert.strictEqual(settings.admission.maxSharesPerPod, 20)
      assert.deepStrictEqual(settings.goofys.flags, ["--cheap", "-o", "allow_other"])
      assert.strictEqual(Duration.toMillis(settings.admission.requestBudget), 5000)
      assert.strictEqual(settings.admission.sidecarResources.limits.memory, "2Gi")
      assert.strictEqual(settings.admission.sidecarResources.limits.cpu, "500m")
      assert.strictEqual(settings.server.tlsCertFile, "/tls/tls.crt")
      assert.strictEqual(settings.server.tlsKeyFile, "/tls/tls.key")
      assert.strictEqual(Duration.toMillis(settings.server.shutdownGrace), 0)
      assert.strictEqual(settings.logLevel, "warn")
      for (const blank of ["", "   "]) {
        assert.deepStrictEqual((yield* readAll({ GOOFYS_FLAGS: blank })).goofys.flags, GoofysRetryPolicy.defaults.flags)
      }
      assert.strictEqual((yield* readAll({ PORT: "" })).server.port, 8443)
    }))

  it.effect.each([
    ["POD_NAMESPACE", "Not_A_Namespace"],
    ["CREDENTIAL_MODE", "cleartext"],
    ["ON_INFRASTRUCTURE_FAILURE", "ignore"],
    ["SIDECAR_CPU_REQUEST", "lots"],
    ["SIDECAR_MEMORY_REQUEST", "-1Gi"],
    ["SIDECAR_CPU_LIMIT", "1 cpu"],
    ["SIDECAR_MEMORY_LIMIT", "10GB"],
    ["SIDECAR_MEMORY_LIMIT", "1.2.3Gi"],
    ["SIDECAR_MAX_CPU_LIMIT", "two"],
    ["SIDECAR_MAX_MEMORY_LIMIT", "-16Gi"],
    ["GOOFYS_ATTEMPTS", "0"],
    ["GOOFYS_RETRY_DELAY_SECONDS", "1.5"],
    ["GOOFYS_FLAGS", "--cheap \u0001"],
    ["MAX_SHARES_PER_POD", "0"],
    ["MAX_SHARES_PER_POD", "301"],
    ["REQUEST_BUDGET_MS", "50"],
    ["KUBE_CALL_TIMEOUT_MS", "forever"],
    ["PORT", "70000"],
    ["REGISTER_WEBHOOK", "Bad Name"],
    ["MAX_BODY_BYTES", "10"],
    ["MAX_IN_FLIGHT", "0"],
    ["MAX_BUFFERED_BODY_BYTES", "1MiB"],
    ["SHUTDOWN_GRACE_MS", "-5"],
    ["LOG_LEVEL", "verbose"]
  ])("name the setting when %s is invalid", ([env, value]) =>
    Effect.gen(function*() {
      const setting = nameOf(env)
      assert.include(setting, env)
      const error = yield* Effect.flip(readAll({ [env]: value }))
      assert.strictEqual(error.setting, setting)
      assert.include(error.message, `invalid setting ${setting}: `)
    }))

  it.effect("say what was expected and what was given, naming the flag and the variable", () =>
    Effect.gen(function*() {
      const port = yield* Effect.flip(readAll({ PORT: "x" }))
      assert.strictEqual(port.message, `invalid setting --port (PORT): expected a whole number from 0 to 65535, got "x"`)
      const namespace = yield* Effect.flip(readAll({ POD_NAMESPACE: "Das" }))
      assert.strictEqual(
        namespace.message,
        `invalid setting --injector-namespace (POD_NAMESPACE): expected a namespace name (a DNS-1123 label), got "Das"`
      )
      const flags = yield* Effect.flip(readAll({ GOOFYS_FLAGS: "--cheap \u0001" }))
      assert.strictEqual(flags.message, "invalid setting GOOFYS_FLAGS: contains control characters")
    }))

  it.effect("name both TLS settings when only one is given", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(readAll({ TLS_CERT_FILE: "/tls/tls.crt" }))
      assert.include(error.setting, "TLS_KEY_FILE")
      assert.include(error.message, "--tls-cert and --tls-key go together")
      const other = yield* Effect.flip(readAll({ TLS_KEY_FILE: "/tls/tls.key" }))
      assert.include(other.setting, "TLS_CERT_FILE")
    }))

  it.effect("read the client CA file, and refuse a body bound smaller than the largest body", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* readAll({ CLIENT_CA_FILE: "/client-ca/ca.crt" })).server.clientCaFile, "/client-ca/ca.crt")
      const error = yield* Effect.flip(readAll({ MAX_BODY_BYTES: String(8 * 1024 * 1024), MAX_BUFFERED_BODY_BYTES: String(4 * 1024 * 1024) }))
      assert.strictEqual(error.setting, "MAX_BUFFERED_BODY_BYTES")
      assert.include(error.message, "must be at least MAX_BODY_BYTES (8388608)")
    }))

  it.effect("refuse to register the webhook with a certificate from files", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        readAll({ TLS_CERT_FILE: "/tls/tls.crt", TLS_KEY_FILE: "/tls/tls.key", REGISTER_WEBHOOK: "filer-sidecar-injector-webhook" })
      )
      assert.strictEqual(error.setting, "--register-webhook (REGISTER_WEBHOOK)")
      assert.include(error.message, "only the self-signed mode registers the webhook")
    }))

  it.effect("bound what a notebook may choose for its sidecars: 2 CPUs and 16Gi, never below the limits", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* readAll({})).admission.sidecarMaxima, { cpu: "2", memory: "16Gi" })
      assert.deepStrictEqual(
        (yield* readAll({ SIDECAR_MAX_CPU_LIMIT: "4", SIDECAR_MAX_MEMORY_LIMIT: "10Gi" })).admission.sidecarMaxima,
        { cpu: "4", memory: "10Gi" }
      )
      // Raising a limit alone raises the maximum with it, so it never stops the server.
      assert.deepStrictEqual(
        (yield* readAll({ SIDECAR_CPU_LIMIT: "3", SIDECAR_MEMORY_LIMIT: "20Gi" })).admission.sidecarMaxima,
        { cpu: "3", memory: "20Gi" }
      )
    }))

  it.effect("refuse a maximum set below the operator's own limit, naming both", () =>
    Effect.gen(function*() {
      const cpu = yield* Effect.flip(readAll({ SIDECAR_MAX_CPU_LIMIT: "100m" }))
      assert.strictEqual(cpu.message, "invalid setting SIDECAR_MAX_CPU_LIMIT: must be at least SIDECAR_CPU_LIMIT (500m), got 100m")
      const memory = yield* Effect.flip(readAll({ SIDECAR_MEMORY_LIMIT: "20Gi", SIDECAR_MAX_MEMORY_LIMIT: "16Gi" }))
      assert.strictEqual(
        memory.message,
        "invalid setting SIDECAR_MAX_MEMORY_LIMIT: must be at least SIDECAR_MEMORY_LIMIT (20Gi), got 16Gi"
      )
    }))

  it("describe each default in the README's words", () => {
    for (const setting of everySetting) {
      if (setting.default !== undefined) assert.include(setting.description, setting.default, setting.env)
    }
  })

  it("have one variable and at most one flag each", () => {
    const variables = everySetting.map((setting) => setting.env)
    const flags = everySetting.flatMap((setting) => setting.flag === undefined ? [] : [setting.flag])
    assert.deepStrictEqual([...new Set(variables)], variables)
    assert.deepStrictEqual([...new Set(flags)], flags)
    for (const flag of flags) assert.match(flag, /^--[a-z][-a-z]*$/)
  })
})

describe("flags over the environment", () => {
  const serverWith = (env: Record<string, string>, given: ReadonlyArray<GivenFlag>) =>
    load(ServerSettings.config).pipe(
      Effect.provide(flagsOverEnvironment(given).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))))
    )

  it.effect("a flag given wins over its variable; a flag not given leaves it", () =>
    Effect.gen(function*() {
      const given = yield* serverWith({ PORT: "9000", HOST: "::" }, [["PORT", Option.some("9443")], ["HOST", Option.none()]])
      assert.strictEqual(given.port, 9443)
      assert.strictEqual(given.host, "::")
      const notGiven = yield* serverWith({ PORT: "9000" }, [["PORT", Option.none()]])
      assert.strictEqual(notGiven.port, 9000)
    }))

  it.effect("a bad flag gets the same message as a bad variable", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(serverWith({}, [["PORT", Option.some("x")]]))
      assert.strictEqual(error.message, `invalid setting --port (PORT): expected a whole number from 0 to 65535, got "x"`)
    }))
})
