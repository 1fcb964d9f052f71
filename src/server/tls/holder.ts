/**
 * The hot-swap holder of the serving certificate: the pair served now, the
 * stream of changes and the listeners told of each new pair. Every way of
 * getting a certificate ends here, so a reload or a renewal reaches the server
 * the same way (`onChange` → `server.setSecureContext`).
 *
 * It also defines what the `ServingCertificate` service offers, since the
 * holder is what implements it.
 */
import { Clock, Effect, Scope, Stream, SubscriptionRef } from "effect"
import type { SecureContext } from "node:tls"
import type { CertificateInfo, CheckedPair, SecureContextInput, TlsMaterial } from "./material.ts"

/** What the `ServingCertificate` service offers, whichever layer provides it. */
export interface ServingCertificateShape {
  /** The pair to serve now, as `server.setSecureContext` and `tls.createSecureContext` take it. */
  readonly current: Effect.Effect<SecureContextInput>
  /** The same, synchronously: for `SNICallback` and other callbacks. */
  readonly currentUnsafe: () => SecureContextInput
  /** The whole material now, the CA included when known. */
  readonly material: Effect.Effect<TlsMaterial>
  readonly materialUnsafe: () => TlsMaterial
  /** A `tls.SecureContext` for the current pair, built once per pair: `SNICallback: (_, cb) => cb(null, secureContextUnsafe())`. */
  readonly secureContextUnsafe: () => SecureContext
  /** Who the current certificate is and how long it is valid. */
  readonly info: Effect.Effect<CertificateInfo>
  /** The CA certificate(s) to put in a webhook's caBundle, when this layer knows it (self-signed modes). */
  readonly caPem: Effect.Effect<string | undefined>
  /** True while the certificate being served is within its validity period (a readiness check). */
  readonly ready: Effect.Effect<boolean>
  /** The material now, then every new one, in order. Never fails or ends while the layer lives. */
  readonly changes: Stream.Stream<TlsMaterial>
  /**
   * Calls `listener` synchronously with every new material (not the current
   * one) until the scope closes: `server.setSecureContext` goes here. A
   * listener that throws is logged and kept.
   */
  readonly onChange: (listener: (material: TlsMaterial) => void) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * The mutable heart of every layer: the current pair, the stream of changes
 * and the listeners. Lives as long as the layer's scope.
 */
export const makeHolder = Effect.fnUntraced(function*(initial: CheckedPair) {
  let state = initial
  const ref = yield* SubscriptionRef.make<TlsMaterial>(initial.material)
  const listeners = new Set<(material: TlsMaterial) => void>()

  const publish = (next: CheckedPair) =>
    Effect.gen(function*() {
      state = next
      yield* SubscriptionRef.set(ref, next.material)
      for (const listener of [...listeners]) {
        try {
          listener(next.material)
        } catch (error) {
          yield* Effect.logWarning("a listener of serving certificate changes failed").pipe(
            Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
          )
        }
      }
    })

  const currentUnsafe = (): SecureContextInput => ({ cert: state.material.certPem, key: state.material.keyPem })

  const service: ServingCertificateShape = {
    current: Effect.sync(currentUnsafe),
    currentUnsafe,
    material: Effect.sync(() => state.material),
    materialUnsafe: () => state.material,
    secureContextUnsafe: () => state.secureContext,
    info: Effect.sync(() => state.info),
    caPem: Effect.sync(() => state.material.caPem),
    ready: Effect.map(
      Clock.currentTimeMillis,
      (now) => state.info.notBefore.getTime() <= now && now < state.info.notAfter.getTime()
    ),
    changes: SubscriptionRef.changes(ref),
    onChange: (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => listeners.add(listener)),
        () => Effect.sync(() => listeners.delete(listener))
      ).pipe(Effect.asVoid)
  }
  return { service, publish, stateUnsafe: () => state }
})
