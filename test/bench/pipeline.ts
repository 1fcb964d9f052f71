/**
 * The admission pipeline in-process, without HTTP or TLS: what one admission
 * costs in CPU, per review kind, and how that splits over the steps. Where
 * `run.ts` says the webhook is slow, this says which step.
 *
 *   node test/bench/pipeline.ts [--iterations 20000] [--kinds full,noShares] [--skip-steps]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof test/bench/pipeline.ts   # then test/bench/profile.ts
 *
 * The cluster is the example folder, in memory, with the production retry
 * policy (it never retries here: nothing fails).
 */
import { Effect, JsonPatch, Layer, Result, Schema } from "effect"
import { parseArgs } from "node:util"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { admit, decodeReview, parseJson } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { GoofysRetryPolicy } from "../../src/cluster/GoofysRetryPolicy.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { decidePod } from "../../src/domain/decide.ts"
import { plan, svmsNeedingSecrets, type SecretLookup } from "../../src/domain/plan.ts"
import { Pod } from "../../src/domain/pod.ts"
import { render } from "../../src/domain/render.ts"
import type { Json, JsonObject } from "../../src/domain/json.ts"
import type { AdmissionRequest } from "../../src/domain/admission.ts"
import { secretNameFor } from "../../src/domain/names.ts"
import { pipelineSettings, quietLogs, readManifestFolder } from "../support/pipelineHarness.ts"
import { cpuMicros, exampleClusterDir, type ReviewKind, reviewKinds, reviewObject } from "./lib.ts"

const { values: flags } = parseArgs({
  options: {
    iterations: { type: "string", default: "20000" },
    kinds: { type: "string", default: reviewKinds.join(",") },
    // Only the whole pipeline: for a CPU profile of just that.
    "skip-steps": { type: "boolean", default: false }
  }
})
const iterations = Math.max(100, Math.min(1_000_000, Number(flags.iterations)))
const kinds = flags.kinds.split(",") as Array<ReviewKind>

const layer = memoryAdmissionLayer(readManifestFolder(exampleClusterDir)).pipe(
  Layer.provideMerge(pipelineSettings()),
  Layer.provideMerge(quietLogs)
)

/** CPU microseconds per call of `f`, after a warm-up of a tenth of the iterations. */
const timeSync = (f: () => unknown) => {
  for (let i = 0; i < iterations / 10; i++) f()
  const start = cpuMicros()
  for (let i = 0; i < iterations; i++) f()
  return (cpuMicros() - start) / iterations
}

const timeEffect = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < iterations / 10; i++) yield* effect
    const start = cpuMicros()
    for (let i = 0; i < iterations; i++) yield* effect
    return (cpuMicros() - start) / iterations
  })

const us = (value: number) => `${value.toFixed(1).padStart(8)} µs`

const program = Effect.gen(function*() {
  yield* (yield* ClusterConfig).settled
  const out = (line: string) => process.stdout.write(`${line}\n`)
  out(`${iterations} iterations per figure, CPU µs per call, Node ${process.version}`)

  out(`\nwhole pipeline, per admission:`)
  for (const kind of kinds) {
    const text = JSON.stringify(reviewObject(kind))
    const whole = yield* timeEffect(
      parseJson(text).pipe(Effect.flatMap(admit), Effect.map(({ review }) => JSON.stringify(review)))
    )
    out(`  ${kind.padEnd(12)} ${us(whole)}  (JSON.parse → admit → JSON.stringify)`)
  }

  if (flags["skip-steps"]) return
  // The steps of a full injection, one by one, on the same inputs the pipeline sees.
  const review = reviewObject("full")
  const text = JSON.stringify(review)
  const { object, request } = yield* decodeReview(JSON.parse(text))
  const pod = Schema.decodeUnknownSync(Pod)(object)
  const decision = decidePod(request as AdmissionRequest, pod)
  if (decision._tag !== "Inject") throw new Error("the full review should inject")
  const kube = yield* KubeClient
  const config = yield* (yield* ClusterConfig).current
  const shares = (yield* kube.getConfigMap(decision.namespace, "existing-shares")).data
  const secrets = new Map<string, SecretLookup>()
  for (const svm of svmsNeedingSecrets(shares, config.filers)) {
    const secret = yield* Effect.option(kube.getSecret(decision.namespace, secretNameFor(svm)))
    secrets.set(
      svm,
      secret._tag === "None"
        ? { _tag: "Missing" }
        : { _tag: "Found", access: secret.value.data.S3_ACCESS, secret: secret.value.data.S3_SECRET }
    )
  }
  const settings = yield* AdmissionSettings
  const goofys = yield* GoofysRetryPolicy
  const planInput = { pod, shares, filers: config.filers, secrets, maxShares: settings.maxSharesPerPod }
  const planned = plan(planInput)
  const renderInput = {
    pod: object as JsonObject,
    notebookContainer: decision.notebookContainer,
    plan: planned,
    template: config.template,
    settings: { credentialMode: settings.credentialMode, sidecarResources: settings.sidecarResources, goofys }
  }
  const mutated = render(renderInput)
  const patch = JsonPatch.get(object as Json, mutated as Json)
  const decodePodResult = Schema.decodeUnknownResult(Pod)

  out(`\nsteps of a full injection:`)
  out(`  JSON.parse of the review     ${us(timeSync(() => JSON.parse(text)))}`)
  out(`  decodeReview (Schema)        ${us(yield* timeEffect(decodeReview(JSON.parse(text))))}  (includes a JSON.parse)`)
  out(`  decode Pod (Schema)          ${us(timeSync(() => Result.isSuccess(decodePodResult(object))))}`)
  out(`  decidePod                    ${us(timeSync(() => decidePod(request as AdmissionRequest, pod)))}`)
  out(`  getConfigMap (memory)        ${us(yield* timeEffect(kube.getConfigMap(decision.namespace, "existing-shares")))}`)
  out(`  getSecret (memory)           ${us(yield* timeEffect(kube.getSecret(decision.namespace, "fld5filersvm-conn-secret")))}`)
  out(`  getSecret NotFound (memory)  ${us(yield* timeEffect(Effect.option(kube.getSecret(decision.namespace, "missing"))))}`)
  out(`  ClusterConfig.current        ${us(yield* timeEffect((yield* ClusterConfig).current))}`)
  out(`  plan                         ${us(timeSync(() => plan(planInput)))}`)
  out(`  render                       ${us(timeSync(() => render(renderInput)))}`)
  out(`  JsonPatch.get (diff)         ${us(timeSync(() => JsonPatch.get(object as Json, mutated as Json)))}`)
  out(`  base64 of the patch          ${us(timeSync(() => Buffer.from(JSON.stringify(patch), "utf8").toString("base64")))}`)
  out(`  patch: ${patch.length} operations, ${JSON.stringify(patch).length} bytes of JSON`)
})

Effect.runPromise(program.pipe(Effect.provide(layer))).catch((error: unknown) => {
  process.stderr.write(`pipeline bench failed: ${String(error)}\n`)
  process.exit(1)
})
