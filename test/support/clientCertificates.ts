/**
 * Client certificates for tests of `--client-ca-file`: a CA, and client
 * certificates it signs, as the API server's AdmissionConfiguration would
 * present them (extended key usage clientAuth). ECDSA P-256, so generating
 * them costs milliseconds.
 */
import "reflect-metadata"
import * as x509 from "@peculiar/x509"
import { webcrypto } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pemOfPrivateKey, serialNumber, withFinalNewline as withNewline } from "../../src/server/tls/selfSigned.ts"

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

const validity = () => ({ notBefore: new Date(Date.now() - 5 * 60_000), notAfter: new Date(Date.now() + 86_400_000) })

export interface TestCa {
  readonly certPem: string
  /** A client certificate signed by this CA, and its key. */
  readonly issueClient: (commonName: string) => Promise<{ readonly cert: string; readonly key: string }>
}

/** A CA able to sign client certificates. */
export const makeTestCa = async (name: string): Promise<TestCa> => {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${name}`,
    ...validity(),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return {
    certPem: withNewline(ca.toString("pem")),
    issueClient: async (commonName) => {
      const clientKeys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
      const client = await x509.X509CertificateGenerator.create({
        serialNumber: serialNumber(),
        subject: `CN=${commonName}`,
        issuer: ca.subject,
        ...validity(),
        publicKey: clientKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey)
        ]
      })
      return { cert: withNewline(client.toString("pem")), key: withNewline(pemOfPrivateKey(clientKeys.privateKey)) }
    }
  }
}

/** Writes `pem` to `directory/name` as a Secret volume rotates it: a new file renamed over the old one. */
export const writeAtomically = (directory: string, name: string, pem: string): string => {
  const file = path.join(directory, name)
  fs.writeFileSync(`${file}.tmp`, pem)
  fs.renameSync(`${file}.tmp`, file)
  return file
}
