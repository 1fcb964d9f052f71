/**
 * ClusterConfig: the injector's own configuration, the filers list and the
 * sidecar template, from the two ConfigMaps in its namespace (or the template
 * from a file, `templateFile.ts`, as the Go injector read it).
 *
 * `layerWatching` watches both through KubeClient (live or in memory alike):
 * a change takes effect without a restart; an invalid update is logged and
 * the last good version kept; a watch that ends or fails is opened again.
 * Ready only after both have loaded once. Every reload attempt goes to the
 * `onReload` observer the composition hands in (the metrics); every good
 * filers list to the subscribers of `filersLoaded` (the server's review of
 * which Secrets it may read, src/server/secretAccess.ts).
 */
import { Context, Deferred, Duration, Effect, Layer, Option, PubSub, Ref, Result, Schedule, Stream } from "effect"
import { ConfigurationError } from "../domain/configurationError.ts"
import { type Filers, filersListName, parseFilers } from "../domain/filers.ts"
import { parseSidecarTemplate, type SidecarTemplate, sidecarTemplateName } from "../domain/template.ts"
import { ClusterSettings } from "./ClusterSettings.ts"
import { KubeClient } from "./KubeClient.ts"
import type { ConfigMap } from "./objects.ts"
import { type TemplateSource, templateFileSource } from "./templateFile.ts"
import { retrySchedule } from "./retry.ts"

export interface ClusterConfigSnapshot {
  readonly filers: Filers
  readonly template: SidecarTemplate
}

export type ReloadResult = "loaded" | "invalid" | "missing" | "watch-error"

export interface ClusterConfigShape {
  /** The last good configuration; fails naming the object and field while there has never been one. */
  readonly current: Effect.Effect<ClusterConfigSnapshot, ConfigurationError>
  /** Both ConfigMaps have loaded at least once. */
  readonly ready: Effect.Effect<boolean>
  /** Waits until the first load attempt of both has ended, good or bad (for one-shot commands). */
  readonly settled: Effect.Effect<void>
  /**
   * Each good filers list as it loads: the one in use first (when there is
   * one), then every reload, a renewed watch's included, changed or not.
   */
  readonly filersLoaded: Stream.Stream<Filers>
}

/** Called on every reload attempt, for metrics. */
export type ReloadObserver = (object: string, result: ReloadResult) => Effect.Effect<void>

interface Slot<A> {
  readonly good: Option.Option<A>
  /** Why the latest version was refused; shown while there is no good one. */
  readonly problem: Option.Option<ConfigurationError>
}

export interface WatchOptions {
  /** Wait after a watch fails, doubling (jittered) up to `maxBackoff`. */
  readonly initialBackoff?: Duration.Input
  readonly maxBackoff?: Duration.Input
  /** Told of every reload attempt. */
  readonly onReload?: ReloadObserver
  /** The template from elsewhere than its ConfigMap; by default the file of the sidecarConfigFile setting, if any. */
  readonly templateSource?: TemplateSource
}

const watchSlot = <A>(
  kube: KubeClient["Service"],
  namespace: string,
  name: string,
  parse: (namespace: string, data: Readonly<Record<string, string>>) => Result.Result<A, ConfigurationError>,
  slot: Ref.Ref<Slot<A>>,
  settled: Deferred.Deferred<void>,
  options: WatchOptions,
  source?: Pick<TemplateSource, "object" | "versions">,
  onLoaded: (value: A) => Effect.Effect<void> = () => Effect.void
) => {
  const object = source?.object ?? `ConfigMap ${namespace}/${name}`
  const observe: ReloadObserver = options.onReload ?? (() => Effect.void)

  const apply = (version: Option.Option<ConfigMap>) =>
    Effect.gen(function*() {
      if (Option.isNone(version)) {
        const problem = new ConfigurationError({ object, problem: "not found" })
        yield* Ref.update(slot, (s) => ({ ...s, problem: Option.some(problem) }))
        const { good } = yield* Ref.get(slot)
        yield* Option.isSome(good)
          ? Effect.logWarning(`${object} was deleted; keeping the last good version`)
          : Effect.logError(`${object} not found; nothing can be injected until it exists`)
        yield* observe(object, "missing")
      } else {
        const parsed = parse(namespace, version.value.data)
        if (Result.isSuccess(parsed)) {
          yield* Ref.set(slot, { good: Option.some(parsed.success), problem: Option.none() })
          yield* Effect.logInfo(`${object} loaded (resourceVersion ${version.value.resourceVersion})`)
          yield* observe(object, "loaded")
          yield* onLoaded(parsed.success)
        } else {
          yield* Ref.update(slot, (s) => ({ ...s, problem: Option.some(parsed.failure) }))
          yield* Effect.logError(`${parsed.failure.message}; keeping the last good version`)
          yield* observe(object, "invalid")
        }
      }
      yield* Deferred.succeed(settled, undefined)
    })

  /** A watch failed: said, counted, and shown by `current` while there is no good version. */
  const failed = (error: { readonly message: string }) =>
    Effect.gen(function*() {
      yield* observe(object, "watch-error")
      const { good } = yield* Ref.get(slot)
      if (Option.isNone(good)) {
        yield* Ref.update(slot, (s) => ({
          ...s,
          problem: Option.some(new ConfigurationError({ object, problem: `cannot be read: ${error.message}` }))
        }))
        yield* Deferred.succeed(settled, undefined)
      }
    })

  // Whatever the error (RBAC may be fixed later), the watch is opened again, forever.
  const backoff = retrySchedule<{ readonly message: string; readonly retryAfterMillis?: number }>({
    baseDelay: options.initialBackoff ?? "200 millis",
    maxDelay: options.maxBackoff ?? "30 seconds",
    while: () => true
  }).pipe(
    Schedule.tap(({ duration, input }) =>
      Effect.logWarning(`watch of ${object} failed: ${input.message}; retrying in ${Duration.format(duration)}`)
    )
  )

  // One watch after another for as long as the layer lives. The server ends a
  // watch every few minutes: a new one opens at once, the back-off starting over.
  const versions: Stream.Stream<Option.Option<ConfigMap>, { readonly message: string }> = source?.versions ??
    kube.watchConfigMap(namespace, name)
  return versions.pipe(
    Stream.runForEach(apply),
    Effect.tapError(failed),
    Effect.retry(backoff),
    Effect.forever
  )
}

export class ClusterConfig extends Context.Service<ClusterConfig, ClusterConfigShape>()(
  "filer-sidecar-injector/cluster/ClusterConfig"
) {
  /** Watch-backed, over whichever KubeClient is provided. */
  static readonly layerWatching = (
    options: WatchOptions = {}
  ): Layer.Layer<ClusterConfig, never, KubeClient | ClusterSettings> =>
    Layer.effect(
      ClusterConfig,
      Effect.gen(function*() {
        const kube = yield* KubeClient
        const { injectorNamespace, sidecarConfigFile } = yield* ClusterSettings
        // As the Go injector read it (README: "Migrating from the Go injector").
        const templateSource = options.templateSource ??
          (sidecarConfigFile === undefined ? undefined : templateFileSource(sidecarConfigFile))
        const filers = yield* Ref.make<Slot<Filers>>({ good: Option.none(), problem: Option.none() })
        const template = yield* Ref.make<Slot<SidecarTemplate>>({ good: Option.none(), problem: Option.none() })
        const filersSettled = yield* Deferred.make<void>()
        const templateSettled = yield* Deferred.make<void>()
        // The latest list is kept for whoever subscribes later.
        const filersLoaded = yield* PubSub.unbounded<Filers>({ replay: 1 })
        yield* Effect.forkScoped(
          watchSlot(
            kube,
            injectorNamespace,
            filersListName,
            parseFilers,
            filers,
            filersSettled,
            options,
            undefined,
            (list) => PubSub.publish(filersLoaded, list)
          )
        )
        yield* Effect.forkScoped(
          watchSlot(
            kube,
            injectorNamespace,
            sidecarTemplateName,
            templateSource?.parse ?? parseSidecarTemplate,
            template,
            templateSettled,
            options,
            templateSource
          )
        )

        const currentOf = <A>(slot: Ref.Ref<Slot<A>>, object: string) =>
          Effect.flatMap(Ref.get(slot), ({ good, problem }) =>
            Option.match(good, {
              onSome: Effect.succeed,
              onNone: () =>
                Effect.fail(
                  Option.getOrElse(problem, () => new ConfigurationError({ object, problem: "not loaded yet" }))
                )
            }))

        return ClusterConfig.of({
          current: Effect.all({
            filers: currentOf(filers, `ConfigMap ${injectorNamespace}/${filersListName}`),
            template: currentOf(template, templateSource?.object ?? `ConfigMap ${injectorNamespace}/${sidecarTemplateName}`)
          }),
          ready: Effect.map(
            Effect.all([Ref.get(filers), Ref.get(template)]),
            ([f, t]) => Option.isSome(f.good) && Option.isSome(t.good)
          ),
          settled: Effect.asVoid(Effect.all([Deferred.await(filersSettled), Deferred.await(templateSettled)])),
          filersLoaded: Stream.fromPubSub(filersLoaded)
        })
      })
    )
}
