/**
 * TLS rotation without a restart: the serving certificate and key are files
 * (cert-manager's Secret mounted in the pod); when they are replaced, the
 * next new TLS connection gets the new certificate, while a connection kept
 * alive from before goes on working. A pair that is half written (key and
 * certificate out of step) is not served; the previous one stays.
 */
import * as fs from "node:fs"
import * as https from "node:https"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exampleClusterDir, exampleReview } from "../support/pipelineHarness.ts"
import {
  copyExampleCluster,
  type InProcessServer,
  postReview,
  request,
  type ServeProcess,
  type ServingPairFiles,
  spawnServe,
  startInProcess,
  tempDirectory,
  waitUntil,
  writeServingPair
} from "../support/serverHarness.ts"

/** Puts `file`'s content at `target` the way a Secret volume changes: a new file renamed over the old one. */
const replaceFile = (file: string, target: string) => {
  fs.copyFileSync(file, `${target}.new`)
  fs.renameSync(`${target}.new`, target)
}

const installPair = (pair: ServingPairFiles, served: ServingPairFiles) => {
  replaceFile(pair.keyFile, served.keyFile)
  replaceFile(pair.certFile, served.certFile)
}

/** The certificate a brand-new TLS connection gets. */
const freshFingerprint = async (port: number, ca: ReadonlyArray<string>) =>
  (await request({ port, ca, path: "/healthz" })).fingerprint256

describe("serve --tls-cert/--tls-key picks up rotated files without a restart", () => {
  let served: ServingPairFiles
  let next: ServingPairFiles
  let serve: ServeProcess

  beforeAll(async () => {
    ;[served, next] = await Promise.all([
      writeServingPair(tempDirectory("rotation-served")),
      writeServingPair(tempDirectory("rotation-next"))
    ])
    serve = await spawnServe(["--cluster", copyExampleCluster(), "--tls-cert", served.certFile, "--tls-key", served.keyFile])
  })
  afterAll(() => serve?.kill())

  it("serves the new pair on new connections, keeps the open one working", async () => {
    const ca = [served.caPem, next.caPem]
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const before = await request({ port: serve.port, ca, agent, path: "/healthz" })
      expect(before.status).toBe(200)
      expect(before.fingerprint256).toBe(served.fingerprint256)

      installPair(next, served)
      // The files are polled (every 2 s by default): wait for a new connection to see the new certificate.
      await waitUntil(
        async () => (await freshFingerprint(serve.port, ca)) === next.fingerprint256,
        "a new connection to get the new certificate",
        8000
      )
      expect(serve.child.exitCode).toBe(null)

      // So does a client that sends the Service's name (SNI), as the kube-apiserver does.
      const withSni = await request({ port: serve.port, ca, path: "/healthz", servername: "filer-sidecar-injector.das.svc" })
      expect(withSni.fingerprint256).toBe(next.fingerprint256)

      // The kept-alive connection still works: same socket, the certificate it was opened with.
      const after = await postReview({ port: serve.port, ca, agent, review: exampleReview() })
      expect(after.status).toBe(200)
      expect(after.reused).toBe(true)
      expect(after.fingerprint256).toBe(served.fingerprint256)
      expect(JSON.parse(after.body).response.uid).toBe(exampleReview().request.uid)

      // Readiness holds through the rotation, and the log says what happened.
      expect((await request({ port: serve.port, ca, path: "/readyz" })).status).toBe(200)
      // (Its lines are written in batches, at most 50 ms late: src/observability/jsonLines.ts.)
      await waitUntil(
        () => serve.stdout.some((line) => line.includes("reloaded the serving certificate")),
        "the log line of the reload",
        2000
      )
      // No private key in the logs.
      expect(serve.stdout.concat(serve.stderr).join("\n")).not.toMatch(/PRIVATE KEY/)
    } finally {
      agent.destroy()
    }
  })
})

describe("ServingCertificate.layerFromFiles under the server (in process, polled every 50 ms)", () => {
  let server: InProcessServer
  let served: ServingPairFiles
  let directory: string
  /** Every CA whose certificate the server may be serving. */
  const cas: Array<string> = []

  beforeAll(async () => {
    directory = tempDirectory("rotation-inprocess")
    served = await writeServingPair(directory)
    cas.push(served.caPem)
    server = await startInProcess({
      cluster: { directory: exampleClusterDir },
      tls: { certFile: served.certFile, keyFile: served.keyFile, caPem: served.caPem, pollInterval: "50 millis" }
    })
  })
  afterAll(() => server?.close())

  it("rotates twice; a half-written pair is skipped and the previous certificate kept", async () => {
    const [second, third] = await Promise.all([
      writeServingPair(tempDirectory("rotation-second")),
      writeServingPair(tempDirectory("rotation-third"))
    ])
    cas.push(second.caPem, third.caPem)
    const ca = cas
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect((await request({ port: server.port, ca, agent, path: "/healthz" })).fingerprint256).toBe(served.fingerprint256)

      installPair(second, served)
      await waitUntil(async () => (await freshFingerprint(server.port, ca)) === second.fingerprint256, "the second pair", 3000)

      // Mid-rotation: the new key is there, the certificate not yet.
      replaceFile(third.keyFile, served.keyFile)
      await waitUntil(
        () => server.logs.some((line) => line.includes("cannot be served yet")),
        "the half-written pair to be refused",
        3000
      )
      expect(await freshFingerprint(server.port, ca)).toBe(second.fingerprint256)

      replaceFile(third.certFile, served.certFile)
      await waitUntil(async () => (await freshFingerprint(server.port, ca)) === third.fingerprint256, "the third pair", 3000)

      // The connection opened before any rotation still answers admissions.
      const reply = await postReview({ port: server.port, ca, agent, review: exampleReview() })
      expect(reply.status).toBe(200)
      expect(reply.reused).toBe(true)
      expect(reply.fingerprint256).toBe(served.fingerprint256)
      expect(server.logs.join("\n")).not.toMatch(/PRIVATE KEY/)
    } finally {
      agent.destroy()
    }
  })

  it("a certificate file missing for a moment changes nothing", async () => {
    const servedNow = await freshFingerprint(server.port, cas)
    const moved = path.join(directory, "moved.pem")
    fs.renameSync(served.certFile, moved)
    try {
      await waitUntil(
        () => server.logs.some((line) => line.includes("cannot read the certificate files")),
        "the missing file to be noticed",
        3000
      )
      expect(await freshFingerprint(server.port, cas)).toBe(servedNow)
      expect((await request({ port: server.port, ca: cas, path: "/readyz" })).status).toBe(200)
    } finally {
      fs.renameSync(moved, served.certFile)
    }
  })
})
