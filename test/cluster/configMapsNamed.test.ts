/**
 * `listConfigMapsNamed` and `watchConfigMapsNamed`, the cluster-wide list and
 * watch of existing-shares: the same behaviour from the live client (against
 * the fake API server, real HTTP) and the memory client; then what only the
 * live one shows: the requests it sends (the field selector RBAC needs,
 * pages, bookmarks asked for) and how the server's refusals read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Stream } from "effect"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { listPageSize } from "../../src/cluster/live/configMapsNamed.ts"
import { MemoryCluster, type MemoryClusterStore } from "../../src/cluster/MemoryCluster.ts"
import type { ConfigMapWatchEvent } from "../../src/cluster/objects.ts"
import { collect, takeWithin } from "../support/streams.ts"
import { FakeApi } from "../support/fakeApiServer.ts"
import { configMap } from "../support/pipelineHarness.ts"

const name = "existing-shares"

const clusterSettings = ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(500) })

/** The cluster behind a client, for the test to change: its store, and a way to end its open watches. */
class Cluster extends Context.Service<Cluster, {
  readonly store: MemoryClusterStore
  readonly endWatches: Effect.Effect<void>
}>()("test/configMapsNamed/Cluster") {}

/** The live client over a fresh fake API server; the server's store is the cluster. */
const liveClient = Layer.unwrap(
  Effect.map(Effect.service(FakeApi), (api) => layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 30 }))
).pipe(
  Layer.provideMerge(Layer.effect(
    Cluster,
    Effect.map(Effect.service(FakeApi), (api) => ({
      store: api.store,
      endWatches: Effect.promise(() => api.waitForWatches(1)).pipe(Effect.andThen(Effect.sync(() => api.dropWatches())))
    }))
  )),
  Layer.provideMerge(FakeApi.layer()),
  Layer.provide(clusterSettings)
)

const memoryClient = KubeClient.layerMemory.pipe(
  Layer.provideMerge(Layer.effect(
    Cluster,
    Effect.map(Effect.service(MemoryCluster), (store) => ({ store, endWatches: Effect.sync(() => store.endWatches()) }))
  )),
  Layer.provideMerge(MemoryCluster.layer([]))
)

/** An event without its resource version, to compare. */
const shown = (event: ConfigMapWatchEvent) =>
  event.type === "OPENED" || event.type === "BOOKMARK"
    ? { type: event.type }
    : { type: event.type, namespace: event.configMap.namespace, data: event.configMap.data }

const shares = (value: string) => ({ fld5filersvm: JSON.stringify([value]) })

const clients = [
  { client: "the live client", clientLayer: liveClient },
  { client: "the memory client", clientLayer: memoryClient }
] as const

for (const { client, clientLayer } of clients) {
  describe(`${client}: existing-shares of every namespace`, () => {
    const provided = <A, E>(effect: Effect.Effect<A, E, KubeClient | Cluster>) =>
      Effect.provide(effect, clientLayer as Layer.Layer<KubeClient | Cluster>)
    const storeOf = Effect.map(Effect.service(Cluster), (cluster) => cluster.store)

    const setUp = (store: MemoryClusterStore) => {
      store.put(configMap("team-a", name, shares("a")))
      store.put(configMap("team-b", name, shares("b")))
      store.put(configMap("team-a", "something-else", shares("not this one")))
    }

    it.live("lists the ConfigMaps of that name in every namespace, and nothing else", () =>
      provided(Effect.gen(function*() {
        const store = yield* storeOf
        setUp(store)
        const list = yield* (yield* KubeClient).listConfigMapsNamed(name)
        assert.deepStrictEqual(
          list.items.map((item) => [item.namespace, item.name, item.data]).sort(),
          [["team-a", name, shares("a")], ["team-b", name, shares("b")]]
        )
        assert.strictEqual(list.resourceVersion, String(store.resourceVersion))
      })))

    /** Listed, then team-a's existing-shares changed (and another ConfigMap of team-a). */
    const listedThenChanged = Effect.gen(function*() {
      const store = yield* storeOf
      setUp(store)
      const kube = yield* KubeClient
      const { resourceVersion } = yield* kube.listConfigMapsNamed(name)
      store.put(configMap("team-a", name, shares("a2")))
      store.put(configMap("team-a", "something-else", shares("ignored too")))
      return { store, kube, resourceVersion }
    })

    it.live("watches from a version: OPENED, then changes in any namespace, a deletion naming its namespace", () =>
      provided(Effect.gen(function*() {
        // The changes made between the list and the watch are replayed: team-a's, not the other name's.
        const { kube, resourceVersion, store } = yield* listedThenChanged
        const { fiber, queue } = yield* collect(kube.watchConfigMapsNamed(name, resourceVersion))
        assert.deepStrictEqual(shown(yield* takeWithin(queue)), { type: "OPENED" })
        assert.deepStrictEqual(shown(yield* takeWithin(queue)), { type: "MODIFIED", namespace: "team-a", data: shares("a2") })
        store.put(configMap("team-a", "something-else", shares("ignored")))
        store.put(configMap("team-c", name, shares("c")))
        assert.deepStrictEqual(shown(yield* takeWithin(queue)), { type: "ADDED", namespace: "team-c", data: shares("c") })
        store.remove("configmaps", "team-b", name)
        const deleted = yield* takeWithin(queue)
        assert.deepStrictEqual(shown(deleted), { type: "DELETED", namespace: "team-b", data: shares("b") })
        assert.strictEqual(deleted.type === "DELETED" && deleted.configMap.resourceVersion, String(store.resourceVersion))
        yield* Fiber.interrupt(fiber)
      })))

    it.live("a version the cluster has forgotten fails the watch with a transient 410, after OPENED", () =>
      provided(Effect.gen(function*() {
        const { kube, resourceVersion, store } = yield* listedThenChanged
        store.compact()
        const events = yield* Stream.runCollect(
          kube.watchConfigMapsNamed(name, resourceVersion).pipe(Stream.catch(() => Stream.empty))
        )
        assert.deepStrictEqual(events.map(shown), [{ type: "OPENED" }])
        const error = yield* Effect.flip(Stream.runCollect(kube.watchConfigMapsNamed(name, resourceVersion)))
        assert.strictEqual(error.reason, "transient")
        assert.strictEqual(error.status, 410)
        assert.include(error.message, "cannot watch configmaps \"existing-shares\"")
      })))

    it.live("ends when the cluster ends its watches", () =>
      provided(Effect.gen(function*() {
        const kube = yield* KubeClient
        const { resourceVersion } = yield* kube.listConfigMapsNamed(name)
        const { fiber, queue } = yield* collect(kube.watchConfigMapsNamed(name, resourceVersion))
        assert.deepStrictEqual(shown(yield* takeWithin(queue)), { type: "OPENED" })
        yield* (yield* Cluster).endWatches
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
      })))
  })
}

describe("the live client's requests for existing-shares", () => {
  const provided = <A, E>(effect: Effect.Effect<A, E, KubeClient | FakeApi>) => Effect.provide(effect, liveClient)

  it.live("list every namespace with the name's field selector, page by page", () =>
    provided(Effect.gen(function*() {
      const api = yield* FakeApi
      const count = listPageSize * 2 + 7
      for (let index = 0; index < count; index++) api.put(configMap(`team-${index}`, name, shares(String(index))))
      api.put(configMap("team-0", "kube-root-ca.crt", { "ca.crt": "not this one" }))
      const list = yield* (yield* KubeClient).listConfigMapsNamed(name)
      assert.strictEqual(list.items.length, count)
      assert.strictEqual(new Set(list.items.map((item) => item.namespace)).size, count)
      const pages = api.requests.filter((request) => request.path === "/api/v1/configmaps")
      assert.strictEqual(pages.length, 3)
      for (const page of pages) {
        assert.strictEqual(page.query.fieldSelector, "metadata.name=existing-shares")
        assert.strictEqual(page.query.limit, String(listPageSize))
      }
      assert.isUndefined(pages[0]!.query.continue)
      assert.isString(pages[1]!.query.continue)
      assert.notStrictEqual(pages[2]!.query.continue, pages[1]!.query.continue)
    })))

  it.live("watch every namespace by the field selector, from the version, asking for bookmarks", () =>
    provided(Effect.gen(function*() {
      const api = yield* FakeApi
      const kube = yield* KubeClient
      const { resourceVersion } = yield* kube.listConfigMapsNamed(name)
      const { fiber, queue } = yield* collect(kube.watchConfigMapsNamed(name, resourceVersion))
      assert.deepStrictEqual(shown(yield* takeWithin(queue)), { type: "OPENED" })
      yield* Effect.promise(() => api.waitForWatches(1))
      api.put(configMap("team-a", name, shares("a")))
      const added = yield* takeWithin(queue)
      api.sendBookmark()
      const bookmark = yield* takeWithin(queue)
      assert.deepStrictEqual(bookmark, { type: "BOOKMARK", resourceVersion: api.resourceVersion })
      assert.strictEqual(added.type, "ADDED")
      yield* Fiber.interrupt(fiber)
      const watch = api.requests.find((request) => request.query.watch === "true")!
      assert.strictEqual(watch.path, "/api/v1/configmaps")
      assert.deepStrictEqual(
        { ...watch.query, timeoutSeconds: undefined },
        {
          fieldSelector: "metadata.name=existing-shares",
          watch: "true",
          resourceVersion,
          allowWatchBookmarks: "true",
          timeoutSeconds: undefined
        }
      )
      assert.strictEqual(watch.query.timeoutSeconds, "30")
    })))

  it.live("a refused list or watch names the cluster-wide rule the ServiceAccount lacks", () =>
    provided(Effect.gen(function*() {
      const api = yield* FakeApi
      const kube = yield* KubeClient
      const list = api.respondWith(403, { path: "/api/v1/configmaps?" })
      const listError = yield* Effect.flip(kube.listConfigMapsNamed(name))
      list.clear()
      assert.strictEqual(listError.reason, "forbidden")
      assert.include(listError.message, `resources=["configmaps"] verbs=["list"] cluster-wide`)
      const { resourceVersion } = yield* kube.listConfigMapsNamed(name)
      api.respondWith(403, { path: "watch=true" })
      const watchError = yield* Effect.flip(Stream.runCollect(kube.watchConfigMapsNamed(name, resourceVersion)))
      assert.strictEqual(watchError.reason, "forbidden")
      assert.include(watchError.message, `verbs=["watch"] cluster-wide`)
    })))
})
