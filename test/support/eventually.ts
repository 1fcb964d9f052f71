/** Waiting in a test for something the code does in the background, without a timing assertion beyond a bound. */
import { assert } from "@effect/vitest"
import { Effect } from "effect"

/** Polls `attempt` every 20 ms until `condition` holds of its value, for up to `millis`; fails the test when it never does. */
export const eventually = <A, E, R>(
  what: string,
  attempt: Effect.Effect<A, E, R>,
  condition: (value: A) => boolean,
  millis = 5000
) =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    for (;;) {
      const value = yield* attempt
      if (condition(value)) return value
      if (Date.now() > deadline) return assert.fail(`${what}: not within ${millis} ms`)
      yield* Effect.sleep("20 millis")
    }
  })
