/**
 * The admission pipeline end to end over an in-memory cluster: the shape of
 * the answer, the patch as the kube-apiserver would apply it, idempotence and
 * credentials. Every patch goes through the strict applier and the Pod
 * validation model (`mutatedPod`).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { bucketName } from "../../src/domain/hash.ts"
import {
  answer,
  clusterObjects,
  exampleClusterObjects,
  exampleReview,
  fakeCredentials,
  memoryPipeline,
  mutatedPod,
  notebookContainer,
  notebookPod,
  patchOf,
  type Pod,
  podReview,
  quietLogs
} from "../support/pipelineHarness.ts"

const injectAnnotation = "filer-injector-webhook.das-zone.statcan/inject"
const statusAnnotation = "filer-injector-webhook.das-zone.statcan/status"

const example = Layer.mergeAll(memoryPipeline(exampleClusterObjects()), quietLogs)

/** Answers `review` and returns the pod the apiserver would store. */
const admitPod = (review: Pod) =>
  Effect.map(answer(review), (reviewed) => ({ reviewed, pod: mutatedPod(review, reviewed.response) }))

/** Every field of `original` is still in `mutated` with the same value; arrays may only have grown at the end. */
const assertKept = (original: unknown, mutated: unknown, path = ""): void => {
  if (Array.isArray(original)) {
    assert.isTrue(Array.isArray(mutated), `${path} is still an array`)
    const list = mutated as Array<unknown>
    assert.isAtLeast(list.length, original.length, `${path} lost entries`)
    original.forEach((entry, i) => assertKept(entry, list[i], `${path}[${i}]`))
  } else if (typeof original === "object" && original !== null) {
    assert.isTrue(typeof mutated === "object" && mutated !== null, `${path} is still an object`)
    for (const [key, value] of Object.entries(original)) {
      assert.isTrue(Object.hasOwn(mutated as object, key), `${path}.${key} survived`)
      assertKept(value, (mutated as Record<string, unknown>)[key], `${path}.${key}`)
    }
  } else {
    assert.strictEqual(mutated, original, path)
  }
}

layer(example)("the answer", (it) => {
  it.effect("echoes the request uid in an AdmissionReview v1, without echoing the request", () =>
    Effect.gen(function*() {
      const review = exampleReview()
      const reviewed = yield* answer(review)
      assert.deepStrictEqual(Object.keys(reviewed).sort(), ["apiVersion", "kind", "response"])
      assert.strictEqual(reviewed.apiVersion, "admission.k8s.io/v1")
      assert.strictEqual(reviewed.kind, "AdmissionReview")
      assert.strictEqual(reviewed.response.uid, review.request.uid)
      assert.isTrue(reviewed.response.allowed)
      assert.strictEqual(reviewed.response.patchType, "JSONPatch")
      assert.notInclude(JSON.stringify(reviewed), "statefulset-controller")
    }))

  it.effect("is byte-identical for the same input", () =>
    Effect.gen(function*() {
      const first = JSON.stringify(yield* answer(exampleReview()))
      const second = JSON.stringify(yield* answer(exampleReview()))
      assert.strictEqual(first, second)
    }))

  it.effect("says in the status annotation what it mounted and skipped, in plan order", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(exampleReview())
      const mount = (svm: string, share: string, bucket: string) =>
        ({ svm, share, path: `/home/jovyan/filers/${svm}/${share}`, bucket })
      assert.strictEqual(
        pod.metadata.annotations[statusAnnotation],
        JSON.stringify({
          mounted: [
            mount("fld5filersvm", "division/project", "9799071022584861848"),
            mount("fld5filersvm", "home", "4624382957487889774"),
            mount("fld9filersvm", "research/team-a", bucketName("research/team-a"))
          ],
          skipped: [{ svm: "fld6filersvm", reason: "secret_missing" }]
        })
      )
    }))

  it.effect("mounts every share of every usable SVM and warns about the SVM without a Secret", () =>
    Effect.gen(function*() {
      const { pod, reviewed } = yield* admitPod(exampleReview())
      assert.deepStrictEqual(reviewed.response.warnings, [
        `filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found`
      ])
      assert.strictEqual(pod.spec.initContainers.length, 3)
      assert.deepStrictEqual(
        notebookContainer(pod).volumeMounts.map((m: Pod) => m.mountPath),
        [
          "/home/jovyan",
          "/home/jovyan/filers/fld5filersvm/division/project",
          "/home/jovyan/filers/fld5filersvm/home",
          "/home/jovyan/filers/fld9filersvm/research/team-a"
        ]
      )
    }))
})

layer(Layer.mergeAll(memoryPipeline(clusterObjects([
  { svm: "fld5filersvm", shares: ["division/project", "home"] },
  { svm: "fld9filersvm", shares: ["team-a"], url: "http://fld9.example.test:9000/s3" }
])), quietLogs))("the patch", (it) => {
  it.effect("applies strictly to a pod with no annotations, no initContainers and no volumes (fix)", () =>
    Effect.gen(function*() {
      const raw = notebookPod()
      delete raw.spec.volumes
      raw.spec.containers[0].volumeMounts = undefined
      delete raw.spec.containers[0].volumeMounts
      assert.isUndefined(raw.metadata.annotations)
      const { pod } = yield* admitPod(podReview(raw))
      assert.deepStrictEqual(Object.keys(pod.metadata.annotations), [injectAnnotation, statusAnnotation])
      assert.strictEqual(pod.metadata.annotations[injectAnnotation], "injected")
      assert.deepStrictEqual(
        JSON.parse(pod.metadata.annotations[statusAnnotation]).mounted.map((m: Pod) => `${m.svm} ${m.share}`),
        ["fld5filersvm division/project", "fld5filersvm home", "fld9filersvm team-a"]
      )
      assert.strictEqual(pod.spec.initContainers.length, 3)
      assert.strictEqual(pod.spec.volumes.length, 6)
    }))

  it.effect("applies strictly to a pod without metadata.namespace, taking the request's", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod({ namespace: null })))
      assert.strictEqual(pod.spec.initContainers.length, 3)
    }))

  it.effect("sets the annotation once, beside the pod's other annotations", () =>
    Effect.gen(function*() {
      const raw = notebookPod()
      raw.metadata.annotations = { "kubeflow-resource-stopped": "false", [injectAnnotation]: "true" }
      const review = podReview(raw)
      const reviewed = yield* answer(review)
      // One operation per annotation, not one per share (fix).
      const annotationOps = patchOf(reviewed.response).filter((op) => op.path.startsWith("/metadata/annotations"))
      assert.deepStrictEqual(annotationOps.map((op) => `${op.op} ${op.path}`), [
        "replace /metadata/annotations/filer-injector-webhook.das-zone.statcan~1inject",
        "add /metadata/annotations/filer-injector-webhook.das-zone.statcan~1status"
      ])
      const pod = mutatedPod(review, reviewed.response)
      assert.deepStrictEqual(Object.keys(pod.metadata.annotations), [
        "kubeflow-resource-stopped",
        injectAnnotation,
        statusAnnotation
      ])
      assert.strictEqual(pod.metadata.annotations["kubeflow-resource-stopped"], "false")
      assert.strictEqual(pod.metadata.annotations[injectAnnotation], "injected")
    }))

  it.effect("leaves fields it does not know untouched, anywhere in the pod", () =>
    Effect.gen(function*() {
      const raw = notebookPod()
      raw.futureTopLevel = { a: [1, { b: null }] }
      raw.metadata.futureMeta = "x"
      raw.metadata.ownerReferences = [{ kind: "StatefulSet", name: "analysis", uid: "u", controller: true }]
      raw.spec.futureSpecField = { nested: true }
      raw.spec.hostUsers = false
      raw.spec.containers[0].futureContainerField = ["x"]
      raw.spec.containers[0].env[0].futureEnvField = 1
      raw.spec.containers[0].volumeMounts[0].recursiveReadOnly = "Disabled"
      raw.spec.containers[0].resizePolicy = [{ resourceName: "cpu", restartPolicy: "NotRequired" }]
      raw.spec.volumes[0].futureVolumeField = "y"
      raw.spec.initContainers = [{ name: "init", image: "busybox", futureInitField: 3 }]
      raw.status = { phase: "Pending" }
      const { pod } = yield* admitPod(podReview(raw))
      assertKept(raw, pod)
      assert.strictEqual(pod.spec.initContainers.length, 4)
    }))

  it.effect("replaces an env var of the notebook container that has one of its names, leaving the others as they were", () =>
    Effect.gen(function*() {
      const raw = notebookPod()
      raw.spec.containers[0].env = [
        { name: "USER_FIRST", value: "1" },
        { name: "fld5filersvm_url", value: "https://stale.example.test" },
        { name: "NB_PREFIX", value: "/notebook/jane-doe/analysis" },
        { name: "fld5filersvm_access", value: "stale-plain-value" },
        { name: "USER_LAST", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }
      ]
      const { pod } = yield* admitPod(podReview(raw))
      const env: Array<Pod> = pod.spec.containers[0].env
      assert.deepStrictEqual(env[0], { name: "USER_FIRST", value: "1" })
      assert.deepStrictEqual(env[1], { name: "fld5filersvm_url", value: "https://fld5filersvm.filers.example.test" })
      assert.deepStrictEqual(env[2], { name: "NB_PREFIX", value: "/notebook/jane-doe/analysis" })
      assert.deepStrictEqual(env[3], {
        name: "fld5filersvm_access",
        valueFrom: { secretKeyRef: { name: "fld5filersvm-conn-secret", key: "S3_ACCESS", optional: true } }
      })
      assert.deepStrictEqual(env[4], raw.spec.containers[0].env[4])
      assert.deepStrictEqual(pod.spec.containers[0].volumeMounts[0], raw.spec.containers[0].volumeMounts[0])
    }))

  it.effect("changes only the NB_PREFIX container when it is not the first (fix)", () =>
    Effect.gen(function*() {
      const raw = notebookPod()
      const notebook = raw.spec.containers[0]
      const proxy = { name: "istio-proxy", image: "istio/proxyv2", env: [{ name: "ISTIO_META", value: "x" }] }
      const helper = { name: "helper", image: "busybox" }
      raw.spec.containers = [proxy, notebook, helper]
      const { pod } = yield* admitPod(podReview(raw))
      assert.deepStrictEqual(pod.spec.containers[0], proxy)
      assert.deepStrictEqual(pod.spec.containers[2], helper)
      assert.strictEqual(pod.spec.containers[1].volumeMounts.length, 4)
    }))

  it.effect("sets BUCKET_HOST to the url without http:// or https://, port and path kept (fix)", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod()))
      const hosts = pod.spec.initContainers.map((c: Pod) => c.env.find((e: Pod) => e.name === "BUCKET_HOST").value)
      assert.deepStrictEqual(hosts, ["fld5filersvm.filers.example.test", "fld5filersvm.filers.example.test", "fld9.example.test:9000/s3"])
      const url = notebookContainer(pod).env.find((e: Pod) => e.name === "fld9filersvm_url")
      assert.strictEqual(url.value, "http://fld9.example.test:9000/s3")
    }))

  it.effect("gives no patch when the pod carries the injected annotation (idempotent)", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod()))
      const again = yield* answer(podReview(pod))
      assert.isTrue(again.response.allowed)
      assert.isUndefined(again.response.patch)
    }))

  it.effect("rebuilds the same pod, without duplicates, when the annotation was removed from an injected pod", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod()))
      const stripped = structuredClone(pod)
      delete stripped.metadata.annotations[injectAnnotation]
      const { pod: again, reviewed } = yield* admitPod(podReview(stripped))
      assert.deepStrictEqual(again, pod)
      assert.deepStrictEqual(patchOf(reviewed.response).map((op) => op.path), [
        "/metadata/annotations/filer-injector-webhook.das-zone.statcan~1inject"
      ])
    }))

  it.effect("refers to the Secret for every credential by default: no value in the answer", () =>
    Effect.gen(function*() {
      const review = podReview(notebookPod())
      const reviewed = yield* answer(review)
      const pod = mutatedPod(review, reviewed.response)
      const text = JSON.stringify(reviewed) + JSON.stringify(pod)
      for (const value of Object.values(fakeCredentials("fld5filersvm"))) {
        assert.notInclude(text, value)
        assert.notInclude(text, Buffer.from(value).toString("base64"))
      }
      const credentials = [
        ...notebookContainer(pod).env.filter((e: Pod) => /_(access|secret)$/.test(e.name)),
        ...pod.spec.initContainers.flatMap((c: Pod) => c.env.filter((e: Pod) => e.name.startsWith("AWS_")))
      ]
      assert.strictEqual(credentials.length, 4 + 3 * 2)
      for (const env of credentials) {
        assert.isUndefined(env.value)
        assert.match(env.valueFrom.secretKeyRef.name, /^fld[59]filersvm-conn-secret$/)
        assert.include(["S3_ACCESS", "S3_SECRET"], env.valueFrom.secretKeyRef.key)
      }
    }))
})

describe("plain credential mode", () => {
  const objects = clusterObjects([
    { svm: "svm", shares: ["home"], credentials: { S3_ACCESS: "FAKE$ACCESS", S3_SECRET: "FAKE$(SECRET)$$" } }
  ])
  it.effect("writes the credentials as values, every $ doubled for the kubelet", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod()))
      const values = (env: Array<Pod>) => Object.fromEntries(env.map((e) => [e.name, e.value]))
      assert.deepInclude(values(notebookContainer(pod).env), { svm_access: "FAKE$$ACCESS", svm_secret: "FAKE$$(SECRET)$$$$" })
      assert.deepInclude(values(pod.spec.initContainers[0].env), {
        AWS_ACCESS_KEY_ID: "FAKE$$ACCESS",
        AWS_SECRET_ACCESS_KEY: "FAKE$$(SECRET)$$$$"
      })
    }).pipe(Effect.provide(memoryPipeline(objects, { credentialMode: "plain" })), Effect.provide(quietLogs)))
})

describe("pods left alone", () => {
  const cluster = Layer.mergeAll(memoryPipeline(clusterObjects([{ svm: "svm", shares: ["home"] }])), quietLogs)
  const unchanged = (review: Pod) =>
    Effect.gen(function*() {
      const reviewed = yield* answer(review)
      assert.isTrue(reviewed.response.allowed)
      assert.isUndefined(reviewed.response.patch)
      return reviewed.response
    }).pipe(Effect.provide(cluster))

  it.effect.each(["UPDATE", "DELETE", "CONNECT"])("admits an %s unchanged (fix: only CREATE)", (operation) =>
    unchanged(podReview(notebookPod(), { operation })))

  it.effect("admits a pod without the notebook-name label unchanged", () => {
    const pod = notebookPod()
    pod.metadata.labels = { app: "web" }
    return unchanged(podReview(pod))
  })

  it.effect("admits a pod that opted out unchanged", () => {
    const pod = notebookPod()
    pod.metadata.annotations = { [injectAnnotation]: "OFF" }
    return unchanged(podReview(pod))
  })

  it.effect("admits a pod whose namespace has no existing-shares unchanged, without warning", () =>
    Effect.map(unchanged(podReview(notebookPod({ namespace: "elsewhere" }), { namespace: "elsewhere" })), (response) =>
      assert.isUndefined(response.warnings)))

  it.effect("admits a pod without an NB_PREFIX container unchanged, with a warning", () => {
    const pod = notebookPod()
    pod.spec.containers[0].env = []
    return Effect.map(unchanged(podReview(pod)), (response) => assert.match(response.warnings?.[0] ?? "", /NB_PREFIX/))
  })

  it.effect("admits unchanged, with only warnings, when every SVM and share was skipped", () =>
    Effect.gen(function*() {
      const reviewed = yield* answer(podReview(notebookPod()))
      assert.isUndefined(reviewed.response.patch)
      assert.deepStrictEqual(reviewed.response.warnings, [
        `filers: SVM "a" share "../x" skipped: '..' in share path`,
        `filers: SVM "b" skipped: Secret b-conn-secret not found`
      ])
    }).pipe(
      Effect.provide(memoryPipeline(clusterObjects([
        { svm: "a", shares: ["../x"] },
        { svm: "b", shares: ["home"], credentials: null }
      ]))),
      Effect.provide(quietLogs)
    ))
})

// The kube-apiserver stores a pod in etcd, whose default request limit is
// 1.5 MiB: a patch that makes the pod larger blocks it, whatever the failure
// policy. Shares past Settings.maxSharesPerPod are skipped with a warning.
describe("a namespace with more shares than a pod can carry", () => {
  const etcdRequestLimit = 1.5 * 1024 * 1024
  const manyShares = (count: number) => Array.from({ length: count }, (_, i) => `project-${i}/data`)
  const cluster = clusterObjects([
    { svm: "fld5filersvm", shares: manyShares(700) },
    { svm: "fld9filersvm", shares: manyShares(700) }
  ])

  it.effect("mounts the first 100 by default, warns once per SVM for the rest, and the pod stays storable", () =>
    Effect.gen(function*() {
      const { pod, reviewed } = yield* admitPod(podReview(notebookPod()))
      assert.strictEqual(pod.spec.initContainers.length, 100)
      assert.deepStrictEqual(reviewed.response.warnings, [
        `filers: SVM "fld5filersvm": 600 of its shares not mounted: a pod gets at most 100`,
        `filers: SVM "fld9filersvm": 700 of its shares not mounted: a pod gets at most 100`
      ])
      assert.isBelow(JSON.stringify(pod).length, etcdRequestLimit / 4)
    }).pipe(Effect.provide(memoryPipeline(cluster)), Effect.provide(quietLogs)))

  it.effect("at the highest limit the setting takes (300), the pod still fits under etcd's limit with room to spare", () =>
    Effect.gen(function*() {
      const { pod } = yield* admitPod(podReview(notebookPod()))
      assert.strictEqual(pod.spec.initContainers.length, 300)
      assert.isBelow(JSON.stringify(pod).length, etcdRequestLimit * 0.7)
    }).pipe(Effect.provide(memoryPipeline(cluster, { maxSharesPerPod: 300 })), Effect.provide(quietLogs)))
})
