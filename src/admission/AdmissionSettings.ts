/**
 * AdmissionSettings: the pipeline's own settings. How credentials reach the
 * pod, the answer when the cluster cannot be read, how many shares a pod
 * gets, the time one admission may take and the sidecars' resources.
 */
import { Config, type Duration } from "effect"
import {
  configOf,
  crossCheck,
  millis,
  oneOf,
  quantity,
  type Setting,
  setting,
  SettingsService,
  wholeNumber
} from "../config/setting.ts"
import { compareQuantities, parseQuantity } from "../domain/quantity.ts"

export type CredentialMode = "secretKeyRef" | "plain"
export type InfrastructureFailurePolicy = "deny" | "admit"

export interface ResourceQuantities {
  readonly cpu: string
  readonly memory: string
}

const resource = (env: string, what: string, fallback: string) =>
  setting({ env, default: fallback, parse: quantity, description: `sidecar ${what} (default ${fallback})` })

/**
 * The most a notebook may choose for its sidecars by annotation (README,
 * "Per-notebook choices"). Unset, it is `fallback`, or the operator's own
 * limit when that is larger, so that raising SIDECAR_*_LIMIT alone never
 * stops the server.
 */
const maximum = (env: string, what: string, fallback: string, limitEnv: string) =>
  setting({
    env,
    parse: quantity,
    description:
      `the largest sidecar ${what} request or limit a notebook may choose by annotation (default ${fallback}, or ${limitEnv} when larger)`
  })

const defaultMaxima = { cpu: "2", memory: "16Gi" } as const

export const admissionSettings = {
  credentialMode: setting({
    env: "CREDENTIAL_MODE",
    flag: "--credential-mode",
    default: "secretKeyRef",
    parse: oneOf<CredentialMode>(["secretKeyRef", "plain"]),
    description: "secretKeyRef (default) or plain: how S3 credentials reach the pod (plain: serve needs CLIENT_CA_FILE)"
  }),
  onInfrastructureFailure: setting({
    env: "ON_INFRASTRUCTURE_FAILURE",
    flag: "--on-infrastructure-failure",
    default: "deny",
    parse: oneOf<InfrastructureFailurePolicy>(["deny", "admit"]),
    description: "deny (default) or admit: the answer when the Kubernetes API cannot be read in time"
  }),
  sidecarCpuRequest: resource("SIDECAR_CPU_REQUEST", "CPU request", "100m"),
  sidecarMemoryRequest: resource("SIDECAR_MEMORY_REQUEST", "memory request", "100Mi"),
  sidecarCpuLimit: resource("SIDECAR_CPU_LIMIT", "CPU limit", "500m"),
  sidecarMemoryLimit: resource("SIDECAR_MEMORY_LIMIT", "memory limit", "10Gi"),
  sidecarMaxCpu: maximum("SIDECAR_MAX_CPU_LIMIT", "CPU", defaultMaxima.cpu, "SIDECAR_CPU_LIMIT"),
  sidecarMaxMemory: maximum("SIDECAR_MAX_MEMORY_LIMIT", "memory", defaultMaxima.memory, "SIDECAR_MEMORY_LIMIT"),
  // Each share is a sidecar (~2.8 KB of pod); past about 550 the patched pod is
  // larger than the API server stores (etcd's 1.5 MiB), which would block the
  // pod. 300 shares make ~0.86 MB: room is left for the user's own pod.
  maxSharesPerPod: setting({
    env: "MAX_SHARES_PER_POD",
    default: "100",
    parse: wholeNumber(1, 300),
    description: "the most shares (sidecars) one pod gets; the rest are skipped with a warning (default 100, at most 300)"
  }),
  requestBudget: setting({
    env: "REQUEST_BUDGET_MS",
    flag: "--request-budget-ms",
    default: "7000",
    parse: millis(100, 29_000),
    description: "time one admission may take, retries included (default 7000; keep it below the webhook's timeoutSeconds)"
  })
}

export interface AdmissionSettingsShape {
  /** `secretKeyRef` (default): credentials reach the pod only as Secret references. */
  readonly credentialMode: CredentialMode
  /** What to answer when the Kubernetes API cannot be read within the budget. */
  readonly onInfrastructureFailure: InfrastructureFailurePolicy
  readonly sidecarResources: { readonly requests: ResourceQuantities; readonly limits: ResourceQuantities }
  /** The most a notebook may choose by annotation for a sidecar's requests and limits; at least the limits above. */
  readonly sidecarMaxima: ResourceQuantities
  /** The most shares one pod gets; shares past it are skipped with a warning. */
  readonly maxSharesPerPod: number
  /** The whole time one admission may take, Kubernetes calls and retries included. Below the webhook's timeoutSeconds. */
  readonly requestBudget: Duration.Duration
}

const settingValues = configOf(admissionSettings)
type SettingValues = Config.Success<typeof settingValues>

/** Whether quantity `a` is below `b`; both were checked by `quantity`. */
const below = (a: string, b: string): boolean => {
  const [left, right] = [parseQuantity(a), parseQuantity(b)]
  return left !== undefined && right !== undefined && compareQuantities(left, right) < 0
}

/** An explicit maximum below the operator's own limit: the defaults could not be chosen back. */
const belowLimit = (
  maximum: Setting<unknown>,
  given: string | undefined,
  limit: Setting<unknown>,
  limitValue: string
): readonly [Setting<unknown>, string] | undefined =>
  given !== undefined && below(given, limitValue)
    ? [maximum, `must be at least ${limit.env} (${limitValue}), got ${given}`]
    : undefined

const maximumBelowLimit = (values: SettingValues) =>
  belowLimit(admissionSettings.sidecarMaxCpu, values.sidecarMaxCpu, admissionSettings.sidecarCpuLimit, values.sidecarCpuLimit) ??
    belowLimit(
      admissionSettings.sidecarMaxMemory,
      values.sidecarMaxMemory,
      admissionSettings.sidecarMemoryLimit,
      values.sidecarMemoryLimit
    )

/** The maximum as set, else the default maximum, raised to the limit when that is larger. */
const maximumOf = (given: string | undefined, fallback: string, limit: string): string =>
  given ?? (below(fallback, limit) ? limit : fallback)

const config: Config.Config<AdmissionSettingsShape> = settingValues.pipe(
  crossCheck(maximumBelowLimit),
  Config.map((
    { sidecarCpuLimit, sidecarCpuRequest, sidecarMaxCpu, sidecarMaxMemory, sidecarMemoryLimit, sidecarMemoryRequest, ...rest }
  ) => ({
    ...rest,
    sidecarResources: {
      requests: { cpu: sidecarCpuRequest, memory: sidecarMemoryRequest },
      limits: { cpu: sidecarCpuLimit, memory: sidecarMemoryLimit }
    },
    sidecarMaxima: {
      cpu: maximumOf(sidecarMaxCpu, defaultMaxima.cpu, sidecarCpuLimit),
      memory: maximumOf(sidecarMaxMemory, defaultMaxima.memory, sidecarMemoryLimit)
    }
  }))
)

/** Read by the pipeline (`admit`); the server reads the request budget too. */
export class AdmissionSettings extends SettingsService<AdmissionSettings, AdmissionSettingsShape>()(
  "filer-sidecar-injector/admission/AdmissionSettings",
  config
) {}
