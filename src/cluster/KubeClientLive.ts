/**
 * KubeClientLive: the KubeClient over a real API server. This is the one
 * module `serve` imports lazily (`--cluster` need not load an HTTP client);
 * it alone reaches `live/`.
 *
 * `live/kubeconfig.ts` finds the configuration (a pod's service account or
 * kubeconfig files) and `live/transport.ts` sends the requests, on a bounded
 * pool of kept-alive connections. `@kubernetes/client-node` is not used: its
 * generated API, which even its kubeconfig module imports, costs ~40 MiB of
 * memory (test/bench/RESULTS.md), and its `CoreV1Api` turns answers into
 * class instances and back, which drops fields its models do not know (a
 * replaced webhook configuration would lose them); its `Watch` skips lines it
 * cannot parse. Here every answer stays the API's JSON, and a watch line that
 * is not an event ends the watch with an error.
 */
import { Effect, Layer, Option, Predicate, Result, Stream } from "effect"
import { ClusterSettings } from "./ClusterSettings.ts"
import { KubeError } from "./errors.ts"
import { KubeClient } from "./KubeClient.ts"
import { type KubeConfig, type KubeConfigError, loadKubeConfig } from "./live/kubeconfig.ts"

// For the commands that load the live client lazily and need the kubeconfig itself (explain: its namespace).
export { type KubeConfig, loadKubeConfig }
import type { Call } from "./live/classify.ts"
import { configMapsNamed, listParts } from "./live/configMapsNamed.ts"
import { makeTransport } from "./live/transport.ts"
import { parseWatchLine } from "./live/watchEvents.ts"
import { type ConfigMap, metadataOf, type RawObject, replacedSecret, toConfigMap, toSecret } from "./objects.ts"

export interface LiveOptions {
  /**
   * How long the API server keeps a watch open (its `timeoutSeconds`); the
   * stream then ends and the consumer watches again. A client-side guard ends
   * it too if the server does not, so a silently dead connection cannot hold
   * a watch forever. Default 300.
   */
  readonly watchTimeoutSeconds?: number
  /** How often the files the configuration names (token, CA, client certificate) are read again. Default a minute. */
  readonly refreshMillis?: number
}

const coreObjectsPath = (namespace: string, resource: "configmaps" | "secrets" | "events", name?: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}` +
  (name === undefined ? "" : `/${encodeURIComponent(name)}`)

const podsPath = (namespace: string, name?: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` + (name === undefined ? "" : `/${encodeURIComponent(name)}`)

const webhookPath = (name?: string) =>
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations" +
  (name === undefined ? "" : `/${encodeURIComponent(name)}`)

/** One watch event line, as what the stream emits: nothing (BOOKMARK), the new state, or an error. */
const configMapState = (call: Call, line: string): Stream.Stream<Option.Option<ConfigMap>, KubeError> =>
  Result.match(parseWatchLine(call, line), {
    onFailure: Stream.fail,
    onSuccess: ({ object, type }) =>
      type === "BOOKMARK"
        ? Stream.empty
        : Stream.succeed(type === "DELETED" ? Option.none() : Option.some(toConfigMap(object)))
  })

/** The `status` of an answered (Self)SubjectAccessReview. */
const accessAnswerOf = (answer: RawObject) => {
  const status = Predicate.isObject(answer.status) ? answer.status as RawObject : {}
  return {
    allowed: status.allowed === true,
    reason: typeof status.reason === "string" && status.reason !== "" ? status.reason : undefined
  }
}

/**
 * The KubeClient over the cluster `kc` points at. Every call gets
 * `ClusterSettings.kubeCallTimeout` (a watch: to open; then it streams as long as
 * the server keeps it) and aborts its request when interrupted.
 */
export const layerFromKubeConfig = (
  kc: KubeConfig,
  options: LiveOptions = {}
): Layer.Layer<KubeClient, never, ClusterSettings> =>
  Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const { kubeCallTimeout } = yield* ClusterSettings
      const transport = yield* makeTransport(
        kc,
        kubeCallTimeout,
        options.refreshMillis === undefined ? {} : { refreshMillis: options.refreshMillis }
      )
      const { requestObject, streamLines } = transport
      const watchTimeoutSeconds = Math.max(1, Math.round(options.watchTimeoutSeconds ?? 300))

      return KubeClient.of({
        // existing-shares of every namespace, for the admissions' cache (SharesCache.ts).
        ...configMapsNamed(transport, watchTimeoutSeconds),

        getConfigMap: (namespace, name) => {
          const call: Call = { resource: "configmaps", verb: "get", namespace, objectName: name }
          return requestObject(call, "GET", coreObjectsPath(namespace, "configmaps", name), { kind: "ConfigMap" }).pipe(
            Effect.map(toConfigMap)
          )
        },

        getSecret: (namespace, name) => {
          const call: Call = { resource: "secrets", verb: "get", namespace, objectName: name }
          return requestObject(call, "GET", coreObjectsPath(namespace, "secrets", name), { kind: "Secret" }).pipe(
            Effect.map(toSecret)
          )
        },

        watchConfigMap: (namespace, name) => {
          const listCall: Call = { resource: "configmaps", verb: "list", namespace, objectName: name }
          const watchCall: Call = { ...listCall, verb: "watch" }
          const fieldSelector = `metadata.name=${name}`
          const urlPath = coreObjectsPath(namespace, "configmaps")
          return Stream.unwrap(
            Effect.gen(function*() {
              const { items, resourceVersion } = yield* requestObject(listCall, "GET", urlPath, {
                query: { fieldSelector },
                kind: "ConfigMapList"
              }).pipe(Effect.flatMap((list) => listParts(listCall, list)))
              const item = items.find((item) => metadataOf(item).name === name)
              const current = item === undefined ? Option.none() : Option.some(toConfigMap(item))
              const events = streamLines(watchCall, urlPath, { watch: "true", fieldSelector, resourceVersion }, watchTimeoutSeconds)
                .pipe(Stream.flatMap((line) => configMapState(watchCall, line)))
              return Stream.succeed(current).pipe(Stream.concat(events))
            })
          )
        },

        replaceSecret: (secret, values) => {
          const { namespace, name } = secret
          const call: Call = { resource: "secrets", verb: "update", namespace, objectName: name }
          const body = replacedSecret(secret, values)
          return requestObject(call, "PUT", coreObjectsPath(namespace, "secrets", name), { body, kind: "Secret" })
            .pipe(Effect.map(toSecret))
        },

        getWebhookConfiguration: (name) => {
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "get", namespace: "", objectName: name }
          return requestObject(call, "GET", webhookPath(name), { kind: "MutatingWebhookConfiguration" })
        },

        createWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "create", namespace: "", objectName: name }
          return requestObject(call, "POST", webhookPath(), { body: object, kind: "MutatingWebhookConfiguration" })
            .pipe(Effect.asVoid)
        },

        replaceWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "update", namespace: "", objectName: name }
          return requestObject(call, "PUT", webhookPath(name), { body: object, kind: "MutatingWebhookConfiguration" })
            .pipe(Effect.asVoid)
        },

        // Events: POST to create, PUT to count a repeat (docs/behaviour.md, "Events").
        createEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          const call: Call = { resource: "events", verb: "create", namespace, objectName: name }
          return requestObject(call, "POST", coreObjectsPath(namespace, "events"), { body: event, kind: "Event" })
        },

        replaceEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          const call: Call = { resource: "events", verb: "update", namespace, objectName: name }
          return requestObject(call, "PUT", coreObjectsPath(namespace, "events", name), { body: event, kind: "Event" })
        },

        // Reads for `explain` (src/commands/explain.ts).
        getPod: (namespace, name) => {
          const call: Call = { resource: "pods", verb: "get", namespace, objectName: name }
          return requestObject(call, "GET", podsPath(namespace, name), { kind: "Pod" })
        },

        listPods: (namespace, labels) => {
          const call: Call = { resource: "pods", verb: "list", namespace, objectName: "" }
          const labelSelector = Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(",")
          return requestObject(call, "GET", podsPath(namespace), { query: { labelSelector }, kind: "PodList" }).pipe(
            Effect.map((list) =>
              Array.isArray(list.items)
                ? (list.items as ReadonlyArray<unknown>).filter((item): item is RawObject => Predicate.isObject(item))
                : []
            )
          )
        },

        getNamespace: (name) => {
          const call: Call = { resource: "namespaces", verb: "get", namespace: "", objectName: name }
          return requestObject(call, "GET", `/api/v1/namespaces/${encodeURIComponent(name)}`, { kind: "Namespace" })
        },

        reviewAccess: (review) => {
          const call: Call = { resource: "subjectaccessreviews", verb: "create", namespace: "", objectName: "" }
          const body: RawObject = {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: {
              user: review.user,
              resourceAttributes: {
                namespace: review.namespace,
                verb: review.verb,
                resource: review.resource,
                name: review.name
              }
            }
          }
          return requestObject(call, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
            body,
            kind: "SubjectAccessReview"
          }).pipe(Effect.map(accessAnswerOf))
        },

        reviewOwnAccess: (question) => {
          const call: Call = { resource: "selfsubjectaccessreviews", verb: "create", namespace: "", objectName: "" }
          const { name, namespace, resource, verb } = question
          const body: RawObject = {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SelfSubjectAccessReview",
            spec: { resourceAttributes: { namespace, verb, resource, name } }
          }
          return requestObject(call, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
            body,
            kind: "SelfSubjectAccessReview"
          }).pipe(Effect.map(accessAnswerOf))
        }
      })
    })
  )

/**
 * The KubeClient of the cluster this process runs in (its service account) or,
 * outside a pod, of the default kubeconfig (KUBECONFIG, `~/.kube/config`).
 */
export const layer: Layer.Layer<KubeClient, KubeConfigError, ClusterSettings> = Layer.unwrap(
  Effect.map(loadKubeConfig(), (kc) => layerFromKubeConfig(kc))
)
