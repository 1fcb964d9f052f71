/**
 * Settings: every knob of the injector, read once at start and validated.
 *
 * Each setting has an environment variable and, for the commands that take
 * it, a command-line flag (which wins). A bad value stops the start with a
 * message naming the setting, its variable and flag, and what was expected.
 * The table `settingDocs` below is also what the README documents.
 */
import { Context, Duration, Effect, Layer, Schema } from "effect"

export type CredentialMode = "secretKeyRef" | "plain"
export type InfrastructureFailurePolicy = "deny" | "admit"
export type LogLevelSetting = "debug" | "info" | "warn" | "error"

export interface ResourceQuantities {
  readonly cpu: string
  readonly memory: string
}

export interface SettingsShape {
  /** Where `filers-list` and `filer-sidecar-injector-json` live. */
  readonly injectorNamespace: string
  /** The sidecar template from this file (as the Go injector read it) instead of `filer-sidecar-injector-json`. */
  readonly sidecarConfigFile: string | undefined
  /** `secretKeyRef` (default): credentials reach the pod only as Secret references. */
  readonly credentialMode: CredentialMode
  /** What to answer when the Kubernetes API cannot be read within the budget. */
  readonly onInfrastructureFailure: InfrastructureFailurePolicy
  readonly sidecarResources: { readonly requests: ResourceQuantities; readonly limits: ResourceQuantities }
  /** Goofys mount attempts before the sidecar gives up and sleeps. */
  readonly goofysAttempts: number
  readonly goofysRetryDelaySeconds: number
  /** Flags given to goofys before the bucket and mount point. */
  readonly goofysFlags: ReadonlyArray<string>
  /**
   * The most shares one pod gets: each is a sidecar (~2.3 KB of pod), and past
   * about 700 the patched pod is larger than the API server can store (etcd's 1.5 MiB),
   * which would block the pod. Shares past it are skipped with a warning.
   */
  readonly maxSharesPerPod: number
  /** The whole time one admission may take, Kubernetes calls and retries included. Below the webhook's timeoutSeconds. */
  readonly requestBudget: Duration.Duration
  /** The time one Kubernetes API call may take. */
  readonly kubeCallTimeout: Duration.Duration
  readonly port: number
  readonly host: string
  readonly tlsCertFile: string | undefined
  readonly tlsKeyFile: string | undefined
  /** MutatingWebhookConfiguration whose caBundle the self-signed mode fills in. */
  readonly registerWebhook: string | undefined
  /** Bodies above this get HTTP 413. */
  readonly maxBodyBytes: number
  /** After SIGTERM, how long to keep serving (readiness already false) so the Service's endpoints catch up. */
  readonly shutdownDelay: Duration.Duration
  /** Then, how long in-flight requests may run before connections are cut. */
  readonly shutdownGrace: Duration.Duration
  readonly logLevel: LogLevelSetting
}

export const defaultSettings: SettingsShape = {
  injectorNamespace: "das",
  sidecarConfigFile: undefined,
  credentialMode: "secretKeyRef",
  onInfrastructureFailure: "deny",
  sidecarResources: {
    requests: { cpu: "100m", memory: "100Mi" },
    limits: { cpu: "500m", memory: "10Gi" }
  },
  goofysAttempts: 5,
  goofysRetryDelaySeconds: 1,
  goofysFlags: [
    "--cheap",
    "--http-timeout",
    "1500s",
    "--dir-mode",
    "0777",
    "--file-mode",
    "0777",
    "-o",
    "allow_other",
    "-f"
  ],
  maxSharesPerPod: 100,
  requestBudget: Duration.millis(7000),
  kubeCallTimeout: Duration.millis(2000),
  port: 8443,
  host: "0.0.0.0",
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  registerWebhook: undefined,
  maxBodyBytes: 7 * 1024 * 1024,
  shutdownDelay: Duration.seconds(2),
  shutdownGrace: Duration.seconds(5),
  logLevel: "info"
}

export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  setting: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `invalid setting ${this.setting}: ${this.problem}`
  }
}

/** Where each setting comes from. `flag` is absent for settings only the environment sets. */
interface SettingDoc {
  readonly key: keyof SettingsShape | "sidecarCpuRequest" | "sidecarMemoryRequest" | "sidecarCpuLimit" | "sidecarMemoryLimit"
  readonly env: string
  readonly flag?: string
  readonly description: string
}

export const settingDocs: ReadonlyArray<SettingDoc> = [
  { key: "injectorNamespace", env: "POD_NAMESPACE", flag: "--injector-namespace", description: "namespace holding filers-list and filer-sidecar-injector-json (default das)" },
  { key: "sidecarConfigFile", env: "SIDECAR_CONFIG_FILE", flag: "--sidecar-config-file", description: "read the sidecar template from this file (the JSON of filer-sidecar-injector-json's sidecarconfig.json), re-read when it changes, instead of that ConfigMap" },
  { key: "credentialMode", env: "CREDENTIAL_MODE", flag: "--credential-mode", description: "secretKeyRef (default) or plain: how S3 credentials reach the pod" },
  { key: "onInfrastructureFailure", env: "ON_INFRASTRUCTURE_FAILURE", flag: "--on-infrastructure-failure", description: "deny (default) or admit: the answer when the Kubernetes API cannot be read in time" },
  { key: "sidecarCpuRequest", env: "SIDECAR_CPU_REQUEST", description: "sidecar CPU request (default 100m)" },
  { key: "sidecarMemoryRequest", env: "SIDECAR_MEMORY_REQUEST", description: "sidecar memory request (default 100Mi)" },
  { key: "sidecarCpuLimit", env: "SIDECAR_CPU_LIMIT", description: "sidecar CPU limit (default 500m)" },
  { key: "sidecarMemoryLimit", env: "SIDECAR_MEMORY_LIMIT", description: "sidecar memory limit (default 10Gi)" },
  { key: "goofysAttempts", env: "GOOFYS_ATTEMPTS", description: "goofys mount attempts before the sidecar gives up (default 5)" },
  { key: "goofysRetryDelaySeconds", env: "GOOFYS_RETRY_DELAY_SECONDS", description: "seconds between goofys attempts (default 1)" },
  { key: "goofysFlags", env: "GOOFYS_FLAGS", description: "goofys flags, space-separated (default --cheap --http-timeout 1500s --dir-mode 0777 --file-mode 0777 -o allow_other -f)" },
  { key: "maxSharesPerPod", env: "MAX_SHARES_PER_POD", description: "the most shares (sidecars) one pod gets; the rest are skipped with a warning (default 100, at most 300)" },
  { key: "requestBudget", env: "REQUEST_BUDGET_MS", flag: "--request-budget-ms", description: "time one admission may take, retries included (default 7000; keep it below the webhook's timeoutSeconds)" },
  { key: "kubeCallTimeout", env: "KUBE_CALL_TIMEOUT_MS", description: "time one Kubernetes API call may take (default 2000)" },
  { key: "port", env: "PORT", flag: "--port", description: "HTTPS port (default 8443)" },
  { key: "host", env: "HOST", flag: "--host", description: "address to listen on (default 0.0.0.0, all interfaces)" },
  { key: "tlsCertFile", env: "TLS_CERT_FILE", flag: "--tls-cert", description: "serving certificate (PEM); reloaded when it changes. Without it a self-signed one is generated" },
  { key: "tlsKeyFile", env: "TLS_KEY_FILE", flag: "--tls-key", description: "private key of the serving certificate (PEM)" },
  { key: "registerWebhook", env: "REGISTER_WEBHOOK", flag: "--register-webhook", description: "self-signed mode: MutatingWebhookConfiguration whose caBundle to fill in" },
  { key: "maxBodyBytes", env: "MAX_BODY_BYTES", flag: "--max-body-bytes", description: "largest request body accepted, in bytes (default 7340032, 7 MiB)" },
  { key: "shutdownDelay", env: "SHUTDOWN_DELAY_MS", description: "after SIGTERM, time to keep serving while not ready, so endpoints catch up (default 2000)" },
  { key: "shutdownGrace", env: "SHUTDOWN_GRACE_MS", description: "then, time in-flight requests get before connections are cut (default 5000)" },
  // Not a flag of ours: effect/cli's global --log-level (which also works) would shadow it.
  { key: "logLevel", env: "LOG_LEVEL", description: "debug, info (default), warn or error" }
]

/** Raw values by environment variable name; flags are mapped onto the same names by the command line. */
export type SettingSources = Readonly<Record<string, string | undefined>>

const nameOf = (env: string) => {
  const doc = settingDocs.find((candidate) => candidate.env === env)
  return doc?.flag === undefined ? env : `${doc.flag} (${env})`
}

const fail = (env: string, problem: string) => Effect.fail(new SettingsError({ setting: nameOf(env), problem }))

const show = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)

const choice = <A extends string>(sources: SettingSources, env: string, options: ReadonlyArray<A>, fallback: A) => {
  const raw = sources[env]
  if (raw === undefined || raw === "") return Effect.succeed(fallback)
  return (options as ReadonlyArray<string>).includes(raw)
    ? Effect.succeed(raw as A)
    : fail(env, `expected one of ${options.join(", ")}, got ${show(raw)}`)
}

const integer = (sources: SettingSources, env: string, min: number, max: number, fallback: number) => {
  const raw = sources[env]
  if (raw === undefined || raw === "") return Effect.succeed(fallback)
  const value = Number(raw)
  return /^\d+$/.test(raw.trim()) && value >= min && value <= max
    ? Effect.succeed(value)
    : fail(env, `expected a whole number from ${min} to ${max}, got ${show(raw)}`)
}

// A Kubernetes resource quantity, as resource.Quantity parses it.
const quantityPattern = /^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$/

const quantity = (sources: SettingSources, env: string, fallback: string) => {
  const raw = sources[env]
  if (raw === undefined || raw === "") return Effect.succeed(fallback)
  return quantityPattern.test(raw) && !raw.startsWith("-")
    ? Effect.succeed(raw)
    : fail(env, `expected a Kubernetes quantity such as 100m, 1, 100Mi or 10Gi, got ${show(raw)}`)
}

const text = (sources: SettingSources, env: string, fallback: string | undefined, pattern?: RegExp, expected?: string) => {
  const raw = sources[env]
  if (raw === undefined || raw === "") return Effect.succeed(fallback)
  return pattern === undefined || pattern.test(raw)
    ? Effect.succeed(raw)
    : fail(env, `expected ${expected}, got ${show(raw)}`)
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const dns1123Subdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Validates every setting; the first bad one fails with its name. Pure: the caller passes the sources. */
export const parseSettings = Effect.fnUntraced(function*(sources: SettingSources) {
  const d = defaultSettings
  const injectorNamespace = (yield* text(
    sources,
    "POD_NAMESPACE",
    d.injectorNamespace,
    dns1123Label,
    "a namespace name (a DNS-1123 label)"
  ))!
  const sidecarConfigFile = yield* text(sources, "SIDECAR_CONFIG_FILE", undefined)
  const credentialMode = yield* choice(sources, "CREDENTIAL_MODE", ["secretKeyRef", "plain"] as const, d.credentialMode)
  const onInfrastructureFailure = yield* choice(
    sources,
    "ON_INFRASTRUCTURE_FAILURE",
    ["deny", "admit"] as const,
    d.onInfrastructureFailure
  )
  const sidecarResources = {
    requests: {
      cpu: yield* quantity(sources, "SIDECAR_CPU_REQUEST", d.sidecarResources.requests.cpu),
      memory: yield* quantity(sources, "SIDECAR_MEMORY_REQUEST", d.sidecarResources.requests.memory)
    },
    limits: {
      cpu: yield* quantity(sources, "SIDECAR_CPU_LIMIT", d.sidecarResources.limits.cpu),
      memory: yield* quantity(sources, "SIDECAR_MEMORY_LIMIT", d.sidecarResources.limits.memory)
    }
  }
  const goofysAttempts = yield* integer(sources, "GOOFYS_ATTEMPTS", 1, 100, d.goofysAttempts)
  const goofysRetryDelaySeconds = yield* integer(sources, "GOOFYS_RETRY_DELAY_SECONDS", 0, 3600, d.goofysRetryDelaySeconds)
  const rawFlags = sources.GOOFYS_FLAGS
  const goofysFlags = rawFlags === undefined || rawFlags.trim() === ""
    ? d.goofysFlags
    : rawFlags.trim().split(/\s+/)
  if (goofysFlags.some((flag) => /[\u0000-\u001f\u007f]/.test(flag))) {
    return yield* fail("GOOFYS_FLAGS", "contains control characters")
  }
  // 300 shares make ~0.68 MB of pod: room left under etcd's 1.5 MiB for the user's own pod.
  const maxSharesPerPod = yield* integer(sources, "MAX_SHARES_PER_POD", 1, 300, d.maxSharesPerPod)
  const requestBudgetMillis = yield* integer(sources, "REQUEST_BUDGET_MS", 100, 29_000, Duration.toMillis(d.requestBudget))
  const kubeCallTimeoutMillis = yield* integer(
    sources,
    "KUBE_CALL_TIMEOUT_MS",
    10,
    29_000,
    Duration.toMillis(d.kubeCallTimeout)
  )
  const port = yield* integer(sources, "PORT", 0, 65_535, d.port)
  const host = (yield* text(sources, "HOST", d.host))!
  const tlsCertFile = yield* text(sources, "TLS_CERT_FILE", undefined)
  const tlsKeyFile = yield* text(sources, "TLS_KEY_FILE", undefined)
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    return yield* fail(
      tlsCertFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE",
      "--tls-cert and --tls-key go together: give both, or neither for a self-signed certificate"
    )
  }
  const registerWebhook = yield* text(
    sources,
    "REGISTER_WEBHOOK",
    undefined,
    dns1123Subdomain,
    "a MutatingWebhookConfiguration name (a DNS-1123 subdomain)"
  )
  if (registerWebhook !== undefined && tlsCertFile !== undefined) {
    return yield* fail(
      "REGISTER_WEBHOOK",
      "only the self-signed mode registers the webhook; with --tls-cert the CA comes from your issuer (cert-manager's inject-ca-from)"
    )
  }
  const maxBodyBytes = yield* integer(sources, "MAX_BODY_BYTES", 3 * 1024 * 1024, 64 * 1024 * 1024, d.maxBodyBytes)
  const shutdownDelayMillis = yield* integer(sources, "SHUTDOWN_DELAY_MS", 0, 60_000, Duration.toMillis(d.shutdownDelay))
  const shutdownGraceMillis = yield* integer(sources, "SHUTDOWN_GRACE_MS", 0, 60_000, Duration.toMillis(d.shutdownGrace))
  const logLevel = yield* choice(sources, "LOG_LEVEL", ["debug", "info", "warn", "error"] as const, d.logLevel)
  return {
    injectorNamespace,
    sidecarConfigFile,
    credentialMode,
    onInfrastructureFailure,
    sidecarResources,
    goofysAttempts,
    goofysRetryDelaySeconds,
    goofysFlags,
    maxSharesPerPod,
    requestBudget: Duration.millis(requestBudgetMillis),
    kubeCallTimeout: Duration.millis(kubeCallTimeoutMillis),
    port,
    host,
    tlsCertFile,
    tlsKeyFile,
    registerWebhook,
    maxBodyBytes,
    shutdownDelay: Duration.millis(shutdownDelayMillis),
    shutdownGrace: Duration.millis(shutdownGraceMillis),
    logLevel
  } satisfies SettingsShape
})

export class Settings extends Context.Service<Settings, SettingsShape>()("filer-sidecar-injector/Settings") {
  /** Plain values over the defaults: for tests and embedding. */
  static readonly layer = (overrides: Partial<SettingsShape> = {}): Layer.Layer<Settings> =>
    Layer.succeed(Settings, { ...defaultSettings, ...overrides })

  /** From the environment, with the command line's flags (already mapped to variable names) winning. */
  static readonly layerFromSources = (sources: SettingSources): Layer.Layer<Settings, SettingsError> =>
    Layer.effect(Settings, parseSettings(sources))
}
