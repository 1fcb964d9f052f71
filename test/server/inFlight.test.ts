/**
 * The bound on admissions in flight (MAX_IN_FLIGHT, MAX_BUFFERED_BODY_BYTES;
 * README, "Limits"), through the real HTTPS server and a real HTTPS client:
 * requests are held open by sending half their body, and the ones past the
 * bound get 429 with Retry-After and a JSON error, counted in
 * `http_overload_rejections_total`, before their body is read. The checks
 * that cost nothing (405, 415, 413) answer first; the room is given back when
 * a request ends, whether answered or abandoned by its client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exampleClusterDir, exampleReview } from "../support/pipelineHarness.ts"
import {
  heldPost,
  type InProcessServer,
  postReview,
  type Reply,
  request,
  startInProcess,
  waitUntil
} from "../support/serverHarness.ts"

const kib = 1024

/** The example review, padded (an annotation) to about `bytes` bytes of JSON. */
const reviewOfSize = (uid: string, bytes: number): Buffer => {
  const review = exampleReview() as { request: { uid: string; object: { metadata: { annotations?: Record<string, string> } } } }
  review.request.uid = uid
  const base = Buffer.byteLength(JSON.stringify(review))
  review.request.object.metadata.annotations = { "example.com/padding": "x".repeat(Math.max(0, bytes - base - 40)) }
  return Buffer.from(JSON.stringify(review))
}

const hold = (server: InProcessServer, body: Buffer, options: { readonly chunked?: boolean } = {}) =>
  heldPost({ port: server.port, ca: server.caPem, body, ...options })

const post = (server: InProcessServer, body: Buffer) => postReview({ port: server.port, ca: server.caPem, review: body })

/** A sample of GET /metrics (the registry is the process's: tests compare before and after). */
const metric = async (server: InProcessServer, sample: string): Promise<number> => {
  const metrics = (await request({ port: server.port, ca: server.caPem, path: "/metrics" })).body
  const line = metrics.split("\n").find((candidate) => candidate.startsWith(`filer_sidecar_injector_${sample} `))
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1))
}

const refusals = (server: InProcessServer, limit: string) =>
  metric(server, `http_overload_rejections_total{limit="${limit}"}`)

/** Waits until the server is answering `count` admission requests (the held ones have reached it). */
const inFlight = (server: InProcessServer, count: number) =>
  waitUntil(async () => (await metric(server, "admissions_in_flight")) === count, `${count} admissions in flight`)

const errorOf = (reply: Reply): string => (JSON.parse(reply.body) as { error: string }).error

const uidOf = (reply: Reply): string => (JSON.parse(reply.body) as { response: { uid: string } }).response.uid

describe("the bound on requests in flight", () => {
  let server: InProcessServer

  beforeAll(async () => {
    server = await startInProcess({ cluster: { directory: exampleClusterDir }, server: { maxInFlight: 2 } })
  }, 60_000)
  afterAll(() => server?.close())

  it("refuses a third request while two are held, with 429, Retry-After and a JSON error, and counts it", async () => {
    const before = await refusals(server, "requests_in_flight")
    const held = [hold(server, reviewOfSize("held-1", 20 * kib)), hold(server, reviewOfSize("held-2", 20 * kib))]
    await inFlight(server, 2)
    const refused = await post(server, reviewOfSize("third", 2 * kib))
    expect(refused.status).toBe(429)
    expect(refused.headers["retry-after"]).toBe("1")
    expect(refused.headers["content-type"]).toMatch(/^application\/json/)
    expect(errorOf(refused)).toBe("too many admission requests in flight (at most 2, MAX_IN_FLIGHT); retry after 1 s")
    expect(await refusals(server, "requests_in_flight")).toBe(before + 1)

    // The probes and /metrics are never refused.
    for (const path of ["/healthz", "/readyz"]) expect((await request({ port: server.port, ca: server.caPem, path })).status).toBe(200)

    for (const each of held) each.finish()
    const answers = await Promise.all(held.map((each) => each.reply))
    expect(answers.map((answer) => answer.status)).toEqual([200, 200])
    expect(answers.map(uidOf)).toEqual(["held-1", "held-2"])
    await inFlight(server, 0)
    const after = await post(server, reviewOfSize("after", 2 * kib))
    expect(after.status).toBe(200)
  })

  it("gives the room back when a client abandons its request mid-body", async () => {
    const held = [hold(server, reviewOfSize("gone-1", 20 * kib)), hold(server, reviewOfSize("gone-2", 20 * kib))]
    await inFlight(server, 2)
    expect((await post(server, reviewOfSize("refused", 2 * kib))).status).toBe(429)
    for (const each of held) each.abort()
    await inFlight(server, 0)
    expect((await post(server, reviewOfSize("room-again", 2 * kib))).status).toBe(200)
  })
})

describe("the bound on body bytes in flight", () => {
  let server: InProcessServer

  beforeAll(async () => {
    server = await startInProcess({
      cluster: { directory: exampleClusterDir },
      server: { maxInFlight: 10, maxBodyBytes: 600 * kib, maxBufferedBodyBytes: 1000 * kib }
    })
  }, 60_000)
  afterAll(() => server?.close())

  it("refuses a body that would pass the bytes in flight, and still answers small ones", async () => {
    const before = { bytes: await refusals(server, "buffered_body_bytes"), requests: await refusals(server, "requests_in_flight") }
    const big = hold(server, reviewOfSize("big-held", 500 * kib))
    await inFlight(server, 1)
    expect(await metric(server, "admission_body_bytes_in_flight")).toBeGreaterThan(500 * kib - 100)
    const refused = await post(server, reviewOfSize("big-second", 550 * kib))
    expect(refused.status).toBe(429)
    expect(refused.headers["retry-after"]).toBe("1")
    expect(errorOf(refused)).toBe(
      `the admissions in flight hold too many body bytes (at most ${1000 * kib}, MAX_BUFFERED_BODY_BYTES); retry after 1 s`
    )
    expect(await refusals(server, "buffered_body_bytes")).toBe(before.bytes + 1)
    expect(await refusals(server, "requests_in_flight")).toBe(before.requests)

    // Room for a small one beside the big one.
    const small = await post(server, reviewOfSize("small", 10 * kib))
    expect(small.status).toBe(200)
    expect(uidOf(small)).toBe("small")

    // A body without a Content-Length may grow to MAX_BODY_BYTES, so it takes that much room.
    const chunked = hold(server, reviewOfSize("chunked", 10 * kib), { chunked: true })
    chunked.finish()
    const chunkedReply = await chunked.reply
    expect(chunkedReply.status).toBe(429)

    big.finish()
    expect(uidOf(await big.reply)).toBe("big-held")
    await inFlight(server, 0)
    const chunkedAgain = hold(server, reviewOfSize("chunked-again", 10 * kib), { chunked: true })
    chunkedAgain.finish()
    expect((await chunkedAgain.reply).status).toBe(200)
  })

  it("answers 405, 415 and 413 before the bound: they cost nothing, and a retry would not help", async () => {
    const big = hold(server, reviewOfSize("big-held-2", 500 * kib))
    await inFlight(server, 1)
    expect((await post(server, reviewOfSize("big-again", 550 * kib))).status).toBe(429)
    const tooLarge = await post(server, reviewOfSize("too-large", 700 * kib))
    expect(tooLarge.status).toBe(413)
    const wrongType = await postReview({
      port: server.port,
      ca: server.caPem,
      headers: { "content-type": "text/plain" },
      review: reviewOfSize("text", 550 * kib)
    })
    expect(wrongType.status).toBe(415)
    const wrongMethod = await request({ port: server.port, ca: server.caPem, method: "PUT", path: "/inject", body: "{}" })
    expect(wrongMethod.status).toBe(405)
    big.finish()
    expect((await big.reply).status).toBe(200)
  })
})
