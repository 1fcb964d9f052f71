/**
 * The one place that decides what each outcome means for the answer.
 */
import type { AdmissionResponse } from "../domain/admission.ts"
import type { InfrastructureFailurePolicy } from "./AdmissionSettings.ts"
import type { InfrastructureFailure } from "./errors.ts"

const product = "filer-sidecar-injector"

const truncate = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

export const allow = (uid: string, warnings: ReadonlyArray<string>): AdmissionResponse =>
  warnings.length === 0 ? { uid, allowed: true } : { uid, allowed: true, warnings }

export const allowWithPatch = (uid: string, patchBase64: string, warnings: ReadonlyArray<string>): AdmissionResponse => ({
  uid,
  allowed: true,
  patchType: "JSONPatch",
  patch: patchBase64,
  ...(warnings.length === 0 ? {} : { warnings })
})

/** The object is not a Pod we can read: refuse it, naming the field. */
export const rejectInvalidPod = (uid: string, problem: string): AdmissionResponse => ({
  uid,
  allowed: false,
  status: { code: 400, reason: "BadRequest", message: `${product}: request.object is not a valid Pod: ${problem}` }
})

/**
 * The Kubernetes API or the injector's configuration failed. By default the
 * pod is denied: its StatefulSet retries, and the pod comes back with its
 * mounts once the cluster recovers. The `admit` policy lets it start without.
 */
export const answerInfrastructureFailure = (
  uid: string,
  failure: InfrastructureFailure,
  policy: InfrastructureFailurePolicy
): AdmissionResponse =>
  policy === "admit"
    ? allow(uid, [truncate(`filers not mounted: ${failure.problem}`, 120)])
    : {
      uid,
      allowed: false,
      status: {
        code: 503,
        reason: "ServiceUnavailable",
        message: `${product} could not look up the pod's filer shares, so the pod is denied rather than started ` +
          `without them; its controller will retry. Cause: ${failure.problem}`
      }
    }
