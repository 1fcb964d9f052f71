/**
 * `serve` as operators run it: a child process over the example cluster
 * (plain credential mode, so callers present a client certificate signed by
 * `--client-ca-file`'s CA) with the OpenTelemetry variables pointing at a
 * fake OTLP collector. The collector gets one trace per admission (the
 * request span, the admission span under it, the stages under that);
 * stdout gets JSON log lines; /metrics answers; and no credential reaches
 * the logs, the exported spans or the metrics.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { makeTestCa } from "../support/clientCertificates.ts"
import { exampleClusterDir, exampleReviewFile, repoRoot } from "../support/pipelineHarness.ts"
import { exampleCredentials, leaks, parsePrometheus, valueOf } from "./support.ts"

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

interface Run {
  readonly stdout: ReadonlyArray<string>
  readonly stderr: string
  readonly exports: ReadonlyArray<{ readonly url: string; readonly contentType: string; readonly body: string }>
  readonly injected: { readonly status: number; readonly body: string }
  readonly metrics: string
  readonly exitCode: number | null
}

const attributes = (span: OtlpSpan): Record<string, unknown> =>
  Object.fromEntries(span.attributes.map(({ key, value }) => [key, Object.values(value)[0]]))

/** The client certificate every call presents. */
let clientCertificate: { readonly cert: string; readonly key: string } | undefined

/** An https request to the child, trusting `ca`. */
const call = (port: number, ca: string, method: string, urlPath: string, body?: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = https.request({
      host: "127.0.0.1",
      port,
      method,
      path: urlPath,
      ca,
      ...clientCertificate,
      agent: false,
      headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
    })
    request.on("error", reject)
    request.end(body)
  })

const runServe = async (): Promise<Run> => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "fsi-observability-"))
  const pair = await Effect.runPromise(
    generateSelfSigned({ serviceName: "filer-sidecar-injector", namespace: "das", caKeyBits: 2048, leafKeyBits: 2048 })
  )
  fs.writeFileSync(path.join(directory, "cert.pem"), pair.certPem)
  fs.writeFileSync(path.join(directory, "key.pem"), pair.keyPem, { mode: 0o600 })
  // Plain credentials put S3 keys in the answers: serve starts only with callers checked.
  const clientCa = await makeTestCa("kube-apiserver-webhook-client-ca")
  fs.writeFileSync(path.join(directory, "client-ca.pem"), clientCa.certPem)
  clientCertificate = await clientCa.issueClient("kube-apiserver")

  const exports: Array<{ url: string; contentType: string; body: string }> = []
  const collector = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      exports.push({
        url: request.url ?? "",
        contentType: request.headers["content-type"] ?? "",
        body: Buffer.concat(chunks).toString("utf8")
      })
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
  const collectorPort = (collector.address() as AddressInfo).port

  const child = spawn(process.execPath, [
    path.join(repoRoot, "src", "bin.ts"),
    "serve",
    "--cluster",
    exampleClusterDir,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--tls-cert",
    path.join(directory, "cert.pem"),
    "--tls-key",
    path.join(directory, "key.pem"),
    "--credential-mode",
    "plain",
    "--client-ca-file",
    path.join(directory, "client-ca.pem")
  ], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: os.tmpdir(),
      LOG_LEVEL: "debug",
      SHUTDOWN_DELAY_MS: "0",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "filer-sidecar-injector-test",
      OTEL_BSP_SCHEDULE_DELAY: "100"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const stdout: Array<string> = []
  let stderr = ""
  let pending = ""
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not listen; stderr: ${stderr}`)), 20_000)
      child.stdout!.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8")
        const lines = pending.split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) {
          stdout.push(line)
          const match = /webhook listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(line)
          if (match !== null) {
            clearTimeout(timer)
            resolve(Number(match[1]))
          }
        }
      })
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
      void exited.then((code) => reject(new Error(`serve exited (${code}) before listening; stderr: ${stderr}`)))
    })

    const review = fs.readFileSync(exampleReviewFile, "utf8")
    const injected = await call(port, pair.caPem, "POST", "/inject?timeout=10s", review)
    assert.strictEqual((await call(port, pair.caPem, "GET", "/readyz")).status, 200)
    const metrics = (await call(port, pair.caPem, "GET", "/metrics")).body

    child.kill("SIGTERM")
    const exitCode = await exited
    if (pending !== "") stdout.push(pending)
    return { stdout, stderr, exports, injected, metrics, exitCode }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await new Promise<void>((resolve) => collector.close(() => resolve()))
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

describe("serve with OTEL_EXPORTER_OTLP_ENDPOINT set", () => {
  let run: Run
  beforeAll(async () => {
    run = await runServe()
  }, 40_000)

  it("exports one trace per admission: request span, admission span, stages", () => {
    assert.strictEqual(run.exitCode, 0, run.stderr)
    assert.strictEqual(run.injected.status, 200)
    assert.isNotEmpty(run.exports)
    for (const exported of run.exports) {
      assert.strictEqual(exported.url, "/v1/traces")
      assert.strictEqual(exported.contentType, "application/json")
    }
    const batches = run.exports.map((exported) =>
      JSON.parse(exported.body) as {
        resourceSpans: Array<{
          resource: { attributes: OtlpSpan["attributes"] }
          scopeSpans: Array<{ spans: Array<OtlpSpan> }>
        }>
      }
    )
    const resources = batches.flatMap((batch) => batch.resourceSpans.map((r) => attributes(r.resource as OtlpSpan)))
    assert.isTrue(resources.every((resource) => resource["service.name"] === "filer-sidecar-injector-test"))
    const spans = batches.flatMap((batch) => batch.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))

    const admission = spans.filter((span) => span.name === "admission")
    assert.strictEqual(admission.length, 1)
    const root = admission[0]
    const server = spans.find((span) => span.spanId === root.parentSpanId)
    assert.isDefined(server)
    assert.strictEqual(server!.name, "POST /inject")
    assert.strictEqual(server!.kind, 2) // SPAN_KIND_SERVER
    assert.deepInclude(attributes(server!), { "http.route": "/inject", "http.response.status_code": 200 })
    assert.deepInclude(attributes(root), {
      "admission.decision": "injected",
      "admission.shares_mounted": 3,
      uid: "3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f"
    })

    const trace = spans.filter((span) => span.traceId === root.traceId)
    const names = new Set(trace.map((span) => span.name))
    for (const name of ["decode", "decide", "resolve", "resolve.shares", "resolve.secret", "plan", "render", "diff", "encode"]) {
      assert.isTrue(names.has(name), `${name} is in the trace`)
    }
    const secretReads = trace.filter((span) => span.name === "KubeClient.getSecret")
    assert.deepStrictEqual(secretReads.map((span) => attributes(span)["k8s.outcome"]).sort(), ["not_found", "ok", "ok"])
    // Probes and scrapes are not traced.
    assert.isFalse(spans.some((span) => span.name.startsWith("GET ")))
  })

  it("logs JSON lines on stdout: the server's own, and one per admission", () => {
    const lines = run.stdout.filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as {
      message: string
      level: string
      annotations: Record<string, unknown>
    })
    const messages = lines.map((line) => line.message)
    assert.isTrue(messages.some((message) => message.startsWith("exporting traces by OTLP (http/json) to http://127.0.0.1:")))
    assert.isTrue(messages.some((message) => message.startsWith("webhook listening on https://")))
    assert.isTrue(messages.some((message) => message.includes("filers-list loaded")))
    assert.isTrue(messages.some((message) => message.startsWith("shutting down")))
    const admissions = lines.filter((line) => line.message === "admission injected")
    assert.strictEqual(admissions.length, 1)
    assert.deepInclude(admissions[0].annotations, {
      uid: "3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f",
      namespace: "jane-doe",
      decision: "injected",
      skipped: ["Secret fld6filersvm-conn-secret not found"]
    })
  })

  it("serves the metrics of what it did", () => {
    const samples = parsePrometheus(run.metrics)
    assert.strictEqual(valueOf(samples, "filer_sidecar_injector_admissions_total", { decision: "injected" }), 1)
    assert.strictEqual(valueOf(samples, "filer_sidecar_injector_ready"), 1)
  })

  it("in plain credential mode, leaks no credential to stdout, stderr, the collector or the metrics", () => {
    const texts = [...run.stdout, run.stderr, ...run.exports.map((exported) => exported.body), run.metrics]
    for (const text of texts) {
      for (const credential of exampleCredentials) {
        assert.isFalse(leaks(text, credential), `a credential in: ${text.slice(0, 200)}`)
      }
    }
    // Plain mode does put them in the patch: the scan would have seen them.
    assert.isTrue(exampleCredentials.some((credential) => leaks(run.injected.body, credential)))
  })
})
