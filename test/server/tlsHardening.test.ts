/**
 * The HTTPS server's TLS floor and handshake limit: no client gets TLS 1.1 or
 * older, also after a certificate reload (Node's setSecureContext keeps only
 * the options it is given again), also after the client CA is reloaded, even where Node's own defaults would allow
 * it (an operator's NODE_OPTIONS=--tls-min-v1.0, say); and a client that
 * connects and never sends its ClientHello is dropped after
 * tlsHandshakeTimeout, well before the API server's 10 s.
 */
import { Duration } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"
import tlsModule from "node:tls"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tlsHandshakeTimeout } from "../../src/server/server.ts"
import { makeTestCa, writeAtomically } from "../support/clientCertificates.ts"
import { exampleClusterDir, exampleReview } from "../support/pipelineHarness.ts"
import {
  type InProcessServer,
  postReview,
  request,
  type ServingPairFiles,
  startInProcess,
  tempDirectory,
  waitUntil,
  writeServingPair
} from "../support/serverHarness.ts"

// What Node would accept by default with --tls-min-v1.0 and OpenSSL at security level 0.
const permissiveCiphers = "DEFAULT:@SECLEVEL=0"

/** Node's TLS defaults, which its docs let a program change (the module object, not the read-only ES namespace). */
const nodeDefaults = tlsModule as { DEFAULT_MIN_VERSION: tls.SecureVersion; DEFAULT_CIPHERS: string }

type Outcome = { readonly protocol: string } | { readonly error: string }

/** A TLS 1.0–1.1 client's handshake with 127.0.0.1:`port`: the protocol it got, or the error code. */
const oldClientHandshake = (port: number) =>
  new Promise<Outcome>((resolve) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      minVersion: "TLSv1",
      maxVersion: "TLSv1.1",
      ciphers: permissiveCiphers,
      rejectUnauthorized: false
    })
    socket.once("secureConnect", () => {
      resolve({ protocol: socket.getProtocol() ?? "unknown" })
      socket.destroy()
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
  })

const refusedForItsVersion = { error: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" }

describe("TLS versions", () => {
  const defaults = { minVersion: nodeDefaults.DEFAULT_MIN_VERSION, ciphers: nodeDefaults.DEFAULT_CIPHERS }
  let served: ServingPairFiles
  let server: InProcessServer
  let control: tls.Server
  let clientCaDirectory: string
  // The serving certificates' CAs so far: the one at start, then the reloaded one's.
  const trusted: Array<string> = []

  beforeAll(async () => {
    // Node's defaults as loose as they go, before any server builds its context.
    nodeDefaults.DEFAULT_MIN_VERSION = "TLSv1"
    nodeDefaults.DEFAULT_CIPHERS = permissiveCiphers
    served = await writeServingPair(tempDirectory("tls-floor"))
    clientCaDirectory = tempDirectory("tls-floor-client-ca")
    const clientCaFile = writeAtomically(clientCaDirectory, "ca.crt", (await makeTestCa("client-ca-1")).certPem)
    server = await startInProcess({
      cluster: { directory: exampleClusterDir },
      tls: { certFile: served.certFile, keyFile: served.keyFile, caPem: served.caPem, pollInterval: "50 millis" },
      clientCa: { file: clientCaFile }
    })
    // A plain TLS server on the same defaults: what an old client gets where nothing sets a floor.
    control = tls.createServer({ cert: fs.readFileSync(served.certFile), key: fs.readFileSync(served.keyFile) })
    await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve))
  }, 60_000)

  afterAll(async () => {
    control?.close()
    await server?.close()
    nodeDefaults.DEFAULT_MIN_VERSION = defaults.minVersion
    nodeDefaults.DEFAULT_CIPHERS = defaults.ciphers
  })

  it("refuses a TLS 1.1 client that a server without a floor would accept, and serves TLS 1.2", async () => {
    const controlPort = (control.address() as net.AddressInfo).port
    expect(await oldClientHandshake(controlPort), "the control server speaks TLS 1.1 here").toEqual({ protocol: "TLSv1.1" })
    expect(await oldClientHandshake(server.port)).toEqual(refusedForItsVersion)
    expect((await request({ port: server.port, ca: served.caPem, path: "/healthz" })).status).toBe(200)
  })

  it("still refuses TLS 1.1 after the certificate is reloaded", async () => {
    const next = await writeServingPair(tempDirectory("tls-floor-next"))
    fs.copyFileSync(next.keyFile, served.keyFile)
    fs.copyFileSync(next.certFile, served.certFile)
    const ca = [served.caPem, next.caPem]
    trusted.push(...ca)
    await waitUntil(
      async () => (await request({ port: server.port, ca, path: "/healthz" })).fingerprint256 === next.fingerprint256,
      "a new connection to get the reloaded certificate",
      8000
    )
    expect(await oldClientHandshake(server.port)).toEqual(refusedForItsVersion)
  })

  it("still refuses TLS 1.1 after the client CA is reloaded", async () => {
    const nextCa = await makeTestCa("client-ca-2")
    const clientCertificate = await nextCa.issueClient("kube-apiserver")
    writeAtomically(clientCaDirectory, "ca.crt", nextCa.certPem)
    await waitUntil(
      async () => (await postReview({ port: server.port, ca: trusted, review: exampleReview(), clientCertificate })).status === 200,
      "a certificate of the reloaded client CA to be accepted",
      8000
    )
    expect(await oldClientHandshake(server.port)).toEqual(refusedForItsVersion)
  })
})

describe("TLS handshake timeout", () => {
  let server: InProcessServer

  beforeAll(async () => {
    server = await startInProcess({ cluster: { directory: exampleClusterDir } })
  }, 60_000)
  afterAll(() => server?.close())

  it("is well under the API server's 10 s webhook timeout", () => {
    expect(Duration.toMillis(tlsHandshakeTimeout)).toBeLessThanOrEqual(5000)
  })

  it("drops a client that connects and never sends a ClientHello, once the timeout has passed", async () => {
    const timeout = Duration.toMillis(tlsHandshakeTimeout)
    const socket = net.connect({ host: "127.0.0.1", port: server.port })
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve)
      socket.once("error", reject)
    })
    const connectedAt = performance.now()
    let received = 0
    socket.on("data", (chunk: Buffer) => (received += chunk.length))
    socket.on("error", () => {})
    // The server ends it; the test gives up at 3x the timeout (Node's default would wait 120 s).
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const giveUp = setTimeout(() => reject(new Error("the server kept the silent connection open")), 3 * timeout)
      socket.once("close", () => {
        clearTimeout(giveUp)
        resolve(performance.now() - connectedAt)
      })
    })
    expect(received).toBe(0)
    // Not before the timeout: a client that is merely slow gets its full time.
    expect(closedAfter).toBeGreaterThanOrEqual(timeout - 50)
  }, 30_000)
})
