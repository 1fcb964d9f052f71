/**
 * The serving certificate from a PEM pair in two files (a Secret mounted by
 * cert-manager), checked at start and then polled: cert-manager rotates by
 * swapping the `..data` symlink of the mounted folder, which `fs.watch` on the
 * file does not see. A new pair that is not usable yet (half written, key and
 * certificate out of step) is logged and skipped; the old one keeps being
 * served.
 */
import { Clock, type Duration, Effect } from "effect"
import { FileSystem } from "effect/FileSystem"
import { makeHolder } from "./holder.ts"
import { type CertificateInfo, checkPair, logAnnotations, type PairSources } from "./material.ts"
import { fileProblem, pollFiles } from "./poll.ts"

/**
 * The `ServingCertificate` service over `certFile` and `keyFile`, reloaded when
 * their content changes (looked at every `pollInterval`). Fails at start with a
 * `TlsMaterialError` naming the file; later problems are logged and skipped.
 */
export const fromFiles = Effect.fnUntraced(function*(certFile: string, keyFile: string, pollInterval: Duration.Input) {
  const fs = yield* FileSystem
  const sources: PairSources = { cert: certFile, key: keyFile }

  const readPair = Effect.all([
    fs.readFileString(certFile).pipe(Effect.mapError((error) => fileProblem(certFile, error))),
    fs.readFileString(keyFile).pipe(Effect.mapError((error) => fileProblem(keyFile, error)))
  ])

  const [certPem, keyPem] = yield* readPair
  const initial = yield* checkPair(certPem, keyPem, undefined, sources)
  const holder = yield* makeHolder(initial)
  yield* Effect.logInfo("serving the certificate from files").pipe(
    Effect.annotateLogs({ ...logAnnotations(initial.info), certFile, keyFile })
  )
  yield* warnIfExpired(initial.info, certFile)

  yield* pollFiles({
    read: readPair,
    initial: [certPem, keyPem],
    check: ([nextCert = "", nextKey = ""]) => checkPair(nextCert, nextKey, undefined, sources),
    publish: (checked) =>
      Effect.gen(function*() {
        const previous = holder.stateUnsafe().info
        yield* holder.publish(checked)
        yield* Effect.logInfo("reloaded the serving certificate").pipe(
          Effect.annotateLogs({ ...logAnnotations(checked.info), previousFingerprint256: previous.fingerprint256 })
        )
        yield* warnIfExpired(checked.info, certFile)
      }),
    inUse: () => ({ served: holder.stateUnsafe().info.fingerprint256 }),
    messages: {
      // Mid-swap a file can be missing for an instant; said once, the previous pair kept.
      unreadable: "cannot read the certificate files; still serving the previous certificate",
      unusable: "the certificate files changed but cannot be served yet; still serving the previous certificate",
      defect: "checking the certificate files failed unexpectedly"
    },
    interval: pollInterval
  })
  return holder.service
})

const warnIfExpired = (info: CertificateInfo, source: string) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (now >= info.notAfter.getTime()) {
      yield* Effect.logWarning("the serving certificate has expired").pipe(
        Effect.annotateLogs({ source, notAfter: info.notAfter.toISOString() })
      )
    } else if (now < info.notBefore.getTime()) {
      yield* Effect.logWarning("the serving certificate is not valid yet").pipe(
        Effect.annotateLogs({ source, notBefore: info.notBefore.toISOString() })
      )
    }
  })
