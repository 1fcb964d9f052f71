/**
 * Hostile input through the real HTTPS server (`node src/bin.ts serve
 * --cluster DIR`, a child process): a sample of the generated reviews and
 * cluster states of pipeline.test.ts, bodies that are not reviews, and what
 * only a server meets: oversized and deeply nested bodies, invalid UTF-8,
 * wrong content types, methods and paths. Each request gets the answer
 * docs/behaviour.md ("The response") gives it (200 AdmissionReview for the uid; 400/413/415 with a JSON
 * error; 404/405), never a 500 or a dropped connection; the server is still
 * healthy at the end and its log holds no credential.
 */
import fc from "fast-check"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RawObject } from "../../src/cluster/objects.ts"
import { repoRoot } from "../support/pipelineHarness.ts"
import { caseArb, groupArb, rawBody } from "./arbitraries.ts"
import { assertNoCredential, checkErrorBody, checkReviewAnswer } from "./check.ts"

const seed = Number(process.env.FUZZ_SEED ?? 20_261_125)
const namespaces = 12
const generatedReviews = 320
const maxBodyBytes = 3 * 1024 * 1024

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

let child: ChildProcess | undefined
let port = 0
let logFile = ""
const agent = new https.Agent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: false })

const send = (
  body: string | Buffer,
  options: { readonly method?: string; readonly path?: string; readonly headers?: Record<string, string> } = {}
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const payload = typeof body === "string" ? Buffer.from(body, "utf8") : body
    const request = https.request(
      {
        host: "127.0.0.1",
        port,
        agent,
        method: options.method ?? "POST",
        path: options.path ?? "/inject",
        headers: { "content-type": "application/json", "content-length": String(payload.length), ...options.headers },
        timeout: 20_000
      },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }))
        response.on("error", reject)
      }
    )
    request.on("timeout", () => request.destroy(new Error("no answer within 20 s")))
    request.on("error", reject)
    request.end(options.method === "GET" ? undefined : payload)
  })

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** A POST /inject of a JSON body: 200 with a proper review, or 400/413 with a JSON error. */
const checkInjectAnswer = (text: string, answer: Answer) => {
  expect(answer.headers["content-type"]).toMatch(/^application\/json/)
  if (answer.status === 200) {
    checkReviewAnswer(JSON.parse(text), JSON.parse(answer.body))
  } else {
    expect([400, 413], `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`).toContain(answer.status)
    checkErrorBody(answer.status, answer.body)
  }
}

const group = fc.sample(groupArb.filter((g) => g.validConfig && g.svms.length >= 2), { numRuns: 1, seed })[0]!
const cases = fc.sample(caseArb(group, "fuzz-ns"), { numRuns: generatedReviews, seed: seed + 100 })
const namespaceOf = (index: number) => `fz-https-${index % namespaces}`
const placed = (value: unknown, index: number) =>
  JSON.parse(JSON.stringify(value).replaceAll(`"fuzz-ns"`, `"${namespaceOf(index)}"`))

describe("hostile requests through the HTTPS server", () => {
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fsi-fuzz-https-"))
    // The first `namespaces` cases make the cluster's user namespaces; every review lands in one of them.
    const objects: Array<RawObject> = [...group.objects, ...cases.slice(0, namespaces).flatMap((c, i) => placed(c.objects, i))]
    fs.writeFileSync(path.join(dir, "cluster.json"), JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }))
    logFile = path.join(dir, "serve.log")
    port = await freePort()
    const log = fs.openSync(logFile, "a")
    child = spawn(
      process.execPath,
      [path.join(repoRoot, "src", "bin.ts"), "serve", "--cluster", dir, "--host", "127.0.0.1", "--port", String(port), "--max-body-bytes", String(maxBodyBytes)],
      { cwd: repoRoot, stdio: ["ignore", log, log], env: { ...process.env, SHUTDOWN_DELAY_MS: "0", LOG_LEVEL: "debug" } }
    )
    fs.closeSync(log)
    const deadline = Date.now() + 20_000
    for (;;) {
      const ready = await send("", { method: "GET", path: "/readyz" }).then((a) => a.status === 200, () => false)
      if (ready) break
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${fs.readFileSync(logFile, "utf8")}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }, 30_000)

  afterAll(async () => {
    agent.destroy()
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve))
      child.kill("SIGTERM")
      await exited
    }
  })

  it(`${generatedReviews} generated and mangled reviews: each answered as docs/behaviour.md says`, async () => {
    const statuses: Record<number, number> = {}
    for (const [index, c] of cases.entries()) {
      const text = JSON.stringify(placed(c.review, index))
      const answer = await send(text)
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
      checkInjectAnswer(text, answer)
    }
    expect(statuses[200]).toBeGreaterThan(generatedReviews / 2)
  }, 60_000)

  it("bodies that are not AdmissionReviews: 400 with a JSON error naming the problem", async () => {
    for (const text of fc.sample(rawBody, { numRuns: 150, seed })) {
      checkInjectAnswer(text, await send(text))
    }
  }, 60_000)

  it("deeply nested JSON, inside the pod and as the whole body: answered, never a crash", async () => {
    const review = JSON.parse(JSON.stringify(placed(cases.find((c) => !c.mangled)!.review, 0)))
    review.request.object.spec.futureField = "__DEEP__"
    for (const depth of [10_000, 200_000]) {
      const deep = JSON.stringify(review).replace(`"__DEEP__"`, "[".repeat(depth) + "]".repeat(depth))
      checkInjectAnswer(deep, await send(deep))
      const whole = `${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}`
      checkInjectAnswer(whole, await send(whole))
    }
  }, 60_000)

  it("bytes that are not UTF-8, a byte-order mark, NUL bytes: 400", async () => {
    for (const body of [Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), Buffer.from([0xc3, 0x28]), Buffer.from("\ufeff{}"), Buffer.from("{\"a\":\"\u0000\"}")]) {
      const answer = await send(body)
      expect(answer.status).toBe(400)
      checkErrorBody(answer.status, answer.body)
    }
  })

  it("a body over --max-body-bytes: 413, whether its length is declared or streamed", async () => {
    const big = Buffer.alloc(maxBodyBytes + 1024, 0x20)
    const declared = await send(big)
    expect(declared.status).toBe(413)
    checkErrorBody(413, declared.body)
    const streamed = await new Promise<Answer>((resolve, reject) => {
      const request = https.request(
        { host: "127.0.0.1", port, agent: false, rejectUnauthorized: false, method: "POST", path: "/inject", headers: { "content-type": "application/json" } },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }))
        }
      )
      // The server may answer and close before the whole body is sent.
      request.on("error", (error) => (error.message.includes("EPIPE") || error.message.includes("ECONNRESET") ? undefined : reject(error)))
      for (let sent = 0; sent < maxBodyBytes + 65_536; sent += 65_536) request.write(Buffer.alloc(65_536, 0x20))
      request.end()
    })
    expect(streamed.status).toBe(413)
  }, 30_000)

  it("a Content-Type that is not JSON: 415; wrong methods and paths: 405 and 404, each with a JSON error", async () => {
    const body = JSON.stringify(placed(cases[0]!.review, 0))
    for (const contentType of ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data", "", "json"]) {
      const answer = await send(body, { headers: { "content-type": contentType } })
      expect(answer.status, contentType).toBe(415)
      checkErrorBody(415, answer.body)
    }
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const answer = await send(method === "GET" ? "" : body, { method })
      expect(answer.status, method).toBe(405)
    }
    for (const where of ["/", "/inject/", "/inject/x", "/mutate", "/%2e%2e/inject", "/inject?x=../../"]) {
      const answer = await send(body, { path: where })
      // A query string is not part of the path, and the router ignores a trailing slash: still the webhook.
      if (where.startsWith("/inject?") || where === "/inject/") checkInjectAnswer(body, answer)
      else {
        expect(answer.status, where).toBe(404)
        checkErrorBody(404, answer.body)
      }
    }
  })

  it("the server is still healthy, logged no defect and no credential", async () => {
    expect((await send("", { method: "GET", path: "/healthz" })).status).toBe(200)
    expect((await send("", { method: "GET", path: "/readyz" })).status).toBe(200)
    expect(child?.exitCode).toBeNull()
    const log = fs.readFileSync(logFile, "utf8")
    assertNoCredential(log, "the server's log")
    expect(log).not.toMatch(/a bug in the injector|"level":"FATAL"/)
  })
})
