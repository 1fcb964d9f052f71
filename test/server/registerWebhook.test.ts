import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import {
  caBundleOf,
  defaultWebhookConfigurationName,
  injectorWebhook,
  injectorWebhookName,
  keepWebhookRegistered,
  registerWebhook
} from "../../src/server/registerWebhook.ts"

const name = defaultWebhookConfigurationName
const service = { name: "filer-sidecar-injector", namespace: "das" }
// registerWebhook only base64-encodes the CA; it need not be a real certificate here.
const caA = "-----BEGIN CERTIFICATE-----\nQUFBQQ==\n-----END CERTIFICATE-----\n"
const caB = "-----BEGIN CERTIFICATE-----\nQkJCQg==\n-----END CERTIFICATE-----\n"

const memoryKube = (objects: ReadonlyArray<RawObject> = []) =>
  KubeClient.layerMemory.pipe(Layer.provideMerge(MemoryCluster.layer(objects)))

const stored = Effect.gen(function*() {
  const cluster = yield* MemoryCluster
  return Option.getOrThrow(cluster.get("mutatingwebhookconfigurations", "", name))
})

const webhooks = (object: RawObject) => object.webhooks as ReadonlyArray<Record<string, any>>
const resourceVersion = (object: RawObject) => (object.metadata as Record<string, unknown>).resourceVersion

/** An existing configuration, as an operator may have applied it: two webhooks, an old caBundle, own choices. */
const existing: RawObject = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
  metadata: { name, annotations: { note: "applied by hand" } },
  webhooks: [
    {
      name: injectorWebhookName,
      admissionReviewVersions: ["v1"],
      clientConfig: { service: { name: "filer-sidecar-injector", namespace: "das", path: "/inject", port: 443 }, caBundle: "b2xk" },
      rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
      sideEffects: "None",
      failurePolicy: "Ignore",
      timeoutSeconds: 5
    },
    {
      name: "second.das-zone.statcan",
      admissionReviewVersions: ["v1"],
      clientConfig: { service: { name: "filer-sidecar-injector", namespace: "das", path: "/other" } },
      sideEffects: "None"
    }
  ]
}

describe("registerWebhook", () => {
  it.effect("creates the configuration with the original's definition when it is missing", () =>
    Effect.gen(function*() {
      const outcome = yield* registerWebhook(name, caA, service)
      assert.strictEqual(outcome, "created")
      const object = yield* stored
      assert.strictEqual(object.apiVersion, "admissionregistration.k8s.io/v1")
      assert.strictEqual(object.kind, "MutatingWebhookConfiguration")
      const [webhook, ...others] = webhooks(object)
      assert.strictEqual(others.length, 0)
      assert.deepStrictEqual(webhook, {
        name: "filer-sidecar-injector.das-zone.statcan",
        admissionReviewVersions: ["v1"],
        clientConfig: {
          service: { name: "filer-sidecar-injector", namespace: "das", path: "/inject", port: 443 },
          caBundle: Buffer.from(caA).toString("base64")
        },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
        matchPolicy: "Equivalent",
        namespaceSelector: {
          matchLabels: { "filer-sidecar-injection": "enabled" },
          matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["das", "kube-system"] }]
        },
        objectSelector: { matchExpressions: [{ key: "notebook-name", operator: "Exists" }] },
        sideEffects: "NoneOnDryRun",
        failurePolicy: "Fail",
        timeoutSeconds: 10,
        reinvocationPolicy: "Never"
      })
    }).pipe(Effect.provide(memoryKube())))

  it.effect("keeps the caBundle on the latest CA as the certificate is renewed, and only writes on a change", () =>
    Effect.gen(function*() {
      yield* registerWebhook(name, caA, service)
      const registered = resourceVersion(yield* stored)
      // The certificate's changes: the current CA again, a material without a CA, then a renewal (twice).
      yield* keepWebhookRegistered(name, caA, Stream.make(caA, undefined, caB, caB), service)
      const object = yield* stored
      assert.deepStrictEqual(webhooks(object).map((webhook) => webhook.clientConfig.caBundle), [caBundleOf(caB)])
      // One write for the one new CA.
      assert.strictEqual(Number(resourceVersion(object)), Number(registered) + 1)
    }).pipe(Effect.provide(memoryKube())))

  it.effect("logs a failed re-registration and goes on with the next CA", () =>
    Effect.gen(function*() {
      yield* registerWebhook(name, caA, service)
      const registered = resourceVersion(yield* stored)
      const cluster = yield* MemoryCluster
      // The first update is refused (403 is not retried).
      cluster.addFault({
        matches: (call) => call.resource === "mutatingwebhookconfigurations" && call.verb === "update",
        error: (call) => KubeError.forbidden(call, 403)
      }, 1)
      const caC = "-----BEGIN CERTIFICATE-----\nQ0NDQw==\n-----END CERTIFICATE-----\n"
      yield* keepWebhookRegistered(name, caA, Stream.make(caB, caC), service)
      const object = yield* stored
      assert.deepStrictEqual(webhooks(object).map((webhook) => webhook.clientConfig.caBundle), [caBundleOf(caC)])
      // caB's write was refused: the only write is caC's.
      assert.strictEqual(Number(resourceVersion(object)), Number(registered) + 1)
    }).pipe(Effect.provide(memoryKube())))

  it("creates the same webhook as the shipped manifest, but for its caBundle", () => {
    const manifest = parse(
      readFileSync(join(import.meta.dirname, "..", "..", "manifests", "base", "mutatingwebhookconfiguration.yaml"), "utf8")
    ) as RawObject
    const shipped = webhooks(manifest)[0]!
    const { clientConfig, ...created } = injectorWebhook(caA, service) as Record<string, any>
    const { caBundle, ...createdClientConfig } = clientConfig
    assert.strictEqual(caBundle, caBundleOf(caA))
    assert.deepStrictEqual({ ...created, clientConfig: createdClientConfig }, shipped)
    assert.strictEqual((manifest.metadata as Record<string, unknown>).name, defaultWebhookConfigurationName)
  })

  it("never matches the injector's own namespace, wherever it is deployed", () => {
    const webhook = injectorWebhook(caA, { ...service, namespace: "filers-system" }) as Record<string, any>
    assert.deepStrictEqual(webhook.namespaceSelector.matchExpressions, [
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["filers-system", "kube-system"] }
    ])
  })

  it.effect("takes the Service's port and path when given", () =>
    Effect.gen(function*() {
      yield* registerWebhook(name, caA, { ...service, port: 8443, path: "/mutate" })
      const webhook = webhooks(yield* stored)[0]!
      assert.deepStrictEqual(webhook.clientConfig.service, { ...service, path: "/mutate", port: 8443 })
    }).pipe(Effect.provide(memoryKube())))

  it.effect("sets the caBundle of every webhook in an existing configuration and keeps the rest", () =>
    Effect.gen(function*() {
      const outcome = yield* registerWebhook(name, caA, service)
      assert.strictEqual(outcome, "updated")
      const object = yield* stored
      assert.deepStrictEqual(webhooks(object).map((webhook) => webhook.clientConfig.caBundle), [caBundleOf(caA), caBundleOf(caA)])
      // What the operator chose stays.
      assert.strictEqual(webhooks(object)[0]!.failurePolicy, "Ignore")
      assert.strictEqual(webhooks(object)[1]!.clientConfig.service.path, "/other")
      assert.deepStrictEqual((object.metadata as Record<string, unknown>).annotations, { note: "applied by hand" })
    }).pipe(Effect.provide(memoryKube([existing]))))

  it.effect("does nothing when the caBundle is already ours", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* registerWebhook(name, caA, service), "created")
      const before = resourceVersion(yield* stored)
      assert.strictEqual(yield* registerWebhook(name, caA, service), "unchanged")
      assert.strictEqual(resourceVersion(yield* stored), before)
      assert.strictEqual(yield* registerWebhook(name, caB, service), "updated")
      assert.notStrictEqual(resourceVersion(yield* stored), before)
    }).pipe(Effect.provide(memoryKube())))

  it.live("lets two replicas register at once: both succeed and one caBundle is left", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      // Slow calls, so both read before either writes: one create (or replace) loses and must retry.
      cluster.setLatency("20 millis")
      const outcomes = yield* Effect.all([
        registerWebhook(name, caA, service),
        registerWebhook(name, caB, service)
      ], { concurrency: 2 })
      // Both created; the loser of that race re-read and replaced.
      assert.deepStrictEqual([...outcomes].sort(), ["created", "updated"])
      const bundles = new Set(webhooks(yield* stored).map((webhook) => webhook.clientConfig.caBundle))
      assert.strictEqual(bundles.size, 1)
      assert.include([caBundleOf(caA), caBundleOf(caB)], [...bundles][0])
    }).pipe(Effect.provide(memoryKube())))

  it.live("two replicas updating an existing configuration at once both succeed", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.setLatency("20 millis")
      const outcomes = yield* Effect.all([
        registerWebhook(name, caA, service),
        registerWebhook(name, caB, service)
      ], { concurrency: 2 })
      assert.deepStrictEqual([...outcomes], ["updated", "updated"])
      const bundles = new Set(webhooks(yield* stored).map((webhook) => webhook.clientConfig.caBundle))
      assert.strictEqual(bundles.size, 1)
    }).pipe(Effect.provide(memoryKube([existing]))))

  it.live("re-reads and retries when another writer changed the object meanwhile", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.verb === "update",
        error: (call) => KubeError.conflict(call)
      }, 2)
      assert.strictEqual(yield* registerWebhook(name, caA, service), "updated")
      assert.strictEqual(webhooks(yield* stored)[0]!.clientConfig.caBundle, caBundleOf(caA))
    }).pipe(Effect.provide(memoryKube([existing]))))

  it.live("gives up with the last conflict when it keeps losing", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.verb === "update",
        error: (call) => KubeError.conflict(call)
      })
      const error = yield* Effect.flip(registerWebhook(name, caA, service))
      assert.strictEqual(error.reason, "conflict")
    }).pipe(Effect.provide(memoryKube([existing]))))

  it.live("survives a transient API failure", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.verb === "get",
        error: (call) => KubeError.transient(call, "503 Service Unavailable")
      }, 1)
      assert.strictEqual(yield* registerWebhook(name, caA, service), "created")
    }).pipe(Effect.provide(memoryKube())))

  it.effect("fails with the typed error when the ServiceAccount may not write", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.verb === "create",
        error: (call) => KubeError.forbidden(call, 403)
      })
      const error = yield* Effect.flip(registerWebhook(name, caA, service))
      assert.strictEqual(error.reason, "forbidden")
      assert.include(error.message, "admissionregistration.k8s.io")
    }).pipe(Effect.provide(memoryKube())))
})
