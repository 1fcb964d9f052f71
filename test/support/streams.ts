/** Streams watched by a test while it acts: their elements collected in a queue, taken one at a time. */
import { Effect, Queue, Stream } from "effect"

/** Runs a stream in the background, its elements into a queue, so a test can act between elements. */
export const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<A>()
    const fiber = yield* Effect.forkChild(Stream.runForEach(stream, (value) => Queue.offer(queue, value)))
    return { queue, fiber }
  })

/** The next element, or a defect when none comes within 2 s. */
export const takeWithin = <A>(queue: Queue.Queue<A>) =>
  Queue.take(queue).pipe(
    Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.die(new Error("no element within 2 s")) })
  )
