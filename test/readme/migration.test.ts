/**
 * README, "Migrating from the Go injector": the migration overlay it has the
 * operator write builds over each shipped overlay and leaves out exactly what
 * would switch traffic, and the names its commands use are the manifests'.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { parseAllDocuments } from "yaml"
import { repoRoot } from "../support/pipelineHarness.ts"
import { tempDirectory } from "../support/serverHarness.ts"

interface K8sObject {
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string }
  readonly spec?: {
    readonly selector?: unknown
    readonly secretName?: string
    readonly template?: { readonly metadata?: { readonly labels?: Readonly<Record<string, string>> } }
  }
}

const kubectlAvailable = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0

const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8")
const section = readme.slice(readme.indexOf("### Migrating from the Go injector"), readme.indexOf("### Uninstall"))

/** The YAML block after "`deploy/migrate/kustomization.yaml`:", out of its list item's indentation. */
const migrateKustomization = (() => {
  const match = /`deploy\/migrate\/kustomization\.yaml`:\n\n( *)```yaml\n([\s\S]*?)\n *```/.exec(section)
  if (match === null) throw new Error("README: no deploy/migrate/kustomization.yaml block")
  const indent = match[1]!.length
  return match[2]!.split("\n").map((line) => line.slice(indent)).join("\n")
})()

const selfSignedOnly = "  # Self-signed overlay only:"

type Overlay = "cert-manager" | "self-signed"
type Built = { readonly production: ReadonlyArray<K8sObject>; readonly migrate: ReadonlyArray<K8sObject> }
const builds = new Map<Overlay, Built>()

/** `kubectl kustomize` of deploy/production (the shipped overlay) and deploy/migrate (the README's), side by side. */
const build = (overlay: Overlay): Built => {
  const cached = builds.get(overlay)
  if (cached !== undefined) return cached
  const directory = tempDirectory("migration")
  fs.symlinkSync(path.join(repoRoot, "manifests"), path.join(directory, "manifests"))
  const production = path.join(directory, "deploy", "production")
  const migrate = path.join(directory, "deploy", "migrate")
  fs.mkdirSync(production, { recursive: true })
  fs.mkdirSync(migrate, { recursive: true })
  fs.writeFileSync(
    path.join(production, "kustomization.yaml"),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../manifests/overlays/${overlay}\n`
  )
  const text = overlay === "self-signed"
    ? migrateKustomization
    : migrateKustomization.slice(0, migrateKustomization.indexOf(selfSignedOnly))
  fs.writeFileSync(path.join(migrate, "kustomization.yaml"), text)
  const render = (dir: string): ReadonlyArray<K8sObject> => {
    const result = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
    if (result.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${result.stderr}`)
    return parseAllDocuments(result.stdout).map((doc) => doc.toJS() as K8sObject)
  }
  const built = { production: render(production), migrate: render(migrate) }
  builds.set(overlay, built)
  return built
}

const key = (object: K8sObject) => `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`
const find = (objects: ReadonlyArray<K8sObject>, kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata.name === name)

describe.skipIf(!kubectlAvailable)("README: Migrating from the Go injector", () => {
  it("has a self-signed-only part in the migration overlay", () => {
    expect(migrateKustomization).toContain(selfSignedOnly)
  })

  for (const overlay of ["cert-manager", "self-signed"] as const) {
    it(`the migration overlay over ${overlay} is the overlay minus what switches traffic`, () => {
      const { production, migrate } = build(overlay)
      const left = production.map(key).filter((name) => !migrate.map(key).includes(name)).sort()
      expect(left).toEqual(
        [
          "MutatingWebhookConfiguration//filer-sidecar-injector-webhook",
          "Service/das/filer-sidecar-injector",
          ...(overlay === "self-signed" ? ["ClusterRoleBinding//filer-sidecar-injector-register-webhook"] : [])
        ].sort()
      )
      expect(migrate.map(key)).toContain("Deployment/das/filer-sidecar-injector")
    })
  }

  it("switches the Service to the selector of the manifests, which the new pods carry", () => {
    const { production } = build("self-signed")
    const patch = /"path":"\/spec\/selector","value":(\{"app\.kubernetes\.io[^}]*\})/.exec(section)
    expect(patch).not.toBeNull()
    const selector = JSON.parse(patch![1]!) as Record<string, string>
    expect(find(production, "Service", "filer-sidecar-injector")?.spec?.selector).toEqual(selector)
    const deployment = find(production, "Deployment", "filer-sidecar-injector")!
    expect(deployment.spec?.template?.metadata?.labels).toMatchObject(selector)
    // The Go injector's label, which the steps use to find its pod and ReplicaSet, is not the new pods'.
    expect(Object.keys(deployment.spec?.template?.metadata?.labels ?? {})).not.toContain("app")
  })

  it("reads the new CA from the Secret cert-manager writes for the webhook's certificate", () => {
    const { production } = build("cert-manager")
    expect(find(production, "Certificate", "filer-sidecar-injector-serving")?.spec?.secretName).toBe(
      "filer-sidecar-injector-serving-cert"
    )
    expect(section).toContain("get secret filer-sidecar-injector-serving-cert -o jsonpath='{.data.ca\\.crt}'")
  })
})
