/**
 * decide: is this a CREATE of a notebook pod that wants filers? The answer is
 * a value, not an error: a pod that is not for us is admitted unchanged.
 * (Whether the namespace has shares at all is known only after a lookup.)
 */
import type { AdmissionRequest } from "./admission.ts"
import { injectAnnotation, notebookLabel, notebookMarkerEnv, type Pod } from "./pod.ts"

export type Decision =
  | { readonly _tag: "Skip"; readonly reason: string; readonly warning?: string }
  | { readonly _tag: "Inject"; readonly namespace: string; readonly notebookContainer: number }

const skip = (reason: string, warning?: string): Decision =>
  warning === undefined ? { _tag: "Skip", reason } : { _tag: "Skip", reason, warning }

/** Annotation values that turn injection off; `injected` is what the injector leaves behind. */
const optOutValues: ReadonlySet<string> = new Set(["n", "not", "false", "off", "injected"])

/**
 * Rule 1, from the request alone, before the object is decoded as a Pod.
 * **fix**: only CREATE; a patch adding containers to an UPDATE can only be rejected.
 */
export const decideRequest = (request: AdmissionRequest): Decision | undefined => {
  const kind = request.kind
  if (kind === undefined || kind.group !== "" || kind.version !== "v1" || kind.kind !== "Pod") {
    return skip("not a core/v1 Pod")
  }
  if (request.subResource !== undefined && request.subResource !== "") return skip(`a ${request.subResource} subresource`)
  if (request.operation !== "CREATE") return skip(`operation ${request.operation ?? "(none)"}, not CREATE`)
  return undefined
}

/** Rules 2, 3 and 5, on the decoded pod. */
export const decidePod = (request: AdmissionRequest, pod: Pod): Decision => {
  const labels = pod.metadata?.labels ?? {}
  if (!Object.hasOwn(labels, notebookLabel)) return skip(`no ${notebookLabel} label`)
  const annotation = pod.metadata?.annotations?.[injectAnnotation]
  if (annotation !== undefined && optOutValues.has(annotation.toLowerCase())) {
    return skip(`annotation ${injectAnnotation}=${annotation}`)
  }
  // A pod under creation may carry no namespace: the request's is authoritative.
  const namespace = request.namespace || pod.metadata?.namespace || ""
  if (namespace === "") return skip("no namespace in the request")
  // **fix**: the original always patched container 0.
  const notebookContainer = pod.spec.containers.findIndex((container) =>
    (container.env ?? []).some((env) => env.name === notebookMarkerEnv)
  )
  if (notebookContainer < 0) {
    return skip(
      `no container with env ${notebookMarkerEnv}`,
      `filers not mounted: no container has env ${notebookMarkerEnv} (the notebook container)`
    )
  }
  return { _tag: "Inject", namespace, notebookContainer }
}
