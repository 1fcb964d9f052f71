/**
 * Spans are made only when a tracer can see them (src/observability/Traced.ts):
 * under effect's native tracer, which exports nothing, `spanned` leaves the
 * effect alone; under a real tracer it is `Effect.withSpan`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { spanned } from "../../src/observability/Traced.ts"
import { memoryTracer } from "../../src/observability/Tracing.ts"

const currentSpanName = Effect.map(Effect.option(Effect.currentSpan), Option.map((span) => span.name))

describe("spanned", () => {
  it.effect("makes no span under the native tracer, and does not evaluate the attributes", () =>
    Effect.gen(function*() {
      let evaluated = 0
      const name = yield* currentSpanName.pipe(spanned("step", () => {
        evaluated++
        return { namespace: "jane-doe" }
      }))
      assert.isTrue(Option.isNone(name))
      assert.strictEqual(evaluated, 0)
    }))

  it.effect("is a span with its attributes under a tracer that exports", () => {
    const tracer = memoryTracer()
    return Effect.gen(function*() {
      const name = yield* currentSpanName.pipe(spanned("step", () => ({ namespace: "jane-doe" })))
      assert.deepStrictEqual(name, Option.some("step"))
      assert.deepStrictEqual(tracer.spans.map((span) => span.name), ["step"])
      assert.strictEqual(tracer.spans[0]!.attributes.get("namespace"), "jane-doe")
    }).pipe(Effect.provide(tracer.layer))
  })
})
