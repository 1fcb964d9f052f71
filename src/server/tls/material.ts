/**
 * The PEM material of the serving certificate, and the checks a cert/key pair
 * passes before it is served: parsed, matching, accepted by Node's TLS. Every
 * way of getting a certificate (files, generation, a shared Secret) goes
 * through `checkPair`, so what is served has always passed the same checks.
 *
 * No private key ever reaches a log line or an error message: materials print
 * their key as `<redacted>`, and key parsing errors are replaced by fixed text.
 */
import { Effect, Schema } from "effect"
import { createPrivateKey, KeyObject, X509Certificate } from "node:crypto"
import { createSecureContext, type SecureContext } from "node:tls"
import { inspect } from "node:util"

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

/** What a log line says about a certificate: who it is and until when, never the key. */
export const logAnnotations = (info: CertificateInfo) => ({
  fingerprint256: info.fingerprint256,
  subject: info.subject,
  subjectAltName: info.subjectAltName ?? "",
  notAfter: info.notAfter.toISOString()
})

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

/** A pair known to be servable: parsed, matching, accepted by Node's TLS. */
export interface CheckedPair {
  readonly material: TlsMaterial
  readonly info: CertificateInfo
  readonly certificate: X509Certificate
  readonly secureContext: SecureContext
}

/** Where the certificate and the key came from, as errors name them. */
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
