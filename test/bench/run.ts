/**
 * `npm run bench`: how fast the webhook answers, against the floor of a bare
 * `node:https` server that only parses the review and answers a fixed patch.
 *
 *   node test/bench/run.ts [--seconds 10] [--warmup 2] [--connections 16]
 *                          [--rate 200] [--rate-seconds 10] [--paced-warmup 2] [--latency-ms 2]
 *                          [--kinds full,skipNoLabel,skipOptOut,noShares]
 *                          [--ready-runs 3] [--cpu-prof] [--skip-throughput] [--skip-rate] [--skip-api] [--api-tls]
 *                          [--node-options "--max-semi-space-size=16"]
 *
 * The webhook runs with the image's NODE_OPTIONS (Dockerfile) unless
 * `--node-options` is given (`--node-options=" "` for none), and, like every
 * child, with a compile cache primed as the image's (lib.ts primedCompileCache).
 *
 * 1. Time to ready: spawn → first `GET /readyz` 200, with a self-signed
 *    certificate generated at start and with certificate files.
 * 2. Throughput: the webhook (`serve --cluster manifests/examples/cluster`,
 *    TLS) and the floor, each driven by autocannon for `--seconds` at
 *    `--connections`, per review kind, after a warm-up. Requests/s, p50/p99,
 *    errors, answers that do not look right, peak RSS. On the full review,
 *    also the framework's floor (frameworkFloor.ts: HttpRouter answering the
 *    fixed patch) and the pipeline's (frameworkFloor.ts --pipeline: admit()
 *    alone behind HttpRouter), which split our cost into framework, pipeline
 *    and what the server adds (log line, metrics, Events, limits). Every
 *    floor runs with the webhook's NODE_OPTIONS.
 * 3. Fixed rate: `--rate` req/s of full-injection reviews, with the cluster in
 *    memory, then through the fake API server (KubeClientLive, kubeconfig)
 *    with 0 ms and `--latency-ms` added to every API round trip: p99 shows what
 *    the per-admission lookups cost (`--api-tls`: over HTTPS, as in a cluster;
 *    plain HTTP by default, as the earlier figures). Beside each, the floor making the same
 *    reads (floor.ts --kubeconfig): the latency this machine allows at that
 *    rate with those round trips, before any work of ours. Beside the
 *    in-memory run (full injection, then a pod without the label, which the
 *    webhook leaves alone at once), the bare floor, effect's HttpRouter
 *    answering the fixed patch, and HttpRouter answering with the admission
 *    pipeline alone (frameworkFloor.ts --pipeline: no log line, metrics,
 *    Events or limits) at the same rate: the CPU per request of each as a
 *    multiple of the bare floor's (`--skip-api`: the in-memory runs only).
 *    And how many connections each opened to the fake API server (over TLS, a handshake
 *    each; both keep at most 8, src/cluster/live/connections.ts). Each paced
 *    run starts with `--paced-warmup` seconds of the same requests on the
 *    same connections, not counted (runPaced in lib.ts).
 *
 * Results print as tables and go to bench-results/<timestamp>.json. Nothing
 * here asserts a timing: the figures are for reading (test/bench/RESULTS.md).
 * Everything runs on 127.0.0.1.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { applyStrict, decodePatchBase64 } from "../support/strictJsonPatch.ts"
import { validatePod } from "../support/podValidation.ts"
import {
  binFile,
  type Child,
  errorLogLines,
  exampleClusterDir,
  freePort,
  imageNodeOptions,
  lineCount,
  loggedDurations,
  processCpuMillis,
  type LoadResult,
  machine,
  primedCompileCache,
  repoRoot,
  reviewBody,
  reviewDescriptions,
  type ReviewKind,
  reviewKinds,
  reviewObject,
  runLoadSampled,
  runPaced,
  rssKiB,
  sampleRss,
  scratchDir,
  sleep,
  spawnNode,
  startFloor as startFloorProcess,
  stopChild,
  verifierFor,
  waitForLog,
  waitReady,
  writeTlsFiles
} from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "16" },
    rate: { type: "string", default: "200" },
    "rate-seconds": { type: "string", default: "10" },
    "latency-ms": { type: "string", default: "2" },
    kinds: { type: "string", default: reviewKinds.join(",") },
    "ready-runs": { type: "string", default: "3" },
    // Paced requests before the counted ones, on the same connections (runPaced's warmupSeconds).
    "paced-warmup": { type: "string", default: "2" },
    "cpu-prof": { type: "boolean", default: false },
    "skip-throughput": { type: "boolean", default: false },
    "skip-rate": { type: "boolean", default: false },
    "skip-api": { type: "boolean", default: false },
    // The fake API server over HTTPS, its CA in a file the kubeconfig names, as in a pod (fakeApi.ts --tls).
    "api-tls": { type: "boolean", default: false },
    // Extra `node` flags for the webhook's process, e.g. V8 heap sizing.
    "node-options": { type: "string" }
  }
})

const bounded = (name: string, raw: string, min: number, max: number) => {
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`--${name} must be a number from ${min} to ${max}, got ${raw}`)
  }
  return value
}
const seconds = bounded("seconds", flags.seconds, 1, 120)
const warmup = bounded("warmup", flags.warmup, 0, 30)
const connections = bounded("connections", flags.connections, 1, 256)
const rate = bounded("rate", flags.rate, 1, 5000)
const rateSeconds = bounded("rate-seconds", flags["rate-seconds"], 1, 120)
const latencyMs = bounded("latency-ms", flags["latency-ms"], 0, 1000)
const readyRuns = bounded("ready-runs", flags["ready-runs"], 1, 10)
const pacedWarmupSeconds = bounded("paced-warmup", flags["paced-warmup"], 0, 30)
const kinds = flags.kinds.split(",").map((kind) => {
  if (!(reviewKinds as ReadonlyArray<string>).includes(kind)) throw new Error(`unknown review kind ${kind}`)
  return kind as ReviewKind
})

const webhookNodeOptions = flags["node-options"] === undefined
  ? imageNodeOptions()
  : flags["node-options"].split(/\s+/).filter((option) => option !== "")
const scratch = scratchDir("filer-bench")
// Every child runs as the image runs it: with the image's NODE_OPTIONS (above) and a compile cache primed as
// the image build primes its own (lib.ts primedCompileCache), which the children inherit.
process.env.NODE_COMPILE_CACHE = primedCompileCache(path.join(scratch, "compile-cache"))
// A fixed uid for the paced client (it does not use autocannon's id replacement).
const reviewObjectText = (kind: ReviewKind) => JSON.stringify(reviewObject(kind, `bench-paced-${kind}`))
const log = (line: string) => process.stdout.write(`${line}\n`)

// Quick exits for children: the shutdown drain is the soak's business, not the bench's.
const childEnv = { SHUTDOWN_DELAY_MS: "0", SHUTDOWN_GRACE_MS: "1000" }
const children = new Set<Child>()

const startWebhook = async (
  name: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  profile = false
) => {
  const port = await freePort()
  const child = spawnNode([binFile, "serve", "--host", "127.0.0.1", "--port", String(port), ...args], {
    env: { ...childEnv, ...env },
    logFile: path.join(scratch, `${name}.log`),
    nodeOptions: [...webhookNodeOptions, ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(scratch, "profiles")}`] : [])]
  })
  children.add(child)
  const readyMs = await waitReady(child, port)
  return { child, port, readyMs }
}

const stop = async (child: Child) => {
  await stopChild(child)
  children.delete(child)
}

process.on("SIGINT", () => {
  for (const child of children) child.process.kill("SIGKILL")
  process.exit(130)
})

/** One admission by hand: the answer must be right before any load is measured. */
const checkOnce = async (port: number, kind: ReviewKind) => {
  const uid = `bench-check-${kind}`
  const review = reviewObject(kind, uid)
  const response = await fetchJson(port, review)
  const answer = response.response as Record<string, unknown>
  if (answer.uid !== uid || answer.allowed !== true) throw new Error(`${kind}: unexpected answer ${JSON.stringify(response)}`)
  if (kind === "full") {
    if (typeof answer.patch !== "string") throw new Error("full: no patch in the answer")
    const pod = applyStrict(review.request.object, decodePatchBase64(answer.patch))
    const problems = validatePod(pod)
    if (problems.length > 0) throw new Error(`full: the patched pod is invalid: ${problems.join("; ")}`)
    return answer.patch
  }
  if (answer.patch !== undefined) throw new Error(`${kind}: a patch where none was expected`)
  return undefined
}

const fetchJson = async (port: number, body: unknown): Promise<Record<string, unknown>> => {
  const { request } = await import("node:https")
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/inject",
        method: "POST",
        rejectUnauthorized: false,
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) }
      },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>)
          } catch (error) {
            reject(error)
          }
        })
      }
    )
    req.once("error", reject)
    req.end(text)
  })
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}
const fmt = (value: number, digits = 1) => value.toFixed(digits)
const pad = (text: string, width: number) => text.padStart(width)

const printTable = (
  title: string,
  rows: ReadonlyArray<{ readonly label: string; readonly result: LoadResult & { readonly peakRssMiB: number } }>
) => {
  log(`\n${title}`)
  log(
    `${"".padEnd(40)}${pad("req/s", 8)}${pad("p50 ms", 9)}${pad("p99 ms", 9)}${pad("max ms", 9)}` +
      `${pad("errors", 8)}${pad("non2xx", 8)}${pad("wrong", 7)}${pad("RSS MiB", 9)}`
  )
  for (const { label, result } of rows) {
    log(
      `${label.padEnd(40)}${pad(String(result.requestsPerSecond), 8)}${pad(fmt(result.latencyMs.p50, 2), 9)}` +
        `${pad(fmt(result.latencyMs.p99, 2), 9)}${pad(fmt(result.latencyMs.max), 9)}` +
        `${pad(String(result.errors), 8)}${pad(String(result.non2xx), 8)}${pad(String(result.mismatches), 7)}` +
        `${pad(fmt(result.peakRssMiB), 9)}`
    )
  }
}

const main = async () => {
  const startedAt = new Date()
  const loadAtStart = os.loadavg().map((n) => Math.round(n * 100) / 100)
  log(`filer-sidecar-injector bench: ${JSON.stringify(machine())}, load average ${loadAtStart.join(" ")}`)
  if (loadAtStart[0]! > 1) log("warning: the machine is busy (load average above 1); figures will be low and noisy")
  log(`scratch folder (TLS files, child logs${flags["cpu-prof"] ? ", CPU profiles" : ""}): ${scratch}`)
  const tls = await writeTlsFiles(scratch)
  const clusterArgs = ["--cluster", exampleClusterDir]
  // The floor answers the webhook's own patch of the full review (written once the webhook has answered it).
  const patchFile = path.join(scratch, "floor-patch.b64")
  /** One of the floors (floor.ts, frameworkFloor.ts), answering the fixed patch. */
  const startFloor = async (
    script: "floor.ts" | "frameworkFloor.ts",
    name: string,
    options: { readonly args?: ReadonlyArray<string>; readonly nodeOptions?: ReadonlyArray<string> } = {}
  ) => {
    // With the webhook's NODE_OPTIONS: the heap's sizing changes both CPU (how often it collects) and RSS.
    const floor = await startFloorProcess(script, {
      nodeOptions: webhookNodeOptions,
      ...options,
      tls,
      patchFile,
      logFile: path.join(scratch, `${name}.log`)
    })
    children.add(floor.child)
    return floor
  }

  // -------------------------------------------------------------------------
  // 1. Time to ready
  const ready = { selfSignedMs: [] as Array<number>, tlsFilesMs: [] as Array<number> }
  for (let run = 0; run < readyRuns; run++) {
    const selfSigned = await startWebhook(`ready-self-signed-${run}`, clusterArgs)
    ready.selfSignedMs.push(Math.round(selfSigned.readyMs))
    await stop(selfSigned.child)
    const files = await startWebhook(`ready-tls-files-${run}`, [
      ...clusterArgs,
      "--tls-cert",
      tls.certFile,
      "--tls-key",
      tls.keyFile
    ])
    ready.tlsFilesMs.push(Math.round(files.readyMs))
    await stop(files.child)
  }
  log(`\ntime to ready (spawn → /readyz 200), ${readyRuns} runs each:`)
  log(`  self-signed certificate generated at start: ${ready.selfSignedMs.join(", ")} ms (median ${median(ready.selfSignedMs)})`)
  log(`  --tls-cert/--tls-key files:                  ${ready.tlsFilesMs.join(", ")} ms (median ${median(ready.tlsFilesMs)})`)

  // -------------------------------------------------------------------------
  // 2. Throughput, webhook against the floor
  type Row = {
    label: string
    target: string
    kind: ReviewKind
    result: LoadResult & {
      peakRssMiB: number
      /** Paced runs: the process's CPU (every thread) per request. */
      cpuMsPerRequest?: number
      /** Paced runs of the webhook: its own time per admission (its log's durationMs). */
      webhookSide?: { count: number; p50: number; p99: number }
    }
  }
  const throughput: Array<Row> = []
  const ratios: Partial<Record<ReviewKind, number>> = {}
  let webhookLoadPeakMiB = 0
  let floorLoadPeakMiB = 0
  let rssBeforeLoadMiB = { webhook: 0, floor: 0 }
  const mib = (kib: number | undefined) => Math.round(((kib ?? 0) / 1024) * 10) / 10
  let webhookErrors: ReadonlyArray<string> = []
  let frameworkRatio: number | undefined
  let pipelineRatio: number | undefined
  if (!flags["skip-throughput"]) {
    const webhook = await startWebhook("webhook-cluster", clusterArgs, {}, flags["cpu-prof"])
    let fullPatch: string | undefined
    for (const kind of reviewKinds) {
      const patch = await checkOnce(webhook.port, kind)
      if (patch !== undefined) fullPatch = patch
    }
    fs.writeFileSync(patchFile, fullPatch!)
    const { child: floor, port: floorPort } = await startFloor("floor.ts", "floor")
    // The framework's floor: the same fixed answer through effect's HttpRouter (once, on the full review).
    const { child: framework, port: frameworkPort } = await startFloor("frameworkFloor.ts", "framework-floor")
    // The pipeline's floor: admit() alone behind HttpRouter (once, on the full review).
    const { child: pipelineFloor, port: pipelinePort } = await startFloor("frameworkFloor.ts", "pipeline-floor", {
      args: ["--pipeline", exampleClusterDir]
    })
    // Before the load: what each process holds for its code and start-up.
    rssBeforeLoadMiB = { webhook: mib(rssKiB(webhook.child.pid)), floor: mib(rssKiB(floor.pid)) }
    const webhookRss = sampleRss(webhook.child.pid)
    const floorRss = sampleRss(floor.pid)

    log(`\nthroughput: ${seconds} s per run, ${connections} connections, after ${warmup} s of warm-up per target and kind`)
    for (const kind of kinds) {
      const body = reviewBody(kind)
      const verifyBody = verifierFor(kind)
      const targets: ReadonlyArray<readonly [string, number, number]> = [
        ["webhook", webhook.port, webhook.child.pid],
        ["floor", floorPort, floor.pid],
        ...(kind === "full"
          ? [["framework", frameworkPort, framework.pid] as const, ["pipeline", pipelinePort, pipelineFloor.pid] as const]
          : [])
      ]
      for (const [target, port, pid] of targets) {
        if (warmup > 0) await runLoadSampled(pid, { port, body, seconds: warmup, connections })
        const result = await runLoadSampled(pid, {
          port,
          body,
          seconds,
          connections,
          // The bare and framework floors answer a fixed patch whatever they are sent.
          ...(target === "webhook" || target === "pipeline" ? { verifyBody } : {})
        })
        throughput.push({ label: `${target} ${kind}`, target, kind, result })
        log(`  ${target.padEnd(8)} ${kind.padEnd(12)} ${result.requestsPerSecond} req/s, p99 ${result.latencyMs.p99} ms`)
      }
      const ours = throughput.find((row) => row.target === "webhook" && row.kind === kind)!.result.requestsPerSecond
      const floorRate = throughput.find((row) => row.target === "floor" && row.kind === kind)!.result.requestsPerSecond
      ratios[kind] = Math.round((ours / floorRate) * 100) / 100
    }
    webhookRss.stop()
    floorRss.stop()
    webhookLoadPeakMiB = Math.round(webhookRss.peakMiB() * 10) / 10
    floorLoadPeakMiB = Math.round(floorRss.peakMiB() * 10) / 10
    await stop(floor)
    await stop(framework)
    await stop(pipelineFloor)
    await stop(webhook.child)
    webhookErrors = errorLogLines(webhook.child.logFile)

    printTable(`throughput (${seconds} s, ${connections} connections)`, throughput)
    log(`\nRSS before the load (started; the webhook has answered one check per review kind): webhook ${rssBeforeLoadMiB.webhook} MiB, floor ${rssBeforeLoadMiB.floor} MiB`)
    log(`peak RSS under load: webhook ${webhookLoadPeakMiB} MiB, floor ${floorLoadPeakMiB} MiB`)
    log(`webhook ERROR log lines during the runs: ${webhookErrors.length}`)
    log(`\nthroughput ratio, webhook / floor:`)
    for (const kind of kinds) log(`  ${kind.padEnd(12)} ${fmt(ratios[kind]!, 2)}   ${reviewDescriptions[kind]}`)
    const frameworkRow = throughput.find((row) => row.target === "framework")
    const floorFull = throughput.find((row) => row.target === "floor" && row.kind === "full")
    if (frameworkRow !== undefined && floorFull !== undefined) {
      frameworkRatio = Math.round((frameworkRow.result.requestsPerSecond / floorFull.result.requestsPerSecond) * 100) / 100
      log(`  (the framework's own floor, HttpRouter answering the fixed patch: ${fmt(frameworkRatio, 2)} of the floor)`)
    }
    const pipelineRow = throughput.find((row) => row.target === "pipeline")
    if (pipelineRow !== undefined && floorFull !== undefined) {
      pipelineRatio = Math.round((pipelineRow.result.requestsPerSecond / floorFull.result.requestsPerSecond) * 100) / 100
      log(`  (the pipeline alone behind HttpRouter, no log line, metrics, Events or limits: ${fmt(pipelineRatio, 2)} of the floor)`)
    }
  }

  // -------------------------------------------------------------------------
  // 3. Fixed rate, in memory and through the fake API server
  const fixedRate: Array<Row & { readonly setup: string }> = []
  const readyThroughApi: Record<string, number> = {}
  let cpuRatioToBareFloor: Record<string, number> | undefined
  /** Per fake API setup: the connections the webhook, then the floor, opened to it over their runs. */
  const apiConnections: Record<string, { webhook: number; floor: number }> = {}
  /** How many connections the fake API server has accepted so far (fakeApi.ts prints it on SIGUSR2). */
  const connectionsAccepted = async (api: Child): Promise<number> => {
    const reports = () => [...fs.readFileSync(api.logFile, "utf8").matchAll(/connections accepted (\d+)/g)]
    const before = reports().length
    api.process.kill("SIGUSR2")
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(20)) {
      const all = reports()
      if (all.length > before) return Number(all.at(-1)![1])
    }
    throw new Error(`the fake API server did not report its connections; see ${api.logFile}`)
  }
  if (!flags["skip-rate"]) {
    const rateConnections = Math.min(connections, 8)
    /**
     * One target at the fixed rate: paced (the figure that counts), then, for
     * the webhook, autocannon's overallRate. `who` is the webhook or the floor
     * making the same reads (floor.ts --kubeconfig).
     */
    const measure = async (setup: string, port: number, child: Child, kind: ReviewKind, who: "webhook" | "floor + reads" | "bare floor" | "framework floor" | "pipeline floor" = "webhook") => {
      const { pid } = child
      const body = reviewBody(kind)
      await runLoadSampled(pid, { port, body, seconds: Math.min(warmup, 2) || 1, connections: rateConnections, overallRate: rate })
      // The figure that counts: requests evenly spaced (open loop), as admissions arrive, after
      // `pacedWarmupSeconds` of the same on the same connections (see runPaced).
      const sampler = sampleRss(pid)
      let logLines = 0
      let cpuBefore = 0
      const paced = await runPaced({
        port,
        body: reviewObjectText(kind),
        rate,
        seconds: rateSeconds,
        warmupSeconds: pacedWarmupSeconds,
        onMeasureStart: () => {
          logLines = lineCount(child.logFile)
          cpuBefore = processCpuMillis(pid)
        },
        verifyBody: verifierFor(kind)
      })
      // Where the time goes: the process's CPU (every thread) and, for the webhook, its own time (its log's durationMs).
      const cpuMsPerRequest = Math.round(((processCpuMillis(pid) - cpuBefore) / Math.max(1, paced.requests)) * 100) / 100
      sampler.stop()
      const peakRssMiB = Math.round(sampler.peakMiB() * 10) / 10
      if (who !== "webhook") {
        fixedRate.push({ label: `${setup} ${kind}, ${who}`, setup, target: `${who} (paced)`, kind, result: { ...paced, peakRssMiB, cpuMsPerRequest } })
        log(
          `  ${setup.padEnd(22)} ${kind.padEnd(10)} ${who === "floor + reads" ? "floor making the same reads" : `the ${who}`}: ` +
            `paced p50 ${paced.latencyMs.p50} ms, p99 ${paced.latencyMs.p99} ms; ${cpuMsPerRequest} ms CPU per request`
        )
        return cpuMsPerRequest
      }
      const webhookSide = loggedDurations(child.logFile, logLines)
      fixedRate.push({
        label: `${setup} ${kind}`,
        setup,
        target: "webhook (paced)",
        kind,
        result: { ...paced, peakRssMiB, cpuMsPerRequest, webhookSide }
      })
      // autocannon's overallRate for comparison: each connection's share of a second sent back to back.
      const bursty = await runLoadSampled(pid, {
        port,
        body,
        seconds: rateSeconds,
        connections: rateConnections,
        overallRate: rate,
        verifyBody: verifierFor(kind)
      })
      fixedRate.push({ label: `${setup} ${kind} (autocannon)`, setup, target: "webhook (autocannon)", kind, result: bursty })
      log(
        `  ${setup.padEnd(22)} ${kind.padEnd(10)} paced p50 ${paced.latencyMs.p50} ms, p99 ${paced.latencyMs.p99} ms ` +
          `(in the webhook p50 ${webhookSide.p50} ms, p99 ${webhookSide.p99} ms; ${cpuMsPerRequest} ms CPU per admission); ` +
          `autocannon overallRate p99 ${bursty.latencyMs.p99} ms`
      )
      return cpuMsPerRequest
    }
    log(`\nfixed rate: ${rate} req/s for ${rateSeconds} s: paced (one request every ${1000 / rate} ms), then autocannon overallRate with ${rateConnections} connections`)

    const memory = await startWebhook("webhook-rate-memory", clusterArgs)
    const fullPatch = await checkOnce(memory.port, "full")
    if (!fs.existsSync(patchFile)) fs.writeFileSync(patchFile, fullPatch!)
    const webhookCpu = await measure("memory cluster", memory.port, memory.child, "full")
    // A pod the webhook leaves alone at once (no label): its fixed cost per request, without lookups or patch.
    const untouchedCpu = await measure("memory cluster", memory.port, memory.child, "skipNoLabel")
    await stop(memory.child)
    // The same rate answered with no work at all, then through effect's HttpRouter alone: the yardsticks of the CPU per admission.
    const bare = await startFloor("floor.ts", "floor-rate-bare")
    const bareCpu = await measure("memory cluster", bare.port, bare.child, "full", "bare floor")
    await stop(bare.child)
    const framework = await startFloor("frameworkFloor.ts", "floor-rate-framework")
    const frameworkCpu = await measure("memory cluster", framework.port, framework.child, "full", "framework floor")
    await stop(framework.child)
    // The admission pipeline alone behind HttpRouter (no log line, metrics, Events or limits): the floor of the shape asked for.
    const pipelineFloor = await startFloor("frameworkFloor.ts", "floor-rate-pipeline", { args: ["--pipeline", exampleClusterDir] })
    const pipelineCpu = await measure("memory cluster", pipelineFloor.port, pipelineFloor.child, "full", "pipeline floor")
    await stop(pipelineFloor.child)
    const ratio = (cpu: number) => Math.round((cpu / Math.max(0.001, bareCpu)) * 100) / 100
    cpuRatioToBareFloor = {
      full: ratio(webhookCpu),
      skipNoLabel: ratio(untouchedCpu),
      framework: ratio(frameworkCpu),
      pipeline: ratio(pipelineCpu)
    }
    log(
      `  CPU per request in memory / the bare floor's: full injection ${cpuRatioToBareFloor.full}, ` +
        `a pod left alone ${cpuRatioToBareFloor.skipNoLabel}, effect's HttpRouter answering the fixed patch ${cpuRatioToBareFloor.framework}, ` +
        `the pipeline alone behind HttpRouter ${cpuRatioToBareFloor.pipeline}`
    )

    for (const latency of flags["skip-api"] ? [] : [...new Set([0, latencyMs])]) {
      const kubeconfig = path.join(scratch, `kubeconfig-${latency}`)
      const api = spawnNode(
        [
          path.join(repoRoot, "test", "bench", "fakeApi.ts"),
          "--kubeconfig",
          kubeconfig,
          "--latency-ms",
          String(latency),
          ...(flags["api-tls"] ? ["--tls"] : [])
        ],
        { logFile: path.join(scratch, `fake-api-${latency}.log`) }
      )
      children.add(api)
      await waitForLog(api, /fake API listening/)
      const atStart = await connectionsAccepted(api)
      const webhook = await startWebhook(`webhook-rate-api-${latency}ms`, [], { KUBECONFIG: kubeconfig })
      readyThroughApi[`${latency}ms`] = Math.round(webhook.readyMs)
      await checkOnce(webhook.port, "full")
      const setup = `fake API${flags["api-tls"] ? " (TLS)" : ""} +${latency} ms`
      await measure(setup, webhook.port, webhook.child, "full")
      if (latency === latencyMs) await measure(setup, webhook.port, webhook.child, "noShares")
      await stop(webhook.child)
      const afterWebhook = await connectionsAccepted(api)
      // The same reads without the webhook: what this machine allows at this rate.
      const floor = await startFloor("floor.ts", `floor-reads-${latency}ms`, { args: ["--kubeconfig", kubeconfig] })
      await measure(setup, floor.port, floor.child, "full", "floor + reads")
      await stop(floor.child)
      apiConnections[setup] = { webhook: afterWebhook - atStart, floor: (await connectionsAccepted(api)) - afterWebhook }
      log(`  ${setup.padEnd(22)} connections opened to the API server: webhook ${apiConnections[setup].webhook}, floor ${apiConnections[setup].floor}`)
      await stop(api)
    }
    printTable(`fixed rate (${rate} req/s, ${rateSeconds} s)`, fixedRate)
    log(`\ntime to ready through the fake API (self-signed): ${JSON.stringify(readyThroughApi)}`)
  }

  // -------------------------------------------------------------------------
  const results = {
    startedAt: startedAt.toISOString(),
    command: `node test/bench/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine: machine(),
    options: { seconds, warmup, connections, rate, rateSeconds, pacedWarmupSeconds, latencyMs, kinds, readyRuns, nodeOptions: webhookNodeOptions },
    loadAverage: { start: loadAtStart, end: os.loadavg().map((n) => Math.round(n * 100) / 100) },
    readyMs: ready,
    throughput: throughput.map(({ kind, result, target }) => ({ target, kind, ...result })),
    ratioToFloor: ratios,
    frameworkRatioToFloor: frameworkRatio,
    pipelineRatioToFloor: pipelineRatio,
    rssBeforeLoadMiB,
    peakRssUnderLoadMiB: { webhook: webhookLoadPeakMiB, floor: floorLoadPeakMiB },
    webhookErrorLogLines: webhookErrors.length,
    cpuRatioToBareFloor,
    fixedRate: fixedRate.map(({ kind, result, setup, target }) => ({ setup, client: target, kind, rate, ...result })),
    readyThroughFakeApiMs: readyThroughApi,
    apiConnectionsOpened: apiConnections,
    scratch
  }
  const outDir = path.join(repoRoot, "bench-results")
  fs.mkdirSync(outDir, { recursive: true })
  const outFile = path.join(outDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`)
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
  log(`\nresults: ${path.relative(repoRoot, outFile)}`)
  if (flags["cpu-prof"]) log(`CPU profiles: ${path.join(scratch, "profiles")} (summarise with node test/bench/profile.ts FILE)`)
}

main().catch(async (error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  for (const child of children) await stopChild(child, 2000)
  process.exit(1)
})
