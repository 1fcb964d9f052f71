/**
 * The self-signed certificate shared by every replica through one Secret,
 * `secretName`, which the self-signed overlay ships empty: the server only
 * gets it and updates it by name, never creates one
 * (docs/behaviour.md, "Who may call, and what it may read").
 *
 * A replica serves the pair the Secret holds while it stays valid long
 * enough. Otherwise (empty as shipped, unusable, near its end) it writes a new
 * pair in place, guarded by the resourceVersion it read; a replica that loses
 * that race re-reads and serves the winner's. The CA it replaces stays in the
 * Secret (`ca-previous.crt`) and in the caBundle while it is valid, so replicas
 * still serving the old certificate stay trusted.
 *
 * Every replica re-reads the Secret at each renewal check: it renews the pair
 * when due, and otherwise picks up a pair another replica wrote. Peers thus
 * follow a renewal within one check interval (6 hours), well inside the 30
 * days a pair is renewed before its end, with no watch on Secrets to grant.
 *
 * Where the Secret does not exist (the Go injector's manifests, say) or may
 * not be read or updated, the CA is kept in memory, as the Go injector kept
 * it: served and registered all the same, but not shared between replicas.
 */
import { Clock, Duration, Effect, Redacted } from "effect"
import { X509Certificate } from "node:crypto"
import { hasReason, isKubeError, type KubeError } from "../../cluster/errors.ts"
import { retryKube, startupBudget } from "../../cluster/retry.ts"
import { KubeClient } from "../../cluster/KubeClient.ts"
import type { Secret } from "../../cluster/objects.ts"
import { type CheckedPair, checkPair, logAnnotations, makeTlsMaterial, TlsMaterialError } from "./material.ts"
import { type CertificateGenerationError, checkGenerated, generateSelfSigned, type SelfSignedOptions } from "./selfSigned.ts"

export interface SharedSelfSignedOptions extends SelfSignedOptions {
  readonly secretName: string
  /** A pair is kept while both certificates in it stay valid this long: 30 days by default. */
  readonly minRemaining?: Duration.Input
  /**
   * How often a running replica re-reads the Secret, renews the pair when it
   * is within `minRemaining` of its end, and serves a pair another replica
   * wrote: every 6 hours by default.
   */
  readonly renewalCheckInterval?: Duration.Input
}

/** The Secret's keys: the pair served, its CA, and the CA it replaced (kept while valid). */
const keys = { ca: "ca.crt", cert: "tls.crt", key: "tls.key", previousCa: "ca-previous.crt" } as const

/** Writes that lose a race before one wins: two replicas need two. */
const maxWriteAttempts = 3

const minRemainingMillis = (options: SharedSelfSignedOptions) =>
  Duration.toMillis(Duration.fromInputUnsafe(options.minRemaining ?? Duration.days(30)))

/** `pem` when it is a certificate still valid at `now`. */
const stillValid = (pem: string | undefined, now: number): string | undefined => {
  if (pem === undefined) return undefined
  try {
    return now < new Date(new X509Certificate(pem).validTo).getTime() ? pem : undefined
  } catch {
    return undefined
  }
}

type SecretVerdict =
  | { readonly usable: true; readonly checked: CheckedPair; readonly previousCa: string | undefined }
  | { readonly usable: false; readonly reason: string; readonly caPemStillValid: string | undefined }

/** Whether the Secret's pair can be served: complete, matching, issued by its CA, naming the Service, valid long enough. */
const judgeSecret = (secret: Secret, options: SharedSelfSignedOptions, now: number): Effect.Effect<SecretVerdict> =>
  Effect.gen(function*() {
    const where = `secret ${secret.namespace}/${secret.name}`
    const value = (key: string) => {
      const entry = secret.data[key]
      return entry === undefined ? undefined : Redacted.value(entry)
    }
    const caPem = value(keys.ca)
    const certPem = value(keys.cert)
    const keyPem = value(keys.key)
    const unusable = (reason: string): SecretVerdict => ({
      usable: false,
      reason,
      caPemStillValid: stillValid(caPem, now)
    })
    if (Object.keys(secret.data).length === 0) return unusable(`${where} is empty (as shipped)`)
    if (caPem === undefined || certPem === undefined || keyPem === undefined) {
      return unusable(`${where} lacks one of ${keys.ca}, ${keys.cert}, ${keys.key}`)
    }
    let ca: X509Certificate
    try {
      ca = new X509Certificate(caPem)
    } catch {
      return unusable(`${where} key ${keys.ca} is not a PEM certificate`)
    }
    const checked = yield* Effect.result(checkPair(certPem, keyPem, caPem, {
      cert: `${where} key ${keys.cert}`,
      key: `${where} key ${keys.key}`
    }))
    if (checked._tag === "Failure") return unusable(checked.failure.message)
    const leaf = checked.success.certificate
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) {
      return unusable(`${where} key ${keys.cert} was not issued by its ${keys.ca}`)
    }
    const host = `${options.serviceName}.${options.namespace}.svc`
    if (leaf.checkHost(host) === undefined) return unusable(`${where} key ${keys.cert} does not name ${host}`)
    const expires = Math.min(checked.success.info.notAfter.getTime(), new Date(ca.validTo).getTime())
    if (expires - now < minRemainingMillis(options)) {
      return unusable(`${where} expires at ${new Date(expires).toISOString()}, too soon to keep using it`)
    }
    return { usable: true, checked: checked.success, previousCa: stillValid(value(keys.previousCa), now) }
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

/** What a replica serves, and where it came from, for the log. */
interface Held {
  readonly checked: CheckedPair
  /** `read`: the Secret's pair; `written`: a new pair this replica wrote into it; `memory`: not shared. */
  readonly source: "read" | "written" | "memory"
  /** Why a new pair was made. */
  readonly reason?: string
  /** The write lost a race first, and this is the winner's pair. */
  readonly lostRace?: boolean
}

/**
 * The pair the Secret holds or, when it holds none that can be served, a new
 * one written into it. Fails with the KubeError of the read or the write:
 * `not_found` and `forbidden` are the caller's to fall back on.
 */
const fromSecret = Effect.fnUntraced(function*(
  options: SharedSelfSignedOptions
): Effect.fn.Return<Held, KubeError | CertificateGenerationError | TlsMaterialError, KubeClient> {
  const kube = yield* KubeClient
  let lostRace = false
  for (let attempt = 1; attempt <= maxWriteAttempts; attempt++) {
    const secret = yield* retryKube(kube.getSecret(options.namespace, options.secretName), startupBudget)
    const verdict = yield* judgeSecret(secret, options, yield* Clock.currentTimeMillis)
    if (verdict.usable) return { checked: withPreviousCa(verdict.checked, verdict.previousCa), source: "read", lostRace }

    const generated = yield* generateSelfSigned(options)
    const previousCa = verdict.caPemStillValid
    const values = {
      [keys.ca]: generated.caPem,
      [keys.cert]: generated.certPem,
      [keys.key]: generated.keyPem,
      ...(previousCa === undefined ? {} : { [keys.previousCa]: previousCa })
    }
    // A retried write that had gone through meets a conflict too: the re-read then finds our own pair.
    const written = yield* retryKube(kube.replaceSecret(secret, values), startupBudget).pipe(
      Effect.as(true),
      Effect.catchIf(hasReason("conflict"), () => Effect.succeed(false))
    )
    if (written) {
      const checked = yield* checkGenerated(generated)
      return { checked: withPreviousCa(checked, previousCa), source: "written", reason: verdict.reason, lostRace }
    }
    lostRace = true
  }
  return yield* new TlsMaterialError({
    source: `secret ${options.namespace}/${options.secretName}`,
    problem: `it changed under each of ${maxWriteAttempts} attempts to write a new certificate into it`
  })
})

/** Why the Secret cannot hold the CA, for the errors that keep it in memory instead; undefined for the others. */
const whyNotShared = (error: unknown): string | undefined =>
  !isKubeError(error)
    ? undefined
    : error.reason === "not_found"
    ? "it does not exist"
    : error.reason === "forbidden"
    ? `the ServiceAccount may not ${error.verb} it`
    : undefined

const cannotShare = (error: unknown): error is KubeError => whyNotShared(error) !== undefined

/** Without the Secret: a CA of this replica's own, in memory, with one warning each time. */
const inMemoryFallback = (options: SharedSelfSignedOptions, refused: KubeError) =>
  Effect.gen(function*() {
    const generated = yield* generateSelfSigned(options)
    const checked = yield* checkGenerated(generated)
    const secret = `${options.namespace}/${options.secretName}`
    yield* Effect.logWarning(
      `cannot keep the self-signed CA in the Secret ${secret} (${whyNotShared(refused)}), ` +
        "so it is kept in memory, as the Go injector did: replicas will not share a CA, and each registers its own " +
        "in the webhook configuration, so run a single replica; to share it, apply manifests/overlays/self-signed, " +
        `which ships that Secret empty and lets the ServiceAccount get and update it by name`
    ).pipe(Effect.annotateLogs({ ...logAnnotations(checked.info), secret, refused: refused.message }))
    return { checked, source: "memory" } satisfies Held
  })

const secretAnnotation = (options: SharedSelfSignedOptions) => ({ secret: `${options.namespace}/${options.secretName}` })

/** One line for what a replica now serves; the in-memory fallback has logged its warning already. */
const logHeld = (held: Held, options: SharedSelfSignedOptions, renewing: boolean) => {
  if (held.source === "memory") return Effect.void
  const message = held.source === "written"
    ? renewing
      ? "renewed the shared self-signed certificate in its Secret"
      : "generated the shared self-signed certificate and stored it in its Secret"
    : held.lostRace
    ? "another replica wrote the shared certificate first; serving theirs"
    : renewing
    ? "serving the shared certificate another replica wrote into the Secret"
    : "serving the shared self-signed certificate"
  return Effect.logInfo(message).pipe(Effect.annotateLogs({
    ...logAnnotations(held.checked.info),
    ...secretAnnotation(options),
    ...(held.reason === undefined ? {} : { reason: held.reason })
  }))
}

/**
 * The Secret's pair, or a new one written into it, with the previous CA
 * added while it is still valid. Where the Secret is missing or may not be
 * read or updated, a CA kept in memory instead.
 */
export const acquireShared = (options: SharedSelfSignedOptions) =>
  Effect.gen(function*() {
    const held = yield* fromSecret(options).pipe(
      Effect.catchIf(cannotShare, (refused) => inMemoryFallback(options, refused))
    )
    yield* logHeld(held, options, false)
    return held.checked
  })

/**
 * One check of a running replica: re-reads the Secret and serves what it
 * holds now (renewed in place first when due), publishing only a change of
 * certificate or of caBundle (a previous CA that expired leaves it). A replica
 * without the Secret renews in memory when due, and otherwise keeps quiet. A
 * failure (the API down, say) is logged and the current pair kept until the
 * next check.
 */
export const renewShared = (
  options: SharedSelfSignedOptions,
  holder: { readonly publish: (next: CheckedPair) => Effect.Effect<void>; readonly stateUnsafe: () => CheckedPair }
): Effect.Effect<void, never, KubeClient> =>
  Effect.gen(function*() {
    const served = holder.stateUnsafe()
    const due = served.info.notAfter.getTime() - (yield* Clock.currentTimeMillis) < minRemainingMillis(options)
    const held = yield* fromSecret(options).pipe(
      Effect.catchIf(cannotShare, (refused) => due ? inMemoryFallback(options, refused) : Effect.succeed(undefined))
    )
    if (held === undefined) return
    const next = held.checked
    if (next.info.fingerprint256 === served.info.fingerprint256 && next.material.caPem === served.material.caPem) return
    yield* holder.publish(next)
    if (next.info.fingerprint256 === served.info.fingerprint256) {
      return yield* Effect.logInfo("the previous self-signed CA expired; it leaves the caBundle").pipe(
        Effect.annotateLogs(secretAnnotation(options))
      )
    }
    yield* logHeld(held, options, true).pipe(
      Effect.annotateLogs({ previousFingerprint256: served.info.fingerprint256 })
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
