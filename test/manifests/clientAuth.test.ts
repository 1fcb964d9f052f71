/**
 * The optional client-auth component (manifests/components/client-auth): an
 * operator includes it with the cert-manager overlay so that only the API
 * server may call /inject. Checked as the README's example overlay renders it
 * (test/manifests/fixtures/client-auth): cert-manager issues a client
 * certificate for the API server from a CA of its own, the injector gets that
 * CA's certificate (and only it) as CLIENT_CA_FILE, and the README's
 * AdmissionConfiguration presents the certificate for the webhook's Service.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parseAllDocuments } from "yaml"
import { serverSettings } from "../../src/server/ServerSettings.ts"
import { build, type Certificate, type Issuer, type K8sObject, kubectlAvailable, manifests, named, ofKind, root, theOne } from "./rendered.ts"

interface Deployment extends K8sObject {
  readonly spec: {
    readonly template: {
      readonly spec: {
        readonly containers: ReadonlyArray<{
          readonly env?: ReadonlyArray<{ readonly name: string; readonly value?: string }>
          readonly volumeMounts?: ReadonlyArray<{ readonly name: string; readonly mountPath: string; readonly readOnly?: boolean; readonly subPath?: string }>
        }>
        readonly volumes?: ReadonlyArray<{
          readonly name: string
          readonly secret?: { readonly secretName: string; readonly items?: ReadonlyArray<{ readonly key: string; readonly path: string }> }
        }>
      }
    }
  }
}

interface WebhookConfiguration extends K8sObject {
  readonly webhooks: ReadonlyArray<{ readonly clientConfig: { readonly service?: { readonly name: string; readonly namespace: string; readonly port?: number } } }>
}

const component = join(manifests, "components", "client-auth")
const fixture = join(root, "test", "manifests", "fixtures", "client-auth")
const clientCaEnv = serverSettings.clientCaFile.env

describe.skipIf(!kubectlAvailable)("the client-auth component", () => {
  it("is a kustomize Component that the shipped overlays leave out", () => {
    expect(readFileSync(join(component, "kustomization.yaml"), "utf8")).toMatch(/^kind: Component$/m)
    for (const overlay of ["cert-manager", "self-signed"]) {
      const env = theOne<Deployment>(build(join(manifests, "overlays", overlay)), "Deployment").spec.template.spec.containers[0]!.env ?? []
      expect(env.map((entry) => entry.name), overlay).not.toContain(clientCaEnv)
    }
  })

  describe("with the cert-manager overlay (the README's example)", () => {
    const objects = () => build(fixture)
    const certificates = () => ofKind<Certificate>(objects(), "Certificate")
    const podSpec = () => theOne<Deployment>(objects(), "Deployment").spec.template.spec
    const injector = () => podSpec().containers[0]!
    const clientCertificate = () => {
      const found = certificates().filter((certificate) => certificate.spec.usages?.includes("client auth"))
      expect(found.map((certificate) => certificate.metadata.name)).toEqual(["filer-sidecar-injector-apiserver-client"])
      return found[0]!
    }
    /** The Secret holding the CA that signs the API server's client certificate. */
    const callersCaSecret = () => {
      const issuer = named<Issuer>(objects(), "Issuer", clientCertificate().spec.issuerRef.name, "das")
      expect(clientCertificate().spec.issuerRef.kind ?? "Issuer").toBe("Issuer")
      expect(issuer?.spec.ca?.secretName, "a CA Issuer").toBeDefined()
      return issuer!.spec.ca!.secretName
    }

    it("issues the API server a client certificate (client auth only) from a CA that cert-manager makes", () => {
      expect(clientCertificate().spec.usages).not.toContain("server auth")
      const ca = certificates().find((certificate) => certificate.spec.secretName === callersCaSecret())
      expect(ca?.spec.isCA).toBe(true)
      const root = named<Issuer>(objects(), "Issuer", ca!.spec.issuerRef.name, "das")
      expect(root?.spec.selfSigned).toBeDefined()
    })

    it("keeps the callers' CA apart from the serving CA", () => {
      const serving = certificates().find((certificate) => certificate.spec.usages?.includes("server auth"))
      const servingIssuer = named<Issuer>(objects(), "Issuer", serving!.spec.issuerRef.name, "das")
      expect(servingIssuer?.spec.ca?.secretName).toBeDefined()
      expect(servingIssuer!.spec.ca!.secretName).not.toBe(callersCaSecret())
    })

    it(`sets ${clientCaEnv} to that CA's certificate, mounted read-only as a directory, without the CA's key`, () => {
      const file = injector().env?.find((entry) => entry.name === clientCaEnv)?.value ?? ""
      const volume = podSpec().volumes?.find((candidate) => candidate.secret?.secretName === callersCaSecret())
      expect(volume, `a volume of Secret ${callersCaSecret()}`).toBeDefined()
      expect(volume!.secret!.items).toEqual([{ key: "ca.crt", path: "ca.crt" }])
      const mount = injector().volumeMounts?.find((candidate) => candidate.name === volume!.name)
      expect(mount?.readOnly).toBe(true)
      // A subPath mount never sees the renewed CA.
      expect(mount?.subPath).toBeUndefined()
      expect(file).toBe(`${mount!.mountPath}/ca.crt`)
    })
  })
})

/** The YAML documents of the README's code block that follows `marker`. */
const readmeBlockAfter = (marker: string): ReadonlyArray<unknown> => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  const at = readme.indexOf(marker)
  expect(at, `README.md has ${JSON.stringify(marker)}`).toBeGreaterThan(-1)
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))
  expect(block).not.toBeNull()
  return parseAllDocuments(block![1]!).map((document) => document.toJS() as unknown)
}

describe.skipIf(!kubectlAvailable)("README.md, Who may call the webhook", () => {
  it("includes the component in an overlay as the test fixture does", () => {
    const [overlay] = readmeBlockAfter("<!-- client-auth overlay -->") as ReadonlyArray<{ resources: Array<string>; components: Array<string> }>
    const fixtureKustomization = parseAllDocuments(readFileSync(join(fixture, "kustomization.yaml"), "utf8"))[0]!.toJS() as {
      resources: Array<string>
      components: Array<string>
    }
    const tail = (path: string) => path.replace(/^(\.\.\/)+/, "")
    expect(overlay!.resources.map(tail)).toEqual(fixtureKustomization.resources.map(tail))
    expect(overlay!.components.map(tail)).toEqual(fixtureKustomization.components.map(tail))
  })

  it("gives the API server an AdmissionConfiguration whose kubeconfig presents the certificate for the webhook's Service", () => {
    const [admission, kubeconfig] = readmeBlockAfter("<!-- admission configuration -->") as ReadonlyArray<Record<string, never>>
    expect(admission).toMatchObject({ apiVersion: "apiserver.config.k8s.io/v1", kind: "AdmissionConfiguration" })
    const plugin = (admission!["plugins"] as Array<{ name: string; configuration: Record<string, string> }>)
      .find((candidate) => candidate.name === "MutatingAdmissionWebhook")
    expect(plugin?.configuration).toMatchObject({ apiVersion: "apiserver.config.k8s.io/v1", kind: "WebhookAdmissionConfiguration" })
    expect(plugin!.configuration["kubeConfigFile"]).toMatch(/^\//)

    // The API server picks the kubeconfig user by the Service's DNS name (with `:port` unless 443).
    const service = theOne<WebhookConfiguration>(build(fixture), "MutatingWebhookConfiguration").webhooks[0]!.clientConfig.service!
    const dnsName = `${service.name}.${service.namespace}.svc${(service.port ?? 443) === 443 ? "" : `:${service.port}`}`
    expect(kubeconfig).toMatchObject({ apiVersion: "v1", kind: "Config" })
    const users = kubeconfig!["users"] as Array<{ name: string; user: Record<string, string> }>
    expect(users.map((user) => user.name)).toEqual([dnsName])
    expect(Object.keys(users[0]!.user).sort()).toEqual(["client-certificate", "client-key"])
  })
})
