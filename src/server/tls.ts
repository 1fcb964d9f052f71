/**
 * The serving certificate of the HTTPS server, and how it stays current.
 *
 * Three layers provide `ServingCertificate`:
 * - `layerFromFiles`: a PEM pair mounted from a Secret (cert-manager). Checked
 *   at start, then polled: cert-manager rotates by swapping the `..data`
 *   symlink of the mounted folder, which `fs.watch` on the file does not see.
 *   A new pair that is not usable yet (half written, key and certificate out
 *   of step) is logged and skipped; the old one keeps being served.
 * - `layerSelfSigned`: a CA and a serving certificate generated at start, as
 *   the original did. Every replica has its own CA.
 * - `layerSelfSignedShared`: the same, kept in a Secret so every replica serves
 *   a certificate from one CA and one caBundle works for all.
 *
 * No private key ever reaches a log line or an error message: materials print
 * their key as `<redacted>`, and key parsing errors are replaced by fixed text.
 */
import type * as X509 from "@peculiar/x509"
import { Clock, Context, Duration, Effect, Layer, Redacted, Schedule, Schema, Scope, Stream, SubscriptionRef } from "effect"
import { FileSystem } from "effect/FileSystem"
import type { PlatformError } from "effect/PlatformError"
import { createHash, createPrivateKey, KeyObject, randomBytes, webcrypto, X509Certificate } from "node:crypto"
import { isIP } from "node:net"
import { createSecureContext, type SecureContext } from "node:tls"
import { inspect } from "node:util"
import { hasReason, isRetryable, type KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import type { Secret } from "../cluster/objects.ts"

// ---------------------------------------------------------------------------
// Material
// ---------------------------------------------------------------------------

/** A certificate (PEM, leaf first, chain after it), its private key (PEM), and the CA that issued it when known. */
export interface TlsMaterial {
  readonly certPem: string
  readonly keyPem: string
  /** The CA certificate(s) to trust, PEM: known in the self-signed modes, `undefined` for files. */
  readonly caPem: string | undefined
}

/** What `tls.createSecureContext`, `https.createServer` and `server.setSecureContext` take. */
export interface SecureContextInput {
  readonly cert: string
  readonly key: string
}

/** Who the served certificate is, for logs and health: never the key. */
export interface CertificateInfo {
  /** SHA-256 fingerprint, colon-separated hex, as `X509Certificate.fingerprint256`. */
  readonly fingerprint256: string
  readonly serialNumber: string
  readonly subject: string
  readonly issuer: string
  readonly subjectAltName: string | undefined
  readonly notBefore: Date
  readonly notAfter: Date
}

const redactedMaterial = (material: TlsMaterial) => ({
  certPem: material.certPem,
  keyPem: "<redacted>",
  caPem: material.caPem
})

/**
 * A `TlsMaterial` that prints its key as `<redacted>` (JSON, `util.inspect`,
 * Effect's log formatter), so logging one by mistake leaks nothing.
 */
export const makeTlsMaterial = (fields: TlsMaterial): TlsMaterial => {
  const material = { certPem: fields.certPem, keyPem: fields.keyPem, caPem: fields.caPem }
  Object.defineProperties(material, {
    toJSON: { value: () => redactedMaterial(material), enumerable: false },
    toString: { value: () => `TlsMaterial(${JSON.stringify(redactedMaterial(material))})`, enumerable: false },
    [inspect.custom]: { value: () => redactedMaterial(material), enumerable: false }
  })
  return material
}

const describeCertificate = (certificate: X509Certificate): CertificateInfo => ({
  fingerprint256: certificate.fingerprint256,
  serialNumber: certificate.serialNumber,
  subject: certificate.subject,
  issuer: certificate.issuer,
  subjectAltName: certificate.subjectAltName,
  notBefore: new Date(certificate.validFrom),
  notAfter: new Date(certificate.validTo)
})

const logAnnotations = (info: CertificateInfo) => ({
  fingerprint256: info.fingerprint256,
  subject: info.subject,
  subjectAltName: info.subjectAltName ?? "",
  notAfter: info.notAfter.toISOString()
})

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * A certificate or key that cannot be served. `source` names where it came
 * from: a file path, or a Secret and its key. `problem` never quotes the key.
 */
export class TlsMaterialError extends Schema.TaggedError<TlsMaterialError>()("TlsMaterialError", {
  source: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `${this.source}: ${this.problem}`
  }
}

/** Generating keys or certificates failed (WebCrypto refused). */
export class CertificateGenerationError extends Schema.TaggedError<CertificateGenerationError>()(
  "CertificateGenerationError",
  { problem: Schema.String }
) {
  override get message() {
    return `cannot generate the self-signed certificate: ${this.problem}`
  }
}

// ---------------------------------------------------------------------------
// Checking a pair
// ---------------------------------------------------------------------------

/** A pair known to be servable: parsed, matching, accepted by Node's TLS. */
export interface CheckedPair {
  readonly material: TlsMaterial
  readonly info: CertificateInfo
  readonly certificate: X509Certificate
  readonly secureContext: SecureContext
}

export interface PairSources {
  readonly cert: string
  readonly key: string
}

const hasPemBlock = (text: string, label: RegExp) => new RegExp(`-----BEGIN ${label.source}-----`).test(text)

/**
 * Checks that `certPem` is a PEM certificate, `keyPem` an unencrypted PEM
 * private key, that they belong together, and that Node's TLS accepts them.
 * Errors name `sources.cert` or `sources.key`; none quotes the key or the
 * parser's message about it.
 */
export const checkPair = (
  certPem: string,
  keyPem: string,
  caPem: string | undefined,
  sources: PairSources
): Effect.Effect<CheckedPair, TlsMaterialError> =>
  Effect.suspend(() => {
    const problem = (source: string, text: string) => Effect.fail(new TlsMaterialError({ source, problem: text }))
    if (certPem.trim() === "") return problem(sources.cert, "is empty")
    if (!hasPemBlock(certPem, /CERTIFICATE/)) return problem(sources.cert, "holds no PEM certificate (BEGIN CERTIFICATE)")
    let certificate: X509Certificate
    try {
      certificate = new X509Certificate(certPem)
    } catch (error) {
      return problem(sources.cert, `is not a valid PEM certificate (${error instanceof Error ? error.message : "unreadable"})`)
    }
    if (keyPem.trim() === "") return problem(sources.key, "is empty")
    if (!hasPemBlock(keyPem, /(RSA |EC |ENCRYPTED )?PRIVATE KEY/)) {
      return problem(sources.key, "holds no PEM private key (BEGIN PRIVATE KEY)")
    }
    if (hasPemBlock(keyPem, /ENCRYPTED PRIVATE KEY/) || /Proc-Type: 4,ENCRYPTED/.test(keyPem)) {
      return problem(sources.key, "holds an encrypted private key; give it unencrypted")
    }
    let key: KeyObject
    try {
      key = createPrivateKey(keyPem)
    } catch {
      // The parser's message is not passed on: it is about the key.
      return problem(sources.key, "is not a valid PEM private key")
    }
    if (!certificate.checkPrivateKey(key)) {
      return problem(sources.key, `does not match the certificate in ${sources.cert} (a half-written or mixed pair?)`)
    }
    let secureContext: SecureContext
    try {
      secureContext = createSecureContext({ cert: certPem, key: keyPem })
    } catch {
      return problem(sources.cert, "is refused by Node's TLS together with its key")
    }
    return Effect.succeed({
      material: makeTlsMaterial({ certPem, keyPem, caPem }),
      info: describeCertificate(certificate),
      certificate,
      secureContext
    })
  })

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

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
        const checked = yield* checkPair(generated.certPem, generated.keyPem, generated.caPem, {
          cert: "generated certificate",
          key: "generated key"
        }).pipe(Effect.orDie)
        yield* Effect.logInfo("serving a self-signed certificate").pipe(
          Effect.annotateLogs({ ...logAnnotations(checked.info), generationMillis: generated.generationMillis })
        )
        return (yield* makeHolder(checked)).service
      })
    )

  /**
   * Like `layerSelfSigned`, but the CA, certificate and key live in the Secret
   * `namespace/secretName` (keys `ca.crt`, `tls.crt`, `tls.key`), so every
   * replica serves a certificate from the same CA. The first replica creates
   * it; one that loses the race to create it reads the winner's.
   *
   * A Secret that expires within `minRemaining` (30 days), is unusable, or
   * lacks the Service's name is left alone and the next one in the chain
   * `secretName-2`, `secretName-3`… is used (KubeClient cannot replace or
   * delete Secrets); while the old CA is still valid, `caPem` holds both CAs
   * so replicas still serving the old certificate stay trusted.
   *
   * A running replica does the same every `renewalCheckInterval`: once its
   * certificate is within `minRemaining` of its end, it moves to the next
   * Secret and publishes the new material (`changes`, `onChange`), so a
   * server that runs for a year never serves an expired certificate.
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

/**
 * The mutable heart of every layer: the current pair, the stream of changes
 * and the listeners. Lives as long as the layer's scope.
 */
const makeHolder = Effect.fnUntraced(function*(initial: CheckedPair) {
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

  const service = ServingCertificate.of({
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
  })
  return { service, publish, stateUnsafe: () => state }
})

// ---------------------------------------------------------------------------
// From files
// ---------------------------------------------------------------------------

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

const fromFiles = Effect.fnUntraced(function*(certFile: string, keyFile: string, pollInterval: Duration.Input) {
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

// ---------------------------------------------------------------------------
// Self-signed
// ---------------------------------------------------------------------------

export interface SelfSignedOptions {
  /** The Service in front of the injector, e.g. `filer-sidecar-injector`. */
  readonly serviceName: string
  readonly namespace: string
  /** More DNS names or IP addresses for the serving certificate. */
  readonly extraDnsNames?: ReadonlyArray<string>
  /** CA key size, 4096 by default as the original. Tests use 2048 to save time. */
  readonly caKeyBits?: number
  /** Serving key size, 2048 by default. */
  readonly leafKeyBits?: number
  /** Validity of the CA and the certificate, one year by default. */
  readonly validity?: Duration.Input
}

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

export interface GeneratedMaterial extends TlsMaterial {
  readonly caPem: string
  /** How long generating both keys and certificates took. */
  readonly generationMillis: number
}

/** The DNS names and IP addresses a serving certificate for `serviceName` in `namespace` carries. */
export const servingNames = (options: SelfSignedOptions): ReadonlyArray<string> => {
  const { serviceName, namespace } = options
  const names = [
    serviceName,
    `${serviceName}.${namespace}`,
    `${serviceName}.${namespace}.svc`,
    `${serviceName}.${namespace}.svc.cluster.local`,
    "localhost",
    "127.0.0.1",
    ...(options.extraDnsNames ?? [])
  ]
  return [...new Set(names.filter((name) => name !== ""))]
}

let x509Loaded: Promise<typeof X509> | undefined

/** @peculiar/x509, loaded on first use (the file mode never needs it), over Node's WebCrypto. */
const loadX509 = (): Promise<typeof X509> => {
  if (x509Loaded === undefined) {
    // @peculiar/x509 loads tsyringe, which needs the reflect-metadata polyfill first.
    x509Loaded = import("reflect-metadata").then(() => import("@peculiar/x509")).then((x509) => {
      x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
      return x509
    })
  }
  return x509Loaded
}

const rsa = (modulusLength: number): webcrypto.RsaHashedKeyGenParams => ({
  name: "RSASSA-PKCS1-v1_5",
  modulusLength,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256"
})

/** A positive 128-bit serial number, hex. */
const serialNumber = () => {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return bytes.toString("hex")
}

const pemOfPrivateKey = (key: webcrypto.CryptoKey): string =>
  KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString()

/** @peculiar/x509 ends PEM without a newline; two such texts concatenated are no longer PEM. */
const withFinalNewline = (pem: string) => pem.endsWith("\n") ? pem : `${pem}\n`

/** RFC 4514 value escaping for the few characters a Service name could bring. */
const dnValue = (value: string) => value.replace(/([,+"\\<>;=])/g, "\\$1")

/**
 * Generates a CA (key usage keyCertSign and cRLSign, basicConstraints CA,
 * path length 0) and a serving certificate signed by it (serverAuth, SANs from
 * `servingNames`). Both keys are generated at once, off the main thread.
 */
export const generateSelfSigned = (options: SelfSignedOptions): Effect.Effect<GeneratedMaterial, CertificateGenerationError> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const validity = Duration.toMillis(Duration.fromInputUnsafe(options.validity ?? Duration.days(365)))
    // Backdated a little: a node whose clock is a bit behind must not see a certificate from the future.
    const notBefore = new Date(started - 5 * 60_000)
    const notAfter = new Date(started + validity)
    const names = servingNames(options)
    const result = yield* Effect.tryPromise({
      try: async () => {
        const x509 = await loadX509()
        const caAlgorithm = rsa(options.caKeyBits ?? 4096)
        const leafAlgorithm = rsa(options.leafKeyBits ?? 2048)
        const [caKeys, leafKeys] = await Promise.all([
          webcrypto.subtle.generateKey(caAlgorithm, true, ["sign", "verify"]),
          webcrypto.subtle.generateKey(leafAlgorithm, true, ["sign", "verify"])
        ])
        const ca = await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: serialNumber(),
          // Stamped like Kubernetes' own self-signed CAs, so an operator tells successive ones apart.
          name: `CN=${dnValue(`${options.serviceName}.${options.namespace}-ca@${Math.floor(started / 1000)}`)}`,
          notBefore,
          notAfter,
          keys: caKeys,
          signingAlgorithm: caAlgorithm,
          extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey)
          ]
        })
        const leaf = await x509.X509CertificateGenerator.create({
          serialNumber: serialNumber(),
          subject: `CN=${dnValue(`${options.serviceName}.${options.namespace}.svc`)}`,
          issuer: ca.subject,
          notBefore,
          notAfter,
          publicKey: leafKeys.publicKey,
          signingKey: caKeys.privateKey,
          signingAlgorithm: caAlgorithm,
          extensions: [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(
              x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
              true
            ),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            new x509.SubjectAlternativeNameExtension(
              names.map((name) => ({ type: isIP(name) === 0 ? "dns" as const : "ip" as const, value: name }))
            ),
            await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
            await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey)
          ]
        })
        return {
          caPem: withFinalNewline(ca.toString("pem")),
          certPem: withFinalNewline(leaf.toString("pem")),
          keyPem: withFinalNewline(pemOfPrivateKey(leafKeys.privateKey))
        }
      },
      catch: (error) =>
        new CertificateGenerationError({ problem: error instanceof Error ? error.message : "unknown failure" })
    })
    const finished = yield* Clock.currentTimeMillis
    const material = makeTlsMaterial(result)
    return Object.assign(material, { caPem: result.caPem, generationMillis: finished - started })
  })

// ---------------------------------------------------------------------------
// Self-signed, shared through a Secret
// ---------------------------------------------------------------------------

const secretLabels = {
  "app.kubernetes.io/name": "filer-sidecar-injector",
  "app.kubernetes.io/component": "webhook-serving-certificate"
}

/** Generations after the first before giving up: one a year, more than the injector will live. */
const maxGenerations = 20

const secretNameOf = (base: string, generation: number) => generation === 1 ? base : `${base}-${generation}`

/** Startup calls survive a few transient API failures; anything else fails at once. */
const retryTransient = <A, R>(effect: Effect.Effect<A, KubeError, R>) =>
  effect.pipe(Effect.retry({ while: isRetryable, times: 4, schedule: Schedule.exponential("100 millis") }))

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

const acquireShared = Effect.fnUntraced(function*(options: SharedSelfSignedOptions) {
  const kube = yield* KubeClient
  let previousCa: string | undefined
  for (let generation = 1; generation <= maxGenerations; generation++) {
    const name = secretNameOf(options.secretName, generation)
    const now = yield* Clock.currentTimeMillis
    const existing = yield* retryTransient(kube.getSecret(options.namespace, name)).pipe(
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
    const created = yield* retryTransient(kube.createSecret({
      namespace: options.namespace,
      name,
      labels: secretLabels,
      stringData: { "ca.crt": generated.caPem, "tls.crt": generated.certPem, "tls.key": generated.keyPem }
    })).pipe(
      Effect.as(true),
      Effect.catchIf(hasReason("conflict"), () => Effect.succeed(false))
    )
    if (created) {
      const checked = yield* checkPair(generated.certPem, generated.keyPem, generated.caPem, {
        cert: "generated certificate",
        key: "generated key"
      }).pipe(Effect.orDie)
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
    const winner = yield* retryTransient(kube.getSecret(options.namespace, name))
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
const renewShared = (
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

/** For tests and diagnostics: the SHA-256 fingerprint of the first certificate in a PEM text. */
export const fingerprintOf = (certPem: string): string => new X509Certificate(certPem).fingerprint256
