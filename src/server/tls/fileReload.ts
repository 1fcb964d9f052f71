/**
 * The serving certificate from a PEM pair in two files (a Secret mounted by
 * cert-manager), checked at start and then polled: cert-manager rotates by
 * swapping the `..data` symlink of the mounted folder, which `fs.watch` on the
 * file does not see. A new pair that is not usable yet (half written, key and
 * certificate out of step) is logged and skipped; the old one keeps being
 * served.
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import { FileSystem } from "effect/FileSystem"
import type { PlatformError } from "effect/PlatformError"
import { createHash } from "node:crypto"
import { makeHolder } from "./holder.ts"
import { type CertificateInfo, checkPair, logAnnotations, type PairSources, TlsMaterialError } from "./material.ts"

const fileProblem = (file: string, error: PlatformError): TlsMaterialError => {
  const reason = error.reason
  const problem = reason._tag === "NotFound"
    ? "file not found"
    : reason._tag === "PermissionDenied"
    ? "permission denied"
    : `cannot read: ${reason._tag}${reason.description === undefined ? "" : ` (${reason.description})`}`
  return new TlsMaterialError({ source: file, problem })
}

const digest = (certPem: string, keyPem: string) =>
  createHash("sha256").update(certPem).update("\u0000").update(keyPem).digest("hex")

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

  // What the files held when last looked at, served or refused: each content is checked and logged once.
  let seen = digest(certPem, keyPem)
  let lastReadProblem: string | undefined

  const poll = Effect.gen(function*() {
    const read = yield* Effect.result(readPair)
    if (read._tag === "Failure") {
      // Mid-swap a file can be missing for an instant; say it once, keep serving.
      if (read.failure.message !== lastReadProblem) {
        lastReadProblem = read.failure.message
        yield* Effect.logWarning("cannot read the certificate files; still serving the previous certificate").pipe(
          Effect.annotateLogs({ problem: read.failure.message, served: holder.stateUnsafe().info.fingerprint256 })
        )
      }
      return
    }
    lastReadProblem = undefined
    const [nextCert, nextKey] = read.success
    const nextDigest = digest(nextCert, nextKey)
    if (nextDigest === seen) return
    seen = nextDigest
    const checked = yield* Effect.result(checkPair(nextCert, nextKey, undefined, sources))
    if (checked._tag === "Failure") {
      yield* Effect.logWarning("the certificate files changed but cannot be served yet; still serving the previous certificate").pipe(
        Effect.annotateLogs({ problem: checked.failure.message, served: holder.stateUnsafe().info.fingerprint256 })
      )
      return
    }
    const previous = holder.stateUnsafe().info
    yield* holder.publish(checked.success)
    yield* Effect.logInfo("reloaded the serving certificate").pipe(
      Effect.annotateLogs({ ...logAnnotations(checked.success.info), previousFingerprint256: previous.fingerprint256 })
    )
    yield* warnIfExpired(checked.success.info, certFile)
  })

  yield* poll.pipe(
    // A bug in one round must not stop the rotation for good.
    Effect.catchDefect((defect) =>
      Effect.logError("checking the certificate files failed unexpectedly").pipe(
        Effect.annotateLogs({ defect: defect instanceof Error ? defect.message : String(defect) })
      )
    ),
    Effect.repeat(Schedule.spaced(pollInterval)),
    Effect.forkScoped
  )
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
