/**
 * The serving certificate of the HTTPS server, and how it stays current.
 *
 * Three layers provide `ServingCertificate`:
 * - `layerFromFiles`: a PEM pair mounted from a Secret (cert-manager), checked
 *   at start, then polled and reloaded (`fileReload.ts`).
 * - `layerSelfSigned`: a CA and a serving certificate generated at start, as
 *   the original did. Every replica has its own CA.
 * - `layerSelfSignedShared`: the same, kept in a Secret so every replica serves
 *   a certificate from one CA and one caBundle works for all (`sharedCa.ts`).
 */
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import type { FileSystem } from "effect/FileSystem"
import type { KubeError } from "../../cluster/errors.ts"
import type { KubeClient } from "../../cluster/KubeClient.ts"
import { fromFiles } from "./fileReload.ts"
import { makeHolder, type ServingCertificateShape } from "./holder.ts"
import { logAnnotations, type TlsMaterialError } from "./material.ts"
import { type CertificateGenerationError, checkGenerated, generateSelfSigned, type SelfSignedOptions } from "./selfSigned.ts"
import { acquireShared, renewShared, type SharedSelfSignedOptions } from "./sharedCa.ts"

export class ServingCertificate extends Context.Service<ServingCertificate, ServingCertificateShape>()(
  "filer-sidecar-injector/server/ServingCertificate"
) {
  /**
   * A PEM pair from two files, polled every `pollInterval` (default 2 s) and
   * reloaded when their content changes. Fails at start with a
   * `TlsMaterialError` naming the file when a file is missing, unreadable,
   * not PEM, or the key does not match the certificate.
   */
  static readonly layerFromFiles = (
    certFile: string,
    keyFile: string,
    options: { readonly pollInterval?: Duration.Input } = {}
  ): Layer.Layer<ServingCertificate, TlsMaterialError, FileSystem> =>
    Layer.effect(ServingCertificate, fromFiles(certFile, keyFile, options.pollInterval ?? Duration.seconds(2)))

  /**
   * A CA and a serving certificate for the Service `serviceName` in
   * `namespace`, generated at start (RSA 4096 CA, RSA 2048 leaf, one year).
   * `caPem` gives the CA for the webhook's caBundle.
   */
  static readonly layerSelfSigned = (
    options: SelfSignedOptions
  ): Layer.Layer<ServingCertificate, CertificateGenerationError> =>
    Layer.effect(
      ServingCertificate,
      Effect.gen(function*() {
        const generated = yield* generateSelfSigned(options)
        const checked = yield* checkGenerated(generated)
        yield* Effect.logInfo("serving a self-signed certificate").pipe(
          Effect.annotateLogs({ ...logAnnotations(checked.info), generationMillis: generated.generationMillis })
        )
        return (yield* makeHolder(checked)).service
      })
    )

  /**
   * Like `layerSelfSigned`, but the CA, certificate and key live in the Secret
   * `namespace/secretName` (keys `ca.crt`, `tls.crt`, `tls.key`), which the
   * manifests ship empty, so every replica serves a certificate from the same
   * CA. The first replica fills it in place (an update guarded by the
   * resourceVersion it read); one that loses the race serves the winner's.
   *
   * A pair that expires within `minRemaining` (30 days), is unusable, or lacks
   * the Service's name is replaced in place; the CA replaced stays in the
   * Secret (`ca-previous.crt`) while it is valid, and `caPem` then holds both
   * CAs so replicas still serving the old certificate stay trusted.
   *
   * Every `renewalCheckInterval` a running replica re-reads the Secret: it
   * renews the pair when due, serves a pair another replica wrote, and
   * publishes the new material (`changes`, `onChange`), so a server that runs
   * for a year never serves an expired certificate.
   *
   * Where the Secret is missing, or reading or updating it is forbidden, the
   * CA is kept in memory (as the Go injector did), with a warning naming the
   * Secret: replicas then do not share it.
   */
  static readonly layerSelfSignedShared = (
    options: SharedSelfSignedOptions
  ): Layer.Layer<ServingCertificate, KubeError | CertificateGenerationError | TlsMaterialError, KubeClient> =>
    Layer.effect(
      ServingCertificate,
      Effect.gen(function*() {
        const checked = yield* acquireShared(options)
        const holder = yield* makeHolder(checked)
        yield* renewShared(options, holder).pipe(
          Effect.repeat(Schedule.spaced(options.renewalCheckInterval ?? Duration.hours(6))),
          Effect.forkScoped
        )
        return holder.service
      })
    )
}
