/**
 * The injector's ClusterRole, computed from the filers list: RBAC has no name
 * patterns, so `get` on the connection Secrets is limited to the exact names
 * the webhook can ever read, one per SVM of `filers-list` (README, "Adding a
 * filer"). `filer-sidecar-injector rbac` prints it; the base manifests ship it
 * for the example filers list.
 */
import type { Filers } from "./filers.ts"
import { isDns1123Subdomain, secretNameFor } from "./names.ts"

export const clusterRoleName = "filer-sidecar-injector"

/** The user namespace's ConfigMap the webhook reads, by name. */
export const existingSharesName = "existing-shares"

export interface PolicyRule {
  readonly apiGroups: ReadonlyArray<string>
  readonly resources: ReadonlyArray<string>
  /** Absent: every object of the resource (Events have generated names). */
  readonly resourceNames?: ReadonlyArray<string>
  readonly verbs: ReadonlyArray<string>
}

export interface ClusterRole {
  readonly apiVersion: "rbac.authorization.k8s.io/v1"
  readonly kind: "ClusterRole"
  readonly metadata: { readonly name: string; readonly labels: Readonly<Record<string, string>> }
  readonly rules: ReadonlyArray<PolicyRule>
}

/**
 * The connection Secret names of the filers' SVMs, sorted, each once. An SVM
 * whose Secret name would not be valid is left out: the webhook skips it
 * without reading anything (`invalid_secret_name`).
 */
export const connectionSecretNames = (filers: Filers): ReadonlyArray<string> =>
  [...new Set([...filers.keys()].map(secretNameFor))].filter(isDns1123Subdomain).sort()

/**
 * What the webhook reads in every user namespace: `existing-shares` (got,
 * and listed and watched cluster-wide for its cache: a rule limited by name
 * allows a list or watch only with a `metadata.name` field selector, so no
 * other ConfigMap can be read) and the filers' connection Secrets, `get` by
 * name only; and the Events it records there.
 */
export const injectorClusterRole = (filers: Filers): ClusterRole => {
  const secretNames = connectionSecretNames(filers)
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: clusterRoleName, labels: { "app.kubernetes.io/name": "filer-sidecar-injector" } },
    rules: [
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [existingSharesName], verbs: ["get", "list", "watch"] },
      // An empty resourceNames would allow every Secret: with no filer, no rule at all.
      ...(secretNames.length === 0
        ? []
        : [{ apiGroups: [""], resources: ["secrets"], resourceNames: secretNames, verbs: ["get"] }]),
      // The Events on notebooks' StatefulSets (docs/behaviour.md, "Events"): a repeat is an update of the first.
      { apiGroups: [""], resources: ["events"], verbs: ["create", "update"] }
    ]
  }
}
