import { describe, expect, it } from "vitest"
import { decidePod, decideRequest } from "../../src/domain/decide.ts"
import { createRequest, decodedPod } from "./fixtures.ts"

const annotation = "filer-injector-webhook.das-zone.statcan/inject"

describe("decide: which requests are for the injector", () => {
  it("goes on for a CREATE of a core/v1 Pod", () => {
    expect(decideRequest(createRequest())).toBeUndefined()
  })

  it.each(["UPDATE", "DELETE", "CONNECT"])("skips %s (fix: only CREATE is mutated)", (operation) => {
    expect(decideRequest(createRequest({ operation }))).toMatchObject({ _tag: "Skip" })
  })

  it("skips a request without an operation", () => {
    const { operation: _, ...request } = createRequest()
    expect(decideRequest(request)).toMatchObject({ _tag: "Skip" })
  })

  it("skips what is not a core/v1 Pod", () => {
    expect(decideRequest(createRequest({ kind: { group: "apps", version: "v1", kind: "Deployment" } })))
      .toMatchObject({ _tag: "Skip" })
    expect(decideRequest(createRequest({ kind: { group: "example.com", version: "v1", kind: "Pod" } })))
      .toMatchObject({ _tag: "Skip" })
  })

  it("skips a Pod subresource such as ephemeralcontainers", () => {
    expect(decideRequest(createRequest({ subResource: "ephemeralcontainers" }))).toMatchObject({ _tag: "Skip" })
  })
})

describe("decide: which pods want filers", () => {
  it("injects into a notebook pod without the annotation", () => {
    expect(decidePod(createRequest(), decodedPod())).toEqual({ _tag: "Inject", namespace: "jane-doe", notebookContainer: 0 })
  })

  it("requires the notebook-name label", () => {
    expect(decidePod(createRequest(), decodedPod({ labels: { app: "x" } }))).toMatchObject({ _tag: "Skip" })
  })

  it("injects whatever the notebook-name label's value", () => {
    expect(decidePod(createRequest(), decodedPod({ labels: { "notebook-name": "" } }))).toMatchObject({ _tag: "Inject" })
  })

  it.each(["n", "N", "not", "Not", "false", "FALSE", "off", "OFF", "injected", "Injected"])(
    "skips when the annotation is %s (case-insensitive)",
    (value) => {
      expect(decidePod(createRequest(), decodedPod({ annotations: { [annotation]: value } }))).toMatchObject({
        _tag: "Skip"
      })
    }
  )

  it.each(["true", "yes", "y", ""])("injects when the annotation is %j", (value) => {
    expect(decidePod(createRequest(), decodedPod({ annotations: { [annotation]: value } }))).toMatchObject({
      _tag: "Inject"
    })
  })

  it("takes the namespace from the request when the pod has none", () => {
    expect(decidePod(createRequest({ namespace: "from-request" }), decodedPod())).toMatchObject({
      namespace: "from-request"
    })
  })

  it("takes the request's namespace over the pod's", () => {
    expect(decidePod(createRequest({ namespace: "from-request" }), decodedPod({ namespace: "from-pod" })))
      .toMatchObject({ namespace: "from-request" })
  })

  it("finds the notebook container by NB_PREFIX when it is not container 0 (fix)", () => {
    const pod = decodedPod({
      containers: [
        { name: "istio-proxy", env: [{ name: "ISTIO_META" }] },
        { name: "helper" },
        { name: "analysis", env: [{ name: "HOME" }, { name: "NB_PREFIX" }] }
      ]
    })
    expect(decidePod(createRequest(), pod)).toMatchObject({ _tag: "Inject", notebookContainer: 2 })
  })

  it("does not mutate a pod without an NB_PREFIX container, and says so in a warning", () => {
    const decision = decidePod(createRequest(), decodedPod({ containers: [{ name: "a", env: [{ name: "HOME" }] }] }))
    expect(decision._tag).toBe("Skip")
    expect(decision._tag === "Skip" && decision.warning).toMatch(/NB_PREFIX/)
  })
})

describe("decide: each skip carries its code, the label metrics count it under", () => {
  it.each([
    ["not_pod", createRequest({ kind: { group: "apps", version: "v1", kind: "Deployment" } })],
    ["subresource", createRequest({ subResource: "ephemeralcontainers" })],
    ["not_create", createRequest({ operation: "UPDATE" })]
  ] as const)("%s, from the request", (code, request) => {
    expect(decideRequest(request)).toMatchObject({ _tag: "Skip", code })
  })

  it.each([
    ["no_notebook_label", createRequest(), decodedPod({ labels: {} })],
    ["opted_out", createRequest(), decodedPod({ annotations: { [annotation]: "OFF" } })],
    ["no_namespace", createRequest({ namespace: "" }), decodedPod()],
    ["no_notebook_container", createRequest(), decodedPod({ containers: [{ name: "sidecar" }] })]
  ] as const)("%s, from the pod", (code, request, pod) => {
    expect(decidePod(request, pod)).toMatchObject({ _tag: "Skip", code })
  })
})
