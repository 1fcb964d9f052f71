/**
 * Admissions with the existing-shares cache, as `serve` runs them, over a
 * cluster held in memory: with the cache in sync an admission reads only its
 * SVMs' Secrets; a change is used within the 2 s docs/behaviour.md allows;
 * a namespace the cache does not hold, a deleted ConfigMap, and any time the
 * cache cannot follow the cluster, mean a live read, never "no shares".
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster, type MemoryClusterStore } from "../../src/cluster/MemoryCluster.ts"
import { KubeRetry } from "../../src/cluster/retry.ts"
import { SharesCache } from "../../src/cluster/SharesCache.ts"
import { eventually } from "../support/eventually.ts"
import {
  admitSettled,
  clusterObjects,
  configMap,
  notebookPod,
  pipelineSettings,
  podReview,
  quietLogs,
  userNamespace
} from "../support/pipelineHarness.ts"

const svm = "fld5filersvm"

const watched = memoryAdmissionLayer(clusterObjects([{ svm, shares: ["home"] }]), {
  retry: KubeRetry.layerInstant,
  watchShares: true,
  watch: { initialBackoff: "5 millis", maxBackoff: "20 millis" }
}).pipe(Layer.provideMerge(pipelineSettings()), Layer.orDie, Layer.provideMerge(quietLogs))

/** Counts the GETs of `resource` in `namespace` (a fault that fails nothing and delays by nothing). */
const gets = (cluster: MemoryClusterStore, resource: "configmaps" | "secrets", namespace = userNamespace) =>
  cluster.addFault({
    matches: (call) => call.resource === resource && call.verb === "get" && call.namespace === namespace,
    wire: { kind: "delay", millis: 0 }
  })

/** Fails every cluster-wide list and watch: the cache cannot follow. */
const cannotFollow = (cluster: MemoryClusterStore) =>
  cluster.addFault({
    matches: (call) => call.namespace === "" && (call.verb === "list" || call.verb === "watch"),
    error: (call: CallDescription) => KubeError.transient({ ...call, resource: "configmaps" }, "the API server answered 503")
  })

const synced = Effect.gen(function*() {
  const cache = yield* SharesCache
  yield* eventually("in sync", cache.inSync, (inSync) => inSync, 2000)
})

let uid = 0
const admitIn = (namespace = userNamespace) =>
  Effect.map(
    admitSettled(podReview(notebookPod({ namespace }), { namespace, uid: `0a0b0c0d-0000-4000-8000-${String(++uid).padStart(12, "0")}` })),
    (admission) => admission.outcome
  )

const shareList = (...shares: ReadonlyArray<string>) => configMap(userNamespace, "existing-shares", { [svm]: JSON.stringify(shares) })

describe("admissions with the existing-shares cache", () => {
  it.live("in sync, an admission reads no existing-shares: one GET, its SVM's Secret", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* synced
      const configMapGets = gets(cluster, "configmaps")
      const secretGets = gets(cluster, "secrets")
      const outcome = yield* admitIn()
      assert.strictEqual(outcome.decision, "injected")
      assert.strictEqual(outcome.sharesMounted, 1)
      assert.strictEqual(configMapGets.hits, 0)
      assert.strictEqual(secretGets.hits, 1)
    }).pipe(Effect.provide(watched)))

  it.live("a change to existing-shares is used by the admissions within 2 s", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* synced
      const configMapGets = gets(cluster, "configmaps")
      cluster.put(shareList("home", "projects"))
      yield* eventually("both shares mounted", admitIn(), (outcome) => outcome.sharesMounted === 2, 2000)
      cluster.put(shareList("projects"))
      yield* eventually("one share mounted", admitIn(), (outcome) => outcome.sharesMounted === 1, 2000)
      assert.strictEqual(configMapGets.hits, 0)
    }).pipe(Effect.provide(watched)))

  it.live("a namespace the cache does not hold is read live; without existing-shares its pods are admitted unchanged", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* synced
      const elsewhere = gets(cluster, "configmaps", "team-x")
      const outcome = yield* admitIn("team-x")
      assert.strictEqual(outcome.decision, "skipped")
      assert.strictEqual(outcome.skipCode, "no_existing_shares")
      assert.strictEqual(elsewhere.hits, 1)
    }).pipe(Effect.provide(watched)))

  it.live("a deleted existing-shares is read live, found missing, and the pod admitted unchanged", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* synced
      const configMapGets = gets(cluster, "configmaps")
      cluster.remove("configmaps", userNamespace, "existing-shares")
      const outcome = yield* eventually("skipped", admitIn(), (outcome) => outcome.decision === "skipped", 2000)
      assert.strictEqual(outcome.skipCode, "no_existing_shares")
      assert.isAtLeast(configMapGets.hits, 1)
    }).pipe(Effect.provide(watched)))

  it.live("while the cache cannot follow the cluster, admissions read existing-shares live; once it can, they stop", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const cache = yield* SharesCache
      yield* synced
      const refused = cannotFollow(cluster)
      cluster.endWatches()
      yield* eventually("out of sync", cache.inSync, (inSync) => !inSync, 2000)
      // Changed while nothing follows: the live read sees it.
      cluster.put(shareList("home", "projects"))
      const configMapGets = gets(cluster, "configmaps")
      const outcome = yield* admitIn()
      assert.strictEqual(outcome.sharesMounted, 2)
      assert.strictEqual(configMapGets.hits, 1)
      refused.clear()
      yield* synced
      assert.strictEqual((yield* admitIn()).sharesMounted, 2)
      assert.strictEqual(configMapGets.hits, 1)
    }).pipe(Effect.provide(watched)))
})
