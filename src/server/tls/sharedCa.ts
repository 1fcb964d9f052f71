/**
 * The self-signed certificate shared by every replica through a chain of
 * Secrets `name`, `name-2`, `name-3`…, so one caBundle trusts them all. The
 * first replica creates a Secret; one that loses the race reads the winner's.
 * A Secret that cannot be served or expires soon is left alone (KubeClient
 * cannot replace or delete Secrets) and the next one in the chain is used,
 * both at start (`acquireShared`) and by a running replica (`renewShared`).
 *
 * Where the Secret may be neither read nor created (the Go injector's RBAC
 * cannot create Secrets), the CA is kept in memory, as the Go injector kept
 * it: served and registered all the same, but not shared between replicas.
 */
import { Clock, Duration, Effect, Redacted } from "effect"
import { X509Certificate } from "node:crypto"
import { hasReason, isKubeError } from "../../cluster/errors.ts"
import { retryKube, startupBudget } from "../../cluster/retry.ts"
import { KubeClient } from "../../cluster/KubeClient.ts"
import type { Secret } from "../../cluster/objects.ts"
import { type CheckedPair, checkPair, logAnnotations, makeTlsMaterial, TlsMaterialError } from "./material.ts"
import { checkGenerated, generateSelfSigned, type SelfSignedOptions } from "./selfSigned.ts"

export interface SharedSelfSignedOptions extends SelfSignedOptions {
  readonly secretName: string
  /** A Secret is reused while both certificates in it stay valid this long: 30 days by default. */
  readonly minRemaining?: Duration.Input
  /**
   * How often a running replica checks whether the certificate it serves is
   * within `minRemaining` of its end, and then moves to the next Secret:
   * every 6 hours by default.
   */
  readonly renewalCheckInterval?: Duration.Input
}

const secretLabels = {
  "app.kubernetes.io/name": "filer-sidecar-injector",
  "app.kubernetes.io/component": "webhook-serving-certificate"
}

/** Generations after the first before giving up: one a year, more than the injector will live. */
const maxGenerations = 20

const secretNameOf = (base: string, generation: number) => generation === 1 ? base : `${base}-${generation}`

type SecretVerdict =
  | { readonly usable: true; readonly checked: CheckedPair }
  | { readonly usable: false; readonly reason: string; readonly caPemStillValid: string | undefined }

/** Whether a shared Secret can be served: complete, matching, issued by its CA, naming the Service, valid long enough. */
const judgeSecret = (secret: Secret, options: SharedSelfSignedOptions, now: number): Effect.Effect<SecretVerdict> =>
  Effect.gen(function*() {
    const where = `secret ${secret.namespace}/${secret.name}`
    const value = (key: string) => {
      const entry = secret.data[key]
      return entry === undefined ? undefined : Redacted.value(entry)
    }
    const caPem = value("ca.crt")
    const certPem = value("tls.crt")
    const keyPem = value("tls.key")
    let ca: X509Certificate | undefined
    try {
      ca = caPem === undefined ? undefined : new X509Certificate(caPem)
    } catch {
      ca = undefined
    }
    const caStillValid = ca !== undefined && caPem !== undefined && now < new Date(ca.validTo).getTime()
      ? caPem
      : undefined
    const unusable = (reason: string): SecretVerdict => ({ usable: false, reason, caPemStillValid: caStillValid })
    if (caPem === undefined || certPem === undefined || keyPem === undefined) {
      return unusable(`${where} lacks one of ca.crt, tls.crt, tls.key`)
    }
    if (ca === undefined) return unusable(`${where} key ca.crt is not a PEM certificate`)
    const checked = yield* Effect.result(checkPair(certPem, keyPem, caPem, {
      cert: `${where} key tls.crt`,
      key: `${where} key tls.key`
    }))
    if (checked._tag === "Failure") return unusable(checked.failure.message)
    const leaf = checked.success.certificate
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) {
      return unusable(`${where} key tls.crt was not issued by its ca.crt`)
    }
    const host = `${options.serviceName}.${options.namespace}.svc`
    if (leaf.checkHost(host) === undefined) return unusable(`${where} key tls.crt does not name ${host}`)
    const minRemaining = Duration.toMillis(Duration.fromInputUnsafe(options.minRemaining ?? Duration.days(30)))
    const expires = Math.min(checked.success.info.notAfter.getTime(), new Date(ca.validTo).getTime())
    if (expires - now < minRemaining) {
      return unusable(`${where} expires at ${new Date(expires).toISOString()}, too soon to keep using it`)
    }
    return { usable: true, checked: checked.success }
  })

/** Adds a previous CA, still valid, after the new one: replicas serving the old certificate stay trusted. */
const withPreviousCa = (checked: CheckedPair, previousCa: string | undefined): CheckedPair =>
  previousCa === undefined || checked.material.caPem === undefined || checked.material.caPem.includes(previousCa.trim())
    ? checked
    : {
      ...checked,
      material: makeTlsMaterial({
        ...checked.material,
        caPem: `${checked.material.caPem.trimEnd()}\n${previousCa.trim()}\n`
      })
    }

/**
 * A Secret the ServiceAccount may not read or create. The one place that
 * tells a forbidden call from other failures, so the KubeError it reads can
 * change shape without touching the fallback.
 */
const isForbidden = (error: unknown): boolean => isKubeError(error) && error.reason === "forbidden"

/** Without a Secret to share it through: a CA of this replica's own, in memory, with one warning each time. */
const inMemoryFallback = (options: SharedSelfSignedOptions, refused: { readonly message: string }) =>
  Effect.gen(function*() {
    const generated = yield* generateSelfSigned(options)
    const checked = yield* checkGenerated(generated)
    yield* Effect.logWarning(
      `cannot keep the self-signed CA in the Secret ${options.namespace}/${options.secretName} (forbidden), ` +
        "so it is kept in memory, as the Go injector did: replicas will not share a CA, and each registers its own " +
        "in the webhook configuration, so run a single replica; to share it, give the ServiceAccount the rights " +
        `on Secrets in namespace ${options.namespace} that manifests/overlays/self-signed grants`
    ).pipe(Effect.annotateLogs({ ...logAnnotations(checked.info), refused: refused.message }))
    return checked
  })

/**
 * The first usable Secret of the chain, created when the chain ends before
 * one is found, with the previous CA added while it is still valid. When
 * reading or creating it is forbidden, a CA kept in memory instead.
 */
export const acquireShared = (options: SharedSelfSignedOptions) =>
  acquireFromSecrets(options).pipe(
    Effect.catchIf(isForbidden, (refused) => inMemoryFallback(options, refused))
  )

const acquireFromSecrets = Effect.fnUntraced(function*(options: SharedSelfSignedOptions) {
  const kube = yield* KubeClient
  let previousCa: string | undefined
  for (let generation = 1; generation <= maxGenerations; generation++) {
    const name = secretNameOf(options.secretName, generation)
    const now = yield* Clock.currentTimeMillis
    const existing = yield* retryKube(kube.getSecret(options.namespace, name), startupBudget).pipe(
      Effect.catchIf(hasReason("not_found"), () => Effect.succeed(undefined))
    )
    if (existing !== undefined) {
      const verdict = yield* judgeSecret(existing, options, now)
      if (verdict.usable) {
        yield* Effect.logInfo("serving the shared self-signed certificate").pipe(
          Effect.annotateLogs({ ...logAnnotations(verdict.checked.info), secret: `${options.namespace}/${name}` })
        )
        return withPreviousCa(verdict.checked, previousCa)
      }
      yield* Effect.logWarning("not using this shared certificate Secret; trying the next one").pipe(
        Effect.annotateLogs({ reason: verdict.reason, next: secretNameOf(options.secretName, generation + 1) })
      )
      previousCa = verdict.caPemStillValid
      continue
    }

    const generated = yield* generateSelfSigned(options)
    const created = yield* retryKube(kube.createSecret({
      namespace: options.namespace,
      name,
      labels: secretLabels,
      stringData: { "ca.crt": generated.caPem, "tls.crt": generated.certPem, "tls.key": generated.keyPem }
    }), startupBudget).pipe(
      Effect.as(true),
      Effect.catchIf(hasReason("conflict"), () => Effect.succeed(false))
    )
    if (created) {
      const checked = yield* checkGenerated(generated)
      yield* Effect.logInfo("generated the shared self-signed certificate and stored it").pipe(
        Effect.annotateLogs({
          ...logAnnotations(checked.info),
          secret: `${options.namespace}/${name}`,
          generationMillis: generated.generationMillis
        })
      )
      return withPreviousCa(checked, previousCa)
    }

    // Another replica created it meanwhile: serve theirs, so both share one CA.
    const winner = yield* retryKube(kube.getSecret(options.namespace, name), startupBudget)
    const verdict = yield* judgeSecret(winner, options, yield* Clock.currentTimeMillis)
    if (!verdict.usable) {
      return yield* new TlsMaterialError({
        source: `secret ${options.namespace}/${name}`,
        problem: `another replica created it, but it cannot be served: ${verdict.reason}`
      })
    }
    yield* Effect.logInfo("another replica created the shared certificate first; serving theirs").pipe(
      Effect.annotateLogs({ ...logAnnotations(verdict.checked.info), secret: `${options.namespace}/${name}` })
    )
    return withPreviousCa(verdict.checked, previousCa)
  }
  return yield* new TlsMaterialError({
    source: `secret ${options.namespace}/${options.secretName}`,
    problem: `none of the ${maxGenerations} Secrets ${options.secretName}, ${options.secretName}-2… is usable; delete them to start over`
  })
})

/**
 * One renewal check of a running replica: when the certificate it serves is
 * within `minRemaining` of its end, the next usable Secret (another replica's,
 * or one it creates) becomes the served material. A failure (the API down,
 * say) is logged and the old certificate kept until the next check.
 */
export const renewShared = (
  options: SharedSelfSignedOptions,
  holder: { readonly publish: (next: CheckedPair) => Effect.Effect<void>; readonly stateUnsafe: () => CheckedPair }
): Effect.Effect<void, never, KubeClient> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const served = holder.stateUnsafe().info
    const minRemaining = Duration.toMillis(Duration.fromInputUnsafe(options.minRemaining ?? Duration.days(30)))
    if (served.notAfter.getTime() - now >= minRemaining) return
    const next = yield* acquireShared(options)
    if (next.info.fingerprint256 === served.fingerprint256) return
    yield* holder.publish(next)
    yield* Effect.logInfo("renewed the shared self-signed certificate before it expires").pipe(
      Effect.annotateLogs({ ...logAnnotations(next.info), previousFingerprint256: served.fingerprint256 })
    )
  }).pipe(
    Effect.catch((error) => renewalFailed(error.message)),
    // A bug in one check must not stop the renewals for good.
    Effect.catchDefect((defect) => renewalFailed(defect instanceof Error ? defect.message : "unexpected failure"))
  )

const renewalFailed = (problem: string) =>
  Effect.logError("cannot renew the shared self-signed certificate; serving the current one until the next check").pipe(
    Effect.annotateLogs({ problem: problem.slice(0, 300) })
  )
