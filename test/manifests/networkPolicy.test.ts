/**
 * The optional NetworkPolicy (manifests/components/network-policy): a
 * kustomize Component an operator includes in an overlay and completes with
 * the control plane's address range. Checked as the README's example overlay
 * renders it (test/manifests/fixtures/network-policy): the injector's pods
 * take HTTPS on 8443 from the API server and Prometheus only, and reach the
 * API server and DNS only.
 */
import { readFileSync } from "node:fs"
import { isIP } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import {
  build,
  type K8sObject,
  kubectlAvailable,
  type Labels,
  type LabelSelector,
  manifests,
  named,
  ofKind,
  root,
  selects,
  theOne
} from "./rendered.ts"

interface Peer {
  readonly ipBlock?: { readonly cidr: string; readonly except?: ReadonlyArray<string> }
  readonly namespaceSelector?: LabelSelector
  readonly podSelector?: LabelSelector
}

interface Port {
  readonly protocol?: string
  readonly port?: number | string
  readonly endPort?: number
}

interface NetworkPolicy extends K8sObject {
  readonly spec: {
    readonly podSelector: LabelSelector
    readonly policyTypes?: ReadonlyArray<string>
    readonly ingress?: ReadonlyArray<{ readonly from?: ReadonlyArray<Peer>; readonly ports?: ReadonlyArray<Port> }>
    readonly egress?: ReadonlyArray<{ readonly to?: ReadonlyArray<Peer>; readonly ports?: ReadonlyArray<Port> }>
  }
}

interface Deployment extends K8sObject {
  readonly spec: {
    readonly template: {
      readonly metadata: { readonly labels: Labels }
      readonly spec: {
        readonly containers: ReadonlyArray<{ readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }> }>
      }
    }
  }
}

const component = join(manifests, "components", "network-policy")
const fixture = join(root, "test", "manifests", "fixtures", "network-policy")
const placeholder = "CONTROL-PLANE-CIDR"

/** Ports as `PROTOCOL/port`, sorted (TCP when the protocol is left out, as the API server defaults it). */
const portsOf = (ports: ReadonlyArray<Port> | undefined) =>
  (ports ?? []).map((port) => `${port.protocol ?? "TCP"}/${port.port}${port.endPort === undefined ? "" : `-${port.endPort}`}`)
    .sort()

const isCidr = (text: string) => {
  const [address = "", prefix = "", ...rest] = text.split("/")
  const family = isIP(address)
  return rest.length === 0 && family !== 0 && /^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

const ipBlocks = (peers: ReadonlyArray<Peer> | undefined) => (peers ?? []).flatMap((peer) => peer.ipBlock === undefined ? [] : [peer.ipBlock.cidr])

describe.skipIf(!kubectlAvailable)("the network-policy component", () => {
  it("is a kustomize Component that the shipped overlays leave out (it needs the operator's address range)", () => {
    expect(readFileSync(join(component, "kustomization.yaml"), "utf8")).toMatch(/^kind: Component$/m)
    for (const overlay of ["cert-manager", "self-signed"]) {
      expect(ofKind(build(join(manifests, "overlays", overlay)), "NetworkPolicy"), overlay).toEqual([])
    }
  })

  it(`names ${placeholder} for the control plane, which the API server refuses, until the operator sets it`, () => {
    const policy = theOne<NetworkPolicy>(build(component), "NetworkPolicy")
    expect(ipBlocks(policy.spec.ingress?.[0]?.from)).toEqual([placeholder])
    expect(ipBlocks(policy.spec.egress?.[0]?.to)).toEqual([placeholder])
    expect(isCidr(placeholder)).toBe(false)
  })

  describe("in an overlay that sets the range (the README's example)", () => {
    const objects = () => build(fixture)
    const policy = () => theOne<NetworkPolicy>(objects(), "NetworkPolicy")
    const deployment = () => theOne<Deployment>(objects(), "Deployment")
    const controlPlane = () => ipBlocks(policy().spec.ingress?.[0]?.from)

    it("applies to the injector's pods, in its namespace, for both directions", () => {
      expect(policy().metadata.namespace).toBe(deployment().metadata.namespace)
      expect(selects(policy().spec.podSelector, deployment().spec.template.metadata.labels)).toBe(true)
      // Not an empty selector, which would take in every pod of the namespace.
      expect(Object.keys(policy().spec.podSelector.matchLabels ?? {})).not.toEqual([])
      expect([...(policy().spec.policyTypes ?? [])].sort()).toEqual(["Egress", "Ingress"])
    })

    it("has the range set everywhere the component named the placeholder", () => {
      expect(JSON.stringify(policy())).not.toContain(placeholder)
      expect(controlPlane()).toHaveLength(1)
      expect(isCidr(controlPlane()[0]!)).toBe(true)
      expect(ipBlocks(policy().spec.egress?.[0]?.to)).toEqual(controlPlane())
    })

    it("lets in only the API server and Prometheus, only on the webhook's port 8443", () => {
      const ingress = policy().spec.ingress ?? []
      const httpsPort = deployment().spec.template.spec.containers[0]?.ports?.find((port) => port.name === "https")
      expect(httpsPort?.containerPort).toBe(8443)
      const service = named<K8sObject & { spec: { ports: ReadonlyArray<{ targetPort: number | string }> } }>(
        objects(),
        "Service",
        "filer-sidecar-injector",
        deployment().metadata.namespace
      )
      expect(service?.spec.ports.map((port) => port.targetPort)).toEqual(["https"])
      for (const rule of ingress) {
        // An absent or empty `from` lets in everyone.
        expect(rule.from ?? [], JSON.stringify(rule)).not.toEqual([])
        expect(portsOf(rule.ports)).toEqual(["TCP/8443"])
      }
      expect(ingress).toHaveLength(2)
      expect(ingress[0]!.from).toEqual([{ ipBlock: { cidr: controlPlane()[0] } }])
      const [prometheus] = ingress[1]!.from!
      expect(ingress[1]!.from).toHaveLength(1)
      // Both selectors in one peer: Prometheus's pods in Prometheus's namespace, not either alone.
      expect(Object.keys(prometheus?.namespaceSelector?.matchLabels ?? {})).not.toEqual([])
      expect(Object.keys(prometheus?.podSelector?.matchLabels ?? {})).not.toEqual([])
      expect(prometheus?.ipBlock).toBeUndefined()
    })

    it("lets out only the API server (443, 6443) in that range and DNS to kube-system's kube-dns", () => {
      const egress = policy().spec.egress ?? []
      for (const rule of egress) {
        expect(rule.to ?? [], JSON.stringify(rule)).not.toEqual([])
        expect(rule.ports ?? [], JSON.stringify(rule)).not.toEqual([])
      }
      expect(egress).toHaveLength(2)
      expect(egress[0]!.to).toEqual([{ ipBlock: { cidr: controlPlane()[0] } }])
      expect(portsOf(egress[0]!.ports)).toEqual(["TCP/443", "TCP/6443"])
      expect(egress[1]!.to).toEqual([{
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "k8s-app": "kube-dns" } }
      }])
      expect(portsOf(egress[1]!.ports)).toEqual(["TCP/53", "UDP/53"])
    })
  })
})

describe("README.md", () => {
  it("shows the example overlay's patch that sets the control plane's range, as tested here", () => {
    const kustomization = readFileSync(join(fixture, "kustomization.yaml"), "utf8")
    const patches = kustomization.slice(kustomization.indexOf("patches:")).trimEnd()
    expect(patches).toContain("op: replace")
    expect(readFileSync(join(root, "README.md"), "utf8")).toContain(patches)
  })
})
