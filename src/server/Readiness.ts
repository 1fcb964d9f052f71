/**
 * Readiness: whether this replica should get traffic. Ready once the
 * cluster configuration has loaded and the TLS material is in place; not
 * ready any more from the moment shutdown begins, so the Service stops
 * sending it requests while in-flight ones finish.
 *
 * Also what an operator should know that does not make the replica unready
 * (the Secrets it may not get, see docs/behaviour.md,
 * "Who may call, and what it may read"): one warning per topic, shown in
 * `/readyz`'s body.
 */
import { Context, Effect, Layer, Ref } from "effect"

export interface ReadinessShape {
  readonly beginShutdown: Effect.Effect<void>
  readonly shuttingDown: Effect.Effect<boolean>
  /** Sets the warning of `topic`, or clears it (`undefined`). */
  readonly warn: (topic: string, warning: string | undefined) => Effect.Effect<void>
  /** The warnings now, in the order their topics were first set. */
  readonly warnings: Effect.Effect<ReadonlyArray<string>>
}

export class Readiness extends Context.Service<Readiness, ReadinessShape>()("filer-sidecar-injector/server/Readiness") {
  static readonly layer: Layer.Layer<Readiness> = Layer.effect(
    Readiness,
    Effect.gen(function*() {
      const flag = yield* Ref.make(false)
      const warnings = yield* Ref.make<ReadonlyMap<string, string>>(new Map())
      return {
        beginShutdown: Ref.set(flag, true),
        shuttingDown: Ref.get(flag),
        warn: (topic, warning) =>
          Ref.update(warnings, (current) => {
            const next = new Map(current)
            if (warning === undefined) next.delete(topic)
            else next.set(topic, warning)
            return next
          }),
        warnings: Effect.map(Ref.get(warnings), (current) => [...current.values()])
      }
    })
  )
}
