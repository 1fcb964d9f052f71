/**
 * The bound on what the admissions in flight may hold together: how many
 * run at once, and how many body bytes they buffer. A review of a few MiB is
 * held as bytes, as text and as parsed objects several times its size, so a
 * handful of them at once fill the image's 256 MiB heap (README, "Limits");
 * past the bound a request is answered 429 before its body is read.
 */
import { Effect } from "effect"

/** Which bound a refused request met: the metric's `limit` label. */
export type Overload = "requests_in_flight" | "buffered_body_bytes"

export interface InFlightLimits {
  readonly maxRequests: number
  readonly maxBytes: number
  /** Told what is in flight after every change (the metrics' gauges). */
  readonly observe?: (requests: number, bytes: number) => Effect.Effect<void>
}

export interface InFlightLimit {
  /**
   * Runs `self` holding one request and `bytes` of body until it ends; when
   * that would pass a bound, runs `overloaded` instead.
   */
  readonly withRoom: <A, E, R, A2, E2, R2>(
    bytes: number,
    self: Effect.Effect<A, E, R>,
    overloaded: (overload: Overload) => Effect.Effect<A2, E2, R2>
  ) => Effect.Effect<A | A2, E | E2, R | R2>
}

export const makeInFlightLimit = (limits: InFlightLimits): InFlightLimit => {
  let requests = 0
  let bytes = 0
  const observe = Effect.suspend(() => limits.observe?.(requests, bytes) ?? Effect.void)
  return {
    withRoom: <A, E, R, A2, E2, R2>(
      size: number,
      self: Effect.Effect<A, E, R>,
      overloaded: (overload: Overload) => Effect.Effect<A2, E2, R2>
    ) =>
      // Counted and released around `self` with no interruption in between, so an interrupted request gives its room back.
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend((): Effect.Effect<A | A2, E | E2, R | R2> => {
          if (requests >= limits.maxRequests) return restore(overloaded("requests_in_flight"))
          if (bytes + size > limits.maxBytes) return restore(overloaded("buffered_body_bytes"))
          requests += 1
          bytes += size
          const release = Effect.sync(() => {
            requests -= 1
            bytes -= size
          })
          return observe.pipe(Effect.andThen(restore(self)), Effect.ensuring(Effect.andThen(release, observe)))
        })
      )
  }
}
