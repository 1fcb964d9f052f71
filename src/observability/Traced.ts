/**
 * Spans cost microseconds each (a span object, a stack trace, context
 * updates); under effect's native tracer (no tracing backend installed)
 * nobody ever sees them. The code below makes spans and span attributes only
 * when they can be seen, as effect's HTTP server does for its request spans.
 *
 * The pipeline marks its steps with these, so this module imports effect
 * only: nothing of the outer ring (metrics, the log line) reaches back into
 * the pipeline through it (test/architecture/imports.test.ts).
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

/**
 * `Effect.withSpan(name)` when spans can be seen; otherwise the effect alone.
 * `attributes` is called only then. No stack trace is captured: span names
 * say where they come from.
 */
export const spanned = (name: string, attributes?: () => Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiber((fiber) =>
      isTracing(fiber)
        ? Effect.withSpan(self, name, {
          captureStackTrace: false,
          ...(attributes === undefined ? {} : { attributes: attributes() })
        })
        : self
    )
