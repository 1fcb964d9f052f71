/**
 * The admission pipeline's failures. `respond.ts` is the one place that
 * decides what each means for the answer.
 */
import { Schema } from "effect"
import { KubeErrorReason } from "../cluster/errors.ts"

/**
 * The request cannot be answered at all: not JSON, not an AdmissionReview
 * v1, no request uid. HTTP 400 from the server, exit 2 from `review`.
 */
export class AdmissionDecodeError extends Schema.TaggedError<AdmissionDecodeError>()("AdmissionDecodeError", {
  problem: Schema.String
}) {
  override get message() {
    return this.problem
  }
}

/**
 * What an infrastructure failure was: a Kubernetes error's reason, the
 * request budget running out (`timeout`), or the injector's own
 * configuration missing or invalid (`configuration`).
 */
export const InfrastructureCause = Schema.Literals([...KubeErrorReason.literals, "timeout", "configuration"])
export type InfrastructureCause = typeof InfrastructureCause.Type

/**
 * Per cause: `label`, its value in the metrics (`cause`, and `outcome` for
 * a KubeError's reason); `tag`, the `error.tag` of the admission log line and
 * the `admission.failure` span attribute. Both are written out, not derived
 * from the code's words, and kept as earlier releases had them: alerts and
 * queries select on them (README "Metrics" and "Logs").
 */
export const failureNames = {
  transient: { label: "transient", tag: "KubeTransient" },
  forbidden: { label: "forbidden", tag: "KubeForbidden" },
  not_found: { label: "not_found", tag: "KubeNotFound" },
  conflict: { label: "conflict", tag: "KubeConflict" },
  request_failed: { label: "request_failed", tag: "KubeRequestFailed" },
  timeout: { label: "timeout", tag: "Timeout" },
  configuration: { label: "configuration", tag: "ConfigurationError" }
} as const satisfies { readonly [C in InfrastructureCause]: { readonly label: string; readonly tag: string } }

/**
 * The injector could not learn what to inject: the Kubernetes API failed
 * (after retries, within the budget) or its own configuration is missing or
 * invalid. `problem` names what failed, for the denial message.
 */
export class InfrastructureFailure extends Schema.TaggedError<InfrastructureFailure>()("InfrastructureFailure", {
  /** What kind of failure, for logs and metrics. */
  cause: InfrastructureCause,
  problem: Schema.String
}) {
  override get message() {
    return this.problem
  }
}
