import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { X509Certificate } from "node:crypto"
import { inspect } from "node:util"
import { beforeAll } from "vitest"
import type { ServingCertificateShape } from "../../src/server/tls/holder.ts"
import type { TlsMaterial } from "../../src/server/tls/material.ts"
import { type GeneratedMaterial, generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { ServingCertificate } from "../../src/server/tls/ServingCertificate.ts"

const serviceName = "filer-sidecar-injector"
const namespace = "das"
const serviceHost = "filer-sidecar-injector.das.svc"

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256

// ---------------------------------------------------------------------------
// Helpers: an HTTPS server wired as the injector's server should be, and clients
// ---------------------------------------------------------------------------

/**
 * An HTTPS server on 127.0.0.1:0 serving `cert`'s material: the default
 * context follows `onChange` through `setSecureContext`; clients that send SNI
 * get `secureContextUnsafe()` from `SNICallback`. Closed with the scope.
 */
const startServer = (cert: ServingCertificateShape) =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.callback<https.Server>((resume) => {
        const server = https.createServer(
          { ...cert.currentUnsafe(), SNICallback: (_name, callback) => callback(null, cert.secureContextUnsafe()) },
          (_request, response) => response.end("ok")
        )
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    yield* cert.onChange((material) => server.setSecureContext({ cert: material.certPem, key: material.keyPem }))
    return (server.address() as AddressInfo).port
  })

/** A fresh TLS connection's view: the server certificate's fingerprint, or the handshake error's code. */
const handshake = (port: number, options: { readonly ca?: string; readonly servername?: string }) =>
  Effect.callback<{ readonly fingerprint: string } | { readonly error: string }>((resume) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.servername === undefined ? {} : { servername: options.servername })
    })
    socket.once("secureConnect", () => {
      resume(Effect.succeed({ fingerprint: socket.getPeerCertificate().fingerprint256 }))
      socket.end()
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed({ error: error.code ?? error.message })))
  })

/** GET / over HTTPS; says whether the socket was reused and which certificate that socket saw. */
const get = (port: number, options: { readonly ca?: string; readonly agent?: https.Agent }) =>
  Effect.callback<{ readonly status: number; readonly body: string; readonly reused: boolean; readonly fingerprint: string }, Error>(
    (resume) => {
      const request = https.get({
        host: "127.0.0.1",
        port,
        path: "/",
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.agent === undefined ? { agent: false } : { agent: options.agent })
      }, (response) => {
        // Read now: once the response ends, a keep-alive socket goes back to the agent.
        const fingerprint = (response.socket as tls.TLSSocket).getPeerCertificate().fingerprint256
        let body = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => body += chunk)
        response.on("end", () =>
          resume(Effect.succeed({
            status: response.statusCode ?? 0,
            body,
            reused: request.reusedSocket,
            fingerprint
          })))
      })
      request.once("error", (error) => resume(Effect.fail(error)))
    }
  )

/** Polls `check` every 20 ms until it holds, failing the test after `millis`. */
const eventually = (check: Effect.Effect<boolean>, what: string, millis = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

// ---------------------------------------------------------------------------
// Self-signed
// ---------------------------------------------------------------------------

layer(
  ServingCertificate.layerSelfSigned({ serviceName, namespace, extraDnsNames: ["injector.example.org"] }),
  { excludeTestServices: true }
)("ServingCertificate.layerSelfSigned (RSA 4096 CA, as in production)", (it) => {
  it.effect("issues a serving certificate that verifies against its CA and names the Service", () =>
    Effect.gen(function*() {
      const cert = yield* ServingCertificate
      const material = yield* cert.material
      assert.isDefined(material.caPem)
      const ca = new X509Certificate(material.caPem!)
      const leaf = new X509Certificate(material.certPem)
      assert.isTrue(ca.ca)
      assert.isFalse(leaf.ca)
      assert.strictEqual(ca.publicKey.asymmetricKeyDetails?.modulusLength, 4096)
      assert.isTrue(leaf.verify(ca.publicKey))
      assert.isTrue(leaf.checkIssued(ca))
      for (const host of [serviceName, "filer-sidecar-injector.das", serviceHost, "filer-sidecar-injector.das.svc.cluster.local", "localhost", "injector.example.org"]) {
        assert.strictEqual(leaf.checkHost(host), host)
      }
      assert.strictEqual(leaf.checkIP("127.0.0.1"), "127.0.0.1")
      assert.isUndefined(leaf.checkHost("other.das.svc"))
      assert.deepStrictEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"])
      const days = (new Date(ca.validTo).getTime() - Date.now()) / 86_400_000
      assert.isTrue(days > 364 && days <= 366, `CA valid ${days} days`)
      assert.isTrue(yield* cert.ready)
      assert.strictEqual((yield* cert.info).fingerprint256, leaf.fingerprint256)
      assert.strictEqual(yield* cert.caPem, material.caPem)
    }))

  it.effect("never shows its key when printed", () =>
    Effect.gen(function*() {
      const material = yield* (yield* ServingCertificate).material
      assert.include(material.keyPem, "PRIVATE KEY")
      for (const printed of [JSON.stringify(material), String(material), inspect(material)]) {
        assert.notInclude(printed, "PRIVATE KEY")
        assert.include(printed, "<redacted>")
      }
    }))

  it.effect("serves HTTPS that a client trusting the CA reaches, and one without it does not", () =>
    Effect.gen(function*() {
      const cert = yield* ServingCertificate
      const ca = (yield* cert.caPem)!
      const port = yield* startServer(cert)
      const trusted = yield* get(port, { ca })
      assert.strictEqual(trusted.status, 200)
      assert.strictEqual(trusted.body, "ok")
      const bySni = yield* handshake(port, { ca, servername: serviceHost })
      assert.deepStrictEqual(bySni, { fingerprint: (yield* cert.info).fingerprint256 })
      const untrusted = yield* Effect.flip(get(port, {}))
      assert.match((untrusted as NodeJS.ErrnoException).code ?? "", /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/)
      const wrongName = yield* handshake(port, { ca, servername: "someone-else.das.svc" })
      assert.deepStrictEqual(wrongName, { error: "ERR_TLS_CERT_ALTNAME_INVALID" })
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------
// From files
// ---------------------------------------------------------------------------

/** Pairs from two independent CAs (RSA 2048 to keep the file quick). */
let pairA: GeneratedMaterial
let pairB: GeneratedMaterial

beforeAll(async () => {
  ;[pairA, pairB] = await Effect.runPromise(Effect.all([
    generateSelfSigned({ serviceName, namespace, caKeyBits: 2048 }),
    generateSelfSigned({ serviceName, namespace, caKeyBits: 2048 })
  ], { concurrency: 2 }))
})

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "serving-cert-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * A folder laid out as kubelet mounts a Secret: `tls.crt` → `..data/tls.crt`,
 * `..data` → `..<timestamp>/`. `swap` publishes a new pair as kubelet does,
 * by renaming a new `..data` link over the old one, all at once.
 */
const secretVolume = (dir: string) => {
  let version = 0
  const swap = (material: { readonly certPem: string; readonly keyPem: string }) => {
    version += 1
    const stamped = `..2026_11_25_${version}`
    fs.mkdirSync(path.join(dir, stamped))
    fs.writeFileSync(path.join(dir, stamped, "tls.crt"), material.certPem)
    fs.writeFileSync(path.join(dir, stamped, "tls.key"), material.keyPem)
    fs.symlinkSync(stamped, path.join(dir, "..data_tmp"))
    fs.renameSync(path.join(dir, "..data_tmp"), path.join(dir, "..data"))
    if (version === 1) {
      fs.symlinkSync("..data/tls.crt", path.join(dir, "tls.crt"))
      fs.symlinkSync("..data/tls.key", path.join(dir, "tls.key"))
    } else {
      fs.rmSync(path.join(dir, `..2026_11_25_${version - 1}`), { recursive: true })
    }
  }
  return { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key"), swap }
}

/** Built in the test's scope, so the polling lives until the test ends. */
const fromFiles = (certFile: string, keyFile: string) =>
  Layer.build(
    ServingCertificate.layerFromFiles(certFile, keyFile, { pollInterval: "50 millis" }).pipe(
      Layer.provide(NodeFileSystem.layer)
    )
  ).pipe(Effect.map(Context.get(ServingCertificate)))

const writePair = (dir: string, material: { readonly certPem: string; readonly keyPem: string }) => {
  fs.writeFileSync(path.join(dir, "tls.crt"), material.certPem)
  fs.writeFileSync(path.join(dir, "tls.key"), material.keyPem)
  return { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key") }
}

describe("ServingCertificate.layerFromFiles", () => {
  it.live("loads a matching pair", () =>
    Effect.gen(function*() {
      const files = writePair(yield* tempDir, pairA)
      const cert = yield* fromFiles(files.certFile, files.keyFile)
      assert.strictEqual((yield* cert.info).fingerprint256, fingerprint(pairA.certPem))
      assert.deepStrictEqual(yield* cert.current, { cert: pairA.certPem, key: pairA.keyPem })
      assert.isUndefined(yield* cert.caPem)
      assert.isTrue(yield* cert.ready)
    }).pipe(Effect.scoped))

  it.live("still serves an expired pair (the issuer may be late) but is not ready", () =>
    Effect.gen(function*() {
      const expired = yield* generateSelfSigned({ serviceName, namespace, caKeyBits: 2048, validity: "1 millis" })
      yield* Effect.sleep("5 millis")
      const files = writePair(yield* tempDir, expired)
      const cert = yield* fromFiles(files.certFile, files.keyFile)
      assert.strictEqual((yield* cert.info).fingerprint256, fingerprint(expired.certPem))
      assert.isFalse(yield* cert.ready)
    }).pipe(Effect.scoped))

  it.live("keeps notifying after a listener throws", () =>
    Effect.gen(function*() {
      const files = writePair(yield* tempDir, pairA)
      const cert = yield* fromFiles(files.certFile, files.keyFile)
      const seen: Array<string> = []
      yield* cert.onChange(() => {
        throw new Error("listener bug")
      })
      yield* cert.onChange((material) => seen.push(fingerprint(material.certPem)))
      writePair(path.dirname(files.certFile), pairB)
      yield* eventually(Effect.sync(() => seen.length === 1), "the second listener hears of the change")
      writePair(path.dirname(files.certFile), pairA)
      yield* eventually(Effect.sync(() => seen.length === 2), "and of the next one")
      assert.deepStrictEqual(seen, [fingerprint(pairB.certPem), fingerprint(pairA.certPem)])
    }).pipe(Effect.scoped))

  it.live("refuses a key that does not match the certificate, naming the file", () =>
    Effect.gen(function*() {
      const files = writePair(yield* tempDir, { certPem: pairA.certPem, keyPem: pairB.keyPem })
      const error = yield* Effect.flip(fromFiles(files.certFile, files.keyFile))
      assert.strictEqual(error._tag, "TlsMaterialError")
      assert.include(error.message, files.keyFile)
      assert.include(error.message, "does not match")
      assert.notInclude(error.message, "PRIVATE KEY")
    }).pipe(Effect.scoped))

  it.live("refuses a missing file or one that is not PEM, naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const files = writePair(dir, pairA)
      const missing = yield* Effect.flip(fromFiles(path.join(dir, "absent.crt"), files.keyFile))
      assert.strictEqual(missing.message, `${path.join(dir, "absent.crt")}: file not found`)
      fs.writeFileSync(files.keyFile, "not a key")
      const notPem = yield* Effect.flip(fromFiles(files.certFile, files.keyFile))
      assert.include(notPem.message, files.keyFile)
      fs.writeFileSync(files.certFile, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
      const badCert = yield* Effect.flip(fromFiles(files.certFile, files.keyFile))
      assert.include(badCert.message, files.certFile)
    }).pipe(Effect.scoped))

  it.live("serves a rotated pair to new connections without dropping an open keep-alive one", () =>
    Effect.gen(function*() {
      const volume = secretVolume(yield* tempDir)
      volume.swap(pairA)
      const cert = yield* fromFiles(volume.certFile, volume.keyFile)
      const port = yield* startServer(cert)
      const bothCas = `${pairA.caPem}${pairB.caPem}`
      const seen: Array<TlsMaterial> = []
      yield* cert.changes.pipe(Stream.runForEach((material) => Effect.sync(() => seen.push(material))), Effect.forkScoped)

      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const first = yield* get(port, { ca: bothCas, agent })
      assert.strictEqual(first.fingerprint, fingerprint(pairA.certPem))

      volume.swap(pairB)
      yield* eventually(
        Effect.map(cert.info, (info) => info.fingerprint256 === fingerprint(pairB.certPem)),
        "the rotated pair is loaded"
      )

      // A new connection, with and without SNI, sees the new certificate…
      assert.deepStrictEqual(yield* handshake(port, { ca: bothCas }), { fingerprint: fingerprint(pairB.certPem) })
      assert.deepStrictEqual(
        yield* handshake(port, { ca: bothCas, servername: serviceHost }),
        { fingerprint: fingerprint(pairB.certPem) }
      )
      // …and the open keep-alive connection still works, on the old one.
      const second = yield* get(port, { ca: bothCas, agent })
      assert.isTrue(second.reused)
      assert.strictEqual(second.status, 200)
      assert.strictEqual(second.fingerprint, fingerprint(pairA.certPem))

      yield* eventually(Effect.sync(() => seen.length === 2), "the change is streamed")
      assert.deepStrictEqual(seen.map((material) => fingerprint(material.certPem)), [
        fingerprint(pairA.certPem),
        fingerprint(pairB.certPem)
      ])
    }).pipe(Effect.scoped))

  it.live("keeps serving the old pair while the new one is half written, then takes it", () =>
    Effect.gen(function*() {
      const files = writePair(yield* tempDir, pairA)
      const cert = yield* fromFiles(files.certFile, files.keyFile)
      const port = yield* startServer(cert)
      const ca = `${pairA.caPem}${pairB.caPem}`

      // The certificate is new, the key still the old one: not a pair.
      fs.writeFileSync(files.certFile, pairB.certPem)
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* cert.info).fingerprint256, fingerprint(pairA.certPem))
      assert.deepStrictEqual(yield* handshake(port, { ca }), { fingerprint: fingerprint(pairA.certPem) })

      // A truncated key is no better.
      fs.writeFileSync(files.keyFile, pairB.keyPem.slice(0, 200))
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* cert.info).fingerprint256, fingerprint(pairA.certPem))

      // A missing file for a moment neither.
      fs.rmSync(files.keyFile)
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* cert.info).fingerprint256, fingerprint(pairA.certPem))
      assert.isTrue(yield* cert.ready)

      fs.writeFileSync(files.keyFile, pairB.keyPem)
      yield* eventually(
        Effect.map(cert.info, (info) => info.fingerprint256 === fingerprint(pairB.certPem)),
        "the completed pair is loaded"
      )
      assert.deepStrictEqual(yield* handshake(port, { ca }), { fingerprint: fingerprint(pairB.certPem) })
    }).pipe(Effect.scoped))
})
