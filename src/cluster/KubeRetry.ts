/**
 * KubeRetry: how transient Kubernetes failures are retried within an
 * admission's time budget. Exponential with jitter, honouring Retry-After,
 * and never sleeping past the deadline: when the next try would land after
 * it, the last error is returned so the denial can say what failed.
 */
import { Clock, Context, Duration, Effect, Layer, Random } from "effect"
import { isRetryable, type KubeError } from "./errors.ts"

export interface KubeRetryPolicy {
  /** The wait before try `attempt + 1` (attempt counts from 1), given the server's Retry-After, if any. */
  readonly delay: (attempt: number, retryAfterMillis: number | undefined) => Effect.Effect<Duration.Duration>
  readonly maxAttempts: number
}

export class KubeRetry extends Context.Service<KubeRetry, KubeRetryPolicy>()(
  "filer-sidecar-injector/cluster/KubeRetry"
) {
  /** 50 ms doubling to at most 1 s, each wait jittered to 50–100 %; Retry-After wins, up to 2 s. */
  static readonly layer: Layer.Layer<KubeRetry> = Layer.succeed(KubeRetry, {
    maxAttempts: 8,
    delay: (attempt, retryAfterMillis) =>
      retryAfterMillis !== undefined
        ? Effect.succeed(Duration.millis(Math.min(retryAfterMillis, 2000)))
        : Effect.map(Random.nextBetween(0.5, 1), (jitter) =>
          Duration.millis(Math.round(Math.min(50 * 2 ** (attempt - 1), 1000) * jitter)))
  })

  /** Retries at once: for tests that count attempts without waiting. */
  static readonly layerInstant: Layer.Layer<KubeRetry> = Layer.succeed(KubeRetry, {
    maxAttempts: 8,
    delay: () => Effect.succeed(Duration.zero)
  })
}

/**
 * Retries end this long before the deadline, so that the last error, not the
 * admission's own budget timeout (which knows nothing of what failed), ends
 * the admission: the denial then names the object and the failure.
 */
const deadlineGuardMillis = 50

/**
 * Runs `call`, retrying `KubeTransient` failures while attempts remain and the
 * next try starts before `deadline` (epoch ms). A retry still running at the
 * deadline is cut, and the last error is returned: a retry that started in
 * time but hangs must not leave the admission to the budget's timeout.
 */
export const retryWithinDeadline = <A>(
  call: Effect.Effect<A, KubeError>,
  deadline: number
): Effect.Effect<A, KubeError, KubeRetry> =>
  // The first try runs as it is: nearly every call succeeds at once, and only
  // a failure worth retrying pays for the loop below.
  Effect.catchIf(call, isRetryable, (first) => retryAfter(call, first, deadline))

/** Tries 2, 3, ... after `first` failed. */
const retryAfter = <A>(
  call: Effect.Effect<A, KubeError>,
  first: KubeError,
  deadline: number
): Effect.Effect<A, KubeError, KubeRetry> =>
  Effect.gen(function*() {
    const policy = yield* KubeRetry
    const cutoff = deadline - deadlineGuardMillis
    let error = first
    for (let attempt = 1;; attempt++) {
      if (!isRetryable(error) || attempt >= policy.maxAttempts) return yield* Effect.fail(error)
      const wait = yield* policy.delay(attempt, error.retryAfterMillis)
      const now = yield* Clock.currentTimeMillis
      if (now + Duration.toMillis(wait) >= cutoff) return yield* Effect.fail(error)
      yield* Effect.sleep(wait)
      const lastError = error
      const result = yield* Effect.result(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          call.pipe(
            Effect.timeoutOrElse({ duration: Duration.millis(Math.max(0, cutoff - now)), orElse: () => Effect.fail(lastError) })
          ))
      )
      if (result._tag === "Success") return result.success
      error = result.failure
    }
  })
