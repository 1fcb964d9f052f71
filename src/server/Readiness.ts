/**
 * Readiness: whether this replica should get traffic. Ready once the
 * cluster configuration has loaded and the TLS material is in place; not
 * ready any more from the moment shutdown begins, so the Service stops
 * sending it requests while in-flight ones finish.
 */
import { Context, Effect, Layer, Ref } from "effect"

export interface ReadinessShape {
  readonly beginShutdown: Effect.Effect<void>
  readonly shuttingDown: Effect.Effect<boolean>
}

export class Readiness extends Context.Service<Readiness, ReadinessShape>()("filer-sidecar-injector/server/Readiness") {
  static readonly layer: Layer.Layer<Readiness> = Layer.effect(
    Readiness,
    Effect.map(Ref.make(false), (flag) => ({
      beginShutdown: Ref.set(flag, true),
      shuttingDown: Ref.get(flag)
    }))
  )
}
