/**
 * Generation of a self-signed CA and a serving certificate signed by it, for
 * clusters without cert-manager. @peculiar/x509 (and the reflect-metadata
 * polyfill it needs) is loaded on the first generation only: the file mode
 * never pays for it.
 */
import type * as X509 from "@peculiar/x509"
import { Clock, Duration, Effect, Schema } from "effect"
import { KeyObject, randomBytes, webcrypto } from "node:crypto"
import { isIP } from "node:net"
import { type CheckedPair, checkPair, makeTlsMaterial, type TlsMaterial } from "./material.ts"

/** Generating keys or certificates failed (WebCrypto refused). */
export class CertificateGenerationError extends Schema.TaggedError<CertificateGenerationError>()(
  "CertificateGenerationError",
  { problem: Schema.String }
) {
  override get message() {
    return `cannot generate the self-signed certificate: ${this.problem}`
  }
}

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
export const serialNumber = () => {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return bytes.toString("hex")
}

export const pemOfPrivateKey = (key: webcrypto.CryptoKey): string =>
  KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString()

/** @peculiar/x509 ends PEM without a newline; two such texts concatenated are no longer PEM. */
export const withFinalNewline = (pem: string) => pem.endsWith("\n") ? pem : `${pem}\n`

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

/** Freshly generated material as a served pair: it always checks, so a failure here is a defect. */
export const checkGenerated = (generated: GeneratedMaterial): Effect.Effect<CheckedPair> =>
  checkPair(generated.certPem, generated.keyPem, generated.caPem, {
    cert: "generated certificate",
    key: "generated key"
  }).pipe(Effect.orDie)
