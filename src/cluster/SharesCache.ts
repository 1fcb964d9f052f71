/**
 * SharesCache: the `existing-shares` ConfigMap of every namespace, held in
 * memory and kept current by one cluster-wide list and watch (by name, the
 * only form the injector's RBAC allows), so that an admission need not read
 * it from the API (docs/behaviour.md, "What is read, and when").
 *
 * The cache only ever answers what it knows to be current; everything else
 * the caller reads live, as it did before there was a cache:
 *
 * - while it is not in sync: before the first list, and from the moment a
 *   watch ends until the next one is open (the change a missed event made
 *   may be any age by then);
 * - for a namespace it does not hold: the watch has seen no ConfigMap there,
 *   or it was too large to keep (`SharesCacheLimits`). Absence is never
 *   taken as "no shares": the live read says so, or not.
 *
 * A watch the server ends (every few minutes) is opened again from the last
 * resource version seen (bookmarks keep it recent); a watch that fails, a
 * version the server no longer has (410 Gone) included, means a new list.
 * Lists and watches that fail are tried again with the back-off of
 * `retry.ts`, forever; a cycle that followed the cluster for a while
 * (`steadyAfter`) starts the back-off over, so a watch that fails after
 * hours lists again at once, and one that keeps failing as soon as it
 * opens does not make the API server list every namespace in a loop.
 */
import { Clock, Context, Duration, Effect, Layer, Schedule, Stream } from "effect"
import { existingSharesName } from "../domain/rbac.ts"
import type { KubeError } from "./errors.ts"
import { KubeClient } from "./KubeClient.ts"
import type { ConfigMap, ConfigMapWatchEvent } from "./objects.ts"
import { retrySchedule } from "./retry.ts"
import { type SharesCacheLimits, SharesEntries } from "./sharesEntries.ts"

export type { SharesCacheLimits }

export interface SharesCacheShape {
  /**
   * `namespace`'s existing-shares as the watch last saw it, when the cache
   * is in sync and holds it; otherwise `undefined`, and the caller reads it
   * from the API. A plain function, not an Effect: an admission's hit costs
   * one Map lookup.
   */
  readonly cached: (namespace: string) => ConfigMap | undefined
  /** Listed, and a watch open now: what the cache holds is current. */
  readonly inSync: Effect.Effect<boolean>
}

/** What the cache is like now, for the metrics. */
export interface SharesCacheState {
  readonly inSync: boolean
  /** The namespaces whose existing-shares it holds. */
  readonly namespaces: number
}

export interface SharesCacheOptions {
  /** Wait after a failed list or watch, doubling (jittered) up to `maxBackoff`. */
  readonly initialBackoff?: Duration.Input
  readonly maxBackoff?: Duration.Input
  /** Told of every change of the state. */
  readonly onChange?: (state: SharesCacheState) => Effect.Effect<void>
  readonly limits?: Partial<SharesCacheLimits>
}

/** One list and the watches that follow it: where the next watch starts, and since when they have followed the cluster. */
interface Cycle {
  resourceVersion: string
  syncedAt: number | undefined
}

/** How long a list and its watches must have followed the cluster for their failure to start the back-off over. */
const steadyAfter = Duration.seconds(10)

/**
 * Follows the cluster into `entries` for as long as it runs: list, watch,
 * watch again from where the last one stopped; list again after a failure.
 */
const follow = (kube: KubeClient["Service"], entries: SharesEntries, options: SharesCacheOptions) => {
  const observe = options.onChange ?? (() => Effect.void)
  const changed = Effect.suspend(() => observe({ inSync: entries.inSync, namespaces: entries.size }))
  const outOfSync = Effect.suspend(() => {
    if (!entries.inSync) return Effect.void
    entries.inSync = false
    return changed
  })

  const apply = (event: ConfigMapWatchEvent, cycle: Cycle) =>
    Effect.suspend(() => {
      switch (event.type) {
        case "OPENED": {
          entries.inSync = true
          if (cycle.syncedAt !== undefined) return changed
          return Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) => {
              cycle.syncedAt = now
              return Effect.logInfo(`existing-shares of ${entries.size} namespaces cached; following their changes`)
            }),
            Effect.andThen(changed)
          )
        }
        case "BOOKMARK":
          cycle.resourceVersion = event.resourceVersion
          return Effect.void
        case "ADDED":
        case "MODIFIED":
          cycle.resourceVersion = event.configMap.resourceVersion
          entries.set(event.configMap)
          return changed
        case "DELETED":
          cycle.resourceVersion = event.configMap.resourceVersion
          entries.delete(event.configMap.namespace)
          return changed
      }
    })

  /** One list, then one watch after another; fails when a list or a watch does. */
  const cycle = Effect.suspend(() => {
    const state: Cycle = { resourceVersion: "", syncedAt: undefined }
    return Effect.gen(function*() {
      const list = yield* kube.listConfigMapsNamed(existingSharesName)
      entries.replaceAll(list.items)
      state.resourceVersion = list.resourceVersion
      for (;;) {
        // A watch the server ended: the next one starts from the last version seen.
        yield* kube.watchConfigMapsNamed(existingSharesName, state.resourceVersion).pipe(
          Stream.runForEach((event) => apply(event, state)),
          Effect.ensuring(outOfSync)
        )
      }
    }).pipe(
      // After a steady while, a failure (a dropped connection, 410 Gone) is a reason to list again now, not to back off.
      Effect.catch((error: KubeError) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          state.syncedAt !== undefined && now - state.syncedAt >= Duration.toMillis(steadyAfter)
            ? Effect.logWarning(
              `watch of existing-shares failed: ${error.message}; listing them again (admissions read them live meanwhile)`
            )
            : Effect.fail(error))
      )
    )
  })

  const backoff = retrySchedule<KubeError>({
    baseDelay: options.initialBackoff ?? "200 millis",
    maxDelay: options.maxBackoff ?? "30 seconds",
    while: () => true
  }).pipe(
    Schedule.tap(({ duration, input }) =>
      Effect.logWarning(
        `cannot follow existing-shares: ${input.message}; admissions read them live; retrying in ${Duration.format(duration)}`
      )
    )
  )

  return Effect.andThen(changed, cycle.pipe(Effect.retry(backoff), Effect.forever))
}

export class SharesCache extends Context.Service<SharesCache, SharesCacheShape>()(
  "filer-sidecar-injector/cluster/SharesCache"
) {
  /** Follows the cluster through whichever KubeClient is provided (live, or a MemoryCluster). */
  static readonly layerWatching = (options: SharesCacheOptions = {}): Layer.Layer<SharesCache, never, KubeClient> =>
    Layer.effect(
      SharesCache,
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const entries = new SharesEntries(options.limits)
        yield* Effect.forkScoped(follow(kube, entries, options))
        return SharesCache.of({
          cached: (namespace) => entries.inSync ? entries.get(namespace) : undefined,
          inSync: Effect.sync(() => entries.inSync)
        })
      })
    )

  /**
   * No cache: every admission reads existing-shares from the API. For the
   * one-shot commands (`review`, `inject`, `explain`), which would list every
   * namespace to answer about one.
   */
  static readonly layerUncached: Layer.Layer<SharesCache> = Layer.succeed(
    SharesCache,
    SharesCache.of({ cached: () => undefined, inSync: Effect.succeed(false) })
  )
}
