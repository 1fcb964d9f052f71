/**
 * What can go wrong when the injector talks to the Kubernetes API.
 *
 * Every failure names the object it was about (resource, namespace, name) and
 * never carries a response body: the API server may echo a Secret in it.
 */
import { Schema } from "effect"

/** The Kubernetes resources the injector reads. */
export const Resource = Schema.Literals(["configmaps", "secrets", "mutatingwebhookconfigurations", "events"])
export type Resource = typeof Resource.Type

const ObjectRef = {
  resource: Resource,
  namespace: Schema.String,
  // Not `name`: that would shadow Error.name.
  objectName: Schema.String
}

const describe = (ref: { readonly resource: string; readonly namespace: string; readonly objectName: string }) =>
  ref.namespace === "" ? `${ref.resource} "${ref.objectName}"` : `${ref.resource} "${ref.namespace}/${ref.objectName}"`

/** The object does not exist (HTTP 404). Often a normal answer, e.g. a namespace without shares. */
export class KubeNotFound extends Schema.TaggedError<KubeNotFound>()("KubeNotFound", ObjectRef) {
  override get message() {
    return `${describe(this)} not found`
  }
}

/**
 * A KubeNotFound without a stack trace. A missing object is an expected
 * answer (a namespace without shares, an SVM without its Secret), and its
 * stack says nothing; capturing one deep in the HTTP client's callbacks, async
 * frames included, cost ~90 µs per admission (test/bench/RESULTS.md).
 */
export const notFound = (ref: { readonly resource: Resource; readonly namespace: string; readonly objectName: string }) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new KubeNotFound({ resource: ref.resource, namespace: ref.namespace, objectName: ref.objectName })
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * The injector's ServiceAccount may not do this (HTTP 401/403). The message
 * names the RBAC rule that is missing, so an operator can fix the Role at once.
 */
export class KubeForbidden extends Schema.TaggedError<KubeForbidden>()("KubeForbidden", {
  ...ObjectRef,
  verb: Schema.String,
  status: Schema.Number
}) {
  override get message() {
    const group = this.resource === "mutatingwebhookconfigurations" ? "admissionregistration.k8s.io" : ""
    const where = this.namespace === "" ? "cluster-wide" : `in namespace "${this.namespace}"`
    return `${this.status === 401 ? "unauthorized" : "forbidden"}: cannot ${this.verb} ${describe(this)}; ` +
      `the injector's ServiceAccount needs RBAC rule apiGroups=["${group}"] resources=["${this.resource}"] ` +
      `verbs=["${this.verb}"] ${where}`
  }
}

/**
 * A failure that may pass if tried again: 5xx, 429, a timeout, a reset
 * connection. `retryAfterMillis` carries the server's Retry-After, if any.
 */
export class KubeTransient extends Schema.TaggedError<KubeTransient>()("KubeTransient", {
  ...ObjectRef,
  verb: Schema.String,
  reason: Schema.String,
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  override get message() {
    return `cannot ${this.verb} ${describe(this)}: ${this.reason}`
  }
}

/** Any other answer the injector cannot use (400, 422, a body that is not an object of the kind asked for). */
export class KubeRequestFailed extends Schema.TaggedError<KubeRequestFailed>()("KubeRequestFailed", {
  ...ObjectRef,
  verb: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot ${this.verb} ${describe(this)}: ${this.reason}`
  }
}

export type KubeError = KubeNotFound | KubeForbidden | KubeTransient | KubeRequestFailed | KubeConflict

/** Worth retrying within the request budget. */
export const isRetryable = (error: KubeError): error is KubeTransient => error._tag === "KubeTransient"

/** The object already exists, or changed since it was read (HTTP 409). */
export class KubeConflict extends Schema.TaggedError<KubeConflict>()("KubeConflict", {
  ...ObjectRef,
  verb: Schema.String
}) {
  override get message() {
    return `cannot ${this.verb} ${describe(this)}: conflict (it already exists or changed meanwhile)`
  }
}
