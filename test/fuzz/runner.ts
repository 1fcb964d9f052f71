/**
 * The in-process fuzz runner shared by pipeline.test.ts and
 * pipeline-more.test.ts (two files, so vitest runs the groups on both
 * cores): a runtime per generated injector configuration ("group"), and one
 * fast-check property per group whose cases (a namespace's objects and a
 * review, see arbitraries.ts) go through the pipeline as the server would
 * send them, every answer checked by check.ts.
 *
 * FUZZ_SEED and FUZZ_RUNS (cases per group) change the run; a failure prints
 * the seed and path fast-check needs to replay it.
 */
import { Effect, Exit, Layer, Logger, ManagedRuntime, References } from "effect"
import fc from "fast-check"
import { admit, type AdmissionServices, parseJson } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { memoryPipeline } from "../support/pipelineHarness.ts"
import { type Case, caseArb, type Group, groupArb, injectAnnotation } from "./arbitraries.ts"
import { assertNoCredential, checkReviewAnswer, requestUid, sameJson, Violation } from "./check.ts"

export const seed = Number(process.env.FUZZ_SEED ?? 20_261_125)
export const groupCount = 8
export const runsPerGroup = Number(process.env.FUZZ_RUNS ?? 1300)
const placeholderNamespace = "fuzz-ns"

/** Every log line, scanned for credentials as it is written (keeping 10k+ lines would only cost memory). */
export let logLines = 0
const scanningLogger = Logger.make((options) => {
  logLines += 1
  assertNoCredential(Logger.formatLogFmt.log(options), "a log line")
})
const logs = Layer.mergeAll(Logger.layer([scanningLogger]), Layer.succeed(References.MinimumLogLevel, "All"))

export const stats = { cases: 0, mangled: 0, injected: 0, reinjected: 0, denied: 0, skipped: 0, decodeErrors: 0, slowestMs: 0 }

const outcomeOf = (text: string) =>
  parseJson(text).pipe(Effect.flatMap(admit), Effect.map(({ review }) => review))

export type Runtime = ManagedRuntime.ManagedRuntime<AdmissionServices | MemoryCluster, never>

/** One body through the pipeline; throws a Violation on anything the server could not answer well. */
export const runBody = async (runtime: Runtime, text: string): Promise<{ input: unknown; answer: unknown } | "decodeError"> => {
  const started = performance.now()
  const exit = await runtime.runPromiseExit(outcomeOf(text))
  stats.slowestMs = Math.max(stats.slowestMs, performance.now() - started)
  if (Exit.isFailure(exit)) {
    const reasons = exit.cause.reasons
    const failure = reasons.find((reason) => reason._tag === "Fail")
    if (reasons.length !== 1 || failure === undefined || failure.error._tag !== "AdmissionDecodeError") {
      throw new Violation(`the pipeline crashed: ${String(exit.cause).slice(0, 500)}`)
    }
    const message = failure.error.message
    if (typeof message !== "string" || message === "") throw new Violation("a decode error without a message")
    if (message.length > 2000) throw new Violation(`a decode error of ${message.length} characters`)
    assertNoCredential(message, "a decode error")
    stats.decodeErrors += 1
    return "decodeError"
  }
  const input: unknown = JSON.parse(text)
  const answer = JSON.parse(JSON.stringify(exit.value))
  return { input, answer }
}

/** The objects of the case run last: removed before the next case, so shrinking never meets them. */
let previous: ReadonlyArray<RawObject> = []

const placeCase = (store: MemoryCluster["Service"], c: Case) => {
  for (const object of previous) {
    const metadata = object.metadata as { name: string; namespace: string }
    store.remove(object.kind === "Secret" ? "secrets" : "configmaps", metadata.namespace, metadata.name)
  }
  for (const object of c.objects) store.put(object)
  previous = c.objects
  return JSON.stringify(c.review)
}

const runCase = async (runtime: Runtime, store: MemoryCluster["Service"], c: Case) => {
  stats.cases += 1
  if (c.mangled) stats.mangled += 1
  const text = placeCase(store, c)
  const first = await runBody(runtime, text)
  if (first === "decodeError") return
  const patched = checkReviewAnswer(first.input, first.answer)
  const response = (first.answer as { response: { allowed: boolean } }).response
  if (!response.allowed) stats.denied += 1
  else if (patched === undefined) stats.skipped += 1
  else stats.injected += 1

  // Deterministic: the same body, the same answer.
  if (stats.cases % 20 === 0) {
    const again = await runBody(runtime, text)
    if (again === "decodeError" || !sameJson(again.answer, first.answer)) throw new Violation("the same review got a different answer")
  }

  // Injecting an injected pod again (its marker removed) mounts nothing new: the pod stays as it is.
  if (patched !== undefined) {
    delete patched.metadata.annotations[injectAnnotation]
    const review = JSON.parse(text)
    review.request.object = patched
    review.request.uid = `${String(requestUid(review))}-again`
    const second = await runBody(runtime, JSON.stringify(review))
    if (second === "decodeError") throw new Violation("an injected pod no longer decodes")
    const repatched = checkReviewAnswer(second.input, second.answer)
    stats.reinjected += 1
    const expected = structuredClone(patched)
    expected.metadata.annotations[injectAnnotation] = "injected"
    if (repatched !== undefined && !sameJson(repatched, expected)) {
      throw new Violation("injecting an injected pod again changed more than the annotation")
    }
  }
}

export const groups: ReadonlyArray<Group> = fc.sample(groupArb, { numRuns: groupCount, seed })


/** A runtime over `objects`, the logs scanned for credentials. */
export const runtimeFor = (objects: ReadonlyArray<RawObject>): Runtime =>
  ManagedRuntime.make(memoryPipeline(objects).pipe(Layer.provideMerge(logs)))

/** Runs `runsPerGroup` generated cases of group `index`. */
export const fuzzGroup = async (index: number) => {
  const group = groups[index]!
  const runtime = runtimeFor(group.objects)
  try {
    const store = await runtime.runPromise(Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      return yield* MemoryCluster
    }))
    await fc.assert(
      fc.asyncProperty(caseArb(group, placeholderNamespace), (c) => runCase(runtime, store, c)),
      { seed: seed + index, numRuns: runsPerGroup, endOnFailure: true }
    )
  } finally {
    await runtime.dispose()
  }
}

export const describeGroup = (index: number) => {
  const group = groups[index]!
  return `group ${index}: ${runsPerGroup} cases over SVMs ${JSON.stringify(group.svms).slice(0, 80)}${
    group.validConfig ? "" : " (filers-list invalid)"
  }`
}
