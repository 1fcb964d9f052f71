/**
 * Credential scan: the fake S3 credentials of every fixture cluster must never
 * reach an answer, a warning, an error message, a log line or a span, in
 * secretKeyRef mode (the default), whatever happens: injection, skips,
 * Kubernetes faults under either failure policy, configuration errors, bad
 * input. In plain mode the patch carries them by design, and nothing else may.
 */
import { Effect, Layer, Tracer } from "effect"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parseJson } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import {
  admitSettled,
  captureLogs,
  configMap,
  directoryPipeline,
  exampleClusterDir,
  exampleClusterObjects,
  exampleReview,
  memoryPipeline,
  notebookPod,
  type PipelineLayer,
  podReview,
  readManifestFolder,
  type AdmissionOverrides
} from "../support/pipelineHarness.ts"

const scenariosDir = join(import.meta.dirname, "..", "scenarios")

interface ScenarioRun {
  readonly name: string
  readonly cluster: string
  readonly review: unknown
  readonly settings: AdmissionOverrides
}

const scenarios: ReadonlyArray<ScenarioRun> = readdirSync(scenariosDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map(({ name }) => {
    const folder = join(scenariosDir, name)
    const file = join(folder, "scenario.json")
    const options = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {}
    return {
      name,
      cluster: join(folder, options.cluster ?? "cluster"),
      review: JSON.parse(readFileSync(join(folder, options.review ?? "review.json"), "utf8")),
      settings: options.settings ?? {}
    }
  })

/** Every credential of every fixture cluster, in each form it could leak in. */
const secretForms: ReadonlyArray<string> = (() => {
  const values = new Set<string>()
  for (const dir of [exampleClusterDir, ...scenarios.map((s) => s.cluster)]) {
    for (const object of readManifestFolder(dir)) {
      if (object.kind !== "Secret") continue
      for (const value of Object.values((object.data ?? {}) as Record<string, string>)) {
        values.add(Buffer.from(value, "base64").toString("utf8"))
      }
      for (const value of Object.values((object.stringData ?? {}) as Record<string, string>)) values.add(value)
    }
  }
  const forms = [...values]
    .filter((value) => value.length >= 8)
    .flatMap((value) => [value, Buffer.from(value).toString("base64"), value.replaceAll("$", "$$")])
  return [...new Set(forms)]
})()

const leaksIn = (text: string) => secretForms.filter((form) => text.includes(form))

/** What one run let out: the answer (minus the patch, in plain mode), errors, log lines and spans. */
interface Observed {
  readonly name: string
  readonly answer: string
  readonly errors: Array<string>
  readonly logs: ReadonlyArray<string>
  readonly spans: ReadonlyArray<string>
  readonly patch: string
}

const observed: Array<Observed> = []

const spanText = (span: Tracer.NativeSpan) =>
  JSON.stringify(
    {
      name: span.name,
      attributes: [...span.attributes],
      events: span.events,
      // What a span exporter sends of the end: success, or the failure's cause (success values are not exported).
      status: span.status._tag !== "Ended"
        ? "running"
        : span.status.exit._tag === "Success"
        ? "success"
        : String(span.status.exit.cause)
    },
    (_, value) => (typeof value === "bigint" ? value.toString() : value)
  )

/**
 * Runs `inputs` through the pipeline built by `pipeline` (handed a layer
 * that captures logs and spans), after `prepare` had its way with the
 * cluster, and records everything that came out.
 */
const observe = async (
  name: string,
  pipeline: (capture: Layer.Layer<never>) => PipelineLayer,
  inputs: ReadonlyArray<unknown>,
  prepare: (cluster: MemoryCluster["Service"]) => void = () => {}
) => {
  const logs = captureLogs()
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const capture = Layer.mergeAll(logs.layer, Layer.succeed(Tracer.Tracer, tracer)) as Layer.Layer<never>
  const errors: Array<string> = []
  const answers: Array<string> = []
  const patches: Array<string> = []
  await Effect.runPromise(
    Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      prepare(yield* MemoryCluster)
      for (const input of inputs) {
        const result = yield* Effect.result(
          typeof input === "string" ? Effect.flatMap(parseJson(input), admitSettled) : admitSettled(input)
        )
        if (result._tag === "Failure") {
          errors.push(result.failure.message)
          continue
        }
        const { outcome, review } = result.success
        const { patch, ...rest } = review.response
        answers.push(JSON.stringify({ ...review, response: rest }), JSON.stringify(outcome))
        if (patch !== undefined) patches.push(Buffer.from(patch, "base64").toString("utf8"))
      }
    }).pipe(Effect.provide(pipeline(capture)))
  )
  observed.push({ name, answer: answers.join("\n"), errors, logs: logs.lines, spans: spans.map(spanText), patch: patches.join("\n") })
}

const transient = {
  matches: (call: CallDescription) => call.resource === "secrets",
  error: (call: CallDescription) => KubeError.transient(call, "HTTP 503")
}
const forbidden = {
  matches: (call: CallDescription) => call.resource === "secrets",
  error: (call: CallDescription) => KubeError.forbidden(call, 403)
}

const badInputs = [
  "{not json",
  JSON.stringify({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1", request: {} }),
  podReview({ metadata: {}, spec: { containers: [{ image: "x" }] } })
]

describe("no credential leaves the injector", () => {
  it("has fixture credentials to look for, and finds them where plain mode puts them", async () => {
    expect(secretForms.length).toBeGreaterThanOrEqual(10)
    const plain = scenarios.find((s) => s.settings.credentialMode === "plain")!
    await observe("plain scenario (control)", (capture) => directoryPipeline(plain.cluster, plain.settings, capture), [plain.review])
    expect(leaksIn(observed.at(-1)!.patch).length).toBeGreaterThan(0)
  })

  it("runs every scenario", async () => {
    for (const scenario of scenarios) {
      await observe(`scenario ${scenario.name}`, (capture) => directoryPipeline(scenario.cluster, scenario.settings, capture), [
        scenario.review,
        ...badInputs
      ])
    }
  })

  it("runs the example cluster under both failure policies, with faults, denials and configuration errors", async () => {
    const objects = exampleClusterObjects()
    const inputs = [exampleReview(), podReview(notebookPod()), ...badInputs]
    for (const policy of ["deny", "admit"] as const) {
      const settings = { onInfrastructureFailure: policy }
      await observe(`example ${policy}`, (capture) => memoryPipeline(objects, settings, capture), inputs)
      await observe(`example ${policy}, Secret reads failing`, (capture) => memoryPipeline(objects, settings, capture), inputs, (c) =>
        c.addFault(transient))
      await observe(`example ${policy}, Secret reads forbidden`, (capture) => memoryPipeline(objects, settings, capture), inputs, (c) =>
        c.addFault(forbidden))
      await observe(`example ${policy}, Secret reads failing twice`, (capture) => memoryPipeline(objects, settings, capture), inputs, (c) =>
        c.addFault(transient, 2))
      const broken: Array<RawObject> = objects.map((object) =>
        (object.metadata as { name?: string }).name === "filers-list" ? configMap("das", "filers-list", { filers: "[{" }) : object
      )
      await observe(`example ${policy}, filers-list invalid`, (capture) => memoryPipeline(broken, settings, capture), inputs)
    }
    await observe("example plain", (capture) => memoryPipeline(objects, { credentialMode: "plain" }, capture), [exampleReview()])
  })

  it("lets no credential out in any answer, error, log line or span (nor patch, but in plain mode)", () => {
    // Each leak is reported by run and channel, never by value.
    const leaks = observed.flatMap((run) =>
      [
        ["answer", run.answer],
        ["errors", run.errors.join("\n")],
        ["logs", run.logs.join("\n")],
        ["spans", run.spans.join("\n")],
        ...(run.name.includes("plain") ? [] : [["patch", run.patch]])
      ].flatMap(([channel, text]) => (leaksIn(text).length > 0 ? [`${run.name}: ${channel}`] : []))
    )
    expect(observed.length).toBeGreaterThanOrEqual(20)
    // The capture works: the configuration loads and the infrastructure failures were logged.
    expect(observed.flatMap((run) => run.logs).some((line) => line.includes("filers-list loaded"))).toBe(true)
    expect(observed.flatMap((run) => run.logs).some((line) => line.includes("cannot resolve filers"))).toBe(true)
    expect(observed.some((run) => run.spans.length > 0)).toBe(true)
    expect(leaks).toEqual([])
  })
})
