/**
 * Every Kubernetes API call, observed: the `kube_requests_total` /
 * `kube_request_duration_seconds` metrics and, when a tracer is installed, a
 * client span (`KubeClient.getSecret`, ...) with the `k8s.*` attributes and
 * the call's outcome. `observedKubeClient` wraps whichever KubeClient the
 * composition hands it (live or in memory, admission/layers.ts), so tests
 * see what production does.
 *
 * Attributes name the object (resource, namespace, name), never its content.
 */
import { Clock, Effect, Layer, Stream } from "effect"
import type { KubeError } from "../cluster/errors.ts"
import { KubeClient, type KubeClientShape } from "../cluster/KubeClient.ts"
import { kubeOutcome } from "./Failures.ts"
import { recordKubeCall, recordKubeCallUnsafe } from "./Metrics.ts"
import { isTracing } from "./Traced.ts"

export interface ObservedCall {
  readonly method: string
  readonly resource: string
  readonly verb: string
  readonly namespace: string
  readonly objectName: string
}

/**
 * One request/response call: a count and a duration, and, when a tracer is
 * installed, a client span with the call's outcome.
 */
export const observeKubeCall = <A, R>(
  call: ObservedCall,
  effect: Effect.Effect<A, KubeError, R>
): Effect.Effect<A, KubeError, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeNanosUnsafe()
    const tracing = isTracing(fiber)
    const observed = Effect.onExit(effect, (exit) =>
      Effect.withFiber((inner) => {
        const outcome = kubeOutcome(exit)
        const seconds = outcome === "interrupted" ? undefined : Number(clock.currentTimeNanosUnsafe() - start) / 1e9
        recordKubeCallUnsafe(inner.context, call, outcome, seconds)
        return tracing ? Effect.annotateCurrentSpan("k8s.outcome", outcome) : Effect.void
      }))
    return tracing
      ? Effect.withSpan(observed, `KubeClient.${call.method}`, {
        kind: "client",
        attributes: {
          "k8s.resource": call.resource,
          "k8s.verb": call.verb,
          "k8s.namespace": call.namespace,
          "k8s.name": call.objectName
        }
      })
      : observed
  })

/**
 * A watch lives for minutes: no span and no duration, only a count of how
 * each one ended (`ok` when the server closed it, else the error).
 */
export const observeKubeWatch = <A, R>(
  call: Omit<ObservedCall, "method">,
  stream: Stream.Stream<A, KubeError, R>
): Stream.Stream<A, KubeError, R> =>
  stream.pipe(
    Stream.onExit((exit) => {
      const outcome = kubeOutcome(exit)
      return outcome === "interrupted" ? Effect.void : recordKubeCall(call, outcome, undefined)
    })
  )

const nameOf = (object: Readonly<Record<string, unknown>>): string => {
  const metadata = object.metadata
  if (typeof metadata === "object" && metadata !== null && "name" in metadata && typeof metadata.name === "string") {
    return metadata.name
  }
  return ""
}

const namespaceOf = (object: Readonly<Record<string, unknown>>): string => {
  const metadata = object.metadata
  if (typeof metadata === "object" && metadata !== null && "namespace" in metadata && typeof metadata.namespace === "string") {
    return metadata.namespace
  }
  return ""
}

/** The same client, every call observed. */
const observeKubeClient = (client: KubeClientShape): KubeClientShape => ({
  getConfigMap: (namespace, objectName) =>
    observeKubeCall(
      { method: "getConfigMap", resource: "configmaps", verb: "get", namespace, objectName },
      client.getConfigMap(namespace, objectName)
    ),
  getSecret: (namespace, objectName) =>
    observeKubeCall(
      { method: "getSecret", resource: "secrets", verb: "get", namespace, objectName },
      client.getSecret(namespace, objectName)
    ),
  watchConfigMap: (namespace, objectName) =>
    observeKubeWatch(
      { resource: "configmaps", verb: "watch", namespace, objectName },
      client.watchConfigMap(namespace, objectName)
    ),
  listConfigMapsNamed: (objectName) =>
    observeKubeCall(
      { method: "listConfigMapsNamed", resource: "configmaps", verb: "list", namespace: "", objectName },
      client.listConfigMapsNamed(objectName)
    ),
  watchConfigMapsNamed: (objectName, resourceVersion) =>
    observeKubeWatch(
      { resource: "configmaps", verb: "watch", namespace: "", objectName },
      client.watchConfigMapsNamed(objectName, resourceVersion)
    ),
  replaceSecret: (secret, values) =>
    observeKubeCall(
      { method: "replaceSecret", resource: "secrets", verb: "update", namespace: secret.namespace, objectName: secret.name },
      client.replaceSecret(secret, values)
    ),
  getWebhookConfiguration: (objectName) =>
    observeKubeCall(
      {
        method: "getWebhookConfiguration",
        resource: "mutatingwebhookconfigurations",
        verb: "get",
        namespace: "",
        objectName
      },
      client.getWebhookConfiguration(objectName)
    ),
  createWebhookConfiguration: (object) =>
    observeKubeCall(
      {
        method: "createWebhookConfiguration",
        resource: "mutatingwebhookconfigurations",
        verb: "create",
        namespace: "",
        objectName: nameOf(object)
      },
      client.createWebhookConfiguration(object)
    ),
  replaceWebhookConfiguration: (object) =>
    observeKubeCall(
      {
        method: "replaceWebhookConfiguration",
        resource: "mutatingwebhookconfigurations",
        verb: "update",
        namespace: "",
        objectName: nameOf(object)
      },
      client.replaceWebhookConfiguration(object)
    ),
  // Reads for `explain`.
  getPod: (namespace, objectName) =>
    observeKubeCall(
      { method: "getPod", resource: "pods", verb: "get", namespace, objectName },
      client.getPod(namespace, objectName)
    ),
  listPods: (namespace, labels) =>
    observeKubeCall(
      { method: "listPods", resource: "pods", verb: "list", namespace, objectName: "" },
      client.listPods(namespace, labels)
    ),
  getNamespace: (objectName) =>
    observeKubeCall(
      { method: "getNamespace", resource: "namespaces", verb: "get", namespace: "", objectName },
      client.getNamespace(objectName)
    ),
  reviewAccess: (review) =>
    observeKubeCall(
      { method: "reviewAccess", resource: "subjectaccessreviews", verb: "create", namespace: "", objectName: "" },
      client.reviewAccess(review)
    ),
  reviewOwnAccess: (question) =>
    observeKubeCall(
      { method: "reviewOwnAccess", resource: "selfsubjectaccessreviews", verb: "create", namespace: "", objectName: "" },
      client.reviewOwnAccess(question)
    ),
  createEvent: (event) =>
    observeKubeCall(
      { method: "createEvent", resource: "events", verb: "create", namespace: namespaceOf(event), objectName: nameOf(event) },
      client.createEvent(event)
    ),
  replaceEvent: (event) =>
    observeKubeCall(
      { method: "replaceEvent", resource: "events", verb: "update", namespace: namespaceOf(event), objectName: nameOf(event) },
      client.replaceEvent(event)
    )
})

/** The KubeClient beneath, every call observed: provide it over a live or in-memory KubeClient layer. */
export const observedKubeClient: Layer.Layer<KubeClient, never, KubeClient> = Layer.effect(
  KubeClient,
  Effect.gen(function*() {
    return KubeClient.of(observeKubeClient(yield* KubeClient))
  })
)
