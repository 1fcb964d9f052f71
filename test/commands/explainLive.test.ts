/**
 * `explain` through the live KubeClient against the fake API server: pods by
 * name and by label, the namespace, the webhook configuration with a caBundle
 * checked against a real serving certificate, and SubjectAccessReviews
 * answered allowed, denied, or refused to the caller (403).
 */
import { Effect, Layer } from "effect"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { admissionLayer } from "../../src/admission/layers.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { KubeRetry } from "../../src/cluster/retry.ts"
import { explainNotebook } from "../../src/commands/explain.ts"
import type { Explanation } from "../../src/domain/explain.ts"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { FakeApiServer, type JsonObject } from "../support/fakeApiServer.ts"
import { exampleClusterObjects, pipelineSettings, quietLogs } from "../support/pipelineHarness.ts"

let api: FakeApiServer
let serving: https.Server

beforeAll(async () => {
  const material = await Effect.runPromise(
    generateSelfSigned({ serviceName: "filer-sidecar-injector", namespace: "das", extraDnsNames: ["127.0.0.1"], caKeyBits: 2048 })
  )
  serving = https.createServer({ cert: material.certPem, key: material.keyPem }, (_, response) => response.end())
  await new Promise<void>((resolve) => serving.listen(0, "127.0.0.1", resolve))
  const port = (serving.address() as AddressInfo).port
  api = await FakeApiServer.start({ objects: exampleClusterObjects() as Array<JsonObject> })
  api.put({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "filer-sidecar-injector-webhook" },
    webhooks: [{
      name: "filer-sidecar-injector.das-zone.statcan",
      clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: Buffer.from(material.caPem).toString("base64") }
    }]
  })
  // Only fld5's Secret is in the injector's ClusterRole.
  api.allowAccess((question) =>
    question.user === "system:serviceaccount:das:filer-sidecar-injector" && question.verb === "get" &&
    question.resource === "secrets" && question.name === "fld5filersvm-conn-secret"
  )
}, 60_000)

afterAll(async () => {
  await api?.close()
  await new Promise((resolve) => serving?.close(resolve))
})

const explain = (name: string): Promise<Explanation> =>
  Effect.runPromise(
    explainNotebook("jane-doe", name, false).pipe(
      Effect.provide(
        admissionLayer(layerFromKubeConfig(api.kubeConfig()), { retry: KubeRetry.layerInstant }).pipe(
          Layer.provideMerge(pipelineSettings()),
          Layer.provideMerge(quietLogs)
        )
      )
    )
  )

const check = (explanation: Explanation, name: string) => explanation.checks.find((entry) => entry.name === name)

describe("explain against the API server", () => {
  it("reads the pod, checks the caBundle against the serving certificate and asks whether each Secret may be read", async () => {
    const explanation = await explain("analysis")
    expect(explanation).toMatchObject({ pod: "analysis-0", decision: "inject" })
    expect(check(explanation, "namespace label")?.ok).toBe(true)
    expect(check(explanation, "webhook configuration")?.ok).toBe(true)
    expect(check(explanation, "caBundle")?.ok).toBe(true)
    expect(check(explanation, "secret fld5filersvm-conn-secret")?.ok).toBe(true)
    expect(check(explanation, "secret fld9filersvm-conn-secret")).toMatchObject({ ok: false })
    expect(check(explanation, "secret fld9filersvm-conn-secret")?.message).toContain("may not get it")
    // Reads only: no create, update or delete reached the server but the access reviews.
    const writes = api.requests.filter((request) => request.method !== "GET")
    expect(writes.every((request) => request.path.endsWith("/subjectaccessreviews"))).toBe(true)
  })

  it("shows a Secret the API server forbids as a skip with the fix, and its access check failing", async () => {
    // As the API server answers when fld9's Secret is not in the ClusterRole (allowAccess above).
    const fault = api.respondWith(403, { path: "/secrets/fld9filersvm-conn-secret" })
    const explanation = await explain("analysis")
    fault.clear()
    expect(explanation.decision).toBe("inject")
    expect(explanation.mounted.map((mount) => mount.svm)).not.toContain("fld9filersvm")
    expect(explanation.skipped).toContainEqual({
      svm: "fld9filersvm",
      reason: "secret_forbidden",
      message: "RBAC forbids Secret fld9filersvm-conn-secret: re-run filer-sidecar-injector rbac"
    })
    expect(check(explanation, "secret fld9filersvm-conn-secret")?.ok).toBe(false)
  })

  it("finds a notebook pod by label, and says so when the caller may not create access reviews", async () => {
    api.put({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "lab-x1", namespace: "jane-doe", labels: { "notebook-name": "lab" } },
      spec: { containers: [{ name: "lab", env: [{ name: "NB_PREFIX", value: "/notebook/jane-doe/lab" }] }] }
    })
    const fault = api.respondWith(403, { path: "subjectaccessreviews" })
    const explanation = await explain("lab")
    fault.clear()
    expect(explanation.pod).toBe("lab-x1")
    expect(check(explanation, "secret fld5filersvm-conn-secret")).toEqual({
      name: "secret fld5filersvm-conn-secret",
      ok: null,
      message: "not checked: you may not create SubjectAccessReviews"
    })
  })
})
