/**
 * A fault planned once, in the store behind the fake API server, is met the
 * same way by the memory KubeClient (over that store) and by the live client
 * (over HTTP): one fault plan, one classification of statuses and resets.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import type { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { acquireFakeApiServer, type FakeApiServer } from "../support/fakeApiServer.ts"

const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: "das" }, stringData: { a: "b" } }

/** The error `getSecret` meets through the memory client and through the live client, one fault each. */
const bothWays = (api: FakeApiServer, plan: () => void) =>
  Effect.gen(function*() {
    const getSecret = KubeClient.use((kube) => kube.getSecret("das", "creds")).pipe(Effect.flip)
    plan()
    const memory = yield* getSecret.pipe(
      Effect.provide(KubeClient.layerMemory.pipe(Layer.provide(Layer.succeed(MemoryCluster, api.store))))
    )
    plan()
    const live = yield* getSecret.pipe(
      Effect.provide(layerFromKubeConfig(api.kubeConfig()).pipe(Layer.provide(ClusterSettings.layerValues())))
    )
    return { memory, live }
  })

const fields = (error: KubeError) => ({
  reason: error.reason,
  status: error.status,
  retryAfterMillis: error.retryAfterMillis,
  detail: error.detail
})

describe("a wire fault in the fake API server's store", () => {
  it.live("a 503 with Retry-After: transient, with the status and the wait, either way", () =>
    Effect.gen(function*() {
      const api = yield* acquireFakeApiServer({ objects: [secret] })
      const { live, memory } = yield* bothWays(api, () => api.respondWith(503, { times: 1, retryAfterSeconds: 2 }))
      assert.deepStrictEqual(fields(memory), fields(live))
      assert.strictEqual(memory.reason, "transient")
      assert.strictEqual(memory.retryAfterMillis, 2000)
    }).pipe(Effect.scoped))

  it.live("403 is forbidden and 404 not found, either way", () =>
    Effect.gen(function*() {
      const api = yield* acquireFakeApiServer({ objects: [secret] })
      for (const status of [403, 404, 429]) {
        const { live, memory } = yield* bothWays(api, () => api.respondWith(status, { times: 1 }))
        assert.deepStrictEqual(fields(memory), fields(live))
      }
    }).pipe(Effect.scoped))

  it.live("a reset connection: transient, connection failed, either way", () =>
    Effect.gen(function*() {
      const api = yield* acquireFakeApiServer({ objects: [secret] })
      const { live, memory } = yield* bothWays(api, () => api.resetConnections({ times: 1 }))
      for (const error of [memory, live]) {
        assert.strictEqual(error.reason, "transient")
        assert.match(error.detail ?? "", /^connection failed/)
      }
    }).pipe(Effect.scoped))

  it.live("a hang: the memory client never answers either", () =>
    Effect.gen(function*() {
      const api = yield* acquireFakeApiServer({ objects: [secret] })
      api.hang({ times: 1 })
      const answer = yield* KubeClient.use((kube) => kube.getSecret("das", "creds")).pipe(
        Effect.timeoutOption("50 millis"),
        Effect.provide(KubeClient.layerMemory.pipe(Layer.provide(Layer.succeed(MemoryCluster, api.store))))
      )
      assert.isTrue(Option.isNone(answer))
      // The fault took that one call only.
      assert.strictEqual((yield* KubeClient.use((kube) => kube.getSecret("das", "creds")).pipe(
        Effect.provide(KubeClient.layerMemory.pipe(Layer.provide(Layer.succeed(MemoryCluster, api.store))))
      )).name, "creds")
    }).pipe(Effect.scoped))
})
