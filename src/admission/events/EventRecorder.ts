/**
 * EventRecorder: Events on the pod's controller, off the request path
 * (docs/behaviour.md, "Events"). `record` only offers the Event to a bounded
 * queue and returns at once; one background fiber sends them through the
 * KubeClient, counting a repeat on the first Event (aggregation.ts). A full
 * queue and an API that refuses or fails drop the Event, counted in
 * `filer_sidecar_injector_events_total` (README, "Metrics"): an Event is never
 * worth delaying or failing an admission, nor retrying.
 *
 * Over `KubeClient.layerMemory` the Events land in the in-memory cluster
 * (`MemoryClusterStore.events`), where tests read them.
 */
import { Cause, Clock, Config, Context, Effect, Layer, Queue } from "effect"
import { KubeClient } from "../../cluster/KubeClient.ts"
import { type EventResult, recordEvent } from "../../observability/Metrics.ts"
import { aggregationKey, EventCache, newEvent, repeated } from "./aggregation.ts"
import type { EventIntent } from "./eventFor.ts"

export interface EventRecorderShape {
  /** Queues an Event: never waits, never fails; a full queue drops it (counted). */
  readonly record: (intent: EventIntent) => Effect.Effect<void>
  /** Events queued or being sent now (tests wait for 0). */
  readonly pending: Effect.Effect<number>
}

export interface EventRecorderOptions {
  /** Events waiting to be sent before new ones are dropped. Default 1000. */
  readonly queueCapacity?: number
  /** Distinct Events remembered for counting repeats. Default 4096. */
  readonly cacheCapacity?: number
}

export class EventRecorder extends Context.Service<EventRecorder, EventRecorderShape>()(
  "filer-sidecar-injector/admission/EventRecorder"
) {
  /**
   * The recorder over the KubeClient in use (live or in memory); its fiber
   * lives as long as the layer. `reportingInstance` is this pod's name (HOSTNAME).
   */
  static readonly layerWith = (options: EventRecorderOptions = {}): Layer.Layer<EventRecorder, never, KubeClient> =>
    Layer.effect(
      EventRecorder,
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const instance = yield* Config.String("HOSTNAME").pipe(Config.withDefault(""), Effect.orElseSucceed(() => ""))
        const queue = yield* Queue.dropping<EventIntent>(options.queueCapacity ?? 1000)
        const cache = new EventCache(options.cacheCapacity ?? 4096)
        let inFlight = 0
        let sequence = 0

        const create = (key: string, intent: EventIntent, now: number): Effect.Effect<EventResult> =>
          kube.createEvent(newEvent(intent, now, sequence++, instance)).pipe(
            Effect.map((stored) => {
              cache.set(key, { stored, firstMillis: now })
              return "created" as const
            })
          ).pipe(Effect.catch(() => Effect.succeed("dropped_refused" as const)))

        const send = (intent: EventIntent): Effect.Effect<EventResult> =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const key = aggregationKey(intent)
            const first = cache.current(key, now)
            if (first === undefined) return yield* create(key, intent, now)
            return yield* kube.replaceEvent(repeated(first.stored, now)).pipe(
              Effect.map((stored): EventResult => {
                cache.set(key, { stored, firstMillis: first.firstMillis })
                return "updated"
              }),
              Effect.catch((error) => {
                cache.forget(key)
                // Expired (the API server keeps Events for an hour): start a new one.
                return error.reason === "not_found" ? create(key, intent, now) : Effect.succeed("dropped_refused" as const)
              })
            )
          })

        // A defect in one send must not stop the recorder: it counts as refused.
        const sendOne = (intent: EventIntent) =>
          send(intent).pipe(
            Effect.catchCause((cause) =>
              Effect.as(
                Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("cannot record an Event: a bug"),
                "dropped_refused" as const
              )
            ),
            Effect.flatMap(recordEvent),
            Effect.ensuring(Effect.sync(() => inFlight--))
          )

        yield* Queue.take(queue).pipe(
          Effect.tap(() => Effect.sync(() => inFlight++)),
          Effect.flatMap(sendOne),
          Effect.forever,
          Effect.forkScoped
        )

        return EventRecorder.of({
          record: (intent) =>
            Effect.suspend(() => Queue.offerUnsafe(queue, intent) ? Effect.void : recordEvent("dropped_overflow")),
          pending: Effect.sync(() => Queue.sizeUnsafe(queue) + inFlight)
        })
      })
    )

  /** The recorder with its defaults. */
  static readonly layer: Layer.Layer<EventRecorder, never, KubeClient> = EventRecorder.layerWith()
}
