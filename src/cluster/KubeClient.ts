/**
 * KubeClient: the injector's only door to the Kubernetes API.
 *
 * Two layers provide it: `KubeClientLive.layer` (in `KubeClientLive.ts`, over
 * HTTP to the API server) and `KubeClient.layerMemory`, over a cluster held
 * as data (`MemoryCluster`), which tests and the offline commands use. Every
 * method fails with a `KubeError`; none retries by itself (the caller owns
 * its budget, see `retry.ts`), and none is observed by itself (the
 * composition wraps it, see observability/Kube.ts).
 */
import { Context, Duration, Effect, Layer, Option, Stream } from "effect"
import { type KubeCall, KubeError, type Resource } from "./errors.ts"
import { type Call, fromStatus, fromThrown } from "./live/classify.ts"
import { type Failure, MemoryCluster, type OwnAccessQuestion } from "./MemoryCluster.ts"
import {
  type ConfigMap,
  type ConfigMapList,
  type ConfigMapWatchEvent,
  metadataOf,
  type RawObject,
  replacedSecret,
  type Secret,
  toConfigMap,
  toSecret
} from "./objects.ts"

export interface KubeClientShape {
  readonly getConfigMap: (namespace: string, name: string) => Effect.Effect<ConfigMap, KubeError>
  readonly getSecret: (namespace: string, name: string) => Effect.Effect<Secret, KubeError>
  /**
   * The ConfigMap now (`None` when absent), then again after every change.
   * The stream ends when the server ends the watch; callers subscribe again.
   */
  readonly watchConfigMap: (namespace: string, name: string) => Stream.Stream<Option.Option<ConfigMap>, KubeError>
  /**
   * Replaces the values of `secret` (as read: its labels, annotations and type
   * stay) by `values`, guarded by its resourceVersion: a `conflict` when it
   * changed since, `not_found` when the Secret is gone.
   */
  readonly replaceSecret: (secret: Secret, values: Readonly<Record<string, string>>) => Effect.Effect<Secret, KubeError>
  // `existing-shares` of every namespace, for the admissions' cache (SharesCache.ts); cluster-wide, by name only.
  /** Every ConfigMap named `name`, in any namespace, and the resource version to watch them from. */
  readonly listConfigMapsNamed: (name: string) => Effect.Effect<ConfigMapList, KubeError>
  /**
   * The changes to ConfigMaps named `name` after `resourceVersion`: `OPENED`
   * once the server has accepted the watch, then the changes and bookmarks.
   * Ends when the server ends the watch; a version too old to watch from
   * fails it with a `transient` error of status 410 (list again).
   */
  readonly watchConfigMapsNamed: (
    name: string,
    resourceVersion: string
  ) => Stream.Stream<ConfigMapWatchEvent, KubeError>
  /** A MutatingWebhookConfiguration as raw JSON. */
  readonly getWebhookConfiguration: (name: string) => Effect.Effect<RawObject, KubeError>
  /** Fails with a `conflict` when one of that name exists already. */
  readonly createWebhookConfiguration: (object: RawObject) => Effect.Effect<void, KubeError>
  /** Replaces the object, guarded by its `metadata.resourceVersion` (a `conflict` when it changed). */
  readonly replaceWebhookConfiguration: (object: RawObject) => Effect.Effect<void, KubeError>
  // Events (docs/behaviour.md, "Events"): the EventRecorder's only calls.
  /** Creates a core/v1 Event in its `metadata.namespace`; a `conflict` when one of that name exists. */
  readonly createEvent: (event: RawObject) => Effect.Effect<RawObject, KubeError>
  /** Replaces an Event, guarded by its `metadata.resourceVersion` (a `conflict` when it changed). */
  readonly replaceEvent: (event: RawObject) => Effect.Effect<RawObject, KubeError>

  // Reads for `explain` (src/commands/explain.ts): what the webhook would do for a notebook.
  /** A Pod as raw JSON. */
  readonly getPod: (namespace: string, name: string) => Effect.Effect<RawObject, KubeError>
  /** The Pods of `namespace` carrying every label of `labels`, as raw JSON. */
  readonly listPods: (
    namespace: string,
    labels: Readonly<Record<string, string>>
  ) => Effect.Effect<ReadonlyArray<RawObject>, KubeError>
  /** A Namespace as raw JSON. */
  readonly getNamespace: (name: string) => Effect.Effect<RawObject, KubeError>
  /** Whether `review.user` may do this, by a SubjectAccessReview (the caller must be allowed to create one). */
  readonly reviewAccess: (review: AccessReview) => Effect.Effect<AccessReviewAnswer, KubeError>
  /** Whether the injector itself may do this, by a SelfSubjectAccessReview (every authenticated user may create one). */
  readonly reviewOwnAccess: (question: OwnAccessQuestion) => Effect.Effect<AccessReviewAnswer, KubeError>
}

export type { OwnAccessQuestion }

/** A question for a SubjectAccessReview: may `user` `verb` the `resource` `name` in `namespace`? */
export interface AccessReview {
  readonly user: string
  readonly namespace: string
  readonly verb: string
  readonly resource: string
  readonly name: string
}

export interface AccessReviewAnswer {
  readonly allowed: boolean
  /** The authorizer's reason, when it gave one. */
  readonly reason: string | undefined
}

/**
 * A planned failure as the live client would meet it: a status and a reset go
 * through the live transport's own classification, a hang never answers.
 */
const failed = (call: KubeCall, failure: Failure): Effect.Effect<never, KubeError> => {
  const live = call as Call
  switch (failure.kind) {
    case "error":
      return Effect.fail(failure.error)
    case "status": {
      const retryAfter = failure.retryAfterSeconds === undefined ? {} : { "retry-after": String(failure.retryAfterSeconds) }
      return Effect.fail(fromStatus(live, failure.status, retryAfter, ""))
    }
    case "reset":
      return Effect.fail(fromThrown(live, Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })))
    case "hang":
      return Effect.never
  }
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
          const described = { resource, verb, namespace, objectName: name }
          const { failure, latency } = cluster.plan(described)
          const run = failure === undefined ? Effect.suspend(body) : failed(described, failure)
          return Duration.isZero(latency) ? run : Effect.delay(run, latency)
        })

      const found = (resource: Resource, namespace: string, name: string) =>
        Option.match(cluster.get(resource, namespace, name), {
          onNone: () => Effect.fail(KubeError.notFound({ resource, verb: "get", namespace, objectName: name })),
          onSome: Effect.succeed
        })

      return KubeClient.of({
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
        listConfigMapsNamed: (name) =>
          call("configmaps", "list", "", name, () =>
            Effect.sync(() => ({
              items: cluster.list("configmaps", undefined)
                .filter((object) => metadataOf(object).name === name)
                .map(toConfigMap),
              resourceVersion: String(cluster.resourceVersion)
            }))),
        watchConfigMapsNamed: (name, resourceVersion) => {
          const described = { resource: "configmaps", verb: "watch", namespace: "", objectName: name } as const
          const version = Number(resourceVersion)
          return Stream.unwrap(
            call("configmaps", "watch", "", name, () =>
              Number.isInteger(version)
                // As the API server answers a watch from a forgotten version: accepted, then an ERROR 410.
                ? Effect.succeed(Stream.succeed<ConfigMapWatchEvent>({ type: "OPENED" }).pipe(
                  Stream.concat(cluster.changesNamed("configmaps", name, version).pipe(
                    Stream.mapError(() =>
                      KubeError.transient(described, "the watch ended with an ERROR event (410 Expired)", { status: 410 })
                    ),
                    Stream.map((event): ConfigMapWatchEvent => ({ type: event.type, configMap: toConfigMap(event.object) }))
                  ))
                ))
                : Effect.fail(KubeError.requestFailed(described, "the API server answered 400 Bad Request", 400)))
          )
        },
        replaceSecret: (secret, values) =>
          call("secrets", "update", secret.namespace, secret.name, () =>
            cluster.replace("secrets", replacedSecret(secret, values)).pipe(
              Effect.mapError((reason) => {
                const ref = { resource: "secrets", namespace: secret.namespace, objectName: secret.name, verb: "update" } as const
                return reason === "missing" ? KubeError.notFound(ref) : KubeError.conflict(ref)
              }),
              Effect.map(toSecret)
            )),
        getWebhookConfiguration: (name) =>
          call("mutatingwebhookconfigurations", "get", "", name, () => found("mutatingwebhookconfigurations", "", name)),
        createWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          return call("mutatingwebhookconfigurations", "create", "", name, () =>
            cluster.create("mutatingwebhookconfigurations", object).pipe(
              Effect.mapError(() =>
                KubeError.conflict({ resource: "mutatingwebhookconfigurations", namespace: "", objectName: name, verb: "create" })
              ),
              Effect.asVoid
            ))
        },
        replaceWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          return call("mutatingwebhookconfigurations", "update", "", name, () =>
            cluster.replace("mutatingwebhookconfigurations", object).pipe(
              Effect.mapError((reason) => {
                const ref = { resource: "mutatingwebhookconfigurations", namespace: "", objectName: name, verb: "update" } as const
                return reason === "missing" ? KubeError.notFound(ref) : KubeError.conflict(ref)
              })
            ))
        },

        // Events: kept by the cluster, so tests read them (MemoryClusterStore.events).
        createEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          return call("events", "create", namespace, name, () =>
            cluster.create("events", event).pipe(
              Effect.mapError(() => KubeError.conflict({ resource: "events", namespace, objectName: name, verb: "create" }))
            ))
        },
        replaceEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          return call("events", "update", namespace, name, () =>
            cluster.replace("events", event).pipe(
              Effect.mapError((reason) =>
                reason === "missing"
                  ? KubeError.notFound({ resource: "events", namespace, objectName: name, verb: "update" })
                  : KubeError.conflict({ resource: "events", namespace, objectName: name, verb: "update" })
              ),
              Effect.flatMap(() => found("events", namespace, name))
            ))
        },

        // Reads for `explain`. A cluster held as data has no authorizer: it may not review access.
        getPod: (namespace, name) => call("pods", "get", namespace, name, () => found("pods", namespace, name)),
        listPods: (namespace, labels) =>
          call("pods", "list", namespace, "", () => Effect.succeed(cluster.list("pods", namespace, labels))),
        getNamespace: (name) => call("namespaces", "get", "", name, () => found("namespaces", "", name)),
        reviewAccess: () =>
          call("subjectaccessreviews", "create", "", "", () =>
            Effect.fail(
              KubeError.forbidden({ resource: "subjectaccessreviews", namespace: "", objectName: "", verb: "create" }, 403)
            )),
        // Its own access: as the cluster's access plan says (everything, unless a test said otherwise).
        reviewOwnAccess: (question) =>
          call("selfsubjectaccessreviews", "create", "", "", () =>
            Effect.succeed({ allowed: cluster.mayI(question), reason: undefined }))
      })
    })
  )
}
