/**
 * What can go wrong when the injector talks to the Kubernetes API: one error,
 * `KubeError`, whose `reason` says what kind of failure it is.
 *
 * Every failure names the object it was about (resource, namespace, name) and
 * never carries a response body: the API server may echo a Secret in it.
 */
import { Predicate, Schema } from "effect"

/** The Kubernetes resources the injector reads. */
export const Resource = Schema.Literals([
  "configmaps",
  "secrets",
  "mutatingwebhookconfigurations",
  // Read by `explain` only (src/commands/explain.ts).
  "pods",
  "namespaces",
  "subjectaccessreviews",
  // Written after an admission (src/admission/events/).
  "events",
  // Which connection Secrets the server may get, asked at start (src/server/secretAccess.ts).
  "selfsubjectaccessreviews"
])
export type Resource = typeof Resource.Type

/** The API group of each resource, as an RBAC rule names it. */
const apiGroupOf: { readonly [R in Resource]: string } = {
  configmaps: "",
  secrets: "",
  pods: "",
  namespaces: "",
  mutatingwebhookconfigurations: "admissionregistration.k8s.io",
  subjectaccessreviews: "authorization.k8s.io",
  events: "",
  selfsubjectaccessreviews: "authorization.k8s.io"
}

/**
 * - `transient`: may pass if tried again (5xx, 429, 408, a timeout, a reset connection);
 * - `forbidden`: the injector's ServiceAccount may not do this (401, 403);
 * - `not_found`: the object does not exist (404), often a normal answer;
 * - `conflict`: the object already exists, or changed since it was read (409);
 * - `request_failed`: any other answer the injector cannot use (400, 422, a
 *   body that is not an object of the kind asked for).
 *
 * These words are also the `outcome` and `cause` label values of the metrics
 * (README "Metrics").
 */
export const KubeErrorReason = Schema.Literals(["transient", "forbidden", "not_found", "conflict", "request_failed"])
export type KubeErrorReason = typeof KubeErrorReason.Type

/** What a call was about: every error names it. */
export interface KubeCall {
  readonly resource: Resource
  readonly verb: string
  readonly namespace: string
  readonly objectName: string
}

const describe = (ref: { readonly resource: string; readonly namespace: string; readonly objectName: string }) =>
  ref.namespace === "" ? `${ref.resource} "${ref.objectName}"` : `${ref.resource} "${ref.namespace}/${ref.objectName}"`

export class KubeError extends Schema.TaggedError<KubeError>()("KubeError", {
  reason: KubeErrorReason,
  resource: Resource,
  namespace: Schema.String,
  // Not `name`: that would shadow Error.name.
  objectName: Schema.String,
  verb: Schema.String,
  /** The HTTP status, when the API server answered. */
  status: Schema.optional(Schema.Number),
  /** What failed, in a few words (`connection failed: ECONNRESET`, `the API server answered 503 ...`). */
  detail: Schema.optional(Schema.String),
  /** The server's Retry-After, if any (`transient` only). */
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  override get message() {
    switch (this.reason) {
      case "not_found":
        return `${describe(this)} not found`
      case "forbidden": {
        // Names the RBAC rule that is missing, so an operator can fix the Role at once.
        const group = apiGroupOf[this.resource]
        const where = this.namespace === "" ? "cluster-wide" : `in namespace "${this.namespace}"`
        return `${this.status === 401 ? "unauthorized" : "forbidden"}: cannot ${this.verb} ${describe(this)}; ` +
          `the injector's ServiceAccount needs RBAC rule apiGroups=["${group}"] resources=["${this.resource}"] ` +
          `verbs=["${this.verb}"] ${where}`
      }
      case "conflict":
        return `cannot ${this.verb} ${describe(this)}: conflict (it already exists or changed meanwhile)`
      case "transient":
      case "request_failed":
        return `cannot ${this.verb} ${describe(this)}: ${this.detail ?? this.reason}`
    }
  }

  /** May pass if tried again; `status` and `retryAfterMillis` when the API server answered so. */
  static transient(
    call: KubeCall,
    detail: string,
    answer: { readonly status?: number; readonly retryAfterMillis?: number | undefined } = {}
  ): KubeError {
    return new KubeError({
      ...callFields(call),
      reason: "transient",
      detail,
      ...(answer.status === undefined ? {} : { status: answer.status }),
      ...(answer.retryAfterMillis === undefined ? {} : { retryAfterMillis: answer.retryAfterMillis })
    })
  }

  /** Refused (401 or 403): the message names the RBAC rule. */
  static forbidden(call: KubeCall, status: number): KubeError {
    return new KubeError({ ...callFields(call), reason: "forbidden", status })
  }

  /**
   * The object does not exist, built without a stack trace. A missing object
   * is an expected answer (a namespace without shares, an SVM without its
   * Secret), and its stack says nothing; capturing one deep in the HTTP
   * client's callbacks, async frames included, cost ~90 µs per admission
   * (test/bench/RESULTS.md).
   */
  static notFound(call: KubeCall): KubeError {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      return new KubeError({ ...callFields(call), reason: "not_found", status: 404 })
    } finally {
      Error.stackTraceLimit = limit
    }
  }

  static conflict(call: KubeCall): KubeError {
    return new KubeError({ ...callFields(call), reason: "conflict", status: 409 })
  }

  static requestFailed(call: KubeCall, detail: string, status?: number): KubeError {
    return new KubeError({
      ...callFields(call),
      reason: "request_failed",
      detail,
      ...(status === undefined ? {} : { status })
    })
  }
}

/** Only the call's own fields: callers may hand in a wider object. */
const callFields = (call: KubeCall): KubeCall => ({
  resource: call.resource,
  verb: call.verb,
  namespace: call.namespace,
  objectName: call.objectName
})

export const isKubeError = (value: unknown): value is KubeError => Predicate.isTagged(value, "KubeError")

/** Worth retrying within the caller's budget. */
export const isRetryable = (error: KubeError): boolean => error.reason === "transient"

/** For `Effect.catchIf`: the error has this reason. */
export const hasReason = (reason: KubeErrorReason) => (error: KubeError): boolean => error.reason === reason
