/**
 * ServingCertificate.layerSelfSignedShared: the self-signed CA shared by the
 * replicas through the one Secret the manifests ship empty, filled and renewed
 * in place with `get` and `update` by name
 * (docs/behaviour.md, "Who may call, and what it may read"),
 * against the in-memory cluster and, through the live client, the fake API server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, Option, Redacted, Schedule, Stream } from "effect"
import { X509Certificate } from "node:crypto"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { defaultWebhookConfigurationName, keepWebhookRegistered, registerWebhook } from "../../src/server/registerWebhook.ts"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { ServingCertificate } from "../../src/server/tls/ServingCertificate.ts"
import { FakeApi } from "../support/fakeApiServer.ts"

const serviceName = "filer-sidecar-injector"
const namespace = "das"
const secretName = "filer-sidecar-injector-tls"
const options = { secretName, namespace, serviceName, caKeyBits: 2048 }

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256
const certificatesIn = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []

/** The Secret as manifests/overlays/self-signed ships it: labelled, applied by kubectl, no data. */
const shipped: RawObject = {
  apiVersion: "v1",
  kind: "Secret",
  type: "Opaque",
  metadata: {
    name: secretName,
    namespace,
    labels: { "app.kubernetes.io/name": "filer-sidecar-injector", "app.kubernetes.io/component": "webhook-serving-certificate" },
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Secret\"}" }
  }
}

const memoryKube = (objects: ReadonlyArray<RawObject> = [shipped]) =>
  KubeClient.layerMemory.pipe(Layer.provideMerge(MemoryCluster.layer(objects)))

const replica = (shared: Parameters<typeof ServingCertificate.layerSelfSignedShared>[0] = options) =>
  Effect.gen(function*() {
    return yield* ServingCertificate
  }).pipe(Effect.provide(ServingCertificate.layerSelfSignedShared(shared)))

const secretValues = (secret: { readonly data: Readonly<Record<string, Redacted.Redacted<string>>> }) =>
  Object.fromEntries(Object.entries(secret.data).map(([key, value]) => [key, Redacted.value(value)]))

/** The shipped Secret holding a pair valid for `validity`, as a replica before us left it (`more` keys added). */
const storedPair = (validity: Duration.Input, more: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function*() {
    const pair = yield* generateSelfSigned({ serviceName, namespace, caKeyBits: 2048, validity })
    const values = { "ca.crt": pair.caPem, "tls.crt": pair.certPem, "tls.key": pair.keyPem, ...more }
    const data = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, Buffer.from(value).toString("base64")]))
    ;(yield* MemoryCluster).put({ ...shipped, data })
    return pair
  })

/** The messages logged at `level` while `effect` runs, alongside its result. */
const logged = <A, E, R>(level: "Info" | "Warn", effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const messages: Array<string> = []
    const result = yield* effect.pipe(
      Effect.provide(Logger.layer([Logger.make((entry) => {
        if (entry.logLevel === level) messages.push(String(entry.message))
      })]))
    )
    return { result, messages }
  })

describe("ServingCertificate.layerSelfSignedShared", () => {
  it.live("two replicas started at once fill the shipped Secret once and serve the same CA and certificate", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      // Slow calls, so both replicas read the empty Secret before either writes it.
      cluster.setLatency("20 millis")
      const [one, two] = yield* Effect.all([replica(), replica()], { concurrency: 2 })
      const caOne = (yield* one.caPem)!
      assert.strictEqual(yield* two.caPem, caOne)
      assert.strictEqual((yield* one.info).fingerprint256, (yield* two.info).fingerprint256)
      assert.isTrue(new X509Certificate(one.materialUnsafe().certPem).verify(new X509Certificate(caOne).publicKey))

      // Filled in place: still the one Secret, its labels and kubectl's annotation kept.
      const secrets = cluster.all().filter((object) => object.kind === "Secret")
      assert.strictEqual(secrets.length, 1)
      const metadata = secrets[0]!.metadata as { labels: unknown; annotations: unknown }
      assert.deepStrictEqual(metadata.labels, (shipped.metadata as RawObject).labels)
      assert.deepStrictEqual(metadata.annotations, (shipped.metadata as RawObject).annotations)
      const values = secretValues(yield* (yield* KubeClient).getSecret(namespace, secretName))
      assert.deepStrictEqual(Object.keys(values).sort(), ["ca.crt", "tls.crt", "tls.key"])
      assert.strictEqual(values["ca.crt"], caOne)
      assert.strictEqual(values["tls.crt"], one.materialUnsafe().certPem)

      // A replica started later serves it, without writing.
      const version = cluster.resourceVersion
      const three = yield* replica()
      assert.strictEqual(yield* three.caPem, caOne)
      assert.strictEqual(cluster.resourceVersion, version)
    }).pipe(Effect.provide(memoryKube())))

  it.live("two replicas through the live client against the fake API server: same CA, PUTs only, no create", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      api.setLatency(20)
      const live = layerFromKubeConfig(api.kubeConfig()).pipe(Layer.provide(ClusterSettings.layerValues()))
      const [one, two] = yield* Effect.all([replica().pipe(Effect.provide(live)), replica().pipe(Effect.provide(live))], {
        concurrency: 2
      })
      const caOne = (yield* one.caPem)!
      assert.strictEqual(yield* two.caPem, caOne)
      assert.strictEqual(fingerprint(one.materialUnsafe().certPem), fingerprint(two.materialUnsafe().certPem))
      const stored = api.get("secrets", namespace, secretName)!
      const data = stored.data as Record<string, string>
      assert.strictEqual(Buffer.from(data["ca.crt"]!, "base64").toString("utf8"), caOne)
      assert.strictEqual(stored.type, "Opaque")

      const onSecrets = api.requests.filter((request) => request.path.includes("/secrets"))
      assert.deepStrictEqual([...new Set(onSecrets.map((request) => request.method))].sort(), ["GET", "PUT"])
      for (const request of onSecrets) assert.strictEqual(request.path, `/api/v1/namespaces/das/secrets/${secretName}`)
    }).pipe(Effect.provide(FakeApi.layer({ objects: [shipped] }))))

  it.live("a write that meets a conflict re-reads, and serves the pair the other replica wrote", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const theirs = yield* generateSelfSigned({ serviceName, namespace, caKeyBits: 2048 })
      const data = { "ca.crt": theirs.caPem, "tls.crt": theirs.certPem, "tls.key": theirs.keyPem }
      // Another replica writes between our read and our write: its update lands just before ours.
      let written = false
      cluster.addFault({
        matches: (call) => {
          if (call.resource === "secrets" && call.verb === "update" && !written) {
            written = true
            cluster.put({
              ...shipped,
              data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")]))
            })
          }
          return false
        },
        error: (call) => KubeError.transient(call, "never")
      })
      const { result: cert, messages: infos } = yield* logged("Info", replica())
      assert.isTrue(written)
      assert.strictEqual(yield* cert.caPem, theirs.caPem)
      assert.strictEqual(fingerprint(cert.materialUnsafe().certPem), fingerprint(theirs.certPem))
      assert.include(infos, "another replica wrote the shared certificate first; serving theirs")
      const values = secretValues(yield* (yield* KubeClient).getSecret(namespace, secretName))
      assert.strictEqual(values["tls.crt"], theirs.certPem)
    }).pipe(Effect.provide(memoryKube())))

  it.live("serves a pair the previous version stored (ca.crt, tls.crt, tls.key) without writing", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const old = yield* storedPair("365 days")
      const version = cluster.resourceVersion
      const cert = yield* replica()
      assert.strictEqual(yield* cert.caPem, old.caPem)
      assert.strictEqual(cert.materialUnsafe().certPem, old.certPem)
      assert.strictEqual(cluster.resourceVersion, version)
    }).pipe(Effect.provide(memoryKube())))

  it.live("replaces a pair that expires soon in place, keeping the old CA in the Secret and the caBundle", () =>
    Effect.gen(function*() {
      const old = yield* storedPair("10 days")
      const cert = yield* replica()
      const caPem = (yield* cert.caPem)!
      const values = secretValues(yield* (yield* KubeClient).getSecret(namespace, secretName))
      assert.strictEqual(values["ca-previous.crt"], old.caPem)
      assert.strictEqual(values["tls.crt"], cert.materialUnsafe().certPem)
      assert.deepStrictEqual(certificatesIn(caPem), [...certificatesIn(values["ca.crt"]!), ...certificatesIn(old.caPem)])
      // A replica started next serves the same, both CAs included.
      assert.strictEqual(yield* (yield* replica()).caPem, caPem)
    }).pipe(Effect.provide(memoryKube())))

  it.live("a running replica renews the pair in place before it ends; its peer follows; the caBundle holds both CAs", () =>
    Effect.gen(function*() {
      // A stored pair with seconds to live; renewal is due once under 7 s remain, leaving the old CA valid a while.
      const old = yield* storedPair("10 seconds")
      const running = { ...options, minRemaining: "7 seconds", renewalCheckInterval: "100 millis" } as const
      // The layers live for the whole test: their renewal checks run in its scope.
      const one = Context.get(yield* Layer.build(ServingCertificate.layerSelfSignedShared(running)), ServingCertificate)
      const two = Context.get(yield* Layer.build(ServingCertificate.layerSelfSignedShared(running)), ServingCertificate)
      assert.strictEqual(fingerprint(one.materialUnsafe().certPem), fingerprint(old.certPem))
      assert.strictEqual(fingerprint(two.materialUnsafe().certPem), fingerprint(old.certPem))

      // As `serve --register-webhook` does: register the CA, then every CA the certificate is renewed with.
      const service = { name: serviceName, namespace }
      yield* registerWebhook(defaultWebhookConfigurationName, (yield* one.caPem)!, service)
      yield* keepWebhookRegistered(
        defaultWebhookConfigurationName,
        (yield* one.caPem)!,
        Stream.map(one.changes, (material) => material.caPem),
        service
      ).pipe(Effect.forkScoped)

      const renewed = yield* one.changes.pipe(
        Stream.filter((material) => fingerprint(material.certPem) !== fingerprint(old.certPem)),
        Stream.runHead,
        Effect.timeout("20 seconds")
      )
      assert.isTrue(Option.isSome(renewed))
      const cluster = yield* MemoryCluster
      assert.strictEqual(cluster.all().filter((object) => object.kind === "Secret").length, 1)
      const values = secretValues(yield* (yield* KubeClient).getSecret(namespace, secretName))
      assert.strictEqual(values["ca-previous.crt"], old.caPem)
      const bothCas = [...certificatesIn(values["ca.crt"]!), ...certificatesIn(old.caPem)]
      assert.strictEqual(one.materialUnsafe().certPem, values["tls.crt"])
      assert.deepStrictEqual(certificatesIn((yield* one.caPem)!), bothCas)
      assert.isTrue(yield* one.ready)

      // The webhook trusts both CAs: the renewed replicas, and any still serving the old certificate.
      const trusted = yield* Effect.gen(function*() {
        const configuration = yield* (yield* KubeClient).getWebhookConfiguration(defaultWebhookConfigurationName)
        const webhooks = configuration.webhooks as ReadonlyArray<{ clientConfig: { caBundle: string } }>
        return certificatesIn(Buffer.from(webhooks[0]!.clientConfig.caBundle, "base64").toString("utf8"))
      }).pipe(
        Effect.repeat({ until: (found) => found.length === 2, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual(trusted, bothCas)

      // The peer serves the same renewed pair at its next check, not a pair of its own.
      yield* two.changes.pipe(
        Stream.filter((material) => material.certPem === values["tls.crt"]),
        Stream.runHead,
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual(certificatesIn((yield* two.caPem)!), bothCas)
    }).pipe(Effect.scoped, Effect.provide(memoryKube())), 30_000)

  it.live("a previous CA that expires leaves the caBundle at the next check", () =>
    Effect.gen(function*() {
      const previous = yield* generateSelfSigned({ serviceName, namespace, caKeyBits: 2048, validity: "6 seconds" })
      const current = yield* storedPair("365 days", { "ca-previous.crt": previous.caPem })
      const cert = Context.get(
        yield* Layer.build(ServingCertificate.layerSelfSignedShared({ ...options, renewalCheckInterval: "100 millis" })),
        ServingCertificate
      )
      assert.deepStrictEqual(certificatesIn((yield* cert.caPem)!), [...certificatesIn(current.caPem), ...certificatesIn(previous.caPem)])
      const dropped = yield* cert.changes.pipe(
        Stream.filter((material) => material.caPem === current.caPem),
        Stream.runHead,
        Effect.timeout("15 seconds")
      )
      assert.isTrue(Option.isSome(dropped))
      assert.strictEqual(cert.materialUnsafe().certPem, current.certPem)
    }).pipe(Effect.scoped, Effect.provide(memoryKube())), 20_000)

  it.live("keeps the CA in memory, with one warning naming the Secret, when the Secret was not applied", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const { result: cert, messages: warnings } = yield* logged("Warn", replica())
      const caPem = (yield* cert.caPem)!
      assert.isTrue(new X509Certificate(cert.materialUnsafe().certPem).verify(new X509Certificate(caPem).publicKey))
      assert.isTrue(yield* cert.ready)
      assert.strictEqual(cluster.all().length, 0)
      assert.strictEqual(warnings.length, 1)
      assert.match(
        warnings[0]!,
        /Secret das\/filer-sidecar-injector-tls \(it does not exist\).*in memory.*replicas will not share a CA.*apply manifests\/overlays\/self-signed/
      )
    }).pipe(Effect.provide(memoryKube([]))))

  // The Go injector's ClusterRole may get Secrets but not update them; other RBAC may not even get them.
  for (const verb of ["get", "update"]) {
    it.live(`keeps the CA in memory, with one warning, when it may not ${verb} the Secret`, () =>
      Effect.gen(function*() {
        const cluster = yield* MemoryCluster
        cluster.addFault({
          matches: (call) => call.resource === "secrets" && call.verb === verb,
          error: (call) => KubeError.forbidden(call, 403)
        })
        const { result: cert, messages: warnings } = yield* logged("Warn", replica())
        assert.isTrue(yield* cert.ready)
        const secret = Option.getOrThrow(cluster.get("secrets", namespace, secretName))
        assert.isUndefined(secret.data)
        assert.strictEqual(warnings.length, 1)
        assert.include(warnings[0]!, `(the ServiceAccount may not ${verb} it)`)
        assert.notMatch(warnings[0]!, /PRIVATE KEY/)
      }).pipe(Effect.provide(memoryKube())))
  }

  it.live("fails with a typed error when the Kubernetes API fails otherwise", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.resource === "secrets",
        error: (call) => KubeError.requestFailed(call, "HTTP 422", 422)
      })
      const error = yield* Effect.flip(replica())
      assert.strictEqual(error._tag, "KubeError")
      assert.strictEqual(error._tag === "KubeError" ? error.reason : undefined, "request_failed")
    }).pipe(Effect.provide(memoryKube())))
})
