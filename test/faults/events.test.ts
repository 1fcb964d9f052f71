/**
 * Events over the live KubeClient and the fake API server: created by POST,
 * a repeat counted by PUT, and an events endpoint that fails (500, 403) or
 * never answers costs the admission nothing: it is answered in time, and the
 * Event is dropped and counted (docs/behaviour.md, "Events").
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { EventRecorder } from "../../src/admission/events/EventRecorder.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { Readiness } from "../../src/server/Readiness.ts"
import { routes } from "../../src/server/routes.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"
import { get, observation, parsePrometheus, post, valueOf } from "../observability/support.ts"
import { clusterObjects, notebookPod, podReview, userNamespace } from "../support/pipelineHarness.ts"
import { assertNoSecret, budgetMillis, faultLayer, freshApi, marginMillis } from "./support.ts"

const objects = clusterObjects([{ svm: "fld5filersvm", shares: ["home"] }])

/** The routes as `serve` mounts them, over the live client and a fake API server. */
const servedLive = () =>
  HttpRouter.serve(routes(Effect.succeed(true)), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(Readiness.layer),
    Layer.provideMerge(ServerSettings.layerValues()),
    // A roomier call timeout than the other fault tests: the first list of the configuration runs
    // while the client library loads, on a machine shared with other tests.
    Layer.provideMerge(faultLayer({ objects, cluster: { kubeCallTimeout: Duration.seconds(1) } }))
  )

const owner = { apiVersion: "apps/v1", kind: "StatefulSet", name: "analysis", uid: "5b1a2c3d-0000-4000-8000-000000000042", controller: true }
let uidCounter = 0
const review = () => {
  const pod = notebookPod()
  return podReview(
    { ...pod, metadata: { ...pod.metadata, name: "analysis-0", ownerReferences: [owner] } },
    { uid: `0f0f0f0f-0000-4000-8000-${String(++uidCounter).padStart(12, "0")}` }
  )
}

/** Admits once over HTTP, timed: the answer must come within the budget whatever the events endpoint does. */
const admitTimed = Effect.gen(function*() {
  const started = Date.now()
  const answer = yield* post("/inject", review())
  const millis = Date.now() - started
  assert.strictEqual(answer.status, 200)
  assert.include(answer.body, "\"patchType\":\"JSONPatch\"", answer.body)
  assert.isAtMost(millis, budgetMillis + marginMillis, `answered after ${millis} ms`)
})

/** The fake API server, once the configuration has loaded (retried after a slow first list). */
const readyApi = Effect.gen(function*() {
  const api = yield* freshApi
  const config = yield* ClusterConfig
  while (!(yield* config.ready)) yield* Effect.sleep("20 millis")
  return api
})

const settle = Effect.gen(function*() {
  const recorder = yield* EventRecorder
  while ((yield* recorder.pending) > 0) yield* Effect.sleep("10 millis")
})

const eventsTotal = (result: string) =>
  Effect.map(get("/metrics"), (answer) =>
    valueOf(parsePrometheus(answer.body), "filer_sidecar_injector_events_total", { result }))

const live = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const observed = observation()
  return self.pipe(Effect.provide(servedLive()), Effect.provide(observed.layer))
}

describe("Events through the API server", () => {
  it.live("creates the Event by POST, counts the repeat by PUT, with no credential", () =>
    live(Effect.gen(function*() {
      const api = yield* readyApi
      yield* admitTimed
      yield* admitTimed
      yield* settle
      const events = api.events(userNamespace)
      assert.strictEqual(events.length, 1)
      assert.strictEqual(events[0]!.count, 2)
      assert.strictEqual(events[0]!.reason, "FilersMounted")
      assert.deepStrictEqual(
        api.requests.filter((request) => request.path.includes("/events")).map((request) => request.method),
        ["POST", "PUT"]
      )
      assertNoSecret(JSON.stringify(events), "the Events")
      assert.strictEqual(yield* eventsTotal("created"), 1)
      assert.strictEqual(yield* eventsTotal("updated"), 1)
    })))

  for (const status of [500, 403]) {
    it.live(`answers in time when the events endpoint answers ${status}, and counts the Event dropped`, () =>
      live(Effect.gen(function*() {
        const api = yield* readyApi
        api.respondWith(status, { path: "/events" })
        yield* admitTimed
        yield* settle
        assert.deepStrictEqual(api.events(userNamespace), [])
        assert.strictEqual(yield* eventsTotal("dropped_refused"), 1)
        assert.strictEqual(yield* eventsTotal("created"), 0)
      })))
  }

  it.live("answers in time while the events endpoint never answers; the Event is dropped after the call timeout", () =>
    live(Effect.gen(function*() {
      const api = yield* readyApi
      api.delay(600_000, { path: "/events" })
      yield* admitTimed
      yield* admitTimed
      yield* settle
      assert.deepStrictEqual(api.events(userNamespace), [])
      assert.strictEqual(yield* eventsTotal("dropped_refused"), 2)
    })))
})
