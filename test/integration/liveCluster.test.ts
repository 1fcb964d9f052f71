/**
 * The admission pipeline against a Kubernetes API over HTTP: KubeClientLive
 * talking to the fake API server (test/support/fakeApiServer.ts), which holds
 * the example cluster's objects. What a live cluster adds over the in-memory
 * one: the configuration arrives through watches (hot reload, last good
 * version, watches that end or break), and reads fail in the ways an API
 * server fails (5xx, 429 with Retry-After, 403, slowness), retried within the
 * request's budget or turned into a denial that names what failed.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { admissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { parseManifests } from "../../src/cluster/manifestFiles.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import type { AdmissionReviewResponse } from "../../src/domain/admission.ts"
import { FakeApi, type FakeApiServer, type JsonObject } from "../support/fakeApiServer.ts"
import {
  answer,
  captureLogs,
  directoryPipeline,
  exampleClusterDir,
  exampleReview,
  mutatedPod,
  noEnvironment,
  notebookContainer,
  patchOf,
  quietLogs
} from "../support/pipelineHarness.ts"

const requestBudgetMillis = 1500
const kubeCallTimeoutMillis = 300
const injectorNamespace = "das"
const secretPath = "/api/v1/namespaces/jane-doe/secrets/fld5filersvm-conn-secret"

/** The example cluster folder, read with the project's own manifest parser. */
const exampleObjects: ReadonlyArray<RawObject> = fs
  .readdirSync(exampleClusterDir)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort()
  .flatMap((file) => {
    const full = path.join(exampleClusterDir, file)
    return Effect.runSync(parseManifests(fs.readFileSync(full, "utf8"), full))
  })

const isInjectorConfig = (object: RawObject) => (object.metadata as { namespace?: string }).namespace === injectorNamespace
const original = (name: string): JsonObject =>
  structuredClone(exampleObjects.find((object) => (object.metadata as { name: string }).name === name)!) as JsonObject

/** What the in-memory cluster answers for the example review: the live one must answer the same. */
const expectedAnswer: AdmissionReviewResponse = await Effect.runPromise(
  answer(exampleReview()).pipe(Effect.provide(directoryPipeline(exampleClusterDir)), Effect.provide(quietLogs))
)

const settings = Layer.mergeAll(
  AdmissionSettings.layerValues({ requestBudget: Duration.millis(requestBudgetMillis) }),
  ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(kubeCallTimeoutMillis) }),
  noEnvironment
)

/** The pipeline over KubeClientLive, against the FakeApi in context; watches back off from 50 ms to 200 ms. */
const livePipeline = Layer.unwrap(
  Effect.gen(function*() {
    const api = yield* FakeApi
    return admissionLayer(layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 30 }), {
      watch: { initialBackoff: "50 millis", maxBackoff: "200 millis" }
    })
  })
)

/** Polls `check` every 20 ms until it returns true, failing after `millis` with `what`. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, millis = 3000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`waited ${millis} ms for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

const review = (uid: string) => {
  const value = exampleReview()
  value.request.uid = uid
  return value
}

/** One admission of the example pod, timed. */
const admitExample = (uid = exampleReview().request.uid) =>
  Effect.gen(function*() {
    const started = Date.now()
    const { review: answered } = yield* admit(review(uid))
    return { response: answered.response, millis: Date.now() - started }
  })

const patchText = (response: AdmissionReviewResponse["response"]) => JSON.stringify(patchOf(response))

const secretReads = (api: FakeApiServer) => api.requests.filter((request) => request.path === secretPath)

const configLoaded = Effect.gen(function*() {
  const config = yield* ClusterConfig
  yield* eventually(config.ready, "the cluster configuration to load")
})

const logs = captureLogs()

layer(
  livePipeline.pipe(
    Layer.provideMerge(FakeApi.layer({ objects: exampleObjects as Iterable<JsonObject> })),
    Layer.provideMerge(settings),
    Layer.provide(logs.layer)
  ),
  { excludeTestServices: true }
)("the pipeline against a live API server (KubeClientLive + fake API server)", (it) => {
  /** Every test starts with no faults and the example configuration served. */
  const fresh = Effect.gen(function*() {
    const api = yield* FakeApi
    api.clearFaults()
    yield* configLoaded
    api.clearRequests()
    return api
  })

  /** Puts `objects` back to the example's and waits until admissions answer as the example does again. */
  const restore = (api: FakeApiServer) =>
    Effect.gen(function*() {
      api.clearFaults()
      api.put(original("filers-list"))
      api.put(original("filer-sidecar-injector-json"))
      yield* eventually(
        Effect.map(admitExample(), ({ response }) => patchText(response) === patchText(expectedAnswer.response)),
        "the example configuration to apply again"
      )
    })

  it.effect("injects the example pod exactly as the in-memory cluster does", () =>
    Effect.gen(function*() {
      yield* fresh
      const { review: answered } = yield* admit(exampleReview())
      assert.deepStrictEqual(answered, expectedAnswer)
      const pod = mutatedPod(exampleReview(), answered.response)
      const mounts = (notebookContainer(pod).volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath)
      assert.include(mounts, "/home/jovyan/filers/fld9filersvm/research/team-a")
    }))

  it.effect("hot reload: a changed filers-list is used by the next admission, without a restart", () =>
    Effect.gen(function*() {
      const api = yield* fresh
      const changed = original("filers-list")
      const data = changed.data as Record<string, string>
      data.filers = data.filers.replace("https://fld5filersvm.filers.example.internal", "https://fld5-moved.filers.example.internal")
      api.put(changed)
      yield* eventually(
        Effect.map(admitExample(), ({ response }) => patchText(response).includes("fld5-moved.filers.example.internal")),
        "the new url in the patch"
      )
      assert.isTrue(logs.lines.some((line) => line.includes("ConfigMap das/filers-list loaded")))
      yield* restore(api)
    }))

  it.effect("last good version: an invalid sidecar template is refused, logged, and admissions go on with the previous one", () =>
    Effect.gen(function*() {
      const api = yield* fresh
      const before = logs.lines.length
      const broken = original("filer-sidecar-injector-json")
      ;(broken.data as Record<string, string>)["sidecarconfig.json"] = "{ this is not JSON"
      api.put(broken)
      yield* eventually(
        Effect.sync(() =>
          logs.lines.slice(before).some((line) =>
            line.includes("filer-sidecar-injector-json") && line.includes("keeping the last good version")
          )
        ),
        "the refusal to be logged"
      )
      assert.isTrue(yield* (yield* ClusterConfig).ready)
      const { response } = yield* admitExample()
      assert.strictEqual(patchText(response), patchText(expectedAnswer.response))
      // An invalid filers list, likewise.
      const brokenFilers = original("filers-list")
      ;(brokenFilers.data as Record<string, string>).filers = "[{\"vserver\": 5}]"
      api.put(brokenFilers)
      yield* eventually(
        Effect.sync(() =>
          logs.lines.slice(before).some((line) => line.includes("filers-list") && line.includes("keeping the last good version"))
        ),
        "the refusal of the filers list to be logged"
      )
      assert.strictEqual(patchText((yield* admitExample()).response), patchText(expectedAnswer.response))
      yield* restore(api)
    }))

  it.effect("a deleted ConfigMap: the last good version stays in use, and the log says so", () =>
    Effect.gen(function*() {
      const api = yield* fresh
      const before = logs.lines.length
      api.remove("configmaps", injectorNamespace, "filers-list")
      yield* eventually(
        Effect.sync(() => logs.lines.slice(before).some((line) => line.includes("filers-list was deleted; keeping the last good version"))),
        "the deletion to be logged"
      )
      assert.isTrue(yield* (yield* ClusterConfig).ready)
      assert.strictEqual(patchText((yield* admitExample()).response), patchText(expectedAnswer.response))
      yield* restore(api)
    }))

  it.effect.each([
    ["ended by the server", (api: FakeApiServer) => api.dropWatches()],
    ["cut (connection reset)", (api: FakeApiServer) => api.dropWatches({ reset: true })],
    ["sent a line that is not a watch event", (api: FakeApiServer) => api.sendGarbage()],
    ["sent an ERROR event (410 Expired)", (api: FakeApiServer) => api.sendWatchError(410)]
  ] as const)("a watch %s is opened again, and later changes still apply", ([_name, breakWatches]) =>
    Effect.gen(function*() {
      const api = yield* fresh
      yield* Effect.promise(() => api.waitForWatches(2))
      const opened = api.watchesOpened
      breakWatches(api)
      yield* Effect.promise(() => api.waitFor(() => api.watchesOpened >= opened + 2 && api.openWatches >= 2, 3000, "new watches"))
      const changed = original("filers-list")
      const data = changed.data as Record<string, string>
      data.filers = data.filers.replace("http://fld9filersvm.filers.example.internal:9000", "http://fld9-after-reconnect.example.internal:9000")
      api.put(changed)
      yield* eventually(
        Effect.map(admitExample(), ({ response }) => patchText(response).includes("fld9-after-reconnect.example.internal")),
        "the change made after the reconnect"
      )
      yield* restore(api)
    }))

  describe("reads that fail", () => {
    it.effect("two 500s on the Secret read, then success: injected", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        const fault = api.respondWith(500, { path: secretPath, times: 2 })
        const { response } = yield* admitExample()
        assert.strictEqual(fault.hits, 2)
        assert.strictEqual(secretReads(api).length, 3)
        assert.strictEqual(patchText(response), patchText(expectedAnswer.response))
      }))

    it.effect("500 forever: denied within the budget, naming the Secret read that failed", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.respondWith(500, { path: secretPath })
        const { millis, response } = yield* admitExample()
        assert.isFalse(response.allowed)
        assert.strictEqual(response.status?.code, 503)
        assert.include(response.status?.message, `cannot get secrets "jane-doe/fld5filersvm-conn-secret"`)
        assert.include(response.status?.message, "500")
        assert.isAbove(secretReads(api).length, 2, "retried before giving up")
        assert.isBelow(millis, requestBudgetMillis + 500)
        assert.isUndefined(response.patch)
      }))

    it.effect("429 with Retry-After: 1: waits about a second, then injects", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.respondWith(429, { path: secretPath, times: 1, retryAfterSeconds: 1 })
        const { response } = yield* admitExample()
        assert.strictEqual(patchText(response), patchText(expectedAnswer.response))
        const [first, second] = secretReads(api)
        assert.isDefined(second)
        assert.isAtLeast(second!.at - first!.at, 950, "Retry-After honoured")
      }))

    it.effect("429 with a Retry-After beyond the budget: denied at once, naming the 429", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.respondWith(429, { path: secretPath, retryAfterSeconds: 30 })
        const { millis, response } = yield* admitExample()
        assert.isFalse(response.allowed)
        assert.include(response.status?.message, `cannot get secrets "jane-doe/fld5filersvm-conn-secret"`)
        assert.include(response.status?.message, "429")
        assert.isBelow(millis, requestBudgetMillis)
      }))

    it.effect("an API server slower than the call timeout on every read: denied within the budget, naming the timeout", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.delay(kubeCallTimeoutMillis * 10, { path: secretPath })
        const { millis, response } = yield* admitExample()
        assert.isFalse(response.allowed)
        assert.include(response.status?.message, `cannot get secrets "jane-doe/fld5filersvm-conn-secret"`)
        assert.include(response.status?.message, `no answer within ${kubeCallTimeoutMillis} ms`)
        assert.isBelow(millis, requestBudgetMillis + 500)
      }))

    it.effect("a Secret read slower than the call timeout is abandoned and retried: injected", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        const abandoned = api.requestsAbandoned
        api.delay(kubeCallTimeoutMillis * 3, { path: secretPath, times: 1 })
        const { response } = yield* admitExample()
        assert.strictEqual(patchText(response), patchText(expectedAnswer.response))
        assert.strictEqual(secretReads(api).length, 2)
        yield* Effect.promise(() => api.waitFor(() => api.requestsAbandoned > abandoned, 2000, "the slow request to be abandoned"))
      }))

    it.effect("403 on the Secret: that SVM skipped at once with a warning naming the Secret and RBAC, the rest mounted", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.respondWith(403, { path: secretPath })
        const review = exampleReview()
        const { millis, response } = yield* admitExample(review.request.uid)
        assert.isTrue(response.allowed)
        const pod = mutatedPod(review, response)
        assert.deepStrictEqual(
          notebookContainer(pod).volumeMounts.map((mount: { mountPath: string }) => mount.mountPath)
            .filter((mountPath: string) => mountPath.includes("/filers/")),
          ["/home/jovyan/filers/fld9filersvm/research/team-a"]
        )
        assert.include(response.warnings?.join("\n"), "RBAC forbids Secret fld5filersvm-conn-secret")
        // Not retried: another try cannot be allowed.
        assert.strictEqual(secretReads(api).length, 1)
        assert.isBelow(millis, requestBudgetMillis)
      }))

    it.effect("403 on existing-shares: denied, naming configmaps get", () =>
      Effect.gen(function*() {
        const api = yield* fresh
        api.respondWith(403, { path: "/api/v1/namespaces/jane-doe/configmaps/existing-shares" })
        const { response } = yield* admitExample()
        assert.isFalse(response.allowed)
        assert.include(response.status?.message, `resources=["configmaps"]`)
        assert.include(response.status?.message, `verbs=["get"]`)
      }))
  })

  it.effect("no Secret value reaches a log line", () =>
    Effect.sync(() => {
      const text = logs.lines.join("\n")
      for (const value of ["FAKE-ACCESS-fld5-do-not-use", "FAKE-SECRET-fld5-do-not-use", "RkFLRS1TRUNSRVQtZmxkOS1kby1ub3QtdXNl"]) {
        assert.notInclude(text, value)
      }
    }))
})

describe("readiness and a missing configuration, against a live API server", () => {
  /** A fresh API server with the user's namespace only, and the pipeline over it. */
  const withoutInjectorConfig = livePipeline.pipe(
    Layer.provideMerge(FakeApi.layer({ objects: exampleObjects.filter((o) => !isInjectorConfig(o)) as Iterable<JsonObject> })),
    Layer.provideMerge(settings),
    Layer.provide(quietLogs)
  )

  it.live("not ready, and pods denied naming the ConfigMap, until the configuration exists; then ready and injected", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      const config = yield* ClusterConfig
      yield* config.settled
      assert.isFalse(yield* config.ready)
      const denied = yield* admitExample()
      assert.isFalse(denied.response.allowed)
      assert.match(denied.response.status?.message ?? "", /ConfigMap das\/filers-list.*not found/)

      api.put(original("filers-list"))
      yield* eventually(Effect.map(admitExample(), ({ response }) => response.status?.message?.includes("filer-sidecar-injector-json") ?? false), "the template to be the one missing")
      assert.isFalse(yield* config.ready, "not ready with the template still missing")

      api.put(original("filer-sidecar-injector-json"))
      yield* eventually(config.ready, "ready once both exist")
      const { response } = yield* admitExample()
      assert.strictEqual(patchText(response), patchText(expectedAnswer.response))
    }).pipe(Effect.provide(withoutInjectorConfig)))

  it.live("may not list the injector's ConfigMaps (403): not ready, and the denial names the RBAC rule", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      api.respondWith(403, { path: "/api/v1/namespaces/das/configmaps" })
      const pipeline = livePipeline.pipe(Layer.provideMerge(settings), Layer.provide(quietLogs))
      yield* Effect.gen(function*() {
        const config = yield* ClusterConfig
        yield* config.settled
        assert.isFalse(yield* config.ready)
        const denied = yield* admitExample()
        assert.isFalse(denied.response.allowed)
        const message = denied.response.status?.message ?? ""
        assert.include(message, "ConfigMap das/filers-list")
        assert.include(message, `resources=["configmaps"] verbs=["list"] in namespace "das"`)
      }).pipe(Effect.provide(pipeline))
    }).pipe(Effect.provide(FakeApi.layer({ objects: exampleObjects as Iterable<JsonObject> }))))

  it.live("may list but not watch (403 on the watch): serves what it listed, and the log names the missing verb", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      api.respondWith(403, { path: "watch=true" })
      const captured = captureLogs()
      const pipeline = livePipeline.pipe(Layer.provideMerge(settings), Layer.provide(captured.layer))
      yield* Effect.gen(function*() {
        yield* configLoaded
        assert.strictEqual(patchText((yield* admitExample()).response), patchText(expectedAnswer.response))
        yield* eventually(
          // logfmt escapes the quotes: verbs=[\"watch\"]
          Effect.sync(() => captured.lines.some((line) => /verbs=\[\\?"watch\\?"\]/.test(line))),
          "the forbidden watch to be logged"
        )
      }).pipe(Effect.provide(pipeline))
    }).pipe(Effect.provide(FakeApi.layer({ objects: exampleObjects as Iterable<JsonObject> }))))

  it.live("not ready while the API server fails the first reads; ready once it recovers", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      const outage = api.respondWith(503, { path: "/api/v1/namespaces/das/configmaps" })
      const pipeline = livePipeline.pipe(Layer.provideMerge(settings), Layer.provide(quietLogs))
      yield* Effect.gen(function*() {
        const config = yield* ClusterConfig
        yield* config.settled
        assert.isFalse(yield* config.ready)
        const denied = yield* admitExample()
        assert.isFalse(denied.response.allowed)
        assert.match(denied.response.status?.message ?? "", /ConfigMap das\/filers-list: cannot be read: cannot list configmaps "das\/filers-list".*503/)
        outage.clear()
        yield* eventually(config.ready, "ready after the outage")
        assert.strictEqual(patchText((yield* admitExample()).response), patchText(expectedAnswer.response))
      }).pipe(Effect.provide(pipeline))
    }).pipe(Effect.provide(FakeApi.layer({ objects: exampleObjects as Iterable<JsonObject> }))))
})
