/** Plain values for the pure domain functions: decoded pods, filers, Secret lookups. */
import { Redacted } from "effect"
import type { AdmissionRequest } from "../../src/domain/admission.ts"
import type { Filers } from "../../src/domain/filers.ts"
import type { Plan, PlanInput, SecretLookup } from "../../src/domain/plan.ts"
import { plan } from "../../src/domain/plan.ts"
import type { Pod } from "../../src/domain/pod.ts"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"

export const createRequest = (overrides: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: "uid-1",
  kind: { group: "", version: "v1", kind: "Pod" },
  resource: { group: "", version: "v1", resource: "pods" },
  namespace: "jane-doe",
  operation: "CREATE",
  ...overrides
})

/** A decoded notebook pod: one notebook container (NB_PREFIX) unless `containers` says otherwise. */
export const decodedPod = (options: {
  readonly containers?: Pod["spec"]["containers"]
  readonly labels?: Record<string, string>
  readonly annotations?: Record<string, string>
  readonly namespace?: string
  readonly initContainers?: ReadonlyArray<{ readonly name: string }>
  readonly volumes?: ReadonlyArray<{ readonly name: string }>
} = {}): Pod => ({
  metadata: {
    generateName: "analysis-",
    labels: options.labels ?? { "notebook-name": "analysis" },
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    ...(options.namespace === undefined ? {} : { namespace: options.namespace })
  },
  spec: {
    containers: options.containers ?? [{ name: "analysis", env: [{ name: "NB_PREFIX" }] }],
    ...(options.initContainers === undefined ? {} : { initContainers: options.initContainers }),
    ...(options.volumes === undefined ? {} : { volumes: options.volumes })
  }
})

export const filers = (entries: Record<string, string | undefined>): Filers =>
  new Map(Object.entries(entries).map(([vserver, url]) => [vserver, url === undefined ? { vserver } : { vserver, url }]))

export const found = (access: string | undefined, secret: string | undefined): SecretLookup => ({
  _tag: "Found",
  access: access === undefined ? undefined : Redacted.make(access),
  secret: secret === undefined ? undefined : Redacted.make(secret)
})

export const goodSecret = found("FAKE-ACCESS-do-not-use", "FAKE-SECRET-do-not-use")

/**
 * A plan for `shares` (SVM → share list, or raw JSON text), every SVM in
 * filers-list at `https://<svm>.example.test` with a good Secret unless
 * `input` says otherwise.
 */
export const planFor = (
  shares: Record<string, ReadonlyArray<string> | string>,
  input: Partial<Omit<PlanInput, "shares">> = {}
): Plan => {
  const raw = Object.fromEntries(
    Object.entries(shares).map(([svm, list]) => [svm, typeof list === "string" ? list : JSON.stringify(list)])
  )
  return plan({
    pod: input.pod ?? decodedPod(),
    shares: raw,
    filers: input.filers ?? filers(Object.fromEntries(Object.keys(shares).map((svm) => [svm, `https://${svm}.example.test`]))),
    secrets: input.secrets ?? new Map(Object.keys(shares).map((svm) => [svm, goodSecret])),
    maxShares: input.maxShares ?? AdmissionSettings.defaults.maxSharesPerPod
  })
}
