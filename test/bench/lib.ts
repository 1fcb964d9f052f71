/**
 * Shared pieces of the benchmark (`run.ts`) and the soak (`soak.ts`): the
 * reviews to send, child processes (the webhook, the floor server, the fake
 * API server) and how to tell they are ready, RSS sampling from /proc, and
 * autocannon runs with exact latencies.
 *
 * Everything talks to 127.0.0.1 only, and every load is bounded in time.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"

export const repoRoot = path.join(import.meta.dirname, "..", "..")
export const exampleClusterDir = path.join(repoRoot, "manifests", "examples", "cluster")
export const exampleReviewFile = path.join(repoRoot, "manifests", "examples", "admission-review.json")
export const binFile = path.join(repoRoot, "src", "bin.ts")

// ---------------------------------------------------------------------------
// Reviews

export type ReviewKind = "full" | "skipNoLabel" | "skipOptOut" | "noShares"

export const reviewKinds: ReadonlyArray<ReviewKind> = ["full", "skipNoLabel", "skipOptOut", "noShares"]

export const reviewDescriptions: Readonly<Record<ReviewKind, string>> = {
  full: "full injection (the example review: 3 shares on 2 SVMs, one SVM skipped)",
  skipNoLabel: "skip: pod without the notebook-name label",
  skipOptOut: "skip: pod with the opt-out annotation",
  noShares: "no shares: namespace without existing-shares (one API lookup, NotFound)"
}

type Json = Record<string, any>

/** The example AdmissionReview, changed for `kind`. `uid` may be autocannon's `[<id>]` placeholder. */
export const reviewObject = (kind: ReviewKind, uid = "3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f"): Json => {
  const review = JSON.parse(fs.readFileSync(exampleReviewFile, "utf8")) as Json
  review.request.uid = uid
  const pod = review.request.object
  switch (kind) {
    case "full":
      break
    case "skipNoLabel":
      delete pod.metadata.labels["notebook-name"]
      break
    case "skipOptOut":
      pod.metadata.annotations = { "filer-injector-webhook.das-zone.statcan/inject": "false" }
      break
    case "noShares":
      review.request.namespace = "no-shares-here"
      pod.metadata.namespace = "no-shares-here"
      break
  }
  return review
}

/** The body autocannon sends: a fresh uid per request. */
export const reviewBody = (kind: ReviewKind): string => JSON.stringify(reviewObject(kind, "[<id>]"))

/** A cheap check of an answer's body for `kind` (no JSON.parse: the client must stay light). */
export const verifierFor = (kind: ReviewKind) => (body: string): boolean =>
  body.includes(`"kind":"AdmissionReview"`) && body.includes(`"allowed":true`) &&
  (kind === "full" ? body.includes(`"patchType":"JSONPatch"`) : !body.includes(`"patch"`))

// ---------------------------------------------------------------------------
// Files and ports

/** A fresh scratch folder for TLS files, kubeconfigs and child logs. */
export const scratchDir = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`))

/** A free TCP port on 127.0.0.1 (bound then released; the race is harmless here). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
  readonly caPem: string
}

/** A self-signed CA and serving pair for 127.0.0.1 (2048-bit keys: quicker), written to `dir`. */
export const writeTlsFiles = async (dir: string, name = "tls"): Promise<TlsFiles> => {
  const material = await Effect.runPromise(
    generateSelfSigned({ serviceName: "filer-sidecar-injector", namespace: "das", caKeyBits: 2048 })
  )
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  fs.writeFileSync(certFile, material.certPem)
  fs.writeFileSync(keyFile, material.keyPem, { mode: 0o600 })
  return { certFile, keyFile, caPem: material.caPem }
}

// ---------------------------------------------------------------------------
// Child processes

export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  readonly logFile: string
  /** `performance.now()` just before the spawn. */
  readonly startedAt: number
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>
}

/**
 * The NODE_OPTIONS the image sets (Dockerfile `ENV NODE_OPTIONS=...`): the
 * benchmark and the soak run the webhook with them, so their figures are the
 * image's.
 */
export const imageNodeOptions = (): ReadonlyArray<string> => {
  const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8")
  const match = /^ENV\s+NODE_OPTIONS="([^"]*)"\s*$/m.exec(dockerfile)
  if (match === null) throw new Error("the Dockerfile sets no NODE_OPTIONS=\"...\"")
  return match[1]!.split(/\s+/).filter((option) => option !== "")
}

/**
 * A compile cache primed as the image's is (Dockerfile, stage compile-cache:
 * the server's modules and the live client imported once), for children to
 * run with as the image runs them (`NODE_COMPILE_CACHE`). Without it each
 * child strips the TypeScript types itself and holds the stripper's memory:
 * `src/main.ts` imported holds 117 MiB of RSS with the cache warm, 140 MiB
 * without (test/bench/RESULTS.md, "Memory in live mode").
 */
export const primedCompileCache = (dir: string): string => {
  fs.mkdirSync(dir, { recursive: true })
  const imports = [path.join(repoRoot, "src", "main.ts"), path.join(repoRoot, "src", "cluster", "KubeClientLive.ts")]
  execFileSync(process.execPath, [
    "--input-type=module",
    "-e",
    imports.map((file) => `await import(${JSON.stringify(pathToFileURL(file).href)})`).join("; ")
  ], { cwd: repoRoot, env: { ...process.env, NODE_COMPILE_CACHE: dir }, stdio: "ignore" })
  return dir
}

/**
 * CPU microseconds this process has used (user + system), not wall time: on a
 * machine shared with other work, waiting for a core does not count.
 */
export const cpuMicros = (): number => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

/** CPU time (user + system, every thread) a process has used so far, in ms. */
export const processCpuMillis = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100)
}

/**
 * The webhook's own time per admission, from its log lines' `durationMs`
 * (decode to answer, the HTTP server and TLS excluded), for the lines of
 * `logFile` after the first `skipLines`.
 */
export const loggedDurations = (logFile: string, skipLines: number) => {
  const durations = fs.readFileSync(logFile, "utf8").split("\n").slice(skipLines).flatMap((line) => {
    if (!line.includes("\"durationMs\"")) return []
    const duration = (JSON.parse(line) as { annotations?: { durationMs?: unknown } }).annotations?.durationMs
    return typeof duration === "number" ? [duration] : []
  })
  const sorted = Float64Array.from(durations).sort()
  return { count: sorted.length, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) }
}

/** How many lines a log file has now. */
export const lineCount = (file: string): number => fs.readFileSync(file, "utf8").split("\n").length

/** Runs `node args...` with stdout and stderr into `logFile`. */
export const spawnNode = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Readonly<Record<string, string>>; readonly logFile: string; readonly nodeOptions?: ReadonlyArray<string> }
): Child => {
  const log = fs.openSync(options.logFile, "a")
  const startedAt = performance.now()
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", log, log]
  })
  fs.closeSync(log)
  if (child.pid === undefined) throw new Error(`cannot start node ${args.join(" ")}`)
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  })
  return { process: child, pid: child.pid, logFile: options.logFile, startedAt, exited }
}

/** SIGTERM, then SIGKILL after `graceMillis`. Resolves with how the process ended. */
export const stopChild = async (child: Child, graceMillis = 10_000): Promise<number | string> => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return child.exited
  child.process.kill("SIGTERM")
  const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMillis)
  try {
    return await child.exited
  } finally {
    clearTimeout(timer)
  }
}

/** One GET over HTTPS, any certificate accepted: the status, or undefined when there is no answer. */
export const httpsStatus = (port: number, urlPath: string, timeoutMillis = 1000): Promise<number | undefined> =>
  new Promise((resolve) => {
    const request = https.get(
      { host: "127.0.0.1", port, path: urlPath, rejectUnauthorized: false, agent: false, timeout: timeoutMillis },
      (response) => {
        response.resume()
        response.once("end", () => resolve(response.statusCode))
      }
    )
    request.once("timeout", () => request.destroy())
    request.once("error", () => resolve(undefined))
  })

/** Polls `GET /readyz` every 10 ms until 200; resolves with the milliseconds since the spawn. */
export const waitReady = async (child: Child, port: number, timeoutMillis = 20_000): Promise<number> => {
  const deadline = child.startedAt + timeoutMillis
  while (performance.now() < deadline) {
    if (child.process.exitCode !== null) {
      throw new Error(`the process exited (${child.process.exitCode}) before it was ready; see ${child.logFile}`)
    }
    if ((await httpsStatus(port, "/readyz", 500)) === 200) return performance.now() - child.startedAt
    await sleep(10)
  }
  throw new Error(`not ready within ${timeoutMillis} ms; see ${child.logFile}`)
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Waits for a line of `child`'s log matching `pattern`; resolves with the match. */
export const waitForLog = async (child: Child, pattern: RegExp, timeoutMillis = 20_000): Promise<RegExpExecArray> => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const match = pattern.exec(fs.readFileSync(child.logFile, "utf8"))
    if (match !== null) return match
    if (child.process.exitCode !== null) throw new Error(`exited before logging ${pattern}; see ${child.logFile}`)
    await sleep(20)
  }
  throw new Error(`no ${pattern} in ${child.logFile} within ${timeoutMillis} ms`)
}

// ---------------------------------------------------------------------------
// Memory

/** VmRSS of a process in KiB, from /proc/<pid>/status; undefined once it is gone. */
export const rssKiB = (pid: number): number | undefined => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

export interface RssSampler {
  /** Peak RSS seen since start, MiB. */
  readonly peakMiB: () => number
  readonly samples: () => ReadonlyArray<{ readonly at: number; readonly mib: number }>
  readonly stop: () => void
}

/** Samples a process's RSS every `intervalMillis`. */
export const sampleRss = (pid: number, intervalMillis = 200): RssSampler => {
  const samples: Array<{ at: number; mib: number }> = []
  let peak = 0
  const take = () => {
    const kib = rssKiB(pid)
    if (kib === undefined) return
    const mib = kib / 1024
    peak = Math.max(peak, mib)
    samples.push({ at: Date.now(), mib })
  }
  take()
  const timer = setInterval(take, intervalMillis)
  return {
    peakMiB: () => peak,
    samples: () => samples,
    stop: () => {
      clearInterval(timer)
      take()
    }
  }
}

// ---------------------------------------------------------------------------
// Load

interface AutocannonResult {
  readonly duration: number
  readonly errors: number
  readonly timeouts: number
  readonly mismatches: number
  readonly non2xx: number
  readonly statusCodeStats: Readonly<Record<string, { readonly count: number }>>
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly requests: { readonly average: number; readonly total: number; readonly sent: number }
}

interface AutocannonInstance extends NodeJS.EventEmitter {
  stop(): void
}

type Autocannon = (
  options: Record<string, unknown>,
  callback: (error: Error | null, result: AutocannonResult) => void
) => AutocannonInstance

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon

export interface LoadOptions {
  readonly port: number
  readonly body: string
  readonly seconds: number
  readonly connections: number
  /** Requests per second across all connections; unbounded when absent. */
  readonly overallRate?: number
  readonly verifyBody?: (body: string) => boolean
  readonly path?: string
}

export interface LoadResult {
  readonly seconds: number
  readonly requests: number
  readonly requestsPerSecond: number
  /** Latencies in ms, from every response's own timing (not bucketed). */
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number }
  /** Socket errors and timeouts. */
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  /** Answers whose body did not look right for the review sent. */
  readonly mismatches: number
  readonly statusCodes: Readonly<Record<string, number>>
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits

/** One autocannon run against https://127.0.0.1:port, POSTing `body` as JSON; bounded by `seconds`. */
export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16)
    let count = 0
    const instance = autocannon(
      {
        url: `https://127.0.0.1:${options.port}${options.path ?? "/inject"}`,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: options.body,
        idReplacement: options.body.includes("[<id>]"),
        duration: options.seconds,
        connections: options.connections,
        ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
        ...(options.verifyBody === undefined ? {} : { verifyBody: options.verifyBody }),
        timeout: 10,
        excludeErrorStats: false
      },
      (error, result) => {
        if (error !== null) return reject(error)
        const sorted = latencies.subarray(0, count).sort()
        const statusCodes: Record<string, number> = {}
        for (const [code, stats] of Object.entries(result.statusCodeStats)) statusCodes[code] = stats.count
        resolve({
          seconds: result.duration,
          requests: count,
          requestsPerSecond: round(count / result.duration, 0),
          latencyMs: {
            p50: round(percentile(sorted, 50)),
            p90: round(percentile(sorted, 90)),
            p99: round(percentile(sorted, 99)),
            p999: round(percentile(sorted, 99.9)),
            max: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!)
          },
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          mismatches: result.mismatches,
          statusCodes
        })
      }
    )
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      if (count === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2)
        bigger.set(latencies)
        latencies = bigger
      }
      latencies[count++] = responseTime
    })
  })

/**
 * Requests at a steady rate, open loop: one every 1000/rate ms whether or not
 * earlier ones have been answered, as the kube-apiserver sends admissions.
 * (autocannon's `overallRate` is closed loop per connection: each connection
 * sends its share of the second back to back, then waits for the next second,
 * so its latencies are those of a burst at full concurrency.)
 *
 * `warmupSeconds` first, at the same pace on the same connections, not
 * counted; `onMeasureStart` is called when the counted requests begin. A cold
 * client opens a TLS connection for every request sent while the earlier ones
 * are unanswered, and those handshakes (on the server under test) would
 * otherwise land in the first counted second; the API server keeps its
 * connections to a webhook alive.
 */
export const runPaced = (options: {
  readonly port: number
  readonly body: string
  readonly rate: number
  readonly seconds: number
  readonly warmupSeconds?: number
  readonly onMeasureStart?: () => void
  readonly verifyBody?: (body: string) => boolean
}): Promise<LoadResult> =>
  new Promise((resolve) => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false })
    const latencies: Array<number> = []
    const statusCodes: Record<string, number> = {}
    let errors = 0
    let timeouts = 0
    let mismatches = 0
    let sent = 0
    let pending = 0
    let stopped = false
    const startedAt = performance.now()
    const warmupCount = Math.round(options.rate * (options.warmupSeconds ?? 0))
    let measuredFrom = startedAt
    const finish = () => {
      agent.destroy()
      const sorted = Float64Array.from(latencies).sort()
      const seconds = (performance.now() - measuredFrom) / 1000
      resolve({
        seconds: round(seconds),
        requests: latencies.length,
        requestsPerSecond: round(latencies.length / options.seconds, 0),
        latencyMs: {
          p50: round(percentile(sorted, 50)),
          p90: round(percentile(sorted, 90)),
          p99: round(percentile(sorted, 99)),
          p999: round(percentile(sorted, 99.9)),
          max: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!)
        },
        errors,
        timeouts,
        non2xx: Object.entries(statusCodes).filter(([code]) => code !== "200").reduce((n, [, count]) => n + count, 0),
        mismatches,
        statusCodes
      })
    }
    const sendOne = () => {
      sent += 1
      pending += 1
      const counted = sent > warmupCount
      if (sent === warmupCount + 1 && warmupCount > 0) {
        measuredFrom = performance.now()
        options.onMeasureStart?.()
      }
      const started = performance.now()
      const done = () => {
        pending -= 1
        if (stopped && pending === 0) finish()
      }
      const request = https.request(
        {
          host: "127.0.0.1",
          port: options.port,
          path: "/inject",
          method: "POST",
          agent,
          timeout: 10_000,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(options.body) }
        },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("end", () => {
            if (counted) {
              latencies.push(performance.now() - started)
              const code = String(response.statusCode)
              statusCodes[code] = (statusCodes[code] ?? 0) + 1
              if (options.verifyBody !== undefined && !options.verifyBody(Buffer.concat(chunks).toString("utf8"))) mismatches += 1
            }
            done()
          })
        }
      )
      // A warm-up request's failure counts too: nothing may fail unseen.
      request.on("timeout", () => {
        timeouts += 1
        request.destroy(new Error("timeout"))
      })
      request.on("error", () => {
        errors += 1
        done()
      })
      request.end(options.body)
    }
    const interval = 1000 / options.rate
    const total = warmupCount + Math.round(options.rate * options.seconds)
    // Each request at its own time: startedAt + i * interval, whatever the timer's drift.
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - startedAt) / interval) + 1)
      while (sent < due) sendOne()
      if (sent >= total) {
        stopped = true
        if (pending === 0) finish()
        return
      }
      setTimeout(tick, Math.max(0, startedAt + sent * interval - performance.now()))
    }
    tick()
  })

/**
 * One of the floors (floor.ts, frameworkFloor.ts) on a free port, answering
 * the fixed patch in `patchFile`, ready; `args` for floor.ts --kubeconfig.
 */
export const startFloor = async (
  script: "floor.ts" | "frameworkFloor.ts",
  options: {
    readonly tls: TlsFiles
    readonly patchFile: string
    readonly logFile: string
    readonly args?: ReadonlyArray<string>
    readonly nodeOptions?: ReadonlyArray<string>
  }
): Promise<{ readonly child: Child; readonly port: number }> => {
  const port = await freePort()
  const child = spawnNode(
    [
      path.join(repoRoot, "test", "bench", script),
      "--port",
      String(port),
      "--cert",
      options.tls.certFile,
      "--key",
      options.tls.keyFile,
      "--patch",
      options.patchFile,
      ...(options.args ?? [])
    ],
    { logFile: options.logFile, ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }) }
  )
  await waitReady(child, port)
  return { child, port }
}

/** A load run while sampling `pid`'s RSS: the run's result and the peak RSS during it. */
export const runLoadSampled = async (pid: number, options: LoadOptions) => {
  const sampler = sampleRss(pid)
  try {
    const result = await runLoad(options)
    return { ...result, peakRssMiB: round(sampler.peakMiB(), 1) }
  } finally {
    sampler.stop()
  }
}

/** Log lines of a child at level ERROR (JSON logs), to report them. */
export const errorLogLines = (logFile: string): ReadonlyArray<string> =>
  fs.readFileSync(logFile, "utf8").split("\n").filter((line) => /"level":"(ERROR|FATAL)"/.test(line))

export const machine = () => ({
  nproc: os.availableParallelism(),
  cpu: os.cpus()[0]?.model ?? "unknown",
  memoryGiB: round(os.totalmem() / 2 ** 30, 1),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`
})
