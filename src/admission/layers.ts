/**
 * The services the pipeline needs, composed over a KubeClient. The webhook,
 * the offline commands and the tests differ only in the KubeClient and
 * settings layers they hand in.
 *
 * The observers are applied here, from outside: every Kubernetes call is
 * counted and spanned (observability/Kube.ts), every configuration reload
 * counted (observability/Metrics.ts); the services themselves know nothing
 * of metrics.
 */
import { Effect, Layer } from "effect"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import { ClusterConfig, type WatchOptions } from "../cluster/ClusterConfig.ts"
import type { ClusterSettings } from "../cluster/ClusterSettings.ts"
import { GoofysRetryPolicy } from "../cluster/GoofysRetryPolicy.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import type { ManifestError } from "../cluster/manifestFiles.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import type { RawObject } from "../cluster/objects.ts"
import { SharesCache } from "../cluster/SharesCache.ts"
import type { SettingsError } from "../config/setting.ts"
import type { AdmissionSettings } from "./AdmissionSettings.ts"
import { KubeRetry } from "../cluster/retry.ts"
import { observedKubeClient } from "../observability/Kube.ts"
import { recordConfigReload, recordSharesCache } from "../observability/Metrics.ts"
import { EventRecorder } from "./events/EventRecorder.ts"
import type { AdmissionServices } from "./pipeline.ts"

/**
 * What these layers provide: every service of the pipeline but its settings,
 * which the caller brings (AdmissionSettings, and ClusterSettings below), and
 * the EventRecorder the webhook route uses after answering. The goofys policy
 * reads its own Config.
 */
export type AdmissionLayerServices = Exclude<AdmissionServices, AdmissionSettings> | EventRecorder

export interface AdmissionLayerOptions {
  readonly watch?: WatchOptions
  readonly retry?: Layer.Layer<KubeRetry>
  /**
   * Hold every namespace's existing-shares, kept current by a cluster-wide
   * watch (the server), instead of reading it on every admission (the
   * one-shot commands, and tests of the reads themselves). Its list and
   * watch follow the `watch` back-off.
   */
  readonly watchShares?: boolean
}

/**
 * Everything above the KubeClient: configuration cache, existing-shares
 * cache (or none), goofys policy, retry policy, the Event recorder. The KubeClient it provides (to the pipeline, and to whatever the
 * caller builds on top, e.g. the shared self-signed certificate) is `kube`
 * observed.
 */
export const admissionLayer = <E, R>(
  kube: Layer.Layer<KubeClient, E, R>,
  options: AdmissionLayerOptions = {}
): Layer.Layer<AdmissionLayerServices, E | SettingsError, R | ClusterSettings> => {
  const onReload = options.watch?.onReload
  const watch: WatchOptions = {
    ...options.watch,
    onReload: (object, result) =>
      Effect.andThen(recordConfigReload(object, result), onReload === undefined ? Effect.void : onReload(object, result))
  }
  const shares = options.watchShares === true
    ? SharesCache.layerWatching({
      ...(options.watch?.initialBackoff === undefined ? {} : { initialBackoff: options.watch.initialBackoff }),
      ...(options.watch?.maxBackoff === undefined ? {} : { maxBackoff: options.watch.maxBackoff }),
      onChange: recordSharesCache
    })
    : SharesCache.layerUncached
  return Layer.mergeAll(
    ClusterConfig.layerWatching(watch),
    shares,
    GoofysRetryPolicy.layer,
    options.retry ?? KubeRetry.layer,
    EventRecorder.layer
  ).pipe(
    Layer.provideMerge(observedKubeClient.pipe(Layer.provide(kube)))
  )
}

/** The pipeline over a cluster held in memory; the MemoryCluster stays reachable for tests. */
export const memoryAdmissionLayer = (
  objects: Iterable<RawObject>,
  options: AdmissionLayerOptions = {}
): Layer.Layer<AdmissionLayerServices | MemoryCluster, SettingsError, ClusterSettings> =>
  admissionLayer(KubeClient.layerMemory, options).pipe(Layer.provideMerge(MemoryCluster.layer(objects)))

/** The pipeline over the manifests in a folder, as `review --cluster DIR` and `serve --cluster DIR` use it. */
export const directoryAdmissionLayer = (
  directory: string
): Layer.Layer<AdmissionLayerServices | MemoryCluster, ManifestError | SettingsError, ClusterSettings | FileSystem | Path> =>
  admissionLayer(KubeClient.layerMemory).pipe(Layer.provideMerge(MemoryCluster.layerFromDirectory(directory)))
