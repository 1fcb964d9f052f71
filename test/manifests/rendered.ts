/**
 * The manifests as `kubectl kustomize` renders them, read back as objects,
 * and the Kubernetes semantics the manifests tests check them with. Built
 * once per directory; without kubectl on PATH the tests that need it skip.
 */
import { spawnSync } from "node:child_process"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { expect } from "vitest"
import { parseManifests } from "../../src/cluster/manifestFiles.ts"

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
export const manifests = join(root, "manifests")

// ---------------------------------------------------------------------------
// The shapes read here (only the fields the checks use).

export type Labels = Readonly<Record<string, string>>

export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: {
    readonly name: string
    readonly namespace?: string
    readonly labels?: Labels
    readonly annotations?: Labels
  }
}

/** A cert-manager Certificate, as far as the tests read it. */
export interface Certificate extends K8sObject {
  readonly spec: {
    readonly secretName: string
    readonly isCA?: boolean
    readonly dnsNames?: ReadonlyArray<string>
    readonly usages?: ReadonlyArray<string>
    readonly issuerRef: { readonly kind?: string; readonly name: string }
  }
}

/** A cert-manager Issuer: self-signed, or a CA from a Secret. */
export interface Issuer extends K8sObject {
  readonly spec: { readonly selfSigned?: object; readonly ca?: { readonly secretName: string } }
}

export interface LabelSelector {
  readonly matchLabels?: Labels
  readonly matchExpressions?: ReadonlyArray<{
    readonly key: string
    readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist"
    readonly values?: ReadonlyArray<string>
  }>
}

// ---------------------------------------------------------------------------
// Building and reading the output.

export const kubectlAvailable = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0
if (!kubectlAvailable) {
  console.warn("SKIPPED the kustomize tests of test/manifests: kubectl is not on PATH, so the kustomizations cannot be built")
}

/** The objects of a multi-document manifest text, read as the in-memory cluster reads its folder. */
export const readManifests = (text: string, source: string) =>
  Effect.runSync(parseManifests(text, source)) as ReadonlyArray<unknown> as ReadonlyArray<K8sObject>

const built = new Map<string, ReadonlyArray<K8sObject>>()

export const build = (directory: string): ReadonlyArray<K8sObject> => {
  const cached = built.get(directory)
  if (cached !== undefined) return cached
  const result = spawnSync("kubectl", ["kustomize", directory], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
  if (result.status !== 0) {
    throw new Error(`kubectl kustomize ${relative(root, directory)} failed: ${result.stderr || result.error?.message}`)
  }
  const objects = readManifests(result.stdout, `kubectl kustomize ${relative(root, directory)}`)
  built.set(directory, objects)
  return objects
}

export const ofKind = <A extends K8sObject>(objects: ReadonlyArray<K8sObject>, kind: string): ReadonlyArray<A> =>
  objects.filter((object): object is A => object.kind === kind)

export const theOne = <A extends K8sObject>(objects: ReadonlyArray<K8sObject>, kind: string): A => {
  const found = ofKind<A>(objects, kind)
  expect(found.map((object) => object.metadata.name), `exactly one ${kind}`).toHaveLength(1)
  return found[0]!
}

export const named = <A extends K8sObject>(objects: ReadonlyArray<K8sObject>, kind: string, name: string, namespace?: string) =>
  ofKind<A>(objects, kind).find((object) =>
    object.metadata.name === name && (namespace === undefined || object.metadata.namespace === namespace)
  )

/** Kubernetes label selector semantics. */
export const selects = (selector: LabelSelector | undefined, labels: Labels): boolean => {
  if (selector === undefined) return true
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value)
  const byExpressions = (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key]
    switch (expression.operator) {
      case "In":
        return value !== undefined && (expression.values ?? []).includes(value)
      case "NotIn":
        return value === undefined || !(expression.values ?? []).includes(value)
      case "Exists":
        return value !== undefined
      case "DoesNotExist":
        return value === undefined
    }
  })
  return byLabels && byExpressions
}

/** A namespace's labels as the API server sees them (it always adds kubernetes.io/metadata.name). */
export const namespaceLabels = (name: string, labels: Labels = {}): Labels => ({
  ...labels,
  "kubernetes.io/metadata.name": name
})

