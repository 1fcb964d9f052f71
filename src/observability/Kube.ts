/**
 * Every Kubernetes API call, observed: the `kube_requests_total` /
 * `kube_request_duration_seconds` metrics and, when a tracer is installed, a
 * client span (`KubeClient.getSecret`, ...) with the `k8s.*` attributes and
 * the call's outcome. Both KubeClient layers (live and in memory) wrap their
 * service with `observeKubeClient`, so tests see what production does.
 *
 * Attributes name the object (resource, namespace, name), never its content.
 */
import { Cause, Clock, Effect, type Exit, Stream } from "effect"
import type { KubeClientShape } from "../cluster/KubeClient.ts"
import type { KubeError } from "../cluster/errors.ts"
import { kubeOutcome, recordKubeCall, recordKubeCallUnsafe } from "./Metrics.ts"
import { isTracing, whenTracing } from "./Traced.ts"

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
export const observeKubeClient = (client: KubeClientShape): KubeClientShape => ({
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
  createSecret: (secret) =>
    observeKubeCall(
      { method: "createSecret", resource: "secrets", verb: "create", namespace: secret.namespace, objectName: secret.name },
      client.createSecret(secret)
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

/**
 * For the pipeline's `resolve.*` spans: how the lookup ended after its
 * retries, as `k8s.outcome` on the current span.
 */
export const annotateKubeOutcome = <A, R>(self: Effect.Effect<A, KubeError, R>): Effect.Effect<A, KubeError, R> =>
  whenTracing(Effect.onExit(self, (exit) => Effect.annotateCurrentSpan("k8s.outcome", kubeOutcome(exit))), self)

/** For the `resolve.clusterConfig` span: `config.outcome` = `ok` or the error's tag. */
export const annotateConfigOutcome = <A, E extends { readonly _tag: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  whenTracing(Effect.onExit(self, (exit) => Effect.annotateCurrentSpan("config.outcome", configOutcome(exit))), self)

const configOutcome = (exit: Exit.Exit<unknown, { readonly _tag: string }>): string => {
  if (exit._tag === "Success") return "ok"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") return error.value._tag
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "error"
}
