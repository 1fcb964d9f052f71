/**
 * The admission pipeline's failures. `respond.ts` is the one place that
 * decides what each means for the answer.
 */
import { Schema } from "effect"

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
 * The injector could not learn what to inject: the Kubernetes API failed
 * (after retries, within the budget) or its own configuration is missing or
 * invalid. `what` names the failing step for the denial message.
 */
export class InfrastructureFailure extends Schema.TaggedError<InfrastructureFailure>()("InfrastructureFailure", {
  /** The tag of the underlying error, for logs and metrics. */
  cause: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return this.problem
  }
}
