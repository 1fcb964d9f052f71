/**
 * decide: is this a CREATE of a notebook pod that wants filers? The answer is
 * a value, not an error: a pod that is not for us is admitted unchanged.
 * (Whether the namespace has shares at all is known only after a lookup.)
 */
import type { AdmissionRequest } from "./admission.ts"
import { injectAnnotation, notebookLabel, notebookMarkerEnv, type Pod } from "./pod.ts"

/** Why a pod is left alone, as a fixed code for metrics. */
export const decisionSkipCodes = [
  "not_pod",
  "subresource",
  "not_create",
  "no_notebook_label",
  "opted_out",
  "no_namespace",
  "no_notebook_container"
] as const
export type DecisionSkipCode = (typeof decisionSkipCodes)[number]

/** Every reason a pod is admitted unchanged: decide's, and those known only after the lookup. */
export const podSkipCodes = [...decisionSkipCodes, "no_existing_shares", "nothing_to_mount", "already_injected"] as const
export type PodSkipCode = (typeof podSkipCodes)[number]

export type Decision =
  | { readonly _tag: "Skip"; readonly code: DecisionSkipCode; readonly reason: string; readonly warning?: string }
  | { readonly _tag: "Inject"; readonly namespace: string; readonly notebookContainer: number }

const skip = (code: DecisionSkipCode, reason: string, warning?: string): Decision =>
  warning === undefined ? { _tag: "Skip", code, reason } : { _tag: "Skip", code, reason, warning }

/** Annotation values that turn injection off; `injected` is what the injector leaves behind. */
const optOutValues: ReadonlySet<string> = new Set(["n", "not", "false", "off", "injected"])

/**
 * Condition 1 (docs/behaviour.md, "When a pod is mutated"), from the request
 * alone, before the object is decoded as a Pod.
 * **fix**: only CREATE; a patch adding containers to an UPDATE can only be rejected.
 */
export const decideRequest = (request: AdmissionRequest): Decision | undefined => {
  const kind = request.kind
  if (kind === undefined || kind.group !== "" || kind.version !== "v1" || kind.kind !== "Pod") {
    return skip("not_pod", "not a core/v1 Pod")
  }
  if (request.subResource !== undefined && request.subResource !== "") return skip("subresource", `a ${request.subResource} subresource`)
  if (request.operation !== "CREATE") return skip("not_create", `operation ${request.operation ?? "(none)"}, not CREATE`)
  return undefined
}

/** Conditions 2, 3 and 5 of docs/behaviour.md, "When a pod is mutated", on the decoded pod. */
export const decidePod = (request: AdmissionRequest, pod: Pod): Decision => {
  const labels = pod.metadata?.labels ?? {}
  if (!Object.hasOwn(labels, notebookLabel)) return skip("no_notebook_label", `no ${notebookLabel} label`)
  const annotation = pod.metadata?.annotations?.[injectAnnotation]
  if (annotation !== undefined && optOutValues.has(annotation.toLowerCase())) {
    return skip("opted_out", `annotation ${injectAnnotation}=${annotation}`)
  }
  // A pod under creation may carry no namespace: the request's is authoritative.
  const namespace = request.namespace || pod.metadata?.namespace || ""
  if (namespace === "") return skip("no_namespace", "no namespace in the request")
  // **fix**: the original always patched container 0.
  const notebookContainer = pod.spec.containers.findIndex((container) =>
    (container.env ?? []).some((env) => env.name === notebookMarkerEnv)
  )
  if (notebookContainer < 0) {
    return skip(
      "no_notebook_container",
      `no container with env ${notebookMarkerEnv}`,
      `filers not mounted: no container has env ${notebookMarkerEnv} (the notebook container)`
    )
  }
  return { _tag: "Inject", namespace, notebookContainer }
}
