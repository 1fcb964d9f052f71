/**
 * Properties of the pipeline over generated pods and clusters: whatever the
 * pod (containers, initContainers, volumes and env of its own, the notebook
 * container anywhere, names the injector would pick already taken) and
 * whatever the shares (unicode, `/`, `..`, duplicates, empty) and SVM names
 * (ConfigMap keys sharing prefixes, with underscores), the answer's patch
 * applies strictly, the pod passes validation, warnings fit, credentials stay
 * references, and the answer is deterministic and idempotent.
 */
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { bucketName } from "../../src/domain/hash.ts"
import { sidecarNames } from "../../src/domain/names.ts"
import {
  answer,
  clusterObjects,
  memoryPipeline,
  mutatedPod,
  notebookContainer,
  type Pod,
  podReview,
  quietLogs,
  type UserSvm
} from "../support/pipelineHarness.ts"

const dnsLabel = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/)
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/)

const svmName = fc.oneof(
  fc.constantFrom(
    "fld5filersvm",
    "fld5fileraux",
    "fld5filersvm_archive",
    "fld5filersvm-archive",
    "fld5filersvm_archive_2024",
    "fld5filersvm.b",
    "a",
    "a_b",
    "A_B",
    "9svm",
    "s".repeat(70)
  ),
  fc.stringMatching(/^[-._a-zA-Z0-9]{1,16}$/).filter((name) => name !== "." && name !== "..")
)

const share = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    "home",
    "division/project",
    "..",
    "../x",
    "a/../b",
    "/abs",
    "",
    " ",
    "a//b",
    "a/b/",
    "a/./b",
    "team-a",
    "team/a",
    "team_a",
    "access",
    "secret",
    "url",
    "b/c",
    "ü",
    "données/équipe",
    "🚀/x",
    "x\u0000y",
    "x\u0085y",
    "$(HOME)",
    "a".repeat(80)
  ) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-zA-Z0-9/._-]{0,16}$/) }
)

const svmSpec = fc.record({
  svm: svmName,
  shares: fc.oneof(
    { weight: 9, arbitrary: fc.array(share, { maxLength: 5 }) },
    { weight: 1, arbitrary: fc.constantFrom("not json", '{"home": 1}', '["home", 2]') }
  ),
  url: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("https://filer.example.test", "http://filer.example.test:9000/s3", "https://h/$x") },
    { weight: 1, arbitrary: fc.constantFrom(null, "") }
  ),
  credentials: fc.oneof(
    { weight: 8, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(null, { S3_ACCESS: "FAKE-ACCESS-do-not-use", S3_SECRET: "" }) }
  )
})

interface Generated {
  readonly svms: ReadonlyArray<UserSvm>
  readonly pod: Pod
}

const generated: fc.Arbitrary<Generated> = fc
  .record({
    svms: fc.uniqueArray(svmSpec, { maxLength: 4, selector: (s) => s.svm }),
    containerNames: fc.uniqueArray(dnsLabel, { minLength: 1, maxLength: 5 }),
    initCount: fc.nat({ max: 2 }),
    volumeNames: fc.uniqueArray(dnsLabel, { maxLength: 3 }),
    notebookAt: fc.nat(),
    env: fc.array(fc.uniqueArray(envName, { maxLength: 3 }), { minLength: 5, maxLength: 5 }),
    notebookEnv: fc.uniqueArray(fc.oneof(envName, fc.constantFrom("fld5filersvm_access", "fld5filersvm_home", "a_b_c")), {
      maxLength: 3
    }),
    takeInjectorNames: fc.boolean(),
    annotations: fc.option(fc.dictionary(fc.constantFrom("a", "b.example/c"), fc.string({ maxLength: 5 })), {
      nil: undefined
    }),
    unknownField: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })
  })
  .map((g): Generated => {
    const initCount = Math.min(g.initCount, g.containerNames.length - 1)
    const mainNames = g.containerNames.slice(0, g.containerNames.length - initCount)
    const initNames = g.containerNames.slice(mainNames.length)
    const notebookAt = g.notebookAt % mainNames.length
    const mounts = (i: number) =>
      g.volumeNames.slice(0, i % (g.volumeNames.length + 1)).map((name, j) => ({ name, mountPath: `/mnt/${j}` }))
    const containers = mainNames.map((name, i) => ({
      name,
      image: "example/app:1",
      env: i === notebookAt
        ? [{ name: "NB_PREFIX", value: "/notebook/x" }, ...g.notebookEnv.filter((e) => e !== "NB_PREFIX").map((e) => ({ name: e, value: "user" }))]
        : g.env[i].filter((e) => e !== "NB_PREFIX").map((e) => ({ name: e, value: "v" })),
      volumeMounts: mounts(i),
      ...(g.unknownField === undefined ? {} : { futureField: g.unknownField })
    }))
    const volumes: Array<Pod> = g.volumeNames.map((name) => ({ name, emptyDir: {} }))
    const initContainers: Array<Pod> = initNames.map((name) => ({ name, image: "busybox" }))
    // Names the injector would choose for the first share, already used by the user's own pod.
    const first = g.svms.find((s) => Array.isArray(s.shares) && s.shares.length > 0)
    if (g.takeInjectorNames && first !== undefined && Array.isArray(first.shares)) {
      const names = sidecarNames(first.svm, first.shares[0], () => false)
      initContainers.push({ name: names.container, image: "user/own:1" })
      volumes.push({ name: names.csiVolume, emptyDir: {} })
    }
    const pod: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: "nb-",
        labels: { "notebook-name": "nb" },
        ...(g.annotations === undefined ? {} : { annotations: g.annotations })
      },
      spec: {
        containers,
        ...(initContainers.length === 0 ? {} : { initContainers }),
        ...(volumes.length === 0 ? {} : { volumes })
      }
    }
    return { svms: g.svms, pod }
  })

/** Answers the pod's review twice and the mutated pod's once, on one cluster. */
const runPipeline = ({ pod, svms }: Generated) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const review = podReview(pod)
      const first = yield* answer(review)
      const second = yield* answer(review)
      const mutated = mutatedPod(review, first.response)
      const again = yield* answer(podReview(mutated))
      return { first, second, mutated, again }
    }).pipe(Effect.provide(Layer.mergeAll(memoryPipeline(clusterObjects(svms)), quietLogs)))
  )

describe("properties of the pipeline", () => {
  it("gives a strictly applicable, valid, deterministic and idempotent patch with short warnings", async () => {
    await fc.assert(
      fc.asyncProperty(generated, async (input) => {
        const { again, first, mutated, second } = await runPipeline(input)
        expect(first.response.allowed).toBe(true)
        expect(JSON.stringify(second)).toBe(JSON.stringify(first))
        for (const warning of first.response.warnings ?? []) {
          expect(warning.length).toBeLessThanOrEqual(120)
          expect(warning).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
        }
        expect(again.response.patch).toBeUndefined()

        // The notebook's env: credentials stay Secret references, each share var holds a bucket name.
        const notebook = notebookContainer(mutated)
        const mounted = new Set<string>(
          (notebook.volumeMounts ?? []).map((m: Pod) => m.mountPath).filter((p: string) => p.startsWith("/home/jovyan/filers/"))
        )
        for (const spec of input.svms) {
          const env = (name: string) => (notebook.env as Array<Pod>).find((e) => e.name === name)
          const hasMount = [...mounted].some((path) => path.startsWith(`/home/jovyan/filers/${spec.svm}/`))
          const access = env(`${spec.svm}_access`)
          if (hasMount && /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(spec.svm)) {
            expect(access?.valueFrom?.secretKeyRef).toEqual({
              name: `${spec.svm.replaceAll("_", "-")}-conn-secret`,
              key: "S3_ACCESS",
              optional: true
            })
          }
        }
        const buckets = new Set(input.svms.flatMap((s) => (Array.isArray(s.shares) ? s.shares : []).map(bucketName)))
        const injectedShareVars = (notebook.env as Array<Pod>).filter((e) =>
          e.value !== "user" && typeof e.value === "string" && /^[0-9]+$/.test(e.value)
        )
        for (const env of injectedShareVars) expect(buckets.has(env.value)).toBe(true)
        // One sidecar per mounted share.
        const sidecars = (mutated.spec.initContainers ?? []).filter((c: Pod) => c.restartPolicy === "Always")
        expect(sidecars.length).toBe(mounted.size)
      }),
      { numRuns: 150 }
    )
  })
})
