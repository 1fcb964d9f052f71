/**
 * AdmissionSettings: the pipeline's own settings. How credentials reach the
 * pod, the answer when the cluster cannot be read, how many shares a pod
 * gets, the time one admission may take and the sidecars' resources.
 */
import { Config, type Duration } from "effect"
import { configOf, millis, oneOf, quantity, setting, SettingsService, wholeNumber } from "../config/setting.ts"

export type CredentialMode = "secretKeyRef" | "plain"
export type InfrastructureFailurePolicy = "deny" | "admit"

export interface ResourceQuantities {
  readonly cpu: string
  readonly memory: string
}

const resource = (env: string, what: string, fallback: string) =>
  setting({ env, default: fallback, parse: quantity, description: `sidecar ${what} (default ${fallback})` })

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
  /** The most shares one pod gets; shares past it are skipped with a warning. */
  readonly maxSharesPerPod: number
  /** The whole time one admission may take, Kubernetes calls and retries included. Below the webhook's timeoutSeconds. */
  readonly requestBudget: Duration.Duration
}

const config: Config.Config<AdmissionSettingsShape> = configOf(admissionSettings).pipe(
  Config.map(({ sidecarCpuLimit, sidecarCpuRequest, sidecarMemoryLimit, sidecarMemoryRequest, ...rest }) => ({
    ...rest,
    sidecarResources: {
      requests: { cpu: sidecarCpuRequest, memory: sidecarMemoryRequest },
      limits: { cpu: sidecarCpuLimit, memory: sidecarMemoryLimit }
    }
  }))
)

/** Read by the pipeline (`admit`); the server reads the request budget too. */
export class AdmissionSettings extends SettingsService<AdmissionSettings, AdmissionSettingsShape>()(
  "filer-sidecar-injector/admission/AdmissionSettings",
  config
) {}
