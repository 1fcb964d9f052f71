/**
 * How failures are named to operators, in one table: the label of each
 * cause in the metrics, and the name log lines and spans give it. Also how a
 * Kubernetes call or lookup ended, as a label: for the call metrics
 * (Kube.ts) and the pipeline's `resolve.*` spans.
 *
 * A leaf: it imports nothing of the pipeline, so the pipeline can use it.
 */
import { Cause, Effect, Exit } from "effect"
import { failureNames } from "../admission/errors.ts"
import { isKubeError, type KubeError } from "../cluster/errors.ts"
import { whenTracing } from "./Traced.ts"

/** How one Kubernetes API call ended. */
export const kubeOutcomes = [
  "ok",
  "not_found",
  "forbidden",
  "transient",
  "conflict",
  "request_failed",
  "interrupted",
  "error"
] as const
export type KubeOutcome = (typeof kubeOutcomes)[number]

/** How a Kubernetes call ended, from its exit. */
export const kubeOutcome = (exit: Exit.Exit<unknown, KubeError>): KubeOutcome => {
  if (Exit.isSuccess(exit)) return "ok"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") return isKubeError(error.value) ? failureNames[error.value.reason].label : "error"
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "error"
}

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
