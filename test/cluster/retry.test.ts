/**
 * The one retry of Kubernetes calls (src/cluster/retry.ts), on the test
 * clock: transient failures retried with exponential, capped, jittered waits;
 * a Retry-After honoured (capped); and when the budget (attempts, deadline)
 * runs out, or the error is not worth retrying, the call fails with its last
 * error, at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { hasReason, KubeError } from "../../src/cluster/errors.ts"
import { type RetryBudget, retryKube, retrySchedule } from "../../src/cluster/retry.ts"

const call = { resource: "configmaps", verb: "get", namespace: "jane-doe", objectName: "existing-shares" } as const

/**
 * A call that fails with `failures[i]` on try i (counting from 0), then
 * succeeds; it records when each try started.
 */
const scripted = (failures: ReadonlyArray<(attempt: number) => KubeError>) => {
  const starts: Array<number> = []
  const effect = Effect.gen(function*() {
    starts.push(yield* Clock.currentTimeMillis)
    const failure = failures[starts.length - 1]
    return failure === undefined ? "answered" : yield* Effect.fail(failure(starts.length))
  })
  return { effect, starts }
}

const transient = (attempt: number) => KubeError.transient(call, `the API server answered 503 (try ${attempt})`)

/** The waits `budget`'s schedule asks for, fed `errors` one after another (time stands still). */
const waitsOf = (budget: RetryBudget, errors: ReadonlyArray<KubeError>) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(retrySchedule(budget))
    const waits: Array<number> = []
    for (const error of errors) {
      const [, wait] = yield* step(0, error)
      waits.push(Duration.toMillis(wait))
    }
    return waits
  })

describe("retryKube", () => {
  it.effect("a call that succeeds at once is tried once", () =>
    Effect.gen(function*() {
      const { effect, starts } = scripted([])
      assert.strictEqual(yield* retryKube(effect, { attempts: 5, baseDelay: "100 millis", maxDelay: "1 second" }), "answered")
      assert.deepStrictEqual(starts, [0])
    }))

  it.effect("retries transient failures with exponential, jittered waits until the call gets through", () =>
    Effect.gen(function*() {
      const { effect, starts } = scripted([transient, transient, transient])
      const fiber = yield* Effect.forkChild(retryKube(effect, { attempts: 5, baseDelay: "100 millis", maxDelay: "1 second" }))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "answered")
      assert.strictEqual(starts.length, 4)
      const waits = starts.slice(1).map((start, index) => start - starts[index]!)
      // 100, 200, 400 ms, each ±20 %.
      for (const [index, wait] of waits.entries()) {
        const base = 100 * 2 ** index
        assert.isAtLeast(wait, base * 0.8, `wait ${index + 1}: ${waits}`)
        assert.isAtMost(wait, base * 1.2, `wait ${index + 1}: ${waits}`)
      }
    }))

  it.effect("caps the exponential wait at maxDelay (before jitter)", () =>
    Effect.gen(function*() {
      const errors = Array.from({ length: 6 }, (_, i) => transient(i))
      const waits = yield* waitsOf({ baseDelay: "100 millis", maxDelay: "300 millis" }, errors)
      for (const wait of waits.slice(2)) assert.isAtMost(wait, 300 * 1.2, `${waits}`)
      assert.isAtLeast(waits[5]!, 300 * 0.8, `${waits}`)
    }))

  it.effect("honours the server's Retry-After instead of its own wait", () =>
    Effect.gen(function*() {
      const { effect, starts } = scripted([
        () => KubeError.transient(call, "the API server answered 429 Too Many Requests", { status: 429, retryAfterMillis: 1500 })
      ])
      const fiber = yield* Effect.forkChild(retryKube(effect, { attempts: 5, baseDelay: "50 millis", maxDelay: "2 seconds" }))
      yield* TestClock.adjust("1499 millis")
      assert.deepStrictEqual(starts, [0], "retried before the Retry-After")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "answered")
      assert.deepStrictEqual(starts, [0, 1500])
    }))

  it.effect("a Retry-After longer than maxRetryAfter waits maxRetryAfter", () =>
    Effect.gen(function*() {
      const asked = KubeError.transient(call, "429", { status: 429, retryAfterMillis: 30_000 })
      const budget: RetryBudget = { baseDelay: "50 millis", maxDelay: "1 second", maxRetryAfter: "2 seconds" }
      assert.deepStrictEqual(yield* waitsOf(budget, [asked]), [2000])
      assert.deepStrictEqual(yield* waitsOf({ baseDelay: "50 millis", maxDelay: "1 second" }, [asked]), [1000])
    }))

  it.effect("stops after its attempts, failing with the last error", () =>
    Effect.gen(function*() {
      const { effect, starts } = scripted([transient, transient, transient, transient])
      const fiber = yield* Effect.forkChild(
        Effect.flip(retryKube(effect, { attempts: 3, baseDelay: "10 millis", maxDelay: "1 second" }))
      )
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(starts.length, 3)
      assert.strictEqual(error.reason, "transient")
      assert.strictEqual(error.detail, "the API server answered 503 (try 3)")
    }))

  it.effect("does not start a wait that would end past the deadline: fails at once with the last error", () =>
    Effect.gen(function*() {
      const { effect, starts } = scripted([
        transient,
        () => KubeError.transient(call, "the API server answered 429", { retryAfterMillis: 30_000 }),
        transient
      ])
      const fiber = yield* Effect.forkChild(
        Effect.flip(
          retryKube(effect, {
            attempts: 8,
            baseDelay: "100 millis",
            maxDelay: "1 second",
            maxRetryAfter: "60 seconds",
            deadline: 1000
          })
        )
      )
      // The first wait (80–120 ms) ends in time; the Retry-After of 30 s would not.
      yield* TestClock.adjust("200 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(starts.length, 2)
      assert.strictEqual(error.detail, "the API server answered 429")
      assert.isAtMost(yield* Clock.currentTimeMillis, 200)
    }))

  it.effect("does not retry what retrying cannot fix", () =>
    Effect.gen(function*() {
      for (const error of [KubeError.forbidden(call, 403), KubeError.notFound(call), KubeError.conflict(call)]) {
        const { effect, starts } = scripted([() => error])
        const failure = yield* Effect.flip(retryKube(effect, { attempts: 5, baseDelay: "10 millis", maxDelay: "1 second" }))
        assert.strictEqual(failure, error)
        assert.deepStrictEqual(starts, [0], error.reason)
      }
    }))

  it.effect("retries what the caller's `while` chooses, and only that", () =>
    Effect.gen(function*() {
      const conflicts: RetryBudget = { attempts: 5, baseDelay: "10 millis", maxDelay: "1 second", while: hasReason("conflict") }
      const racing = scripted([() => KubeError.conflict(call), () => KubeError.conflict(call)])
      const fiber = yield* Effect.forkChild(retryKube(racing.effect, conflicts))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(fiber), "answered")
      assert.strictEqual(racing.starts.length, 3)

      const down = scripted([transient])
      assert.strictEqual((yield* Effect.flip(retryKube(down.effect, conflicts))).reason, "transient")
      assert.strictEqual(down.starts.length, 1)
    }))
})
