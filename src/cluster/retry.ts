/**
 * The one retry of Kubernetes calls, as a `Schedule`: exponential from
 * `baseDelay`, capped at `maxDelay`, jittered; a Retry-After from the API
 * server replaces the wait (up to `maxRetryAfter`); it stops after `attempts`
 * tries, or when the next try would start at or after `deadline`, and the
 * call then fails with its last error, so the caller can say what failed.
 *
 * Every caller brings its own budget: an admission (`KubeRetry`, within the
 * request's deadline), the webhook registration at start, the configuration
 * watch (forever, whatever the error).
 */
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { dual } from "effect/Function"
import { isKubeError, isRetryable, type KubeError } from "./errors.ts"

/** How a caller retries: how often, how long it waits. */
export interface RetryPolicy {
  /** Tries in all, the first included; no limit when omitted. */
  readonly attempts?: number
  /** The first wait; each later one doubles. */
  readonly baseDelay: Duration.Input
  /** The longest wait (before a jitter of ±20 %). */
  readonly maxDelay: Duration.Input
  /** The longest wait a Retry-After may ask for; `maxDelay` when omitted. */
  readonly maxRetryAfter?: Duration.Input
}

/** What a retried failure may tell the schedule: when the server will take calls again. */
export interface RetryInput {
  readonly retryAfterMillis?: number | undefined
}

/** A policy for one call: when it must be over, and which failures are worth another try. */
export interface RetryBudget<E extends RetryInput = KubeError> extends RetryPolicy {
  /** Epoch milliseconds: no wait ends at or after it. */
  readonly deadline?: number
  /** Transient Kubernetes failures only when omitted. */
  readonly while?: (error: E) => boolean
}

/**
 * The schedule of `budget`, fed the call's failures. Its output is the wait
 * before the next try; it ends (and the retry fails with the last error) on
 * an error not worth retrying, after the last attempt, or at the deadline.
 */
export const retrySchedule = <E extends RetryInput = KubeError>(
  budget: RetryBudget<E>
): Schedule.Schedule<Duration.Duration, E> => {
  const maxDelay = Duration.fromInputUnsafe(budget.maxDelay)
  const maxRetryAfter = budget.maxRetryAfter === undefined ? maxDelay : Duration.fromInputUnsafe(budget.maxRetryAfter)
  const retryable = budget.while ?? ((error: E) => isKubeError(error) && isRetryable(error))
  const { attempts, deadline } = budget
  return Schedule.min([Schedule.exponential(budget.baseDelay), Schedule.spaced(maxDelay)]).pipe(
    // Callers failing together (replicas, concurrent admissions) do not retry in step.
    Schedule.jittered,
    Schedule.setInputType<E>(),
    // The server says when it will take calls again; a longer wait than allowed is cut.
    Schedule.modifyDelay(({ duration, input }) =>
      Effect.succeed(
        input.retryAfterMillis === undefined
          ? duration
          : Duration.min(Duration.millis(input.retryAfterMillis), maxRetryAfter)
      )
    ),
    Schedule.while(({ attempt, duration, input, now }) =>
      retryable(input) &&
      (attempts === undefined || attempt < attempts) &&
      // A wait that ends past the deadline is not worth starting: fail now, with what failed.
      (deadline === undefined || now + Duration.toMillis(duration) < deadline)
    )
  )
}

/**
 * `self` retried within `budget`; when it gives up, the failure is the last
 * error. The first try runs as it is: nearly every call succeeds at once,
 * and only a failure worth retrying pays for the schedule.
 *
 * A try still running at the deadline is not cut here: the caller's own
 * timeout does that, knowing what it wants to report (see admission/resolve.ts).
 */
export const retryKube: {
  (budget: RetryBudget): <A, R>(self: Effect.Effect<A, KubeError, R>) => Effect.Effect<A, KubeError, R>
  <A, R>(self: Effect.Effect<A, KubeError, R>, budget: RetryBudget): Effect.Effect<A, KubeError, R>
} = dual(2, <A, R>(self: Effect.Effect<A, KubeError, R>, budget: RetryBudget): Effect.Effect<A, KubeError, R> =>
  Effect.catchIf(self, budget.while ?? isRetryable, (first) => {
    // The schedule must see the first failure too: hand it in as the retried effect's first result.
    let pending: KubeError | undefined = first
    const again = Effect.suspend(() => {
      if (pending === undefined) return self
      const error = pending
      pending = undefined
      return Effect.fail(error)
    })
    return Effect.retry(again, retrySchedule(budget))
  }))

/**
 * Calls made at start or in the background, with no request waiting on them
 * (the webhook registration, the shared CA Secret): a few transient failures
 * are retried, anything else fails at once.
 */
export const startupBudget: RetryBudget = { attempts: 5, baseDelay: Duration.millis(100), maxDelay: Duration.seconds(2) }

/**
 * How an admission retries its Kubernetes calls, within the request's
 * deadline. A service so that tests can retry at once (`layerInstant`).
 */
export class KubeRetry extends Context.Service<KubeRetry, RetryPolicy>()(
  "filer-sidecar-injector/cluster/KubeRetry"
) {
  /** 50 ms doubling to at most 1 s; a Retry-After is honoured up to 2 s. */
  static readonly layer: Layer.Layer<KubeRetry> = Layer.succeed(KubeRetry, {
    attempts: 8,
    baseDelay: Duration.millis(50),
    maxDelay: Duration.seconds(1),
    maxRetryAfter: Duration.seconds(2)
  })

  /** Retries at once, Retry-After or not: for tests that count attempts without waiting. */
  static readonly layerInstant: Layer.Layer<KubeRetry> = Layer.succeed(KubeRetry, {
    attempts: 8,
    baseDelay: Duration.zero,
    maxDelay: Duration.zero
  })
}
