/**
 * The existing-shares cache as `serve` runs it: the live KubeClient against
 * the fake API server (real HTTP), one cluster-wide list and watch. In sync,
 * an admission sends the API only its SVMs' Secret GETs; a change is used
 * within 2 s; a watch that is reset or answers 410 means a new list, and
 * while the cache is not in sync the admissions read existing-shares live
 * (and still inject); a deleted ConfigMap is read live, found missing, and
 * the pod admitted unchanged.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SharesCache } from "../../src/cluster/SharesCache.ts"
import { exampleClusterObjects } from "../support/pipelineHarness.ts"
import { admitTimed, assertInjected, eventually, faultLayer, type FakeApiServer, freshApi } from "./support.ts"

const sharesPath = "/api/v1/namespaces/jane-doe/configmaps/existing-shares"

const exampleShares = () =>
  exampleClusterObjects().find((object) =>
    object.kind === "ConfigMap" && (object.metadata as { name: string }).name === "existing-shares"
  )!

const isList = (request: FakeApiServer["requests"][number]) =>
  request.path === "/api/v1/configmaps" && request.query.watch === undefined

const inSync = Effect.gen(function*() {
  const cache = yield* SharesCache
  return yield* cache.inSync
})

/** The fake API server, its faults cleared, the example's existing-shares back, the cache in sync and the log emptied. */
const synced = Effect.gen(function*() {
  const api = yield* freshApi
  api.put(exampleShares())
  yield* eventually("the cache in sync", inSync, (synced) => synced, 2000)
  api.clearRequests()
  return api
})

layer(faultLayer({ watchShares: true }), { excludeTestServices: true })("existing-shares from a watch", (it) => {
  describe("in sync", () => {
    it.effect("an admission sends the API server only its SVMs' Secret GETs", () =>
      Effect.gen(function*() {
        const api = yield* synced
        assertInjected(yield* admitTimed())
        const sent = api.requests.filter((request) => !request.path.startsWith("/api/v1/configmaps"))
        assert.deepStrictEqual(
          sent.map((request) => `${request.method} ${request.path}`).sort(),
          ["fld5filersvm", "fld6filersvm", "fld9filersvm"].map((svm) =>
            `GET /api/v1/namespaces/jane-doe/secrets/${svm}-conn-secret`
          )
        )
      }))

    it.effect("a change to existing-shares is used within 2 s", () =>
      Effect.gen(function*() {
        const api = yield* synced
        const shares = exampleShares()
        api.put({ ...shares, data: { fld5filersvm: '["home"]' } })
        yield* eventually("one sidecar", admitTimed(), (timed) => timed.pod.spec.initContainers?.length === 1, 2000)
        assert.isFalse(api.requests.some((request) => request.path === sharesPath))
      }))

    it.effect("a deleted existing-shares is read live, found missing, and the pod admitted unchanged", () =>
      Effect.gen(function*() {
        const api = yield* synced
        api.remove("configmaps", "jane-doe", "existing-shares")
        const timed = yield* eventually("admitted unchanged", admitTimed(), (timed) => timed.response.patch === undefined, 2000)
        assert.isTrue(timed.response.allowed)
        assert.isTrue(api.requests.some((request) => request.path === sharesPath))
      }))
  })

  describe("a watch that fails", () => {
    it.effect("is followed by a new list; until it is done, admissions read existing-shares live, and inject", () =>
      Effect.gen(function*() {
        const api = yield* synced
        // Lists go unanswered (each fails at the call timeout, then backs off): the cache cannot get back in sync.
        const lists = api.hang({ path: "limit=" })
        api.dropWatches({ reset: true })
        yield* eventually("out of sync", inSync, (synced) => !synced, 2000)
        assertInjected(yield* admitTimed())
        assert.isTrue(api.requests.some((request) => request.path === sharesPath), "existing-shares read live")
        lists.clear()
        yield* eventually("in sync again", inSync, (synced) => synced, 2000)
        api.clearRequests()
        assertInjected(yield* admitTimed())
        assert.isFalse(api.requests.some((request) => request.path === sharesPath))
      }))

    it.effect("with 410 Gone is followed by a new list", () =>
      Effect.gen(function*() {
        const api = yield* synced
        yield* Effect.promise(() => api.waitFor(() => api.openWatches >= 3))
        api.sendWatchError(410, "too old resource version")
        yield* eventually("listed again", Effect.sync(() => api.requests.filter(isList).length), (lists) => lists >= 1, 2000)
        yield* eventually("in sync again", inSync, (synced) => synced, 2000)
        api.clearRequests()
        assertInjected(yield* admitTimed())
        assert.isFalse(api.requests.some((request) => request.path === sharesPath))
      }))
  })
})
