/**
 * What a hostile namespace costs one admission (README, "Limits"): the
 * pipeline in-process over the in-memory cluster, for a namespace with
 * 10,000 SVM keys and one with 100,000 shares (test/support/flood.ts). Prints,
 * per namespace, the time of `admit` (the best and the median of the runs,
 * after a warm-up) beside a floor timed in the same run (JSON.parse of every
 * share list, each SVM and share put in a Set once, the SVMs sorted: less
 * than any check of them can cost), the warnings, the mounts, the bytes the
 * skips add to the answer (against the same namespace listing only what is
 * mounted) and the size of the admission's log line.
 *
 *   node test/bench/flood.ts [--runs 5] [--svm-keys 10000] [--shares 100000]
 *
 * A measurement, not a test: nothing here asserts.
 */
import { Effect, Layer } from "effect"
import { parseArgs } from "node:util"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeRetry } from "../../src/cluster/retry.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { outcomeAnnotations } from "../../src/observability/Admission.ts"
import { type Flood, shareFlood, svmKeyFlood } from "../support/flood.ts"
import { notebookPod, pipelineSettings, podReview, quietLogs } from "../support/pipelineHarness.ts"

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "svm-keys": { type: "string", default: "10000" },
    shares: { type: "string", default: "100000" }
  }
})
const runs = Math.max(1, Number(values.runs))

const review = podReview(notebookPod())

/** Answers the review `times` times against `objects`; the answer and each run's milliseconds. */
const admitTimes = (objects: ReadonlyArray<RawObject>, times: number) =>
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    const millis: Array<number> = []
    let last: Effect.Success<ReturnType<typeof admit>> | undefined
    for (let run = 0; run < times; run++) {
      const started = performance.now()
      last = yield* admit(review)
      millis.push(performance.now() - started)
    }
    return { admission: last!, millis }
  }).pipe(
    Effect.provide(
      memoryAdmissionLayer(objects, { retry: KubeRetry.layerInstant }).pipe(
        Layer.provideMerge(pipelineSettings()),
        Layer.orDie,
        Layer.provideMerge(quietLogs)
      )
    ),
    Effect.runPromise
  )

/** The floor: what reading the namespace's `existing-shares` costs at the least, in milliseconds per run. */
const floorTimes = (objects: ReadonlyArray<RawObject>, times: number): Array<number> => {
  const existing = objects.find((object) => (object as { metadata?: { name?: string } }).metadata?.name === "existing-shares")
  const data = (existing as { data: Record<string, string> }).data
  const millis: Array<number> = []
  for (let run = 0; run < times; run++) {
    const started = performance.now()
    const seen = new Set<string>()
    for (const svm of Object.keys(data).sort()) {
      seen.add(svm)
      for (const share of JSON.parse(data[svm]!) as Array<string>) seen.add(share)
    }
    millis.push(performance.now() - started)
  }
  return millis
}

const summary = (millis: ReadonlyArray<number>) => {
  const sorted = millis.slice(1).sort((a, b) => a - b)
  const round = (value: number) => Math.round(value * 10) / 10
  return { best: round(sorted[0]!), median: round(sorted[Math.floor(sorted.length / 2)]!) }
}

const measure = async (flood: Flood) => {
  const { admission, millis } = await admitTimes(flood.objects, runs + 1)
  const floor = summary(floorTimes(flood.objects, runs + 1))
  const { admission: baseline } = await admitTimes(flood.mountedOnly, 1)
  const admit = summary(millis)
  const response = admission.review.response
  const answerBytes = Buffer.byteLength(JSON.stringify(admission.review))
  const baselineBytes = Buffer.byteLength(JSON.stringify(baseline.review))
  const warnings = response.warnings ?? []
  return {
    namespace: flood.name,
    admitMillis: admit,
    floorMillis: floor,
    ratioToFloor: Math.round((admit.median / floor.median) * 10) / 10,
    decision: admission.outcome.decision,
    sharesMounted: admission.outcome.sharesMounted,
    skipped: admission.outcome.skippedCount,
    warnings: warnings.length,
    lastWarning: warnings.at(-1),
    answerBytes,
    addedBySkipsBytes: answerBytes - baselineBytes,
    logLineAnnotationsBytes: Buffer.byteLength(JSON.stringify(outcomeAnnotations(response.uid, admission.outcome, 1)))
  }
}

const results = [
  await measure(svmKeyFlood(Number(values["svm-keys"]))),
  await measure(shareFlood(Number(values.shares)))
]
console.log(JSON.stringify({ runs, results }, null, 2))
