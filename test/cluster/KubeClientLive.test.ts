/**
 * KubeClientLive against a fake API server speaking real HTTP: answers,
 * error mapping, timeouts, connection failures, the ConfigMap watch, and that
 * no error ever carries a Secret's value.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KubeClient, type KubeClientShape } from "../../src/cluster/KubeClient.ts"
import { type KubeConfig, layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { loadKubeConfig, serviceAccountDirectory } from "../../src/cluster/live/kubeconfig.ts"
import type { ConfigMap } from "../../src/cluster/objects.ts"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { collect, takeWithin } from "../support/streams.ts"
import { FakeApi, FakeApiServer } from "../support/fakeApiServer.ts"

const callTimeoutMillis = 300
const secretValue = "fixture-s3cr3t-Zq9xW4"
const accessKey = "AKIAFIXTURE0000"

const filersList = (filers: string) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "filers-list", namespace: "das" },
  data: { filers }
})

const credentials = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "filer-creds", namespace: "das" },
  data: {
    accessKey: Buffer.from(accessKey).toString("base64"),
    secretKey: Buffer.from(secretValue).toString("base64")
  }
}

const webhookConfiguration = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
  metadata: { name: "filer-sidecar-injector" },
  webhooks: [{
    name: "filer-sidecar-injector.das.svc",
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    clientConfig: { service: { name: "filer-sidecar-injector", namespace: "das", path: "/mutate" }, caBundle: "" },
    // A field no client model knows: a replace must keep it.
    futureField: { keep: "me" }
  }]
}

const ClientLayer = Layer.unwrap(
  Effect.gen(function*() {
    const api = yield* FakeApi
    return layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 30 })
  })
).pipe(
  Layer.provideMerge(FakeApi.layer({ objects: [filersList("one"), credentials] })),
  Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(callTimeoutMillis) }))
)

/**
 * The fake server, its faults cleared, its log emptied and the watches of
 * earlier tests closed (interrupted streams abort theirs; the server sees it
 * a moment later): every test starts from here.
 */
const freshApi = Effect.gen(function*() {
  const api = yield* FakeApi
  api.clearFaults()
  yield* Effect.promise(() => api.waitFor(() => api.openWatches === 0))
  api.clearRequests()
  return api
})

const noSecretIn = (text: string) => {
  assert.notInclude(text, secretValue)
  assert.notInclude(text, Buffer.from(secretValue).toString("base64"))
}

const dataOf = (state: Option.Option<ConfigMap>) => Option.map(state, (configMap) => configMap.data.filers)

layer(ClientLayer, { excludeTestServices: true })("KubeClientLive", (it) => {
  describe("reads", () => {
    it.effect("gets a ConfigMap as the API has it, sending the bearer token", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const configMap = yield* client.getConfigMap("das", "filers-list")
        assert.strictEqual(configMap.name, "filers-list")
        assert.strictEqual(configMap.namespace, "das")
        assert.deepStrictEqual(configMap.data, { filers: "one" })
        const stored = api.get("configmaps", "das", "filers-list")!
        assert.strictEqual(configMap.resourceVersion, (stored.metadata as { resourceVersion: string }).resourceVersion)
        assert.deepStrictEqual(api.requests.map((r) => `${r.method} ${r.path}`), [
          "GET /api/v1/namespaces/das/configmaps/filers-list"
        ])
      }))

    it.effect("gets a Secret with its values base64-decoded and Redacted", () =>
      Effect.gen(function*() {
        yield* freshApi
        const client = yield* KubeClient
        const secret = yield* client.getSecret("das", "filer-creds")
        assert.deepStrictEqual(Object.keys(secret.data).sort(), ["accessKey", "secretKey"])
        assert.isTrue(Redacted.isRedacted(secret.data.secretKey))
        assert.strictEqual(Redacted.value(secret.data.secretKey!), secretValue)
        assert.strictEqual(Redacted.value(secret.data.accessKey!), accessKey)
        noSecretIn(String(secret.data.secretKey))
        noSecretIn(JSON.stringify(secret))
      }))

    it.effect("404 is not_found", () =>
      Effect.gen(function*() {
        yield* freshApi
        const client = yield* KubeClient
        const error = yield* Effect.flip(client.getConfigMap("das", "missing"))
        assert.strictEqual(error.reason, "not_found")
        assert.strictEqual(error.message, `configmaps "das/missing" not found`)
      }))
  })

  describe("failures", () => {
    it.effect("403 is forbidden naming the missing RBAC rule", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.respondWith(403, { path: "/secrets/" })
        const error = yield* Effect.flip(client.getSecret("das", "filer-creds"))
        assert.strictEqual(error.reason, "forbidden")
        assert.strictEqual(error.status, 403)
        assert.strictEqual(error.verb, "get")
        assert.include(error.message, `cannot get secrets "das/filer-creds"`)
        assert.include(error.message, `apiGroups=[""] resources=["secrets"] verbs=["get"] in namespace "das"`)
        // The server's own Status message stays out.
        assert.notInclude(error.message, "system:serviceaccount")
      }))

    it.effect("401 is forbidden too", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.respondWith(401, { times: 1 })
        const error = yield* Effect.flip(client.getConfigMap("das", "filers-list"))
        assert.strictEqual(error.reason, "forbidden")
        assert.include(error.message, "unauthorized: cannot get configmaps")
        // The server checks the token for real, too.
        const wrongToken = yield* Effect.gen(function*() {
          const other = yield* KubeClient
          return yield* Effect.flip(other.getConfigMap("das", "filers-list"))
        }).pipe(
          Effect.provide(
            layerFromKubeConfig(api.kubeConfig({ token: "wrong" })).pipe(Layer.provide(ClusterSettings.layerValues()))
          )
        )
        assert.strictEqual(wrongToken.reason, "forbidden")
        assert.strictEqual(wrongToken.status, 401)
      }))

    it.effect("429 with Retry-After is transient carrying retryAfterMillis", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.respondWith(429, { times: 1, retryAfterSeconds: 2 })
        const error = yield* Effect.flip(client.getConfigMap("das", "filers-list"))
        assert.strictEqual(error.reason, "transient")
        assert.strictEqual(error.retryAfterMillis, 2000)
        assert.strictEqual(error.status, 429)
        assert.include(error.message, "429")
        // The fault took one request only.
        const again = yield* client.getConfigMap("das", "filers-list")
        assert.strictEqual(again.name, "filers-list")
      }))

    it.effect("500 and 503 are transient", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.respondWith(500, { times: 1 })
        const error = yield* Effect.flip(client.getConfigMap("das", "filers-list"))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "500 Internal Server Error")
        assert.isUndefined(error.retryAfterMillis)
        api.respondWith(503, { times: 1 })
        const unavailable = yield* Effect.flip(client.getSecret("das", "filer-creds"))
        assert.strictEqual(unavailable.reason, "transient")
      }))

    it.effect("an answer slower than kubeCallTimeout is transient, and the request is abandoned", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.delay(5_000, { path: "/configmaps/filers-list", times: 1 })
        const started = Date.now()
        const error = yield* Effect.flip(client.getConfigMap("das", "filers-list"))
        const elapsed = Date.now() - started
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, `no answer within ${callTimeoutMillis} ms`)
        assert.isAtLeast(elapsed, callTimeoutMillis - 20)
        assert.isBelow(elapsed, callTimeoutMillis + 700)
        yield* Effect.promise(() => api.waitFor(() => api.requestsAbandoned > 0))
        // The next call is not stuck behind it.
        const again = yield* client.getConfigMap("das", "filers-list")
        assert.deepStrictEqual(again.data, { filers: "one" })
      }))

    it.effect("reuses its connection from call to call", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        yield* client.getConfigMap("das", "filers-list")
        const before = api.connectionsAccepted
        for (let i = 0; i < 10; i++) yield* client.getSecret("das", "filer-creds")
        assert.strictEqual(api.connectionsAccepted, before)
      }))

    it.effect("latency below the timeout is only latency", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.setLatency(50)
        const configMap = yield* client.getConfigMap("das", "filers-list")
        assert.strictEqual(configMap.name, "filers-list")
      }))

    it.effect("a reset connection is transient", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.resetConnections({ times: 1 })
        const error = yield* Effect.flip(client.getSecret("das", "filer-creds"))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "connection failed")
      }))

    it.effect("a refused connection is transient", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.promise(() => FakeApiServer.start())
        const kc = closed.kubeConfig()
        yield* Effect.promise(() => closed.close())
        const error = yield* Effect.gen(function*() {
          const client = yield* KubeClient
          return yield* Effect.flip(client.getConfigMap("das", "filers-list"))
        }).pipe(Effect.provide(layerFromKubeConfig(kc).pipe(Layer.provide(ClusterSettings.layerValues()))))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "ECONNREFUSED")
      }))

    it.effect("an interrupted call aborts its request", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.delay(5_000, { path: "/configmaps/filers-list", times: 1 })
        const fiber = yield* Effect.forkChild(client.getConfigMap("das", "filers-list"))
        yield* Effect.sleep("50 millis")
        const abandoned = api.requestsAbandoned
        yield* Fiber.interrupt(fiber)
        // The server sees the request's connection close...
        yield* Effect.promise(() => api.waitFor(() => api.requestsAbandoned === abandoned + 1))
        // ...and nothing is left hanging: the next call answers at once.
        const configMap = yield* client.getConfigMap("das", "filers-list")
        assert.strictEqual(configMap.name, "filers-list")
      }))
  })

  describe("watchConfigMap", () => {
    it.effect("emits the current state, then every change; ignores bookmarks", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.put(filersList("one"))
        const { queue, fiber } = yield* collect(client.watchConfigMap("das", "filers-list"))
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.some("one"))
        yield* Effect.promise(() => api.waitForWatches(1))
        api.sendBookmark()
        api.put(filersList("two"))
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.some("two"))
        // Another ConfigMap in the namespace is not this one.
        api.put({ ...filersList("other"), metadata: { name: "something-else", namespace: "das" } })
        api.remove("configmaps", "das", "filers-list")
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.none())
        api.put(filersList("three"))
        const last = yield* takeWithin(queue)
        assert.deepStrictEqual(dataOf(last), Option.some("three"))
        assert.strictEqual(
          Option.getOrThrow(last).resourceVersion,
          (api.get("configmaps", "das", "filers-list")!.metadata as { resourceVersion: string }).resourceVersion
        )
        yield* Fiber.interrupt(fiber)

        const watches = api.requests.filter((r) => r.query.watch === "true")
        assert.strictEqual(watches.length, 1)
        const list = api.requests.find((r) => r.query.watch === undefined)!
        assert.strictEqual(list.path, "/api/v1/namespaces/das/configmaps")
        assert.strictEqual(list.query.fieldSelector, "metadata.name=filers-list")
        assert.strictEqual(watches[0]!.query.fieldSelector, "metadata.name=filers-list")
        assert.isString(watches[0]!.query.resourceVersion)
      }))

    it.effect("emits None first when the ConfigMap is absent", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const { queue, fiber } = yield* collect(client.watchConfigMap("das", "not-yet"))
        assert.deepStrictEqual(yield* takeWithin(queue), Option.none())
        yield* Effect.promise(() => api.waitForWatches(1))
        api.put({ ...filersList("new"), metadata: { name: "not-yet", namespace: "das" } })
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.some("new"))
        yield* Fiber.interrupt(fiber)
        api.remove("configmaps", "das", "not-yet")
      }))

    it.effect("does not miss a change made between the list and the watch", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.put(filersList("before"))
        // The watch request is slow to arrive: the change lands in between.
        api.delay(150, { path: "watch=true", times: 1 })
        const { queue, fiber } = yield* collect(client.watchConfigMap("das", "filers-list"))
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.some("before"))
        api.put(filersList("between"))
        assert.deepStrictEqual(dataOf(yield* takeWithin(queue)), Option.some("between"))
        yield* Fiber.interrupt(fiber)
      }))

    it.effect("ends when the server drops the watch", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.put(filersList("one"))
        const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        yield* Effect.promise(() => api.waitForWatches(1))
        api.dropWatches()
        const states = yield* Fiber.join(fiber)
        assert.deepStrictEqual(states.map(dataOf), [Option.some("one")])
      }))

    it.effect("asks the server to end the watch after watchTimeoutSeconds, and ends then", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const states = yield* Effect.gen(function*() {
          const client = yield* KubeClient
          return yield* Stream.runCollect(client.watchConfigMap("das", "filers-list"))
        }).pipe(
          Effect.provide(
            layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 1 }).pipe(
              Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(callTimeoutMillis) }))
            )
          )
        )
        assert.strictEqual(states.length, 1)
        assert.strictEqual(api.requests.find((r) => r.query.watch === "true")?.query.timeoutSeconds, "1")
      }))

    it.effect("fails with transient on a garbage line, without quoting it", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        yield* Effect.promise(() => api.waitForWatches(1))
        api.sendGarbage(`{"type":"MODIFIED","object":${secretValue}`)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "cannot watch configmaps")
        noSecretIn(error.message)
        yield* Effect.promise(() => api.waitFor(() => api.openWatches === 0))
      }))

    it.effect("fails with transient on an ERROR event (410 Expired)", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        yield* Effect.promise(() => api.waitForWatches(1))
        api.sendWatchError(410, "too old resource version")
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "410 Expired")
      }))

    it.effect("a reset watch connection is transient", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        yield* Effect.promise(() => api.waitForWatches(1))
        api.dropWatches({ reset: true })
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(error.reason, "transient")
      }))

    it.effect("maps a refused list and a refused watch to forbidden with their verbs", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const list = api.respondWith(403, { path: "/configmaps?" })
        const listError = yield* Effect.flip(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        assert.strictEqual(listError.reason, "forbidden")
        assert.include(listError.message, `verbs=["list"]`)
        list.clear()
        api.respondWith(403, { path: "watch=true" })
        const watchError = yield* Effect.flip(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        assert.strictEqual(watchError.reason, "forbidden")
        assert.include(watchError.message, `verbs=["watch"]`)
      }))

    it.effect("a watch that does not open within kubeCallTimeout is transient", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        api.delay(5_000, { path: "watch=true", times: 1 })
        const error = yield* Effect.flip(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        assert.strictEqual(error.reason, "transient")
        assert.include(error.message, "cannot watch")
      }))

    it.effect("interrupting the stream closes the watch request", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
        yield* Effect.promise(() => api.waitForWatches(1))
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() => api.waitFor(() => api.openWatches === 0))
        assert.strictEqual(api.openWatches, 0)
      }))
  })

  describe("writes", () => {
    it.effect("replaces a Secret's values, keeping its labels, annotations and type; a stale replace is a conflict", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        const labels = { "app.kubernetes.io/name": "filer-sidecar-injector" }
        const annotations = { "kubectl.kubernetes.io/last-applied-configuration": "{}" }
        api.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "shipped", namespace: "team-a", labels, annotations } })
        const read = yield* client.getSecret("team-a", "shipped")
        assert.deepStrictEqual(read.data, {})
        const replaced = yield* client.replaceSecret(read, { secretKey: secretValue })
        assert.strictEqual(Redacted.value(replaced.data.secretKey!), secretValue)
        assert.notStrictEqual(replaced.resourceVersion, read.resourceVersion)
        const request = api.requests.at(-1)!
        assert.strictEqual(`${request.method} ${request.path}`, "PUT /api/v1/namespaces/team-a/secrets/shipped")
        const stored = api.get("secrets", "team-a", "shipped")!
        assert.deepStrictEqual(stored.data, { secretKey: Buffer.from(secretValue).toString("base64") })
        assert.strictEqual(stored.type, "Opaque")
        const metadata = stored.metadata as { labels: unknown; annotations: unknown }
        assert.deepStrictEqual(metadata.labels, labels)
        assert.deepStrictEqual(metadata.annotations, annotations)
        // The kept metadata and annotations print as redacted: they may copy the values.
        assert.notInclude(String(read.kept), "last-applied")

        // `read` still carries the version before the replace.
        const stale = yield* Effect.flip(client.replaceSecret(read, { secretKey: "other" }))
        assert.strictEqual(stale.reason, "conflict")
        assert.include(stale.message, `secrets "team-a/shipped"`)
        api.remove("secrets", "team-a", "shipped")
        const missing = yield* Effect.flip(client.replaceSecret(replaced, { secretKey: "other" }))
        assert.strictEqual(missing.reason, "not_found")
      }))

    it.effect("creates, gets and replaces a webhook configuration as raw JSON; a stale replace is a conflict", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const client = yield* KubeClient
        yield* client.createWebhookConfiguration(webhookConfiguration)
        const again = yield* Effect.flip(client.createWebhookConfiguration(webhookConfiguration))
        assert.strictEqual(again.reason, "conflict")

        const read = yield* client.getWebhookConfiguration("filer-sidecar-injector")
        assert.strictEqual(read.kind, "MutatingWebhookConfiguration")
        const webhooks = read.webhooks as Array<Record<string, unknown>>
        assert.deepStrictEqual(webhooks[0]!.futureField, { keep: "me" })
        // JSON as the API speaks it: timestamps are strings, not Date instances.
        assert.isString((read.metadata as Record<string, unknown>).creationTimestamp)

        const updated = structuredClone(read) as Record<string, any>
        updated.webhooks[0].clientConfig.caBundle = Buffer.from("a CA").toString("base64")
        yield* client.replaceWebhookConfiguration(updated)
        const stored = api.get("mutatingwebhookconfigurations", "", "filer-sidecar-injector")!
        const storedWebhooks = stored.webhooks as Array<Record<string, any>>
        assert.strictEqual(storedWebhooks[0]!.clientConfig.caBundle, Buffer.from("a CA").toString("base64"))
        assert.deepStrictEqual(storedWebhooks[0]!.futureField, { keep: "me" })

        // `updated` still carries the version before the replace.
        const stale = yield* Effect.flip(client.replaceWebhookConfiguration(updated))
        assert.strictEqual(stale.reason, "conflict")
        assert.include(stale.message, `cannot update mutatingwebhookconfigurations "filer-sidecar-injector"`)

        const missing = yield* Effect.flip(client.replaceWebhookConfiguration({
          ...webhookConfiguration,
          metadata: { name: "nope", resourceVersion: "1" }
        }))
        assert.strictEqual(missing.reason, "not_found")
        const forbidden = api.respondWith(403, { method: "PUT" })
        const denied = yield* Effect.flip(client.replaceWebhookConfiguration(updated))
        forbidden.clear()
        assert.include(denied.message, `apiGroups=["admissionregistration.k8s.io"]`)
        assert.include(denied.message, `verbs=["update"] cluster-wide`)
      }))
  })

  it.effect("no error message carries a Secret's value, whatever the server sends", () =>
    Effect.gen(function*() {
      const api = yield* freshApi
      const client = yield* KubeClient
      const messages: Array<string> = []
      const record = (error: { readonly message: string }) => {
        messages.push(error.message, String(error), JSON.stringify(error))
      }
      const planted = `Secret "filer-creds" is invalid: data[secretKey]: Invalid value: "${secretValue}"`
      const read = yield* client.getSecret("das", "filer-creds")
      for (const status of [400, 403, 404, 409, 422, 429, 500, 503]) {
        api.respondWith(status, { times: 1, message: planted })
        record(yield* Effect.flip(client.getSecret("das", "filer-creds")))
        api.respondWith(status, { times: 1, message: planted })
        record(yield* Effect.flip(client.replaceSecret(read, { secretKey: secretValue })))
      }
      api.resetConnections({ times: 1 })
      record(yield* Effect.flip(client.getSecret("das", "filer-creds")))
      const fiber = yield* Effect.forkChild(Stream.runCollect(client.watchConfigMap("das", "filers-list")))
      yield* Effect.promise(() => api.waitForWatches(1))
      api.sendGarbage(secretValue)
      record(yield* Effect.flip(Fiber.join(fiber)))

      assert.isAbove(messages.length, 30)
      for (const message of messages) noSecretIn(message)
      // 422's Status reason word is kept; its message is not.
      assert.isTrue(messages.some((message) => message.includes("422 Unprocessable Entity (Invalid)")))
    }))
})

// A real API server speaks HTTPS with its own CA, which the kubeconfig (or the
// service account's ca.crt) names: the client must trust that CA and only it.
describe("over HTTPS", () => {
  const pairFor = (name: string) =>
    generateSelfSigned({ serviceName: name, namespace: "kube-system", caKeyBits: 2048, leafKeyBits: 2048 })

  const withHttpsApi = <A, E>(use: (api: FakeApiServer, otherCaPem: string) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const [pair, other] = yield* Effect.all([pairFor("fake-api"), pairFor("someone-else")], { concurrency: 2 })
      const api = yield* Effect.acquireRelease(
        Effect.promise(() => FakeApiServer.start({ objects: [filersList("one"), credentials], tls: pair })),
        (api) => Effect.promise(() => api.close())
      )
      return yield* use(api, other.caPem)
    }).pipe(Effect.scoped)

  /** Runs `use` with a live client over `kc`, closed (its connections too) when `use` ends. */
  const withClient = <A, E>(kc: KubeConfig, use: (client: KubeClientShape) => Effect.Effect<A, E>) =>
    Effect.provide(
      KubeClient.use(use),
      layerFromKubeConfig(kc).pipe(Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.seconds(5) })))
    )

  it.live("reads through TLS, trusting the kubeconfig's CA, on kept connections", () =>
    withHttpsApi((api) =>
      Effect.gen(function*() {
        assert.match(api.url, /^https:/)
        yield* withClient(api.kubeConfig(), (client) =>
          Effect.gen(function*() {
            const configMap = yield* client.getConfigMap("das", "filers-list")
            assert.deepStrictEqual(configMap.data, { filers: "one" })
            const secret = yield* client.getSecret("das", "filer-creds")
            assert.strictEqual(Redacted.value(secret.data.accessKey!), accessKey)
            assert.strictEqual((yield* Effect.flip(client.getSecret("das", "missing"))).reason, "not_found")
            // A handshake per call would cost more than the call itself.
            const before = api.connectionsAccepted
            for (let i = 0; i < 10; i++) yield* client.getSecret("das", "filer-creds")
            assert.strictEqual(api.connectionsAccepted, before)
          }))
      })), 30_000)

  it.live("refuses a server whose certificate another CA signed, saying so, and does not retry it", () =>
    withHttpsApi((api, otherCaPem) =>
      Effect.gen(function*() {
        const error = yield* withClient(
          api.kubeConfig({ caPem: otherCaPem }),
          (client) => Effect.flip(client.getConfigMap("das", "filers-list"))
        )
        assert.strictEqual(error.reason, "request_failed")
        assert.match(error.message, /CERT|certificate|SIGNATURE/i)
        assert.strictEqual(api.requests.length, 0)
      })), 30_000)
})

describe("loadKubeConfig", () => {
  const temporary = () => fs.mkdtempSync(path.join(os.tmpdir(), "kubeconfig-test-"))

  it.effect("fails with KubeConfigError when there is no configuration at all", () =>
    Effect.gen(function*() {
      const home = temporary()
      const error = yield* Effect.flip(loadKubeConfig({ env: { HOME: home }, serviceAccountPrefix: home }))
      assert.strictEqual(error._tag, "KubeConfigError")
      assert.include(error.message, "no usable Kubernetes configuration")
      assert.include(error.message, "KUBECONFIG is unset")
      assert.include(error.message, path.join(home, ".kube", "config"))
    }))

  it.effect("fails when KUBECONFIG names no existing file", () =>
    Effect.gen(function*() {
      const home = temporary()
      const error = yield* Effect.flip(
        loadKubeConfig({ env: { HOME: home, KUBECONFIG: path.join(home, "absent") }, serviceAccountPrefix: home })
      )
      assert.include(error.message, "KUBECONFIG names no existing file")
    }))

  it.effect("fails with KubeConfigError on a kubeconfig that is not YAML", () =>
    Effect.gen(function*() {
      const home = temporary()
      const file = path.join(home, "config")
      fs.writeFileSync(file, "clusters: [oops\n")
      const error = yield* Effect.flip(loadKubeConfig({ env: { HOME: home, KUBECONFIG: file }, serviceAccountPrefix: home }))
      assert.strictEqual(error._tag, "KubeConfigError")
    }))

  it.effect("loads the file KUBECONFIG names, and the client works with it", () =>
    Effect.scoped(Effect.gen(function*() {
      const api = yield* Effect.acquireRelease(
        Effect.promise(() => FakeApiServer.start({ objects: [filersList("from-file")] })),
        (api) => Effect.promise(() => api.close())
      )
      const home = temporary()
      const file = path.join(home, "kubeconfig")
      api.writeKubeconfig(file)
      const kc = yield* loadKubeConfig({ env: { HOME: home, KUBECONFIG: file }, serviceAccountPrefix: home })
      assert.strictEqual(kc.server, api.url)
      const configMap = yield* Effect.gen(function*() {
        const client = yield* KubeClient
        return yield* client.getConfigMap("das", "filers-list")
      }).pipe(
        Effect.provide(layerFromKubeConfig(kc).pipe(Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.seconds(2) }))))
      )
      assert.deepStrictEqual(configMap.data, { filers: "from-file" })
    })))

  it.effect("in a pod, prefers the service account over any kubeconfig", () =>
    Effect.gen(function*() {
      const hostBefore = process.env.KUBERNETES_SERVICE_HOST
      const root = temporary()
      const directory = path.join(root, serviceAccountDirectory)
      fs.mkdirSync(directory, { recursive: true })
      fs.writeFileSync(path.join(directory, "token"), "a-token")
      fs.writeFileSync(path.join(directory, "namespace"), "das")
      const kc = yield* loadKubeConfig({
        env: { HOME: root, KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443", KUBECONFIG: "/nonexistent" },
        serviceAccountPrefix: root
      })
      assert.strictEqual(kc.server, "https://10.0.0.1:443")
      assert.strictEqual(kc.trust.caFile, path.join(directory, "ca.crt"))
      assert.deepStrictEqual(kc.user, { tokenFile: path.join(directory, "token") })
      assert.strictEqual(kc.namespace, "das")
      // The environment it was given, not process.env.
      assert.strictEqual(process.env.KUBERNETES_SERVICE_HOST, hostBefore)
    }))
})
