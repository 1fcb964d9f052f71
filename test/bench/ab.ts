/**
 * A/B of two versions of the admission pipeline, in one process: CPU
 * microseconds per admission, best of interleaved rounds (A, B, A' then
 * A', B, A...), so that a busy machine, warm-up and order bias weigh on both
 * alike; A against A' shows the noise. Both must give the same answer.
 *
 *   node test/bench/ab.ts FILE-A FILE-B [--kind full] [--iterations 2000] [--rounds 12]
 *
 * Each FILE is a module exporting `parseJson` and `admit` as
 * src/admission/pipeline.ts does: keep the old version as a copy (under the
 * git-ignored bench-results/, with its imports pointed at src/) and compare it
 * with the file in src/.
 */
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { pipelineSettings, quietLogs, readManifestFolder } from "../support/pipelineHarness.ts"
import { cpuMicros, exampleClusterDir, type ReviewKind, reviewObject } from "./lib.ts"

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    kind: { type: "string", default: "full" },
    iterations: { type: "string", default: "2000" },
    rounds: { type: "string", default: "12" }
  }
})
if (positionals.length !== 2) {
  process.stderr.write("usage: node test/bench/ab.ts FILE-A FILE-B [--kind full] [--iterations 2000] [--rounds 12]\n")
  process.exit(2)
}
const load = (file: string) => import(pathToFileURL(path.resolve(file)).href) as Promise<typeof import("../../src/admission/pipeline.ts")>
const [a, b] = await Promise.all(positionals.map(load))
const iterations = Number(values.iterations)
const rounds = Number(values.rounds)
const text = JSON.stringify(reviewObject(values.kind as ReviewKind))
const admission = (pipeline: typeof import("../../src/admission/pipeline.ts")) =>
  pipeline.parseJson(text).pipe(Effect.flatMap(pipeline.admit), Effect.map(({ review }) => JSON.stringify(review)))
const variants = [["A", admission(a!)], ["B", admission(b!)], ["A'", admission(a!)]] as const

const layer = memoryAdmissionLayer(readManifestFolder(exampleClusterDir)).pipe(
  Layer.provideMerge(pipelineSettings()),
  Layer.provideMerge(quietLogs)
)

await Effect.runPromise(
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    if ((yield* variants[0][1]) !== (yield* variants[1][1])) throw new Error("A and B answer differently")
    const best: Record<string, number> = {}
    for (let round = 0; round < rounds; round++) {
      for (const [name, effect] of round % 2 === 0 ? variants : [...variants].reverse()) {
        const start = cpuMicros()
        for (let i = 0; i < iterations; i++) yield* effect
        best[name] = Math.min(best[name] ?? Infinity, (cpuMicros() - start) / iterations)
      }
    }
    const baseline = Math.min(best.A!, best["A'"]!)
    process.stdout.write(
      `${values.kind}: A ${best.A!.toFixed(0)} µs, A' ${best["A'"]!.toFixed(0)} µs, B ${best.B!.toFixed(0)} µs per admission ` +
        `(CPU, best of ${rounds}); B against A: ${(100 * (best.B! / baseline - 1)).toFixed(1)} %\n`
    )
  }).pipe(Effect.provide(layer))
)
