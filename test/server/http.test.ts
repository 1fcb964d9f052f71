/**
 * The webhook over real HTTPS, built in this process as `serve` builds it:
 * the answer to the example review is byte for byte what `review` prints,
 * every kind of bad input gets its status and a JSON message naming the
 * problem, health and readiness answer, and a burst of concurrent requests
 * over kept-alive connections all get their own answer.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as net from "node:net"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  exampleClusterDir,
  exampleClusterObjects,
  exampleReview,
  exampleReviewFile,
  mutatedPod,
  notebookContainer,
  repoRoot
} from "../support/pipelineHarness.ts"
import {
  type InProcessServer,
  mebibyte,
  postReview,
  type Reply,
  request,
  runConcurrently,
  startInProcess,
  tempDirectory,
  writeServingPair
} from "../support/serverHarness.ts"

const maxBodyBytes = 3 * mebibyte

/** The `{"error": "..."}` body of a refusal, checked to be JSON with a string message. */
const errorMessage = (reply: Reply): string => {
  expect(reply.headers["content-type"]).toMatch(/^application\/json/)
  const parsed = JSON.parse(reply.body) as { error?: unknown }
  expect(typeof parsed.error).toBe("string")
  return parsed.error as string
}

/** The example review, its uid replaced. */
const reviewWithUid = (uid: string) => {
  const review = exampleReview()
  review.request.uid = uid
  return review
}

/** The example review padded (with a pod annotation) to exactly `bytes` bytes of JSON. */
const reviewOfSize = (bytes: number): string => {
  const review = exampleReview()
  review.request.uid = "padded-review"
  review.request.object.metadata.annotations = { "example.com/padding": "" }
  const padding = bytes - JSON.stringify(review).length
  review.request.object.metadata.annotations["example.com/padding"] = "x".repeat(padding)
  const text = JSON.stringify(review)
  expect(Buffer.byteLength(text)).toBe(bytes)
  return text
}

describe("the webhook over HTTPS (serve --cluster, in process)", () => {
  let server: InProcessServer
  let reviewPrinted: string

  beforeAll(async () => {
    const [started, printed] = await Promise.all([
      startInProcess({ cluster: { directory: exampleClusterDir }, server: { maxBodyBytes } }),
      promisify(execFile)(
        process.execPath,
        [path.join(repoRoot, "src", "bin.ts"), "review", "--cluster", exampleClusterDir, exampleReviewFile],
        { cwd: repoRoot, encoding: "utf8" }
      )
    ])
    server = started
    reviewPrinted = printed.stdout
  })
  afterAll(() => server?.close())

  const post = (review: unknown, headers: Record<string, string> = {}) =>
    postReview({ port: server.port, ca: server.caPem, review, headers })

  it("answers the example review with exactly the bytes `review --cluster` prints", async () => {
    const reply = await post(fs.readFileSync(exampleReviewFile))
    expect(reply.status).toBe(200)
    expect(reply.headers["content-type"]).toMatch(/^application\/json/)
    // `review` ends its line with a newline; the body is the JSON alone.
    expect(reviewPrinted.endsWith("\n")).toBe(true)
    expect(reply.body).toBe(reviewPrinted.slice(0, -1))
    // And it is an injection that applies: the notebook gets its filer mounts.
    const answer = JSON.parse(reply.body)
    expect(answer.response.uid).toBe(exampleReview().request.uid)
    const pod = mutatedPod(exampleReview(), answer.response)
    const mounts = (notebookContainer(pod).volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath)
    expect(mounts).toContain("/home/jovyan/filers/fld5filersvm/division/project")
  })

  describe("refuses bad requests with a status and a JSON message naming the problem", () => {
    it("GET /inject: 405 with Allow: POST", async () => {
      const reply = await request({ port: server.port, ca: server.caPem, method: "GET", path: "/inject" })
      expect(reply.status).toBe(405)
      expect(reply.headers.allow).toBe("POST")
      expect(errorMessage(reply)).toMatch(/POST/)
    })

    it("PUT /inject: 405 too", async () => {
      const reply = await request({
        port: server.port,
        ca: server.caPem,
        method: "PUT",
        path: "/inject",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(exampleReview())
      })
      expect(reply.status).toBe(405)
      expect(reply.headers.allow).toBe("POST")
    })

    it("POST /healthz: 405 with Allow: GET", async () => {
      const reply = await request({ port: server.port, ca: server.caPem, method: "POST", path: "/healthz", body: "" })
      expect(reply.status).toBe(405)
      expect(reply.headers.allow).toBe("GET")
    })

    it("an unknown path: 404 naming the webhook's path", async () => {
      for (const method of ["GET", "POST"]) {
        const reply = await request({ port: server.port, ca: server.caPem, method, path: "/mutate" })
        expect(reply.status).toBe(404)
        expect(errorMessage(reply)).toMatch(/\/inject/)
      }
    })

    it("a Content-Type that is not JSON, or none: 415 naming the Content-Type", async () => {
      const text = JSON.stringify(exampleReview())
      const plain = await post(text, { "content-type": "text/plain" })
      expect(plain.status).toBe(415)
      expect(errorMessage(plain)).toMatch(/Content-Type.*text\/plain/)
      const none = await request({ port: server.port, ca: server.caPem, method: "POST", path: "/inject", body: text })
      expect(none.status).toBe(415)
      expect(errorMessage(none)).toMatch(/Content-Type/)
      // A JSON type with parameters is JSON.
      const withCharset = await post(text, { "content-type": "application/json; charset=utf-8" })
      expect(withCharset.status).toBe(200)
    })

    it("a body one byte over the limit, declared: 413 naming the limit", async () => {
      const reply = await post(reviewOfSize(maxBodyBytes + 1))
      expect(reply.status).toBe(413)
      expect(errorMessage(reply)).toContain(String(maxBodyBytes))
    })

    it("a 3.5 MiB body sent chunked (no Content-Length): 413 naming the limit", async () => {
      const reply = await postReview({
        port: server.port,
        ca: server.caPem,
        review: reviewOfSize(3.5 * mebibyte),
        chunked: true
      })
      expect(reply.status).toBe(413)
      expect(errorMessage(reply)).toContain(String(maxBodyBytes))
    })

    it("a valid review of exactly the limit (3 MiB) is answered 200 and injected", async () => {
      const reply = await post(reviewOfSize(maxBodyBytes))
      expect(reply.status).toBe(200)
      const answer = JSON.parse(reply.body)
      expect(answer.response).toMatchObject({ uid: "padded-review", allowed: true, patchType: "JSONPatch" })
    })

    it.each([
      ["a body that is not JSON", "{not json", /not JSON/],
      ["a JSON array", "[]", /not a JSON object/],
      ["kind other than AdmissionReview", { ...exampleReview(), kind: "AdmissionRequest" }, /\bkind\b/],
      ["apiVersion other than admission.k8s.io/v1", { ...exampleReview(), apiVersion: "admission.k8s.io/v1beta1" }, /\bapiVersion\b/],
      ["no request", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }, /\brequest\b/],
      ["no request.uid", (() => {
        const review = exampleReview()
        delete review.request.uid
        return review
      })(), /request\.uid/],
      ["an empty request.uid", reviewWithUid(""), /request\.uid/]
    ])("%s: 400 naming the field", async (_name, body, field) => {
      const reply = await post(typeof body === "string" ? body : JSON.stringify(body))
      expect(reply.status).toBe(400)
      expect(errorMessage(reply)).toMatch(field)
    })

    it("a Pod that does not decode: 200 with allowed false and the reason, not an HTTP error", async () => {
      const review = exampleReview()
      review.request.object.spec.containers = "not a list"
      const reply = await post(review)
      expect(reply.status).toBe(200)
      const answer = JSON.parse(reply.body)
      expect(answer.response.uid).toBe(review.request.uid)
      expect(answer.response.allowed).toBe(false)
      expect(answer.response.status.message).toMatch(/containers/)
    })
  })

  it("/healthz answers 200, and /readyz 200 once configuration and TLS are in place", async () => {
    const health = await request({ port: server.port, ca: server.caPem, path: "/healthz" })
    expect(health.status).toBe(200)
    const ready = await request({ port: server.port, ca: server.caPem, path: "/readyz" })
    expect(ready.status).toBe(200)
  })

  it("400 admissions, 32 at a time over kept-alive connections, each get their own answer", async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca: server.caPem })
    try {
      const body = (index: number) => JSON.stringify(reviewWithUid(`burst-${index}`))
      const results = await runConcurrently(400, 32, (index) =>
        postReview({ port: server.port, ca: server.caPem, agent, review: body(index) }))
      const failures = results.flatMap((result, index) =>
        result.status === "rejected" ? [`#${index}: ${String(result.reason)}`] : []
      )
      expect(failures).toEqual([])
      const replies = results.map((result) => (result as PromiseFulfilledResult<Reply>).value)
      replies.forEach((reply, index) => {
        expect(reply.status).toBe(200)
        const answer = JSON.parse(reply.body)
        expect(answer.response.uid).toBe(`burst-${index}`)
        expect(answer.response.patchType).toBe("JSONPatch")
      })
      // The connections were kept alive and reused, as the kube-apiserver does.
      expect(replies.filter((reply) => reply.reused).length).toBeGreaterThan(300)
    } finally {
      agent.destroy()
    }
  })
})

describe("a replica whose cluster configuration is missing", () => {
  let server: InProcessServer
  beforeAll(async () => {
    // The user's namespace is there; the injector's own ConfigMaps are not.
    const objects = exampleClusterObjects().filter((object) => (object.metadata as { namespace: string }).namespace !== "das")
    server = await startInProcess({ cluster: { objects } })
  })
  afterAll(() => server?.close())

  it("is alive but not ready, saying why", async () => {
    const health = await request({ port: server.port, ca: server.caPem, path: "/healthz" })
    expect(health.status).toBe(200)
    const ready = await request({ port: server.port, ca: server.caPem, path: "/readyz" })
    expect(ready.status).toBe(503)
    expect(ready.body).toMatch(/cluster configuration/)
  })

  it("denies a notebook pod, naming the ConfigMap it lacks", async () => {
    const reply = await postReview({ port: server.port, ca: server.caPem, review: exampleReview() })
    expect(reply.status).toBe(200)
    const answer = JSON.parse(reply.body)
    expect(answer.response.allowed).toBe(false)
    expect(answer.response.status.message).toMatch(/ConfigMap das\/(filers-list|filer-sidecar-injector-json)/)
  })
})

describe("serve cannot listen", () => {
  it("a port already in use: exit 1 with one line naming the address and the reason", async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const pair = await writeServingPair(tempDirectory("http-busy-port"))
      const failed = await promisify(execFile)(
        process.execPath,
        [
          path.join(repoRoot, "src", "bin.ts"),
          "serve",
          "--cluster",
          exampleClusterDir,
          "--host",
          "127.0.0.1",
          "--port",
          String(port),
          "--tls-cert",
          pair.certFile,
          "--tls-key",
          pair.keyFile
        ],
        { cwd: repoRoot, encoding: "utf8", timeout: 20_000 }
      ).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error
      )
      expect(failed?.code).toBe(1)
      const lines = failed!.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(new RegExp(`^error: .*127\\.0\\.0\\.1:${port}.*EADDRINUSE`))
    } finally {
      blocker.close()
    }
  })
})
