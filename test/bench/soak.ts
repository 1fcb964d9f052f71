/**
 * Soak: the webhook under a steady rate for minutes, with a TLS rotation and
 * a SIGTERM/restart on the way. Not part of `npm test`.
 *
 *   node test/bench/soak.ts [--minutes 10] [--rate 100] [--sample-seconds 5] [--switch-delay-ms 1500]
 *
 * 1. Instance A starts (`serve --cluster manifests/examples/cluster` with
 *    --tls-cert/--tls-key files) and gets a mix of reviews at `--rate` req/s
 *    (70 % full injection, 20 % skips, 10 % a namespace without shares),
 *    every answer checked (status, uid, patch or not).
 * 2. Restart, at 10 % of the run, as a rolling update does it: instance B
 *    starts on another port and gets ready; A gets SIGTERM while traffic still
 *    goes to it; the client moves to B `--switch-delay-ms` (1500) after A's
 *    /readyz stops saying 200, as endpoints lag. A must answer everything it
 *    was sent, then exit 0.
 * 3. TLS rotation, at 50 %: a new certificate and key are renamed over the
 *    files B serves; new connections must see the new certificate within a
 *    few seconds, and no request may fail meanwhile.
 * 4. Memory: RSS of the serving instance every `--sample-seconds`; B's first
 *    and last window (a minute, or a quarter of its life when shorter)
 *    are compared.
 *
 * Errors are counted, never retried: a request the webhook drops is a pod
 * the API server could not admit. Results go to bench-results/soak-<time>.json.
 */
import { X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as https from "node:https"
import * as path from "node:path"
import * as tls from "node:tls"
import { parseArgs } from "node:util"
import {
  binFile,
  errorLogLines,
  exampleClusterDir,
  freePort,
  httpsStatus,
  machine,
  repoRoot,
  reviewObject,
  type ReviewKind,
  rssKiB,
  scratchDir,
  sleep,
  spawnNode,
  imageNodeOptions,
  stopChild,
  verifierFor,
  waitReady,
  writeTlsFiles
} from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "100" },
    "sample-seconds": { type: "string", default: "5" },
    // How long traffic still goes to A after its readiness turns false: endpoints lag (SHUTDOWN_DELAY_MS is 2000).
    "switch-delay-ms": { type: "string", default: "1500" }
  }
})
const minutes = Number(flags.minutes)
const rate = Number(flags.rate)
const sampleSeconds = Number(flags["sample-seconds"])
const switchDelayMs = Math.max(0, Math.min(10_000, Number(flags["switch-delay-ms"])))
if (!(minutes > 0 && minutes <= 120) || !(rate > 0 && rate <= 2000) || !(sampleSeconds >= 1 && sampleSeconds <= 60)) {
  throw new Error("--minutes must be in (0, 120], --rate in (0, 2000], --sample-seconds in [1, 60]")
}
const durationMs = minutes * 60_000
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
const scratch = scratchDir("filer-soak")

// ---------------------------------------------------------------------------
// Serving instances

const startInstance = async (name: string, certFile: string, keyFile: string) => {
  const port = await freePort()
  const child = spawnNode(
    [binFile, "serve", "--cluster", exampleClusterDir, "--host", "127.0.0.1", "--port", String(port), "--tls-cert", certFile, "--tls-key", keyFile],
    { logFile: path.join(scratch, `${name}.log`), nodeOptions: imageNodeOptions() }
  )
  const readyMs = await waitReady(child, port)
  log(`instance ${name} ready on ${port} in ${Math.round(readyMs)} ms (pid ${child.pid})`)
  return { name, port, child, readyMs }
}
type Instance = Awaited<ReturnType<typeof startInstance>>

/** The fingerprint of the certificate a fresh TLS connection to `port` is shown. */
const servedFingerprint = (port: number): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.end()
      resolve(fingerprint)
    })
    socket.once("error", () => resolve(undefined))
  })

// ---------------------------------------------------------------------------
// The client: a fixed rate, every answer checked, every failure counted

const mix: ReadonlyArray<ReviewKind> = ["full", "full", "full", "full", "full", "full", "full", "skipNoLabel", "skipOptOut", "noShares"]
const templates = Object.fromEntries(
  (["full", "skipNoLabel", "skipOptOut", "noShares"] as const).map((kind) => [kind, JSON.stringify(reviewObject(kind, "@UID@"))])
) as Record<ReviewKind, string>

interface Failure {
  readonly at: number
  readonly target: string
  readonly kind: string
  readonly detail: string
}

const stats = {
  sent: 0,
  ok: 0,
  failures: [] as Array<Failure>,
  latencies: [] as Array<number>,
  perTarget: {} as Record<string, number>
}

let target: Instance
let agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false })
let sequence = 0

const sendOne = () => {
  const kind = mix[sequence % mix.length]!
  const uid = `soak-${++sequence}`
  const body = templates[kind].replace("@UID@", uid)
  const to = target
  const started = performance.now()
  stats.sent += 1
  const fail = (detail: string) => stats.failures.push({ at: Date.now(), target: to.name, kind, detail })
  const request = https.request(
    {
      host: "127.0.0.1",
      port: to.port,
      path: "/inject",
      method: "POST",
      agent,
      timeout: 10_000,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    },
    (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        if (response.statusCode !== 200) return fail(`HTTP ${response.statusCode}: ${text.slice(0, 120)}`)
        if (!text.includes(`"uid":"${uid}"`) || !verifierFor(kind)(text)) return fail(`wrong answer: ${text.slice(0, 120)}`)
        stats.ok += 1
        stats.perTarget[to.name] = (stats.perTarget[to.name] ?? 0) + 1
        stats.latencies.push(performance.now() - started)
      })
      response.on("error", (error) => fail(`response error: ${error.message}`))
    }
  )
  request.on("timeout", () => request.destroy(new Error("timeout after 10 s")))
  request.on("error", (error: NodeJS.ErrnoException) => fail(`${error.code ?? "error"}: ${error.message}`))
  request.end(body)
}

/** Sends at `rate` req/s until `until` (a performance.now() time); resolves when the last answer is in. */
const drive = (until: number) =>
  new Promise<void>((resolve) => {
    const tickMs = 10
    let owed = 0
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      if (now >= until) {
        clearInterval(timer)
        resolve()
        return
      }
      owed += ((now - last) / 1000) * rate
      last = now
      for (; owed >= 1; owed -= 1) sendOne()
    }, tickMs)
  })

// ---------------------------------------------------------------------------

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits

const main = async () => {
  const startedAt = new Date()
  log(`soak: ${minutes} min at ${rate} req/s; ${JSON.stringify(machine())}; scratch ${scratch}`)
  const tlsDir = path.join(scratch, "tls")
  fs.mkdirSync(tlsDir)
  const first = await writeTlsFiles(tlsDir, "serving")
  const firstFingerprint = new X509Certificate(fs.readFileSync(first.certFile, "utf8")).fingerprint256

  const a = await startInstance("A", first.certFile, first.keyFile)
  target = a
  const memory: Array<{ at: number; instance: string; mib: number }> = []
  let sampled: Instance = a
  const sampler = setInterval(() => {
    const kib = rssKiB(sampled.child.pid)
    if (kib !== undefined) memory.push({ at: Date.now(), instance: sampled.name, mib: round(kib / 1024) })
  }, sampleSeconds * 1000)

  const t0 = performance.now()
  const end = t0 + durationMs
  const events: Array<Record<string, unknown>> = []
  const driving = drive(end)

  // --- restart at 10 %
  await sleep(durationMs * 0.1)
  const b = await startInstance("B", first.certFile, first.keyFile)
  const failuresBefore = stats.failures.length
  const termAt = performance.now()
  a.child.process.kill("SIGTERM")
  log("SIGTERM to A; traffic stays on A until its /readyz stops answering 200")
  let switchedAfterMs = -1
  for (;;) {
    const status = await httpsStatus(a.port, "/readyz", 500)
    if (status !== 200) {
      const notReadyAfterMs = Math.round(performance.now() - termAt)
      log(`A's /readyz says ${status ?? "nothing"} after ${notReadyAfterMs} ms; traffic stays on A ${switchDelayMs} ms more (endpoints lag)`)
      await sleep(switchDelayMs)
      target = b
      sampled = b
      switchedAfterMs = Math.round(performance.now() - termAt)
      log(`traffic moves to B ${switchedAfterMs} ms after SIGTERM`)
      break
    }
    await sleep(100)
  }
  // Sockets to A are not reused for B.
  const oldAgent = agent
  agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false })
  const aExit = await a.child.exited
  oldAgent.destroy()
  const aExitMs = Math.round(performance.now() - termAt)
  log(`A exited with ${aExit} ${aExitMs} ms after SIGTERM; failures during the restart: ${stats.failures.length - failuresBefore}`)
  events.push({
    event: "restart",
    atSecond: round((termAt - t0) / 1000),
    trafficMovedAfterMs: switchedAfterMs,
    exitCode: aExit,
    exitedAfterMs: aExitMs,
    failures: stats.failures.length - failuresBefore,
    answeredByA: stats.perTarget.A ?? 0
  })

  // --- TLS rotation at 50 %
  await sleep(Math.max(0, t0 + durationMs * 0.5 - performance.now()))
  const failuresBeforeRotation = stats.failures.length
  const second = await writeTlsFiles(tlsDir, "next")
  // As a Secret volume rotates: the new files renamed over the old ones.
  fs.renameSync(second.keyFile, first.keyFile)
  fs.renameSync(second.certFile, first.certFile)
  const rotatedAt = performance.now()
  const secondFingerprint = new X509Certificate(fs.readFileSync(first.certFile, "utf8")).fingerprint256
  let seenAfterMs = -1
  while (performance.now() - rotatedAt < 15_000) {
    if ((await servedFingerprint(b.port)) === secondFingerprint) {
      seenAfterMs = Math.round(performance.now() - rotatedAt)
      break
    }
    await sleep(100)
  }
  log(seenAfterMs < 0 ? "TLS rotation: the new certificate was NOT served within 15 s" : `TLS rotation: new certificate served after ${seenAfterMs} ms`)
  await sleep(3000)
  events.push({
    event: "tlsRotation",
    atSecond: round((rotatedAt - t0) / 1000),
    newCertificateServedAfterMs: seenAfterMs,
    oldFingerprint: firstFingerprint,
    newFingerprint: secondFingerprint,
    failuresWithin3s: stats.failures.length - failuresBeforeRotation
  })

  await driving
  // Let the last answers arrive.
  await sleep(2000)
  clearInterval(sampler)
  agent.destroy()
  const bExit = await stopChild(b.child)

  // Memory: B's first and last window.
  const bSamples = memory.filter((sample) => sample.instance === "B")
  const bLifeMs = bSamples.length > 1 ? bSamples.at(-1)!.at - bSamples[0]!.at : 0
  const windowMs = Math.min(60_000, Math.max(sampleSeconds * 1000, bLifeMs / 4))
  const average = (samples: ReadonlyArray<{ mib: number }>) => samples.reduce((n, s) => n + s.mib, 0) / Math.max(1, samples.length)
  const firstWindow = bSamples.filter((s) => s.at - bSamples[0]!.at <= windowMs)
  const lastWindow = bSamples.filter((s) => bSamples.at(-1)!.at - s.at <= windowMs)
  const firstMiB = round(average(firstWindow))
  const lastMiB = round(average(lastWindow))
  const flat = lastMiB <= firstMiB * 1.1 + 5

  const byDetail: Record<string, number> = {}
  for (const failure of stats.failures) byDetail[failure.detail.slice(0, 60)] = (byDetail[failure.detail.slice(0, 60)] ?? 0) + 1
  const results = {
    startedAt: startedAt.toISOString(),
    command: `node test/bench/soak.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine: machine(),
    options: { minutes, rate, sampleSeconds, switchDelayMs },
    requests: { sent: stats.sent, ok: stats.ok, failed: stats.failures.length, perInstance: stats.perTarget },
    latencyMs: {
      p50: round(percentile(stats.latencies, 50), 2),
      p99: round(percentile(stats.latencies, 99), 2),
      max: round(percentile(stats.latencies, 100), 2)
    },
    failures: byDetail,
    firstFailures: stats.failures.slice(0, 10),
    events,
    memory: { windowSeconds: round(windowMs / 1000), firstWindowMiB: firstMiB, lastWindowMiB: lastMiB, flat, samples: memory },
    exitCodes: { A: events[0]?.exitCode, B: bExit },
    errorLogLines: { A: errorLogLines(a.child.logFile).length, B: errorLogLines(b.child.logFile).length },
    ready: { A: Math.round(a.readyMs), B: Math.round(b.readyMs) }
  }
  const outDir = path.join(repoRoot, "bench-results")
  fs.mkdirSync(outDir, { recursive: true })
  const outFile = path.join(outDir, `soak-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`)
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)

  log(`requests: ${stats.sent} sent, ${stats.ok} answered right, ${stats.failures.length} failed ${JSON.stringify(byDetail)}`)
  log(`latency: p50 ${results.latencyMs.p50} ms, p99 ${results.latencyMs.p99} ms, max ${results.latencyMs.max} ms`)
  log(`memory of B: first ${results.memory.windowSeconds} s ${firstMiB} MiB, last ${results.memory.windowSeconds} s ${lastMiB} MiB: ${flat ? "flat" : "GROWING"}`)
  log(`exit codes: A ${String(results.exitCodes.A)}, B ${String(bExit)}; ERROR log lines: ${JSON.stringify(results.errorLogLines)}`)
  log(`results: ${path.relative(repoRoot, outFile)}`)
  const pass = stats.failures.length === 0 && flat && results.exitCodes.A === 0 && seenAfterMs >= 0
  log(pass ? "SOAK PASSED" : "SOAK FAILED")
  process.exit(pass ? 0 : 1)
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(2)
})
