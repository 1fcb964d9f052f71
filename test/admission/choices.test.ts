/**
 * Per-notebook choices through the whole pipeline (README, "Per-notebook
 * choices"): each annotation in bounds, out of bounds and malformed. Every
 * answer allows the pod, and every patch goes through the strict applier
 * and the Pod validation model (`mutatedPod`).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { choiceAnnotation, type ChoiceName } from "../../src/domain/choices.ts"
import { compareQuantities, parseQuantity } from "../../src/domain/quantity.ts"
import {
  answer,
  clusterObjects,
  exampleClusterObjects,
  memoryPipeline,
  mutatedPod,
  notebookContainer,
  notebookPod,
  type Pod,
  podReview,
  quietLogs,
  repoRoot,
  runAdmission
} from "../support/pipelineHarness.ts"

const statusAnnotation = "filer-injector-webhook.das-zone.statcan/status"

const objects = clusterObjects([
  { svm: "fld5filersvm", shares: ["division/project", "home"] },
  { svm: "fld6filersvm", shares: ["home"], credentials: null },
  { svm: "fld9filersvm", shares: ["team-a", "../unsafe"] }
])
const cluster = Layer.mergeAll(memoryPipeline(objects), quietLogs)

/** A notebook pod carrying the choices given as annotations. */
const choosing = (choices: Partial<Record<ChoiceName, string>>): Pod => {
  const pod = notebookPod()
  pod.metadata.annotations = Object.fromEntries(
    Object.entries(choices).map(([name, value]) => [choiceAnnotation(name as ChoiceName), value])
  )
  return pod
}

/** The answer and the pod the apiserver would store; the answer always allows the pod. */
const admitChoosing = (choices: Partial<Record<ChoiceName, string>>) =>
  Effect.gen(function*() {
    const review = podReview(choosing(choices))
    const { response } = yield* answer(review)
    assert.isTrue(response.allowed, response.status?.message)
    return { warnings: response.warnings ?? [], pod: mutatedPod(review, response), patched: response.patch !== undefined }
  })

const mountPaths = (pod: Pod): Array<string> =>
  notebookContainer(pod).volumeMounts.map((m: Pod) => m.mountPath).filter((p: string) => p.startsWith("/home/jovyan/filers/"))

const status = (pod: Pod) => JSON.parse(pod.metadata.annotations[statusAnnotation])

const sidecars = (pod: Pod): Array<Pod> => pod.spec.initContainers

const csiVolumes = (pod: Pod): Array<Pod> => pod.spec.volumes.filter((v: Pod) => v.csi !== undefined)

layer(cluster)("the shares annotation", (it) => {
  it.effect("mounts only the shares chosen, and says nothing of the others (their skips included)", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ shares: "fld5filersvm/home, fld9filersvm/*" })
      assert.deepStrictEqual(mountPaths(pod), [
        "/home/jovyan/filers/fld5filersvm/home",
        "/home/jovyan/filers/fld9filersvm/team-a"
      ])
      // fld6 (no Secret) was not chosen: no warning about it; fld9's unsafe share was, by fld9filersvm/*.
      assert.deepStrictEqual(warnings, [`filers: SVM "fld9filersvm" share "../unsafe" skipped: '..' in share path`])
      assert.strictEqual(sidecars(pod).length, 2)
      assert.deepStrictEqual(status(pod).skipped, [{ svm: "fld9filersvm", share: "../unsafe", reason: "unsafe_share_path" }])
      assert.deepStrictEqual(status(pod).choices, { shares: ["fld5filersvm/home", "fld9filersvm/*"] })
      // The SVM's env is there; the share not chosen has none.
      const env = notebookContainer(pod).env.map((e: Pod) => e.name)
      assert.include(env, "fld5filersvm_home")
      assert.notInclude(env, "fld5filersvm_division_project")
    }))

  it.effect("still warns about a chosen SVM that cannot be mounted", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ shares: "fld5filersvm/home,fld6filersvm/home" })
      assert.deepStrictEqual(warnings, [`filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found`])
      assert.deepStrictEqual(status(pod).skipped, [{ svm: "fld6filersvm", reason: "secret_missing" }])
    }))

  it.effect("warns about each entry that names nothing in existing-shares, and applies the others", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ shares: "fld5filersvm/home,fld5filersvm/gone,nosuchsvm/*" })
      assert.deepStrictEqual(mountPaths(pod), ["/home/jovyan/filers/fld5filersvm/home"])
      assert.deepStrictEqual(warnings, [
        `filers: choice "shares" names share "gone" of SVM "fld5filersvm", not in existing-shares`,
        `filers: choice "shares" names SVM "nosuchsvm", which is not in existing-shares`
      ])
      // Not skip codes: the skipped list keeps its fixed codes.
      assert.deepStrictEqual(status(pod).skipped, [])
    }))

  it.effect("gives no patch, only warnings, when nothing chosen exists", () =>
    Effect.gen(function*() {
      const { patched, warnings } = yield* admitChoosing({ shares: "nosuchsvm/home" })
      assert.isFalse(patched)
      assert.deepStrictEqual(warnings, [`filers: choice "shares" names SVM "nosuchsvm", which is not in existing-shares`])
    }))

  it.effect.each(["fld5filersvm", "fld5filersvm/home,/x", ""])(
    "refuses the malformed %j with one warning, and mounts every share",
    (value) =>
      Effect.gen(function*() {
        const { pod, warnings } = yield* admitChoosing({ shares: value })
        assert.strictEqual(mountPaths(pod).length, 3)
        assert.match(warnings[0] ?? "", /^filers: choice "shares" refused, every share mounted: /)
        assert.strictEqual(warnings.filter((w) => w.includes(`choice "shares"`)).length, 1)
        // The usual skips follow.
        assert.deepStrictEqual(warnings.slice(1), [
          `filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found`,
          `filers: SVM "fld9filersvm" share "../unsafe" skipped: '..' in share path`
        ])
        assert.deepStrictEqual(status(pod).choices, { refused: ["shares"] })
      }))
})

describe("the shares annotation and the Secrets", () => {
  it.effect("reads only the chosen SVMs' Secrets: another SVM's can neither mount nor deny the pod", () =>
    Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      const secretsRead: Array<string> = []
      ;(yield* MemoryCluster).addFault({
        matches: (call) => {
          if (call.resource === "secrets") secretsRead.push(call.objectName)
          return false
        },
        error: () => {
          throw new Error("never matches")
        }
      })
      const { pod } = yield* admitChoosing({ shares: "fld9filersvm/team-a" })
      assert.deepStrictEqual(secretsRead, ["fld9filersvm-conn-secret"])
      assert.deepStrictEqual(mountPaths(pod), ["/home/jovyan/filers/fld9filersvm/team-a"])
    }).pipe(Effect.provide(Layer.mergeAll(memoryPipeline(objects), quietLogs))))
})

layer(cluster)("the read-only annotation", (it) => {
  it.effect("\"true\" mounts every share read-only: the notebook's mounts, the CSI volumes and goofys", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ "read-only": "true" })
      assert.deepStrictEqual(warnings.filter((w) => w.includes("choice")), [])
      const mounts = notebookContainer(pod).volumeMounts.filter((m: Pod) => m.mountPath.startsWith("/home/jovyan/filers/"))
      assert.strictEqual(mounts.length, 3)
      for (const mount of mounts) assert.isTrue(mount.readOnly)
      // The user's own mount is left as it was.
      assert.deepStrictEqual(notebookContainer(pod).volumeMounts[0], { name: "workspace", mountPath: "/home/jovyan" })
      for (const volume of csiVolumes(pod)) assert.isTrue(volume.csi.readOnly)
      for (const sidecar of sidecars(pod)) assert.deepStrictEqual(sidecar.args.slice(-3), ["-f", "-o", "ro"])
      assert.deepStrictEqual(status(pod).choices, { readOnly: true })
    }))

  it.effect("\"false\" is the default: read-write, no choices in the status", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ "read-only": "false" })
      assert.deepStrictEqual(warnings.filter((w) => w.includes("choice")), [])
      for (const mount of notebookContainer(pod).volumeMounts.slice(1)) assert.isFalse(mount.readOnly)
      for (const volume of csiVolumes(pod)) assert.isFalse(volume.csi.readOnly)
      for (const sidecar of sidecars(pod)) assert.notInclude(sidecar.args, "ro")
      assert.isUndefined(status(pod).choices)
    }))

  it.effect.each(["yes", "1", "readonly"])("refuses %j with a warning, and mounts read-write", (value) =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ "read-only": value })
      assert.strictEqual(
        warnings[0],
        `filers: choice "read-only" refused, mounted read-write: ${JSON.stringify(value)} is not true or false`
      )
      for (const mount of notebookContainer(pod).volumeMounts.slice(1)) assert.isFalse(mount.readOnly)
      assert.deepStrictEqual(status(pod).choices, { refused: ["read-only"] })
    }))
})

const defaultResources = { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "500m", memory: "10Gi" } }

layer(cluster)("the sidecar resource annotations", (it) => {
  it.effect("size every sidecar within the operator's maxima", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({
        "sidecar-cpu-request": "250m",
        "sidecar-cpu-limit": "2",
        "sidecar-memory-request": "1Gi",
        "sidecar-memory-limit": "16Gi"
      })
      assert.deepStrictEqual(warnings.filter((w) => w.includes("choice")), [])
      for (const sidecar of sidecars(pod)) {
        assert.deepStrictEqual(sidecar.resources, {
          requests: { cpu: "250m", memory: "1Gi" },
          limits: { cpu: "2", memory: "16Gi" }
        })
      }
      assert.deepStrictEqual(status(pod).choices, {
        sidecarResources: { requests: { cpu: "250m", memory: "1Gi" }, limits: { cpu: "2", memory: "16Gi" } }
      })
    }))

  it.effect("one chosen alone leaves the others at the operator's defaults", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitChoosing({ "sidecar-memory-limit": "2Gi" })
      for (const sidecar of sidecars(pod)) {
        assert.deepStrictEqual(sidecar.resources, { ...defaultResources, limits: { cpu: "500m", memory: "2Gi" } })
      }
    }))

  it.effect.each<[Partial<Record<ChoiceName, string>>, string]>([
    [{ "sidecar-cpu-limit": "4" }, `filers: choice "sidecar-cpu-limit" refused, 500m kept: "4" is above the most allowed, 2`],
    [{ "sidecar-memory-request": "32Gi" }, `filers: choice "sidecar-memory-request" refused, 100Mi kept: "32Gi" is above the most allowed, 16Gi`],
    [{ "sidecar-cpu-request": "1" }, `filers: choice "sidecar-cpu-request" refused, 100m kept: "1" is above the cpu limit, 500m`],
    [{ "sidecar-memory-limit": "50Mi" }, `filers: choice "sidecar-memory-limit" refused, 10Gi kept: "50Mi" is below the memory request, 100Mi`],
    [{ "sidecar-cpu-request": "0" }, `filers: choice "sidecar-cpu-request" refused, 100m kept: "0" is not more than 0`],
    [{ "sidecar-memory-limit": "lots" }, `filers: choice "sidecar-memory-limit" refused, 10Gi kept: "lots" is not a Kubernetes quantity`],
    [{ "sidecar-cpu-limit": "1 cpu" }, `filers: choice "sidecar-cpu-limit" refused, 500m kept: "1 cpu" is not a Kubernetes quantity`]
  ])("refuse %j with a warning and keep the defaults", ([choice, warning]) =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing(choice)
      assert.strictEqual(warnings[0], warning)
      for (const sidecar of sidecars(pod)) assert.deepStrictEqual(sidecar.resources, defaultResources)
      assert.deepStrictEqual(status(pod).choices, { refused: Object.keys(choice) })
    }))
})

describe("the sidecar resource annotations under the operator's settings", () => {
  it.effect("follow SIDECAR_MAX_CPU_LIMIT and SIDECAR_MAX_MEMORY_LIMIT", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({ "sidecar-cpu-limit": "4", "sidecar-memory-limit": "17Gi" })
      assert.deepStrictEqual(warnings.slice(0, 1), [
        `filers: choice "sidecar-memory-limit" refused, 10Gi kept: "17Gi" is above the most allowed, 12Gi`
      ])
      for (const sidecar of sidecars(pod)) assert.deepStrictEqual(sidecar.resources.limits, { cpu: "4", memory: "10Gi" })
    }).pipe(
      Effect.provide(Layer.mergeAll(memoryPipeline(objects, { sidecarMaxima: { cpu: "8", memory: "12Gi" } }), quietLogs))
    ))
})

layer(cluster)("all choices at once", (it) => {
  it.effect("apply together, listed in the status annotation in a fixed order", () =>
    Effect.gen(function*() {
      const { pod, warnings } = yield* admitChoosing({
        "sidecar-memory-limit": "1Gi",
        "read-only": "true",
        shares: "fld9filersvm/team-a,fld5filersvm/division/project",
        "sidecar-cpu-request": "lots"
      })
      assert.deepStrictEqual(warnings, [
        `filers: choice "sidecar-cpu-request" refused, 100m kept: "lots" is not a Kubernetes quantity`
      ])
      assert.deepStrictEqual(mountPaths(pod), [
        "/home/jovyan/filers/fld5filersvm/division/project",
        "/home/jovyan/filers/fld9filersvm/team-a"
      ])
      assert.isTrue(
        pod.metadata.annotations[statusAnnotation].endsWith(
          `"skipped":[],"choices":{"shares":["fld5filersvm/division/project","fld9filersvm/team-a"],"readOnly":true,` +
            `"sidecarResources":{"limits":{"memory":"1Gi"}},"refused":["sidecar-cpu-request"]}}`
        )
      )
    }))
})

// The README's PodDefaults, as Kubeflow's webhook would apply them to a notebook pod.
describe("the README's PodDefault example", () => {
  const block = readFileSync(join(repoRoot, "README.md"), "utf8")
    .split("```yaml\n")
    .map((part) => part.split("```")[0]!)
    .find((part) => part.includes("kind: PodDefault"))
  const podDefaults: Array<Pod> = parseAllDocuments(block ?? "").map((document) => document.toJS())

  it.effect("offers two configurations that apply without a warning, alone or together", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(podDefaults.map((p) => `${p.apiVersion} ${p.kind} ${p.metadata.name}`), [
        "kubeflow.org/v1alpha1 PodDefault filers-read-only",
        "kubeflow.org/v1alpha1 PodDefault filers-project-x"
      ])
      for (const podDefault of podDefaults) assert.isString(podDefault.spec.desc)
      const annotations = Object.assign({}, ...podDefaults.map((p) => p.spec.annotations))
      const pod = notebookPod()
      pod.metadata.annotations = annotations
      const review = podReview(pod)
      const { response } = yield* answer(review)
      assert.deepStrictEqual(response.warnings, undefined)
      const mutated = mutatedPod(review, response)
      assert.deepStrictEqual(mountPaths(mutated), ["/home/jovyan/filers/fld5filersvm/division/project"])
      assert.isTrue(notebookContainer(mutated).volumeMounts[1].readOnly)
      assert.strictEqual(sidecars(mutated)[0].resources.limits.memory, "2Gi")
    }).pipe(Effect.provide(Layer.mergeAll(memoryPipeline(exampleClusterObjects()), quietLogs))))
})

// Whatever a PodDefault or a user writes in the annotations, the pod is allowed,
// the patch applies and the pod is valid: never a denial, never an invalid pod.
describe("any value of the choice annotations", () => {
  const value = fc.oneof(
    fc.constantFrom(
      "true",
      "false",
      "TRUE",
      "",
      " ",
      "0",
      "-1",
      "1",
      "100m",
      "2",
      "16Gi",
      "17Gi",
      "1e3",
      "1.5Gi",
      "50m",
      "fld5filersvm/*",
      "fld5filersvm/home,fld9filersvm/team-a",
      "fld9filersvm/../unsafe",
      "nosuchsvm/x",
      ",",
      "/",
      "a/b/c/d"
    ),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: "grapheme", maxLength: 6 })
  )
  const annotations = fc.record(
    {
      shares: value,
      "read-only": value,
      "sidecar-cpu-request": value,
      "sidecar-cpu-limit": value,
      "sidecar-memory-request": value,
      "sidecar-memory-limit": value
    },
    { requiredKeys: [] }
  )
  const layer = memoryPipeline(objects)
  const maxima = { cpu: parseQuantity("2")!, memory: parseQuantity("16Gi")! }

  it("allow the pod with a valid patch, short warnings and resources within the maxima", async () => {
    await fc.assert(
      fc.asyncProperty(annotations, async (choices) => {
        const review = podReview(choosing(choices))
        const reviewed = await runAdmission(layer, review)
        assert.isTrue(reviewed.response.allowed)
        for (const warning of reviewed.response.warnings ?? []) {
          assert.isAtMost(warning.length, 120)
          assert.notMatch(warning, /[\u0000-\u001f\u007f-\u009f]/)
        }
        if (reviewed.response.patch === undefined) return
        const pod = mutatedPod(review, reviewed.response)
        for (const sidecar of sidecars(pod)) {
          for (const resource of ["cpu", "memory"] as const) {
            const limit = parseQuantity(sidecar.resources.limits[resource])!
            assert.isAtMost(compareQuantities(limit, maxima[resource]), 0)
          }
        }
        const readOnly = choices["read-only"]?.trim().toLowerCase() === "true"
        for (const volume of csiVolumes(pod)) assert.strictEqual(volume.csi.readOnly, readOnly)
      }),
      { numRuns: 150 }
    )
  })
})
