/**
 * The EventRecorder on its own, over the in-memory cluster and the test
 * clock: a repeat within 10 minutes counts on the first Event, after them
 * makes a new one; `record` never waits, even while the API hangs, and what
 * does not fit in the queue is dropped and counted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import type { EventIntent } from "../../src/admission/events/eventFor.ts"
import { EventRecorder, type EventRecorderOptions } from "../../src/admission/events/EventRecorder.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { parsePrometheus, valueOf } from "../observability/support.ts"

const intent = (message: string): EventIntent => ({
  involvedObject: { apiVersion: "apps/v1", kind: "StatefulSet", name: "analysis", namespace: "jane-doe", uid: "u-1" },
  type: "Normal",
  reason: "FilersMounted",
  message
})

const recorderLayer = (options: EventRecorderOptions = {}) =>
  EventRecorder.layerWith(options).pipe(
    Layer.provideMerge(KubeClient.layerMemory),
    Layer.provideMerge(MemoryCluster.layer([])),
    Layer.provideMerge(Layer.succeed(Metric.MetricRegistry)(new Map()))
  )

const settle = Effect.gen(function*() {
  const recorder = yield* EventRecorder
  while ((yield* recorder.pending) > 0) yield* Effect.yieldNow
})

const summary = Effect.map(MemoryCluster, (cluster) => cluster.events("jane-doe").map((event) => [event.message, event.count]))

const eventsTotal = (result: string) =>
  Effect.map(PrometheusMetrics.format(), (text) =>
    valueOf(parsePrometheus(text), "filer_sidecar_injector_events_total", { result }))

describe("EventRecorder", () => {
  it.effect("counts a repeat within 10 minutes on the first Event, and makes a new one after them", () =>
    Effect.gen(function*() {
      const recorder = yield* EventRecorder
      yield* recorder.record(intent("mounted 1 filer share"))
      yield* settle
      yield* TestClock.adjust("9 minutes")
      yield* recorder.record(intent("mounted 1 filer share"))
      yield* recorder.record(intent("mounted 2 filer shares"))
      yield* settle
      assert.deepStrictEqual(yield* summary, [["mounted 1 filer share", 2], ["mounted 2 filer shares", 1]])
      yield* TestClock.adjust("1 minute")
      yield* recorder.record(intent("mounted 1 filer share"))
      yield* settle
      assert.deepStrictEqual(yield* summary, [
        ["mounted 1 filer share", 2],
        ["mounted 2 filer shares", 1],
        ["mounted 1 filer share", 1]
      ])
      const [first, , third] = (yield* MemoryCluster).events("jane-doe")
      assert.notStrictEqual(first!.lastTimestamp, first!.firstTimestamp)
      assert.notStrictEqual((first!.metadata as { name: string }).name, (third!.metadata as { name: string }).name)
      assert.strictEqual(yield* eventsTotal("created"), 3)
      assert.strictEqual(yield* eventsTotal("updated"), 1)
    }).pipe(Effect.provide(recorderLayer())))

  it.effect("never waits while the API hangs; past the queue's capacity Events are dropped and counted", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      // Every call waits an hour of the test clock, which does not move by itself.
      cluster.setLatency("1 hour")
      const recorder = yield* EventRecorder
      // One taken by the sender (hanging), two queued, two dropped.
      yield* recorder.record(intent("a"))
      yield* Effect.yieldNow
      for (const message of ["b", "c", "d", "e"]) yield* recorder.record(intent(message))
      assert.strictEqual(yield* recorder.pending, 3)
      assert.strictEqual(yield* eventsTotal("dropped_overflow"), 2)
      cluster.setLatency(0)
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.deepStrictEqual((yield* summary).map(([message]) => message), ["a", "b", "c"])
    }).pipe(Effect.provide(recorderLayer({ queueCapacity: 2 }))))

  it.effect("an Event the API refuses is dropped and counted, and the next one is sent", () =>
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const recorder = yield* EventRecorder
      cluster.addFault({
        matches: (call) => call.resource === "events",
        error: (call) => KubeError.forbidden(call, 403)
      }, 1)
      yield* recorder.record(intent("refused"))
      yield* recorder.record(intent("sent"))
      yield* settle
      assert.deepStrictEqual(yield* summary, [["sent", 1]])
      assert.strictEqual(yield* eventsTotal("dropped_refused"), 1)
    }).pipe(Effect.provide(recorderLayer())))
})
