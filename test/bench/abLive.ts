/**
 * A/B of whole webhooks through the live client: the `serve` of two (or more)
 * source trees, and the floor making the same reads (floor.ts --kubeconfig),
 * taking turns at a paced rate against one fake API server, round after
 * round, so the machine's noise falls on each alike.
 *
 *   node test/bench/abLive.ts --trees OLD,NEW [--rounds 3] [--latency-ms 2]
 *                             [--rate 200] [--seconds 10] [--paced-warmup 2]
 *                             [--http] [--node-options "--trace-gc"]
 *
 * A tree is a checkout of this repository (`git worktree add` or `git archive
 * REV | tar -x -C DIR`, with a node_modules link). Over HTTPS unless
 * `--http`. Each target: an autocannon warm-up, then `--paced-warmup` s and
 * `--seconds` s paced (runPaced). One JSON line per target and round: paced
 * p50/p90/p99/max, errors, CPU ms per admission, peak RSS, the webhook's own
 * p50/p99 (its log's durationMs); all of it in bench-results/ab-live-<time>.json.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import {
  type Child,
  freePort,
  imageNodeOptions,
  lineCount,
  loggedDurations,
  processCpuMillis,
  repoRoot,
  reviewBody,
  reviewObject,
  runLoadSampled,
  runPaced,
  sampleRss,
  scratchDir,
  spawnNode,
  startFloor,
  stopChild,
  verifierFor,
  waitForLog,
  waitReady,
  writeTlsFiles
} from "./lib.ts"

const { values } = parseArgs({
  options: {
    trees: { type: "string" },
    rounds: { type: "string", default: "3" },
    "latency-ms": { type: "string", default: "2" },
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    "paced-warmup": { type: "string", default: "2" },
    http: { type: "boolean", default: false },
    "node-options": { type: "string", default: "" }
  }
})
if (values.trees === undefined) {
  process.stderr.write("usage: node test/bench/abLive.ts --trees DIR,DIR [--rounds 3] [--latency-ms 2] [--http]\n")
  process.exit(2)
}
const trees = values.trees.split(",").map((tree) => path.resolve(tree))
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const scratch = scratchDir("ab-live")
const tls = await writeTlsFiles(scratch)
const kubeconfig = path.join(scratch, "kubeconfig")
const api = spawnNode(
  [
    path.join(repoRoot, "test/bench/fakeApi.ts"),
    "--kubeconfig",
    kubeconfig,
    "--latency-ms",
    values["latency-ms"],
    ...(values.http ? [] : ["--tls"])
  ],
  { logFile: path.join(scratch, "fake-api.log") }
)
await waitForLog(api, /fake API listening/)
// The floor answers a fixed patch; any will do for its latency.
const patchFile = path.join(scratch, "patch.b64")
fs.writeFileSync(patchFile, Buffer.from("[]").toString("base64"))
const pacedBody = JSON.stringify(reviewObject("full", "bench-paced-full"))
const rows: Array<Record<string, unknown>> = []

const measure = async (label: string, child: Child, port: number, webhook: boolean) => {
  await runLoadSampled(child.pid, { port, body: reviewBody("full"), seconds: 2, connections: 8, overallRate: rate })
  let logLines = 0
  let cpuBefore = 0
  const rss = sampleRss(child.pid)
  const paced = await runPaced({
    port,
    body: pacedBody,
    rate,
    seconds,
    warmupSeconds: Number(values["paced-warmup"]),
    onMeasureStart: () => {
      logLines = lineCount(child.logFile)
      cpuBefore = processCpuMillis(child.pid)
    },
    verifyBody: verifierFor("full")
  })
  rss.stop()
  const row = {
    label,
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    ...paced.latencyMs,
    errors: paced.errors + paced.timeouts + paced.non2xx + paced.mismatches,
    cpuMsPerAdmission: Math.round(((processCpuMillis(child.pid) - cpuBefore) / paced.requests) * 100) / 100,
    peakRssMiB: Math.round(rss.peakMiB() * 10) / 10,
    ...(webhook ? { inWebhook: loggedDurations(child.logFile, logLines) } : {})
  }
  rows.push(row)
  process.stdout.write(`${JSON.stringify(row)}\n`)
}

for (let round = 0; round < Number(values.rounds); round++) {
  for (const [index, tree] of trees.entries()) {
    const port = await freePort()
    const name = `${index}-${path.basename(tree)}`
    const child = spawnNode([path.join(tree, "src", "bin.ts"), "serve", "--host", "127.0.0.1", "--port", String(port)], {
      env: { KUBECONFIG: kubeconfig, SHUTDOWN_DELAY_MS: "0", SHUTDOWN_GRACE_MS: "1000" },
      logFile: path.join(scratch, `webhook-${round}-${name}.log`),
      nodeOptions: [...imageNodeOptions(), ...values["node-options"].split(/\s+/).filter((option) => option !== "")]
    })
    await waitReady(child, port)
    await measure(`${name} r${round}`, child, port, true)
    await stopChild(child)
  }
  const { child: floor, port } = await startFloor("floor.ts", {
    tls,
    patchFile,
    logFile: path.join(scratch, `floor-${round}.log`),
    args: ["--kubeconfig", kubeconfig]
  })
  await measure(`floor r${round}`, floor, port, false)
  await stopChild(floor)
}
await stopChild(api)
const outFile = path.join(repoRoot, "bench-results", `ab-live-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
fs.mkdirSync(path.dirname(outFile), { recursive: true })
fs.writeFileSync(outFile, `${JSON.stringify({ command: process.argv.slice(2), trees, rows }, null, 2)}\n`)
process.stdout.write(`results: ${path.relative(repoRoot, outFile)}; logs: ${scratch}\n`)
