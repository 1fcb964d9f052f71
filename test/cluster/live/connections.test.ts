/**
 * The road to the API server (src/cluster/live/connections.ts, transport.ts):
 * whatever the burst, the live client holds at most 8 connections for its
 * requests, keeps them, lines the rest up without failing them for waiting,
 * and gives each watch a connection of its own. Over plain HTTP and over
 * HTTPS, counted on the fake API server's side.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Queue, Stream } from "effect"
import { ClusterSettings } from "../../../src/cluster/ClusterSettings.ts"
import { KubeClient, type KubeClientShape } from "../../../src/cluster/KubeClient.ts"
import { layerFromKubeConfig } from "../../../src/cluster/KubeClientLive.ts"
import { requestConnections } from "../../../src/cluster/live/connections.ts"
import { generateSelfSigned, type GeneratedMaterial } from "../../../src/server/tls/selfSigned.ts"
import { FakeApiServer } from "../../support/fakeApiServer.ts"

const filersList = (filers: string) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "filers-list", namespace: "das" },
  data: { filers }
})

const secrets = Array.from({ length: 6 }, (_, index) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: `svm${index}-conn-secret`, namespace: "jane-doe" },
  data: { accessKey: Buffer.from("fixture-access").toString("base64") }
}))

let pair: Promise<GeneratedMaterial> | undefined
const tlsPair = () => (pair ??= Effect.runPromise(
  generateSelfSigned({ serviceName: "fake-api", namespace: "kube-system", caKeyBits: 2048, leafKeyBits: 2048 })
))

/** A fresh fake API server (HTTP or HTTPS) and a fresh live client on it, both closed after `use`. */
const withClient = <A, E>(
  secure: boolean,
  callTimeout: Duration.Input,
  use: (api: FakeApiServer, client: KubeClientShape) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const tls = secure ? yield* Effect.promise(tlsPair) : undefined
    const api = yield* Effect.acquireRelease(
      Effect.promise(() =>
        FakeApiServer.start({ objects: [filersList("one"), ...secrets], ...(tls === undefined ? {} : { tls }) })
      ),
      (api) => Effect.promise(() => api.close())
    )
    return yield* Effect.provide(
      KubeClient.use((client) => use(api, client)),
      layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 30 }).pipe(
        Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.fromInputUnsafe(callTimeout) }))
      )
    )
  }).pipe(Effect.scoped)

/** `count` reads at once, every one of which must succeed. */
const burst = (client: KubeClientShape, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, index) => index),
    (index) => client.getSecret("jane-doe", `svm${index % secrets.length}-conn-secret`),
    { concurrency: "unbounded" }
  )

for (const secure of [false, true]) {
  describe(secure ? "over HTTPS" : "over HTTP", () => {
    it.live(`a burst of 60 concurrent calls opens at most ${requestConnections} connections, and every call answers`, () =>
      withClient(secure, "5 seconds", (api, client) =>
        Effect.gen(function*() {
          // Long enough that the calls overlap: without a bound, each would open a connection.
          api.setLatency(20)
          const answers = yield* burst(client, 60)
          assert.strictEqual(answers.length, 60)
          assert.isTrue(answers.every((secret) => secret.namespace === "jane-doe"))
          assert.isAtMost(api.connectionsAccepted, requestConnections)
          assert.strictEqual(api.requests.length, 60)
          // Kept: a second burst opens none.
          const accepted = api.connectionsAccepted
          yield* burst(client, 60)
          assert.strictEqual(api.connectionsAccepted, accepted)
        })), 30_000)

    it.live("the call timeout does not count the wait for a connection: a long line is not failed", () =>
      withClient(secure, "1 second", (api, client) =>
        Effect.gen(function*() {
          // 96 calls of 100 ms each, 8 at a time: the last ones wait about 1.1 s, more than the call timeout.
          api.setLatency(100)
          const answers = yield* burst(client, 12 * requestConnections)
          assert.strictEqual(answers.length, 12 * requestConnections)
          assert.isAtMost(api.connectionsAccepted, requestConnections)
        })), 30_000)

    it.live("a call interrupted while it waits for a connection is never sent", () =>
      withClient(secure, "5 seconds", (api, client) =>
        Effect.gen(function*() {
          api.delay(300, { path: "/secrets/" })
          const busy = yield* Effect.forkChild(burst(client, requestConnections))
          yield* Effect.promise(() => api.waitFor(() => api.requests.length === requestConnections))
          const waiting = yield* Effect.forkChild(client.getConfigMap("das", "filers-list"))
          yield* Effect.sleep("50 millis")
          yield* Fiber.interrupt(waiting)
          assert.strictEqual((yield* Fiber.join(busy)).length, requestConnections)
          // The connections are free again, and the abandoned call did not take one.
          assert.strictEqual(yield* Effect.map(client.getConfigMap("das", "filers-list"), (cm) => cm.data.filers), "one")
          assert.deepStrictEqual(
            api.requests.filter((request) => request.path.includes("/configmaps/")).length,
            1
          )
        })), 30_000)

    it.live("a watch has a connection of its own: it does not take one of the 8, nor wait behind a burst", () =>
      withClient(secure, "5 seconds", (api, client) =>
        Effect.gen(function*() {
          const events = yield* Queue.unbounded<Option.Option<string>>()
          const watch = yield* Effect.forkChild(
            Stream.runForEach(
              client.watchConfigMap("das", "filers-list"),
              (state) => Queue.offer(events, Option.map(state, (configMap) => configMap.data.filers!))
            )
          )
          assert.deepStrictEqual(yield* Queue.take(events), Option.some("one"))
          yield* Effect.promise(() => api.waitForWatches(1))
          api.setLatency(50)
          const calls = yield* Effect.forkChild(burst(client, 60))
          // While the burst holds all 8 request connections, the watch still delivers.
          yield* Effect.promise(() => api.waitFor(() => api.openConnections === requestConnections + 1))
          api.put(filersList("two"))
          assert.deepStrictEqual(yield* Queue.take(events), Option.some("two"))
          assert.strictEqual((yield* Fiber.join(calls)).length, 60)
          // The watch's connection and the 8 of the requests (the list before the watch took one of them).
          assert.strictEqual(api.connectionsAccepted, requestConnections + 1)
          assert.strictEqual(api.openWatches, 1)
          yield* Fiber.interrupt(watch)
        })), 30_000)
  })
}
