/**
 * Concurrent large bodies against one replica with the image's heap cap
 * (Dockerfile NODE_OPTIONS): `--concurrency` reviews of about `--body-mib`
 * MiB each, all at once, to a server with the bound on admissions in flight
 * (the defaults of MAX_IN_FLIGHT and MAX_BUFFERED_BODY_BYTES) and to one
 * without it (both set as high as they go). Each review is a notebook pod
 * whose notebook container has ~7 MiB of env vars: the whole pipeline runs
 * (decode, plan, render, diff); with `--shape objects` the pod carries an
 * unknown field of `{}`s instead, which only a caller other than the API
 * server could send. Prints, per server, what the client got (a status, or
 * the connection closed while it was still sending), what the server says
 * it answered (`http_requests_total`), whether the process survived, its
 * peak RSS (VmHWM) and its peak V8 heap (from --trace-gc).
 *
 *   node test/bench/largeBodies.ts [--concurrency 40] [--body-mib 7]
 *
 * A measurement, not a test: nothing here asserts.
 */
import * as fs from "node:fs"
import * as https from "node:https"
import * as path from "node:path"
import { parseArgs } from "node:util"
import {
  binFile,
  type Child,
  exampleClusterDir,
  freePort,
  imageNodeOptions,
  reviewObject,
  rssKiB,
  scratchDir,
  sleep,
  spawnNode,
  stopChild,
  waitReady,
  writeTlsFiles
} from "./lib.ts"

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "40" },
    "body-mib": { type: "string", default: "7" },
    shape: { type: "string", default: "env" },
    only: { type: "string" }
  }
})
const concurrency = Number(values.concurrency)
const bodyBytes = Math.floor(Number(values["body-mib"]) * 1024 * 1024) - 4096

/**
 * The example review made `bodyBytes` long. `env`: its notebook container
 * carries that many env vars without a value, a Pod the API server could
 * send. `objects`: the pod carries an unknown field holding `{}`s, which the
 * API server would have dropped: only a direct caller sends it.
 */
const largeReview = (uid: string, shape: string): Buffer => {
  const review = reviewObject("full", uid)
  const pod = review.request.object
  const base = JSON.stringify(review).length
  if (shape === "objects") {
    pod.spec.padding = Array.from({ length: Math.floor((bodyBytes - base) / 3) }, () => ({}))
  } else {
    const entry = (index: number) => ({ name: `P${index}` })
    const count = Math.floor((bodyBytes - base) / (JSON.stringify(entry(100_000)).length + 1))
    const env = pod.spec.containers[0].env
    for (let index = 0; index < count; index++) env.push(entry(100_000 + index))
  }
  return Buffer.from(JSON.stringify(review), "utf8")
}

const post = (port: number, body: Buffer) =>
  new Promise<number | string>((resolve) => {
    const request = https.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/inject",
      rejectUnauthorized: false,
      agent: false,
      timeout: 120_000,
      headers: { "content-type": "application/json", "content-length": body.length }
    }, (response) => {
      response.resume()
      response.once("end", () => resolve(response.statusCode ?? 0))
    })
    request.once("timeout", () => request.destroy(new Error("timeout")))
    request.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
    request.end(body)
  })

/** GET /metrics: the server's count of /inject answers by status. */
const serverAnswers = (port: number) =>
  new Promise<Record<string, number>>((resolve) => {
    https.get({ host: "127.0.0.1", port, path: "/metrics", rejectUnauthorized: false, agent: false }, (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")))
      response.on("end", () => {
        const answers: Record<string, number> = {}
        for (const match of text.matchAll(/^filer_sidecar_injector_http_requests_total\{route="\/inject",code="(\d+)"\} (\d+)/gm)) {
          answers[match[1]!] = Number(match[2])
        }
        resolve(answers)
      })
    }).once("error", () => resolve({}))
  })

/** The largest heap in use V8 reported before a collection (`--trace-gc`: `Scavenge 180.1 (200.0) -> ...`). */
const peakHeapMiB = (logFile: string): number => {
  let peak = 0
  for (const match of fs.readFileSync(logFile, "utf8").matchAll(/: (?:Scavenge|Mark-Compact|Mark-sweep)[^\d]*([\d.]+) \(([\d.]+)\) ->/g)) {
    peak = Math.max(peak, Number(match[1]))
  }
  return peak
}

const peakRssMiB = (pid: number): number | undefined => {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Math.round(Number(match[1]) / 1024)
  } catch {
    return undefined
  }
}

const measure = async (name: string, env: Readonly<Record<string, string>>) => {
  const dir = scratchDir("fsi-large-bodies")
  const tls = await writeTlsFiles(dir)
  const port = await freePort()
  const child: Child = spawnNode(
    [binFile, "serve", "--cluster", exampleClusterDir, "--host", "127.0.0.1", "--port", String(port), "--tls-cert", tls.certFile, "--tls-key", tls.keyFile],
    {
      logFile: path.join(dir, "serve.log"),
      nodeOptions: ["--trace-gc"],
      env: { NODE_OPTIONS: imageNodeOptions().join(" "), LOG_LEVEL: "warn", SHUTDOWN_DELAY_MS: "0", ...env }
    }
  )
  await waitReady(child, port)
  // One body for every request (the uid does not matter here): the client stays light and quick.
  const body = largeReview("large-body", values.shape)
  const bodies = Array.from({ length: concurrency }, () => body)
  const before = Math.round((rssKiB(child.pid) ?? 0) / 1024)
  let lastRss = before
  const sampler = setInterval(() => (lastRss = Math.round((rssKiB(child.pid) ?? lastRss * 1024) / 1024)), 50)
  const started = performance.now()
  const statuses = await Promise.all(bodies.map((body) => post(port, body)))
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  await sleep(200)
  const alive = child.process.exitCode === null && child.process.signalCode === null
  const peakRss = peakRssMiB(child.pid)
  const answered = alive ? await serverAnswers(port) : {}
  const exit = alive ? "running" : String(await child.exited)
  if (alive) await stopChild(child)
  const counts: Record<string, number> = {}
  for (const status of statuses) {
    // The server closed the connection while the client was still sending: after its 429, or on a timeout.
    const key = status === "EPIPE" || status === "ECONNRESET" ? "closed while sending" : String(status)
    counts[key] = (counts[key] ?? 0) + 1
  }
  return {
    name,
    shape: values.shape,
    settings: env,
    requests: concurrency,
    bodyBytes: bodies[0]!.length,
    client: counts,
    server: answered,
    seconds: Math.round(seconds * 10) / 10,
    process: exit,
    rssBeforeMiB: before,
    peakRssMiB: peakRss ?? `gone (last sampled ${lastRss})`,
    peakHeapMiB: Math.round(peakHeapMiB(child.logFile)),
    log: child.logFile
  }
}

const servers: ReadonlyArray<readonly [string, Readonly<Record<string, string>>]> = [
  ["bounded", {}],
  ["unbounded", { MAX_IN_FLIGHT: "10000", MAX_BUFFERED_BODY_BYTES: String(1024 * 1024 * 1024) }]
]
const results = []
for (const [name, env] of servers) {
  if (values.only === undefined || values.only === name) results.push(await measure(name, env))
}
console.log(JSON.stringify({ nodeOptions: imageNodeOptions(), results }, null, 2))
