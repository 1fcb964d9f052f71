/**
 * KubeClient: the injector's only door to the Kubernetes API.
 *
 * Two layers provide it: `KubeClientLive.layer` (in `KubeClientLive.ts`, over
 * `@kubernetes/client-node`) and `KubeClient.layerMemory`, over a cluster held
 * as data (`MemoryCluster`), which tests and the offline commands use. Every
 * method fails with a tagged `KubeError`; none retries by itself (the caller
 * owns the request budget, see `KubeRetry`).
 */
import { Context, Duration, Effect, Layer, Option, Stream } from "effect"
import { observeKubeClient } from "../observability/Kube.ts"
import { KubeConflict, type KubeError, notFound, type Resource } from "./errors.ts"
import { eventConflict, eventNotFound } from "./eventErrors.ts"
import { MemoryCluster } from "./MemoryCluster.ts"
import { type ConfigMap, metadataOf, type NewSecret, type RawObject, type Secret, toConfigMap, toSecret } from "./objects.ts"

export interface KubeClientShape {
  readonly getConfigMap: (namespace: string, name: string) => Effect.Effect<ConfigMap, KubeError>
  readonly getSecret: (namespace: string, name: string) => Effect.Effect<Secret, KubeError>
  /**
   * The ConfigMap now (`None` when absent), then again after every change.
   * The stream ends when the server ends the watch; callers subscribe again.
   */
  readonly watchConfigMap: (namespace: string, name: string) => Stream.Stream<Option.Option<ConfigMap>, KubeError>
  /** Fails with `KubeConflict` when a Secret of that name exists already. */
  readonly createSecret: (secret: NewSecret) => Effect.Effect<Secret, KubeError>
  /** A MutatingWebhookConfiguration as raw JSON. */
  readonly getWebhookConfiguration: (name: string) => Effect.Effect<RawObject, KubeError>
  /** Fails with `KubeConflict` when one of that name exists already. */
  readonly createWebhookConfiguration: (object: RawObject) => Effect.Effect<void, KubeError>
  /** Replaces the object, guarded by its `metadata.resourceVersion` (`KubeConflict` when it changed). */
  readonly replaceWebhookConfiguration: (object: RawObject) => Effect.Effect<void, KubeError>
  // Events (docs/behaviour.md, "Events"): the EventRecorder's only calls.
  /** Creates a core/v1 Event in its `metadata.namespace`; `KubeConflict` when one of that name exists. */
  readonly createEvent: (event: RawObject) => Effect.Effect<RawObject, KubeError>
  /** Replaces an Event, guarded by its `metadata.resourceVersion` (`KubeConflict` when it changed). */
  readonly replaceEvent: (event: RawObject) => Effect.Effect<RawObject, KubeError>
}

export class KubeClient extends Context.Service<KubeClient, KubeClientShape>()(
  "filer-sidecar-injector/cluster/KubeClient"
) {
  /**
   * A KubeClient over `MemoryCluster`. Provide a `MemoryCluster` layer (from
   * objects or from a folder) beneath it; tests keep the cluster at hand to
   * change objects, inject latency or faults while the injector runs.
   */
  static readonly layerMemory: Layer.Layer<KubeClient, never, MemoryCluster> = Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster

      // Every call goes through the fault plan first, as a real call would meet the network first.
      const call = <A>(
        resource: Resource,
        verb: string,
        namespace: string,
        name: string,
        body: () => Effect.Effect<A, KubeError>
      ): Effect.Effect<A, KubeError> =>
        Effect.suspend(() => {
          const { latency, fault } = cluster.plan({ resource, verb, namespace, objectName: name })
          const run = fault === undefined ? Effect.suspend(body) : Effect.fail(fault)
          return Duration.isZero(latency) ? run : Effect.delay(run, latency)
        })

      const found = (resource: Resource, namespace: string, name: string) =>
        Option.match(cluster.get(resource, namespace, name), {
          onNone: () => Effect.fail(notFound({ resource, namespace, objectName: name })),
          onSome: Effect.succeed
        })

      // Every call gets a span and metrics (observability/Kube.ts).
      return KubeClient.of(observeKubeClient({
        getConfigMap: (namespace, name) =>
          call("configmaps", "get", namespace, name, () =>
            found("configmaps", namespace, name).pipe(Effect.map(toConfigMap))),
        getSecret: (namespace, name) =>
          call("secrets", "get", namespace, name, () =>
            found("secrets", namespace, name).pipe(Effect.map(toSecret))),
        watchConfigMap: (namespace, name) =>
          Stream.unwrap(
            call("configmaps", "watch", namespace, name, () =>
              Effect.succeed(
                cluster.changes("configmaps", namespace, name).pipe(
                  Stream.map(Option.map(toConfigMap))
                )
              ))
          ),
        createSecret: (secret) =>
          call("secrets", "create", secret.namespace, secret.name, () => {
            const raw: RawObject = {
              apiVersion: "v1",
              kind: "Secret",
              metadata: { name: secret.name, namespace: secret.namespace, labels: { ...secret.labels } },
              data: Object.fromEntries(
                Object.entries(secret.stringData).map(([key, value]) => [key, Buffer.from(value).toString("base64")])
              )
            }
            return cluster.create("secrets", raw).pipe(
              Effect.mapError(() =>
                new KubeConflict({
                  resource: "secrets",
                  namespace: secret.namespace,
                  objectName: secret.name,
                  verb: "create"
                })
              ),
              Effect.map(toSecret)
            )
          }),
        getWebhookConfiguration: (name) =>
          call("mutatingwebhookconfigurations", "get", "", name, () => found("mutatingwebhookconfigurations", "", name)),
        createWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          return call("mutatingwebhookconfigurations", "create", "", name, () =>
            cluster.create("mutatingwebhookconfigurations", object).pipe(
              Effect.mapError(() =>
                new KubeConflict({ resource: "mutatingwebhookconfigurations", namespace: "", objectName: name, verb: "create" })
              ),
              Effect.asVoid
            ))
        },
        replaceWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          return call("mutatingwebhookconfigurations", "update", "", name, () =>
            cluster.replace("mutatingwebhookconfigurations", object).pipe(
              Effect.mapError((reason) =>
                reason === "missing"
                  ? notFound({ resource: "mutatingwebhookconfigurations", namespace: "", objectName: name })
                  : new KubeConflict({
                    resource: "mutatingwebhookconfigurations",
                    namespace: "",
                    objectName: name,
                    verb: "update"
                  })
              )
            ))
        },
        // Events: kept by the cluster, so tests read them (MemoryClusterStore.events).
        createEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          return call("events", "create", namespace, name, () =>
            cluster.create("events", event).pipe(Effect.mapError(() => eventConflict(namespace, name, "create"))))
        },
        replaceEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          return call("events", "update", namespace, name, () =>
            cluster.replace("events", event).pipe(
              Effect.mapError((reason) =>
                reason === "missing" ? eventNotFound(namespace, name) : eventConflict(namespace, name, "update")
              ),
              Effect.flatMap(() => found("events", namespace, name))
            ))
        }
      }))
    })
  )
}
