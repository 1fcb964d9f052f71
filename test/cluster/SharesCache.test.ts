/**
 * SharesCache over a cluster held in memory: it answers only while in sync
 * and only for the namespaces it holds; it follows changes; a watch the
 * cluster ends is opened again from where it stopped, a failed one (410
 * Gone included) means a new list, and meanwhile it answers nothing; what
 * users could make too large is not held.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { type CallDescription, MemoryCluster, type MemoryClusterStore } from "../../src/cluster/MemoryCluster.ts"
import { SharesCache, type SharesCacheOptions, type SharesCacheState } from "../../src/cluster/SharesCache.ts"
import { eventually } from "../support/eventually.ts"
import { configMap, quietLogs } from "../support/pipelineHarness.ts"

const name = "existing-shares"
const shares = (value: string) => ({ fld5filersvm: JSON.stringify([value]) })

const cacheOver = (options: SharesCacheOptions = {}) =>
  SharesCache.layerWatching({ initialBackoff: "5 millis", maxBackoff: "20 millis", ...options }).pipe(
    Layer.provideMerge(KubeClient.layerMemory),
    Layer.provideMerge(MemoryCluster.layer([configMap("team-a", name, shares("a")), configMap("team-b", name, shares("b"))])),
    Layer.provideMerge(quietLogs)
  )

/** Counts the calls that match (a fault that fails nothing and delays by nothing). */
const counting = (cluster: MemoryClusterStore, verb: string) =>
  cluster.addFault({
    matches: (call) => call.resource === "configmaps" && call.verb === verb && call.namespace === "",
    wire: { kind: "delay", millis: 0 }
  })

/** Fails every matching call with a transient error until cleared. */
const failing = (cluster: MemoryClusterStore, verb: string) =>
  cluster.addFault({
    matches: (call) => call.resource === "configmaps" && call.verb === verb && call.namespace === "",
    error: (call: CallDescription) => KubeError.transient({ ...call, resource: "configmaps" }, "the API server answered 503")
  })

/** Waits (up to 2 s) until `condition` holds. */
const until = (what: string, condition: () => boolean) => eventually(what, Effect.sync(condition), (holds) => holds, 2000)

const dataOf = (cache: SharesCache["Service"], namespace: string) => cache.cached(namespace)?.data

const inSync = (cache: SharesCache["Service"]) => Effect.runSync(cache.inSync)

describe("SharesCache", () => {
  it.live("answers for every namespace it holds while listed and watching, and for none while it cannot follow", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      yield* until("in sync", () => inSync(cache))
      assert.deepStrictEqual(dataOf(cache, "team-a"), shares("a"))
      // The watch ends and cannot be opened again, nor can the list: what the cache holds may be any age now.
      const list = failing(cluster, "list")
      failing(cluster, "watch")
      cluster.endWatches()
      yield* until("out of sync", () => !inSync(cache) && list.hits > 0)
      assert.isUndefined(cache.cached("team-a"), "answered while it could not follow the cluster")
      cluster.clearFaults()
      yield* until("in sync", () => inSync(cache))
      assert.deepStrictEqual(dataOf(cache, "team-a"), shares("a"))
      assert.deepStrictEqual(dataOf(cache, "team-b"), shares("b"))
      // Absence is not "no shares": the caller reads a namespace it does not hold live.
      assert.isUndefined(cache.cached("team-c"))
    }).pipe(Effect.provide(cacheOver())))

  it.live("follows changes in any namespace, and forgets a deleted one", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      yield* until("in sync", () => inSync(cache))
      cluster.put(configMap("team-a", name, shares("a2")))
      cluster.put(configMap("team-c", name, shares("c")))
      cluster.put(configMap("team-b", "something-else", shares("not this one")))
      cluster.remove("configmaps", "team-b", name)
      yield* until("the changes held", () => dataOf(cache, "team-c") !== undefined)
      assert.deepStrictEqual(dataOf(cache, "team-a"), shares("a2"))
      assert.deepStrictEqual(dataOf(cache, "team-c"), shares("c"))
      assert.isUndefined(cache.cached("team-b"))
    }).pipe(Effect.provide(cacheOver())))

  it.live("watches again from where it stopped when the cluster ends the watch, without listing again", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      const lists = counting(cluster, "list")
      const watches = counting(cluster, "watch")
      yield* until("in sync", () => inSync(cache) && watches.hits === 1)
      const listed = lists.hits
      cluster.addFault({ matches: (call) => call.verb === "watch", wire: { kind: "delay", millis: 200 } }, 1)
      cluster.endWatches()
      // Made while the next watch is on its way: it replays the change. Meanwhile the cache answers nothing.
      cluster.put(configMap("team-a", name, shares("while away")))
      yield* until("out of sync", () => !inSync(cache))
      assert.isUndefined(cache.cached("team-b"))
      yield* until("the change held", () => dataOf(cache, "team-a")?.fld5filersvm === JSON.stringify(["while away"]))
      assert.strictEqual(watches.hits, 2)
      assert.strictEqual(lists.hits, listed)
    }).pipe(Effect.provide(cacheOver())))

  it.live("lists again when the version is gone (410), and when a watch fails; answers nothing until in sync", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      const lists = counting(cluster, "list")
      yield* until("in sync", () => inSync(cache))
      const listed = lists.hits

      // 410: while the next watch is on its way, a change, and the cluster forgets the changes since the cache's version.
      cluster.addFault({ matches: (call) => call.verb === "watch", wire: { kind: "delay", millis: 50 } }, 1)
      cluster.endWatches()
      cluster.put(configMap("team-a", name, shares("after compaction")))
      cluster.compact()
      yield* until("listed again", () => lists.hits === listed + 1 && inSync(cache))
      assert.deepStrictEqual(dataOf(cache, "team-a"), shares("after compaction"))

      // A watch that fails, and lists that fail: out of sync until a list and a watch pass.
      const refusedList = failing(cluster, "list")
      failing(cluster, "watch")
      cluster.endWatches()
      yield* until("lists tried again", () => refusedList.hits >= 2)
      assert.isFalse(inSync(cache))
      assert.isUndefined(cache.cached("team-b"))
      cluster.clearFaults()
      yield* until("in sync again", () => inSync(cache))
      assert.deepStrictEqual(dataOf(cache, "team-b"), shares("b"))
    }).pipe(Effect.provide(cacheOver())))

  it.effect("lists again at once after a steady while, and backs off when the watch fails soon after opening", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      // The test clock: nothing waits unless the test moves it, so what happens without moving it happens at once.
      const settle = Effect.repeat(Effect.yieldNow, { times: 200 })
      yield* settle
      assert.isTrue(inSync(cache))
      const lists = counting(cluster, "list")
      /** The next watch fails with 410: while it is on its way, a change and a compaction. */
      const goneOnNextWatch = Effect.gen(function*() {
        cluster.addFault({ matches: (call) => call.verb === "watch", wire: { kind: "delay", millis: 50 } }, 1)
        cluster.endWatches()
        cluster.put(configMap("team-a", name, shares(`gone ${lists.hits}`)))
        cluster.compact()
        yield* TestClock.adjust("50 millis")
        yield* settle
      })

      // Failing a moment after the list: the back-off (an hour here) comes first.
      yield* goneOnNextWatch
      assert.strictEqual(lists.hits, 0)
      assert.isFalse(inSync(cache))
      yield* TestClock.adjust("2 hours")
      yield* settle
      assert.strictEqual(lists.hits, 1)
      assert.isTrue(inSync(cache))

      // Failing after a steady while: listed again at once.
      yield* TestClock.adjust("11 seconds")
      yield* goneOnNextWatch
      assert.strictEqual(lists.hits, 2)
      assert.isTrue(inSync(cache))
    }).pipe(Effect.provide(cacheOver({ initialBackoff: "1 hour", maxBackoff: "1 hour" }))))

  it.live("does not hold an existing-shares past its size bound, nor past the total, and never an older version", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      yield* until("in sync", () => inSync(cache))
      // Each `shares("x")` is 17 characters (key and value); an entry may have 50, all of them 60.
      cluster.put(configMap("team-a", name, shares("x".repeat(60))))
      cluster.put(configMap("team-c", name, shares("c")))
      yield* until("team-c held", () => cache.cached("team-c") !== undefined)
      assert.isUndefined(cache.cached("team-a"), "too large: read live, not its older version")
      cluster.put(configMap("team-d", name, shares("d")))
      cluster.put(configMap("team-e", name, shares("e")))
      yield* until("team-e seen", () => cluster.get("configmaps", "team-e", name)._tag === "Some")
      yield* Effect.sleep("50 millis")
      const held = ["team-b", "team-c", "team-d", "team-e"].filter((namespace) => cache.cached(namespace) !== undefined)
      assert.deepStrictEqual(held, ["team-b", "team-c", "team-d"])
      // Room again: the next version of team-e is held.
      cluster.remove("configmaps", "team-b", name)
      cluster.put(configMap("team-e", name, shares("e2")))
      yield* until("team-e held", () => cache.cached("team-e") !== undefined)
    }).pipe(Effect.provide(cacheOver({ limits: { maxEntryCharacters: 50, maxTotalCharacters: 60 } }))))

  it.live("tells its observer whether it is in sync and how many namespaces it holds", () => {
    const states: Array<SharesCacheState> = []
    return Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      yield* until("in sync", () => inSync(cache))
      cluster.put(configMap("team-c", name, shares("c")))
      yield* until("team-c held", () => cache.cached("team-c") !== undefined)
      failing(cluster, "watch")
      failing(cluster, "list")
      cluster.endWatches()
      yield* until("out of sync", () => !inSync(cache))
      assert.deepStrictEqual(states[0], { inSync: false, namespaces: 0 })
      assert.deepStrictEqual(states.slice(-3), [
        { inSync: true, namespaces: 2 },
        { inSync: true, namespaces: 3 },
        { inSync: false, namespaces: 3 }
      ])
    }).pipe(Effect.provide(cacheOver({ onChange: (state) => Effect.sync(() => states.push(state)) })))
  })
})
