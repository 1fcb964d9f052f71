/**
 * Spans cost a few microseconds each; under effect's native tracer (no
 * tracing backend installed) nobody ever sees them. The observability code
 * below makes its own spans and span attributes only when they can be seen,
 * as effect's HTTP server does for its request spans.
 */
import { Effect, type Fiber, Tracer } from "effect"

/** A tracer with a backend (OTLP, or a test's) is installed and tracing is on. */
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.cache.tracerEnabled && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/** `traced` when spans can be seen, else `untraced`. */
export const whenTracing = <A, E, R>(
  traced: Effect.Effect<A, E, R>,
  untraced: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.withFiber((fiber) => (isTracing(fiber) ? traced : untraced))
