/**
 * Graceful shutdown of `serve`, as a child process receiving SIGTERM the way
 * the kubelet sends it: readiness turns false at once while the server keeps
 * answering for SHUTDOWN_DELAY_MS (endpoints catch up), responses meanwhile
 * carry `Connection: close`, then the listener closes, requests already
 * accepted finish within SHUTDOWN_GRACE_MS, and the process exits 0.
 *
 * What is counted: a request that got a connection, meaning its TLS
 * handshake with the server completed (a new connection or a kept-alive one),
 * must be answered 200 with its own uid. A request that fails is allowed only
 * when it never got one: ECONNREFUSED once the listener has closed, or
 * ECONNRESET of a connection still waiting in the kernel's accept queue when
 * the listener closed (the server process never saw it; under this burst of
 * new TLS connections, since every answer during the delay says
 * `Connection: close`, a few dozen wait there). That is what a client of a
 * terminating replica sees before the Service routes it elsewhere.
 */
import * as https from "node:https"
import { afterEach, describe, expect, it } from "vitest"
import { exampleReview } from "../support/pipelineHarness.ts"
import {
  copyExampleCluster,
  heldPost,
  jsonLogs,
  postReview,
  type Reply,
  request,
  runConcurrently,
  type ServeProcess,
  type ServingPairFiles,
  sleep,
  spawnServe,
  tempDirectory,
  waitUntil,
  writeServingPair
} from "../support/serverHarness.ts"

/** Long enough for a /readyz on a new connection to get through while 32 requests are in flight on two busy cores. */
const shutdownDelayMillis = 1000

const reviewBody = (uid: string) => {
  const review = exampleReview()
  review.request.uid = uid
  return JSON.stringify(review)
}

const uidOf = (reply: Reply): string => JSON.parse(reply.body).response.uid

/** A promise that never rejects: its outcome, to be unwrapped (rethrowing) once the test gets to it. */
const settle = <A>(promise: Promise<A>): Promise<() => A> =>
  promise.then((value) => () => value, (error: unknown) => () => {
    throw error
  })

interface Started {
  readonly serve: ServeProcess
  readonly pair: ServingPairFiles
}

const running: Array<ServeProcess> = []
afterEach(async () => {
  for (const serve of running.splice(0)) await serve.kill()
})

const start = async (env: Record<string, string>): Promise<Started> => {
  const pair = await writeServingPair(tempDirectory("shutdown-tls"))
  const serve = await spawnServe(
    ["--cluster", copyExampleCluster(), "--tls-cert", pair.certFile, "--tls-key", pair.keyFile],
    env
  )
  running.push(serve)
  const ready = await request({ port: serve.port, ca: pair.caPem, path: "/readyz" })
  expect(ready.status).toBe(200)
  return { serve, pair }
}

/**
 * A POST /inject whose body arrives in two halves, the second when `release`
 * resolves: a request the server has accepted and is still receiving.
 */
const slowReview = (port: number, ca: string, uid: string, release: Promise<void>) => {
  const held = heldPost({ port, ca, body: Buffer.from(reviewBody(uid)) })
  void release.then(held.finish)
  return held.reply
}

describe("serve shuts down gracefully on SIGTERM", () => {
  it("keeps answering while not ready, finishes what it accepted, and exits 0", async () => {
    const { pair, serve } = await start({ SHUTDOWN_DELAY_MS: String(shutdownDelayMillis), SHUTDOWN_GRACE_MS: "3000" })

    // Accepted before SIGTERM, its body completes only after the listener has closed.
    let releaseSlow!: () => void
    const slow = settle(slowReview(serve.port, pair.caPem, "slow", new Promise((resolve) => (releaseSlow = resolve))))

    const agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca: pair.caPem })
    let completed = 0
    let sigtermAt = 0
    let notReadyAt = 0
    const sentAfterNotReady = new Set<number>()
    const terminated = settle((async () => {
      await waitUntil(() => completed >= 60, "60 answers before SIGTERM", 10_000)
      sigtermAt = Date.now()
      serve.child.kill("SIGTERM")
      // Readiness turns false while the server still answers.
      await waitUntil(async () => {
        const ready = await request({ port: serve.port, ca: pair.caPem, path: "/readyz", timeoutMillis: 2000 })
        if (ready.status !== 503) return false
        expect(ready.body).toMatch(/shutting down/)
        expect(ready.headers.connection).toBe("close")
        notReadyAt = Date.now()
        return true
      }, "/readyz to answer 503", shutdownDelayMillis)
    })())

    const results = await runConcurrently(200, 32, async (index) => {
      if (notReadyAt !== 0) sentAfterNotReady.add(index)
      const reply = await postReview({ port: serve.port, ca: pair.caPem, agent, review: reviewBody(`burst-${index}`) })
      completed += 1
      return reply
    })
    agent.destroy()
    ;(await terminated)()

    // The listener has closed once new connections are refused; only then does the slow body arrive.
    await waitUntil(async () => {
      try {
        await request({ port: serve.port, ca: pair.caPem, path: "/healthz", timeoutMillis: 1000 })
        return false
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === "ECONNREFUSED"
      }
    }, "the listener to close", 3000)
    const closedAt = Date.now()
    expect(closedAt - sigtermAt).toBeGreaterThanOrEqual(shutdownDelayMillis - 50)
    releaseSlow()
    const slowReply = (await slow)()
    expect(slowReply.status).toBe(200)
    expect(uidOf(slowReply)).toBe("slow")
    expect(slowReply.headers.connection).toBe("close")

    const answered = results.flatMap((result, index) => (result.status === "fulfilled" ? [[index, result.value] as const] : []))
    const refused = results.flatMap((result, index) => {
      if (result.status === "fulfilled") return []
      const error = result.reason as NodeJS.ErrnoException & { connected: boolean }
      return [{ index, code: error.code, connected: error.connected }]
    })
    // Every request that reached the server was answered, with its own answer.
    const neverConnected = ["ECONNREFUSED", "ECONNRESET"]
    expect(refused.filter((failure) => failure.connected || !neverConnected.includes(failure.code ?? ""))).toEqual([])
    for (const [index, reply] of answered) {
      expect(reply.status).toBe(200)
      expect(uidOf(reply)).toBe(`burst-${index}`)
    }
    expect(answered.length).toBeGreaterThanOrEqual(60)
    // Sent once the replica said it was not ready: the answer tells the client to go elsewhere.
    for (const [index, reply] of answered) {
      if (sentAfterNotReady.has(index)) expect(reply.headers.connection).toBe("close")
    }

    const exit = await serve.exited
    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - sigtermAt).toBeLessThan(5000)
    const messages = jsonLogs(serve.stdout).map((line) => line.message)
    expect(messages.some((message) => message.startsWith("shutting down: not ready"))).toBe(true)
    expect(serve.stderr.filter((line) => line.trim() !== "")).toEqual([])
  })

  it("does not wait past the grace period for a client that never finishes its request", async () => {
    const graceMillis = 1000
    const { pair, serve } = await start({ SHUTDOWN_DELAY_MS: "100", SHUTDOWN_GRACE_MS: String(graceMillis) })
    // Headers and half a body, then nothing: the server has accepted a request it can never answer.
    const stalled = slowReview(serve.port, pair.caPem, "stalled", new Promise(() => {})).then(
      () => "answered",
      (error: NodeJS.ErrnoException) => error.code ?? "error"
    )
    await sleep(100)
    const sigtermAt = Date.now()
    serve.child.kill("SIGTERM")
    const exit = await Promise.race([serve.exited, sleep(graceMillis + 5000).then(() => "still running" as const)])
    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - sigtermAt).toBeLessThan(100 + graceMillis + 4000)
    // Its connection was cut: the client sees it end, not hang.
    expect(await stalled).toMatch(/ECONNRESET|socket hang up|error/)
  })

  it("exits 0 at once when idle", async () => {
    const { serve } = await start({ SHUTDOWN_DELAY_MS: "0", SHUTDOWN_GRACE_MS: "1000" })
    const sigtermAt = Date.now()
    serve.child.kill("SIGTERM")
    expect(await serve.exited).toEqual({ code: 0, signal: null })
    expect(Date.now() - sigtermAt).toBeLessThan(3000)
  })
})
