/**
 * The admission pipeline in-process over KubeClientLive, against the fake API
 * server (test/bench/fakeApi.ts) in a process of its own: CPU µs of this
 * process per admission, i.e. what the live client adds to the in-memory
 * figures of pipeline.ts. No HTTP server, no TLS, no log line.
 *
 *   node test/bench/live.ts [--iterations 2000] [--concurrency 8] [--kind full] [--tls] [--watch-shares]
 *
 * `--tls`: the fake API server speaks HTTPS and the kubeconfig names its CA
 * file, as a pod's service account does (fakeApi.ts --tls).
 *
 * `--watch-shares`: existing-shares from the watch-backed cache, as `serve`
 * has them (measured once it is in sync), instead of a GET per admission.
 *
 * `--concurrency 1` is admissions one after another (as at a low rate);
 * higher values let the event loop batch their I/O.
 */
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { admissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { loadKubeConfig } from "../../src/cluster/live/kubeconfig.ts"
import { SharesCache } from "../../src/cluster/SharesCache.ts"
import { pipelineSettings, quietLogs } from "../support/pipelineHarness.ts"
import { cpuMicros, type ReviewKind, reviewKinds, repoRoot, reviewObject, scratchDir } from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    iterations: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    kind: { type: "string", default: "full" },
    tls: { type: "boolean", default: false },
    "watch-shares": { type: "boolean", default: false }
  }
})
const iterations = Math.max(100, Math.min(100_000, Number(flags.iterations) || 2000))
const concurrency = Math.max(1, Math.min(64, Number(flags.concurrency) || 8))
if (!(reviewKinds as ReadonlyArray<string>).includes(flags.kind)) {
  process.stderr.write(`unknown --kind ${flags.kind}; one of ${reviewKinds.join(", ")}\n`)
  process.exit(2)
}
const kind = flags.kind as ReviewKind
const kubeconfig = path.join(scratchDir("live-bench"), "kubeconfig")
const api = spawn(process.execPath, [path.join(repoRoot, "test/bench/fakeApi.ts"), "--kubeconfig", kubeconfig, ...(flags.tls ? ["--tls"] : [])], {
  stdio: ["ignore", "pipe", "inherit"]
})
await new Promise<void>((resolve) => api.stdout!.once("data", () => resolve()))

const admitMany = (count: number, review: unknown) =>
  Effect.forEach(Array.from({ length: count }), () => admit(review), { concurrency, discard: true })

const program = Effect.gen(function*() {
  yield* (yield* ClusterConfig).settled
  const shares = yield* SharesCache
  while (flags["watch-shares"] && !(yield* shares.inSync)) yield* Effect.sleep("10 millis")
  const review = reviewObject(kind)
  yield* admitMany(Math.ceil(iterations / 4), review) // warm-up: JIT, connections
  const start = cpuMicros()
  const wall = performance.now()
  yield* admitMany(iterations, review)
  const cpu = cpuMicros() - start
  const seconds = (performance.now() - wall) / 1000
  const { outcome } = yield* admit(review)
  process.stdout.write(
    `${kind}${flags["watch-shares"] ? " (existing-shares cached)" : ""}: ${(cpu / iterations).toFixed(0)} µs CPU per admission, ` +
      `${(iterations / seconds).toFixed(0)} admissions/s wall, decision ${outcome.decision}\n`
  )
})

const kube = Layer.unwrap(Effect.map(Effect.orDie(loadKubeConfig({ env: { KUBECONFIG: kubeconfig } })), (kc) => layerFromKubeConfig(kc)))
await Effect.runPromise(program.pipe(
  Effect.provide(admissionLayer(kube, { watchShares: flags["watch-shares"] }).pipe(Layer.provideMerge(pipelineSettings()), Layer.provideMerge(quietLogs)))
)).finally(() => api.kill("SIGTERM"))
