/**
 * One admission through KubeClientLive and a fake API server in another
 * process: CPU µs of this process per admission (the client's cost).
 *
 *   node test/bench/live.ts [--iterations 2000] [--concurrency 8] [--kind full]
 */
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { admissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { layerFromKubeConfig, loadKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { Settings } from "../../src/settings.ts"
import { quietLogs } from "../support/pipelineHarness.ts"
import { type ReviewKind, repoRoot, reviewObject, scratchDir } from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    iterations: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    kind: { type: "string", default: "full" }
  }
})
const iterations = Number(flags.iterations)
const concurrency = Number(flags.concurrency)
const kubeconfig = path.join(scratchDir("live-bench"), "kubeconfig")
const api = spawn(process.execPath, [path.join(repoRoot, "test/bench/fakeApi.ts"), "--kubeconfig", kubeconfig], {
  stdio: ["ignore", "pipe", "inherit"]
})
await new Promise<void>((resolve) => api.stdout!.once("data", () => resolve()))

const cpuMicros = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

const program = Effect.gen(function*() {
  const review = reviewObject(flags.kind as ReviewKind)
  const once = Effect.forEach(Array.from({ length: iterations }), () => admit(review), { concurrency, discard: true })
  yield* Effect.forEach(Array.from({ length: 2 }), () => admit(review), { discard: true })
  yield* Effect.sync(() => undefined)
  const warm = Effect.forEach(Array.from({ length: iterations / 4 }), () => admit(review), { concurrency, discard: true })
  yield* warm
  const start = cpuMicros()
  const wall = Date.now()
  yield* once
  const cpu = cpuMicros() - start
  const out = yield* admit(review)
  console.log(`${flags.kind}: ${(cpu / iterations).toFixed(0)} µs CPU per admission, ${(1000 * iterations / (Date.now() - wall)).toFixed(0)} admissions/s wall, decision ${out.outcome.decision}`)
})

const kube = Layer.unwrap(Effect.map(Effect.orDie(loadKubeConfig({ env: { KUBECONFIG: kubeconfig } })), (kc) => layerFromKubeConfig(kc)))
await Effect.runPromise(program.pipe(
  Effect.provide(admissionLayer(kube).pipe(Layer.provideMerge(Settings.layer()), Layer.provideMerge(quietLogs)))
)).finally(() => api.kill("SIGTERM"))
