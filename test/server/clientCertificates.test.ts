/**
 * Caller authentication (`--client-ca-file`, README "Who may call the
 * webhook"), through the real HTTPS server and a real HTTPS client: `/inject`
 * answers only a caller presenting a certificate signed by the configured CA
 * and answers 401 with a JSON error to the others (no certificate, or one from
 * another CA); the probes and `/metrics` need none; a CA rotated in its file
 * is used from the next connection on, and one that cannot be used is logged
 * while the previous CA stays.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { checkClientCa } from "../../src/server/tls/ClientCa.ts"
import { makeTestCa, type TestCa, writeAtomically } from "../support/clientCertificates.ts"
import { exampleClusterDir, exampleReview } from "../support/pipelineHarness.ts"
import {
  type InProcessServer,
  postReview,
  request,
  startInProcess,
  tempDirectory,
  waitUntil
} from "../support/serverHarness.ts"

type Certificate = { readonly cert: string; readonly key: string }

const errorOf = (body: string): unknown => (JSON.parse(body) as { error?: unknown }).error

describe("with --client-ca-file", () => {
  let server: InProcessServer
  let directory: string
  let caFile: string
  let apiServerCa: TestCa
  let apiServer: Certificate
  let stranger: Certificate

  beforeAll(async () => {
    directory = tempDirectory("client-ca")
    apiServerCa = await makeTestCa("kube-apiserver-client-ca")
    apiServer = await apiServerCa.issueClient("kube-apiserver")
    stranger = await (await makeTestCa("someone-else")).issueClient("kube-apiserver")
    caFile = writeAtomically(directory, "ca.crt", apiServerCa.certPem)
    server = await startInProcess({ cluster: { directory: exampleClusterDir }, clientCa: { file: caFile } })
  }, 60_000)

  afterAll(async () => {
    await server?.close()
    if (directory !== undefined) fs.rmSync(directory, { recursive: true, force: true })
  })

  const inject = (clientCertificate?: Certificate) =>
    postReview({
      port: server.port,
      ca: server.caPem,
      review: exampleReview(),
      ...(clientCertificate === undefined ? {} : { clientCertificate })
    })

  it("answers a caller whose certificate the CA signed", async () => {
    const reply = await inject(apiServer)
    expect(reply.status).toBe(200)
    const review = JSON.parse(reply.body) as { response: { uid: string; allowed: boolean; patchType?: string } }
    expect(review.response.allowed).toBe(true)
    expect(review.response.patchType).toBe("JSONPatch")
  })

  it("answers 401 with a JSON error to a caller without a certificate", async () => {
    const reply = await inject()
    expect(reply.status).toBe(401)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    expect(errorOf(reply.body)).toMatch(/^a client certificate signed by the configured CA \(--client-ca-file\) is required: none presented$/)
    expect(reply.body).not.toContain("patch")
  })

  it("answers 401 to a caller whose certificate another CA signed", async () => {
    const reply = await inject(stranger)
    expect(reply.status).toBe(401)
    expect(errorOf(reply.body)).toMatch(/client certificate signed by the configured CA .* is required: certificate not accepted/)
  })

  it("checks the caller before anything else: a GET without a certificate gets 401, not 405", async () => {
    const reply = await request({ port: server.port, ca: server.caPem, method: "GET", path: "/inject" })
    expect(reply.status).toBe(401)
  })

  it("lets the probes and /metrics answer without a certificate", async () => {
    for (const probe of ["/healthz", "/readyz", "/metrics"]) {
      const reply = await request({ port: server.port, ca: server.caPem, path: probe })
      expect(reply.status, probe).toBe(200)
    }
    const metrics = (await request({ port: server.port, ca: server.caPem, path: "/metrics" })).body
    expect(metrics).toMatch(/filer_sidecar_injector_http_requests_total\{route="\/inject",code="401"\} [1-9]/)
  })

  it("logs each refused caller, without the certificate", () => {
    const refused = server.logs.filter((line) => line.includes("the caller has no verified client certificate"))
    expect(refused.length).toBeGreaterThanOrEqual(2)
    expect(refused.join("\n")).not.toContain("BEGIN")
  })

  it("keeps the CA in use while its file holds something that is not a CA, then takes the next CA", async () => {
    writeAtomically(directory, "ca.crt", apiServer.cert)
    await waitUntil(
      () => server.logs.some((line) => line.includes("the client CA file changed but cannot be used")),
      "the unusable CA to be logged"
    )
    expect((await inject(apiServer)).status).toBe(200)

    const nextCa = await makeTestCa("kube-apiserver-client-ca-2")
    const next = await nextCa.issueClient("kube-apiserver")
    writeAtomically(directory, "ca.crt", nextCa.certPem)
    await waitUntil(async () => (await inject(next)).status === 200, "a certificate of the new CA to be accepted")
    expect((await inject(apiServer)).status).toBe(401)
    expect(server.logs.some((line) => line.includes("reloaded the client CA"))).toBe(true)
  })
})

describe("the client CA file", () => {
  const check = (pem: string) => Effect.runPromise(Effect.flip(checkClientCa(pem, "/etc/ca/ca.crt")))

  it("is refused at start when missing, naming the file", async () => {
    const missing = path.join(tempDirectory("client-ca-missing"), "ca.crt")
    await expect(startInProcess({ cluster: { directory: exampleClusterDir }, clientCa: { file: missing } }))
      .rejects.toMatchObject({ _tag: "TlsMaterialError", source: missing, problem: "file not found" })
  })

  it("must hold PEM certificates, each a CA", async () => {
    expect((await check("")).message).toBe("/etc/ca/ca.crt: holds no PEM certificate (BEGIN CERTIFICATE)")
    const ca = await makeTestCa("a-ca")
    const leaf = await ca.issueClient("not-a-ca")
    expect((await check(`${ca.certPem}${leaf.cert}`)).message).toMatch(/^\/etc\/ca\/ca\.crt: certificate 2 \(CN=not-a-ca\) is not a CA$/)
    const broken = ca.certPem.replace(/[A-Za-z]{8}\n/, "!!!!!!!!\n")
    expect((await check(broken)).message).toMatch(/certificate 1 is not valid PEM/)
  })
})
