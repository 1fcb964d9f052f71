/**
 * `explain` against a cluster held in memory: the example cluster
 * (manifests/examples/cluster) plus an injected notebook whose shares changed
 * since, and a namespace without the injection label. Then the command line
 * as a user runs it: text, JSON and the exit codes.
 */
import { Effect, JsonPatch, type Schema } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { explainNotebook } from "../../src/commands/explain.ts"
import { createPodReview } from "../../src/commands/inject.ts"
import type { Explanation } from "../../src/domain/explain.ts"
import { explainText } from "../../src/domain/explainText.ts"
import { cli, type Run } from "../support/cli.ts"
import {
  admitSettled,
  configMap,
  exampleClusterDir,
  exampleClusterObjects,
  memoryPipeline,
  notebookPod,
  patchOf
} from "../support/pipelineHarness.ts"

const statusKey = "filer-injector-webhook.das-zone.statcan/status"

/** `notebookPod()` named and labelled for notebook `name`. */
const podFor = (name: string, namespace = "jane-doe"): RawObject => {
  const pod = notebookPod({ namespace })
  return { ...pod, metadata: { name: `${name}-0`, namespace, labels: { "notebook-name": name } } }
}

/** `pod` as the webhook mutated it when `existing-shares` of jane-doe listed only `fld5filersvm: [division/project, old]`. */
const injectedEarlier = (pod: RawObject): Promise<RawObject> => {
  const earlier = [
    ...exampleClusterObjects().filter((object) => !(object.kind === "ConfigMap" && (object.metadata as RawObject).name === "existing-shares")),
    configMap("jane-doe", "existing-shares", { fld5filersvm: '["division/project", "old"]' })
  ]
  return Effect.runPromise(
    admitSettled(createPodReview(pod, "jane-doe", "earlier")).pipe(
      Effect.map(({ review }) => JsonPatch.apply(patchOf(review.response) as JsonPatch.JsonPatch, pod as Schema.Json) as RawObject),
      Effect.provide(memoryPipeline(earlier))
    )
  )
}

let objects: Array<RawObject> = []

beforeAll(async () => {
  objects = [
    ...exampleClusterObjects(),
    await injectedEarlier(podFor("report")),
    // Found by its label: neither `lab` nor `lab-0` exists.
    { ...podFor("lab"), metadata: { name: "lab-7x2k", namespace: "jane-doe", labels: { "notebook-name": "lab" } } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "bob" } },
    configMap("bob", "existing-shares", { fld5filersvm: '["home"]' }),
    podFor("sketch", "bob")
  ]
})

/** The explanation, and the cluster's objects before and after (nothing may be written). */
const explain = (namespace: string, name: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const cluster = yield* MemoryCluster
      const before = JSON.stringify(cluster.all())
      const explanation = yield* explainNotebook(namespace, name, true)
      return { explanation, before, after: JSON.stringify(cluster.all()) }
    }).pipe(Effect.provide(memoryPipeline(objects)), Effect.provide(ClusterSettings.layerValues()))
  )

const check = (explanation: Explanation, name: string) => explanation.checks.find((entry) => entry.name === name)

describe("explain against a cluster folder's objects", () => {
  it("explains a notebook not injected yet: pod NAME-0, inject, the shares, checks not made offline are null", async () => {
    const { after, before, explanation } = await explain("jane-doe", "analysis")
    expect(after).toBe(before)
    expect(explanation).toMatchObject({ namespace: "jane-doe", pod: "analysis-0", decision: "inject" })
    expect(explanation.mounted.map((mount) => `${mount.svm}/${mount.share}`)).toEqual([
      "fld5filersvm/division/project",
      "fld5filersvm/home",
      "fld9filersvm/research/team-a"
    ])
    expect(explanation.mounted[0]).toEqual({
      svm: "fld5filersvm",
      share: "division/project",
      path: "/home/jovyan/filers/fld5filersvm/division/project",
      bucket: "9799071022584861848"
    })
    expect(explanation.skipped).toEqual([
      { svm: "fld6filersvm", reason: "secret_missing", message: "Secret fld6filersvm-conn-secret not found" }
    ])
    expect(check(explanation, "namespace label")?.ok).toBe(true)
    expect(check(explanation, "webhook configuration")?.ok).toBe(false)
    expect(check(explanation, "secret fld5filersvm-conn-secret")).toEqual({
      name: "secret fld5filersvm-conn-secret",
      ok: null,
      message: "not checked offline"
    })
    expect(explanation.drift).toBeUndefined()
    expect(JSON.stringify(explanation)).not.toContain("FAKE-")
  })

  it("explains an injected notebook: skip (already injected), what a restart would mount, and the drift from its status", async () => {
    const { after, before, explanation } = await explain("jane-doe", "report")
    expect(after).toBe(before)
    expect(explanation.decision).toBe("skip")
    expect(explanation.reason).toMatch(/^already injected/)
    expect(explanation.mounted.map((mount) => mount.share)).toEqual(["division/project", "home", "research/team-a"])
    expect(explanation.drift).toEqual({
      notMounted: [
        { svm: "fld5filersvm", share: "home", path: "/home/jovyan/filers/fld5filersvm/home" },
        { svm: "fld9filersvm", share: "research/team-a", path: "/home/jovyan/filers/fld9filersvm/research/team-a" }
      ],
      noLongerListed: [{ svm: "fld5filersvm", share: "old", path: "/home/jovyan/filers/fld5filersvm/old" }]
    })
    const text = explainText(explanation)
    expect(text).toContain("restart the notebook to get fld5filersvm/home")
    expect(text).toContain("fld5filersvm/old is mounted but would not be now")
  })

  it("does not report shares the status left out (mountedMore) as not mounted when the pod has their mounts", async () => {
    const report = objects.find((object) => (object.metadata as RawObject).name === "report-0")!
    const annotations = (report.metadata as RawObject).annotations as Record<string, string>
    const status = JSON.parse(annotations[statusKey]!)
    const trimmed = { ...status, mounted: [], mountedMore: 2 }
    const pod = { ...report, metadata: { ...(report.metadata as RawObject), name: "trim-0", labels: { "notebook-name": "trim" }, annotations: { ...annotations, [statusKey]: JSON.stringify(trimmed) } } }
    objects.push(pod)
    const { explanation } = await explain("jane-doe", "trim")
    // division/project and old are mounted in the pod; home and research/team-a are not.
    expect(explanation.drift?.notMounted.map((entry) => entry.share)).toEqual(["home", "research/team-a"])
    expect(explanation.drift?.noLongerListed).toEqual([])
  })

  it("finds a notebook pod by its label, and reports a namespace without the injection label", async () => {
    expect((await explain("jane-doe", "lab")).explanation.pod).toBe("lab-7x2k")
    const { explanation } = await explain("bob", "sketch")
    // bob has no connection Secret: the webhook would mount nothing, and would not even be called.
    expect(explanation).toMatchObject({ decision: "skip", reason: "no share could be mounted" })
    expect(explanation.skipped.map((skip) => skip.reason)).toEqual(["secret_missing"])
    expect(check(explanation, "namespace label")).toEqual({
      name: "namespace label",
      ok: false,
      message: "namespace bob lacks filer-sidecar-injection=enabled: the API server never calls the webhook for its pods"
    })
  })

  it("fails with a message naming the notebook when there is no such pod", async () => {
    await expect(explain("jane-doe", "nothing")).rejects.toThrow(/no pod nothing or nothing-0/)
  })
})

const runs = {
  text: () => cli(["explain", "--namespace", "jane-doe", "analysis", "--cluster", exampleClusterDir]),
  json: () => cli(["explain", "-n", "jane-doe", "analysis", "--cluster", exampleClusterDir, "--output", "json"]),
  noName: () => cli(["explain", "--cluster", exampleClusterDir]),
  badOutput: () => cli(["explain", "-n", "jane-doe", "analysis", "--cluster", exampleClusterDir, "--output", "yaml"]),
  noPod: () => cli(["explain", "-n", "jane-doe", "nothing", "--cluster", exampleClusterDir]),
  noFolder: () => cli(["explain", "analysis", "--cluster", "/no/such/folder"])
}
const results: Partial<Record<keyof typeof runs, Run>> = {}

describe("filer-sidecar-injector explain", () => {
  beforeAll(async () => {
    await Promise.all(Object.entries(runs).map(async ([name, run]) => (results[name as keyof typeof runs] = await run())))
  }, 120_000)

  it("prints the example notebook as a table and exits 0", () => {
    const run = results.text!
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("Pod:       jane-doe/analysis-0\nDecision:  inject\n")
    expect(run.stdout).toMatch(/fld6filersvm {2}\(all\) +skipped {2}Secret fld6filersvm-conn-secret not found/)
    expect(run.stdout).toContain("✓ namespace label")
    expect(run.stdout).toContain("? secret fld5filersvm-conn-secret: not checked offline")
  })

  it("prints exactly the documented JSON fields with --output json", () => {
    const run = results.json!
    expect(run.code).toBe(0)
    const parsed = JSON.parse(run.stdout)
    expect(Object.keys(parsed)).toEqual(["namespace", "pod", "decision", "reason", "mounted", "skipped", "checks"])
    expect(Object.keys(parsed.mounted[0])).toEqual(["svm", "share", "path", "bucket"])
    expect(Object.keys(parsed.skipped[0])).toEqual(["svm", "reason", "message"])
    expect(Object.keys(parsed.checks[0])).toEqual(["name", "ok", "message"])
  })

  it("exits 2 for bad usage and 1 when the cluster cannot be read, with one error line", () => {
    expect(results.noName!.code).toBe(2)
    expect(results.badOutput!.code).toBe(2)
    expect(results.noPod!.code).toBe(1)
    expect(results.noPod!.stderr.trim()).toMatch(/^error: no pod nothing or nothing-0/)
    expect(results.noFolder!.code).toBe(1)
    expect(results.noFolder!.stderr.trim()).toMatch(/^error: cluster folder/)
  })
})
