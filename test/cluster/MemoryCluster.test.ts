import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { loadManifestDirectory } from "../../src/cluster/manifestFiles.ts"
import { MemoryCluster, MemoryClusterStore } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"

const folder = (files: Record<string, string>) => {
  const root = mkdtempSync(join(tmpdir(), "cluster-"))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

const load = (directory: string) => loadManifestDirectory(directory).pipe(Effect.provide(NodeServices.layer))

describe("a cluster folder", () => {
  it.effect("reads .yaml, .yml and .json below it, multi-document YAML and kind: List", () =>
    Effect.gen(function*() {
      const root = folder({
        "a.yaml": "kind: ConfigMap\nmetadata: {name: one, namespace: ns}\n---\n---\nkind: ConfigMap\nmetadata: {name: two, namespace: ns}\n",
        "nested/deeper/b.yml": "kind: List\nitems:\n  - {kind: ConfigMap, metadata: {name: three, namespace: ns}}\n  - {kind: Secret, metadata: {name: four, namespace: ns}}\n",
        "c.json": JSON.stringify({ kind: "ConfigMap", metadata: { name: "five", namespace: "ns" } }),
        "notes.txt": "not a manifest"
      })
      const objects = yield* load(root)
      assert.deepStrictEqual(
        objects.map((object) => (object.metadata as { name: string }).name),
        ["one", "two", "five", "three", "four"]
      )
    }))

  it.effect("names the file when a document is not valid YAML", () =>
    Effect.gen(function*() {
      const root = folder({ "bad.yaml": "kind: ConfigMap\nmetadata: [unclosed\n" })
      const error = yield* Effect.flip(load(root))
      assert.include(error.message, join(root, "bad.yaml"))
      assert.include(error.message, "not valid YAML")
    }))

  it.effect("names the folder when it does not exist", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(load("/nonexistent/cluster"))
      assert.include(error.message, "/nonexistent/cluster")
    }))
})

const secret = (data: Record<string, string>, stringData: Record<string, string>): RawObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "creds", namespace: "ns" },
  data,
  stringData
})

const configMap = (name: string, data: Record<string, string>): RawObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "das" },
  data
})

const memory = (objects: ReadonlyArray<RawObject>) =>
  KubeClient.layerMemory.pipe(Layer.provideMerge(MemoryCluster.layer(objects)))

describe("KubeClient over a memory cluster", () => {
  it.effect("decodes Secret data from base64 and lets stringData win, every value Redacted", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const read = yield* kube.getSecret("ns", "creds")
      assert.strictEqual(Redacted.value(read.data.S3_ACCESS!), "FAKE-ACCESS")
      assert.strictEqual(Redacted.value(read.data.S3_SECRET!), "FAKE-FROM-STRINGDATA")
      assert.notInclude(String(read.data.S3_SECRET), "FAKE")
    }).pipe(Effect.provide(memory([
      secret(
        { S3_ACCESS: Buffer.from("FAKE-ACCESS").toString("base64"), S3_SECRET: Buffer.from("FAKE-OLD").toString("base64") },
        { S3_SECRET: "FAKE-FROM-STRINGDATA" }
      )
    ]))))

  it.effect("answers not_found for an object it does not hold, and ignores kinds it does not store", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const error = yield* Effect.flip(kube.getConfigMap("ns", "pod-as-configmap"))
      assert.strictEqual(error.reason, "not_found")
    }).pipe(Effect.provide(memory([{ kind: "Pod", metadata: { name: "pod-as-configmap", namespace: "ns" } }]))))

  it.effect("fails the planned number of calls with the planned error, then recovers", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* MemoryCluster
      cluster.addFault({
        matches: (call) => call.resource === "configmaps",
        error: (call) => KubeError.transient(call, "HTTP 500")
      }, 2)
      const first = yield* Effect.exit(kube.getConfigMap("das", "filers-list"))
      const second = yield* Effect.exit(kube.getConfigMap("das", "filers-list"))
      const third = yield* kube.getConfigMap("das", "filers-list")
      assert.isTrue(Exit.isFailure(first) && Exit.isFailure(second))
      assert.strictEqual(third.data.filers, "[]")
    }).pipe(Effect.provide(memory([configMap("filers-list", { filers: "[]" })]))))

  it.effect("answers its own access reviews: everything allowed, unless the cluster's access plan says otherwise", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const question = { namespace: "", verb: "get", resource: "secrets", name: "svm-conn-secret" }
      assert.isTrue((yield* kube.reviewOwnAccess(question)).allowed)
      ;(yield* MemoryCluster).allowOwnAccess((asked) => asked.name !== "svm-conn-secret")
      assert.isFalse((yield* kube.reviewOwnAccess(question)).allowed)
      assert.isTrue((yield* kube.reviewOwnAccess({ ...question, name: "other-conn-secret" })).allowed)
    }).pipe(Effect.provide(memory([]))))

  it.live("watch: the current state, then each change, until the watches end", () =>
    Effect.gen(function*() {
      const kube = yield* KubeClient
      const cluster = yield* MemoryCluster
      const seen = yield* kube.watchConfigMap("das", "filers-list").pipe(
        Stream.map(Option.map((map) => map.data.filers)),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.sleep("10 millis")
      cluster.put(configMap("filers-list", { filers: "[1]" }))
      cluster.remove("configmaps", "das", "filers-list")
      cluster.put(configMap("other", { filers: "ignored" }))
      cluster.endWatches()
      const values = yield* Fiber.join(seen)
      assert.deepStrictEqual(values, [Option.some("[]"), Option.some("[1]"), Option.none()])
    }).pipe(Effect.provide(memory([configMap("filers-list", { filers: "[]" })]))))
})

const template = JSON.stringify({
  containers: [{ image: "example/goofys:1", volumeMounts: [{ name: "fd", mountPath: "/fd" }] }],
  volumes: [{ name: "fd", emptyDir: {} }, {
    name: "csi",
    csi: { driver: "meta-fuse-csi-plugin.csi.storage.pfn.io", volumeAttributes: { fdPassingSocketName: "s.sock" } }
  }]
})
const filers = (url: string) => JSON.stringify([{ vserver: "svm", url }])

const configLayer = (objects: ReadonlyArray<RawObject>) =>
  ClusterConfig.layerWatching({ initialBackoff: "10 millis", maxBackoff: "20 millis" }).pipe(
    Layer.provideMerge(memory(objects)),
    Layer.provideMerge(ClusterSettings.layerValues())
  )

const currentUrl = Effect.flatMap(ClusterConfig, (config) => config.current).pipe(
  Effect.map((snapshot) => snapshot.filers.get("svm")?.url)
)

/** Polls until `check` holds, at most one second. */
const eventually = <A>(effect: Effect.Effect<A, unknown, ClusterConfig>, check: (value: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const value = yield* Effect.result(effect)
      if (value._tag === "Success" && check(value.success)) return value.success
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die("condition not reached within a second")
  })

describe("ClusterConfig over a memory cluster", () => {
  it.live("takes a change to the filers list without a restart", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* (yield* ClusterConfig).settled
      assert.strictEqual(yield* currentUrl, "https://old.example.test")
      cluster.put(configMap("filers-list", { filers: filers("https://new.example.test") }))
      yield* eventually(currentUrl, (url) => url === "https://new.example.test")
    }).pipe(Effect.provide(configLayer([
      configMap("filers-list", { filers: filers("https://old.example.test") }),
      configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template })
    ]))))

  it.live("hands a late subscriber the filers list in use, then each good one that loads, never a bad one", () =>
    Effect.gen(function*() {
      const config = yield* ClusterConfig
      const cluster = yield* MemoryCluster
      yield* config.settled
      const seen = yield* config.filersLoaded.pipe(
        Stream.map((list) => list.get("svm")?.url),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.sleep("10 millis")
      cluster.put(configMap("filers-list", { filers: "not json" }))
      cluster.put(configMap("filers-list", { filers: filers("https://new.example.test") }))
      assert.deepStrictEqual(yield* Fiber.join(seen), ["https://old.example.test", "https://new.example.test"])
    }).pipe(Effect.provide(configLayer([
      configMap("filers-list", { filers: filers("https://old.example.test") }),
      configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template })
    ]))))

  it.live("keeps the last good version when an update is invalid, and takes the next good one", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* (yield* ClusterConfig).settled
      cluster.put(configMap("filers-list", { filers: "not json" }))
      yield* Effect.sleep("30 millis")
      assert.strictEqual(yield* currentUrl, "https://old.example.test")
      assert.isTrue(yield* (yield* ClusterConfig).ready)
      cluster.put(configMap("filers-list", { filers: filers("https://fixed.example.test") }))
      yield* eventually(currentUrl, (url) => url === "https://fixed.example.test")
    }).pipe(Effect.provide(configLayer([
      configMap("filers-list", { filers: filers("https://old.example.test") }),
      configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template })
    ]))))

  it.live("is not ready, and names the missing object, until both ConfigMaps exist", () =>
    Effect.gen(function*() {
      const config = yield* ClusterConfig
      const cluster = yield* MemoryCluster
      yield* config.settled
      assert.isFalse(yield* config.ready)
      const error = yield* Effect.flip(config.current)
      assert.include(error.message, "ConfigMap das/filer-sidecar-injector-json")
      cluster.put(configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template }))
      yield* eventually(config.ready, (ready) => ready)
    }).pipe(Effect.provide(configLayer([configMap("filers-list", { filers: filers("https://old.example.test") })]))))

  it.live("tells the observer it is handed of every reload, and of a watch that failed", () => {
    const reloads: Array<string> = []
    return Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* (yield* ClusterConfig).settled
      cluster.put(configMap("filers-list", { filers: "not json" }))
      cluster.addFault({ matches: (call) => call.verb === "watch", error: (call) => KubeError.transient(call, "HTTP 500") }, 1)
      cluster.endWatches()
      yield* eventually(Effect.sync(() => reloads), (seen) => seen.some((reload) => reload.endsWith(" watch-error")))
      assert.deepStrictEqual(reloads.slice(0, 3).sort(), [
        "filer-sidecar-injector-json loaded",
        "filers-list invalid",
        "filers-list loaded"
      ])
    }).pipe(Effect.provide(
      ClusterConfig.layerWatching({
        initialBackoff: "10 millis",
        maxBackoff: "20 millis",
        onReload: (object, result) => Effect.sync(() => reloads.push(`${object.replace("ConfigMap das/", "")} ${result}`))
      }).pipe(
        Layer.provideMerge(memory([
          configMap("filers-list", { filers: filers("https://old.example.test") }),
          configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template })
        ])),
        Layer.provideMerge(ClusterSettings.layerValues())
      )
    ))
  })

  it.live("opens a new watch when the old one ends, and still sees later changes", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      yield* (yield* ClusterConfig).settled
      cluster.endWatches()
      yield* Effect.sleep("20 millis")
      cluster.put(configMap("filers-list", { filers: filers("https://after.example.test") }))
      yield* eventually(currentUrl, (url) => url === "https://after.example.test")
    }).pipe(Effect.provide(configLayer([
      configMap("filers-list", { filers: filers("https://old.example.test") }),
      configMap("filer-sidecar-injector-json", { "sidecarconfig.json": template })
    ]))))
})

describe("the change history of a memory cluster", () => {
  it("forgets the oldest changes past its bound, as etcd compaction does, so a long-running server does not grow", () => {
    const store = new MemoryClusterStore([])
    const event = (n: number): RawObject => ({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "analysis.1", namespace: "jane-doe" },
      count: n
    })
    store.put(event(1))
    const first = store.resourceVersion
    for (let n = 2; n <= 3000; n++) store.put(event(n))
    const latest = store.resourceVersion
    // A watch resuming from before what was kept is told so (a 410 on the wire) and lists again.
    assert.strictEqual(store.changesSince(first), "expired")
    // A recent one gets every change after its version, in order.
    const recent = store.changesSince(latest - 10)
    assert.notStrictEqual(recent, "expired")
    assert.deepStrictEqual((recent as ReadonlyArray<{ version: number }>).map((change) => change.version), [
      ...Array.from({ length: 10 }, (_, i) => latest - 9 + i)
    ])
    // What is kept stays within the bound, whatever the number of changes.
    const kept = store.changesSince(store.resourceVersion - 1024)
    assert.isTrue(kept === "expired" || kept.length <= 1024)
  })
})
