// Test-only checks, outside the README part below.
import { validatePod } from "../support/podValidation.ts"
import { applyStrict, decodePatchBase64 } from "../support/strictJsonPatch.ts"

// README:start
import { assert, it } from "@effect/vitest"
import { Effect, JsonPatch, Layer } from "effect"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"

// The settings at their defaults (AdmissionSettings.layer would read them from the environment).
const settings = Layer.mergeAll(AdmissionSettings.layerValues(), ClusterSettings.layerValues())

const configMap = (namespace: string, name: string, data: Record<string, string>) =>
  ({ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace, name }, data })

const sidecarTemplate = {
  containers: [{ image: "example/goofys-sidecar:1", volumeMounts: [{ name: "fd", mountPath: "/fusermount3-proxy" }] }],
  volumes: [{ name: "fd", emptyDir: {} }, {
    name: "csi",
    csi: { driver: "meta-fuse-csi-plugin.csi.storage.pfn.io", volumeAttributes: { fdPassingSocketName: "fuse.sock" } }
  }]
}

// The cluster as plain objects: the injector's configuration in "das", then one user namespace.
const cluster = [
  configMap("das", "filers-list", { filers: JSON.stringify([{ vserver: "fld5filersvm", url: "https://fld5.example.test" }]) }),
  configMap("das", "filer-sidecar-injector-json", { "sidecarconfig.json": JSON.stringify(sidecarTemplate) }),
  configMap("jane-doe", "existing-shares", { fld5filersvm: '["division/project", "home"]' }),
  { apiVersion: "v1", kind: "Secret", metadata: { namespace: "jane-doe", name: "fld5filersvm-conn-secret" },
    stringData: { S3_ACCESS: "FAKE-ACCESS-KEY", S3_SECRET: "FAKE-SECRET-KEY" } }
]

const pod = {
  metadata: { generateName: "analysis-", labels: { "notebook-name": "analysis" } },
  spec: { containers: [{ name: "analysis", image: "jupyter/scipy", env: [{ name: "NB_PREFIX", value: "/notebook/x" }] }] }
}
type MutatedPod = { spec: { initContainers: Array<unknown>; containers: Array<{ volumeMounts: Array<{ mountPath: string }> }> } }

const review = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {
  uid: "42", kind: { group: "", version: "v1", kind: "Pod" }, namespace: "jane-doe", operation: "CREATE", object: pod
} }

it.effect("mounts every share of the namespace into the notebook", () =>
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled // the configuration loads in the background
    const { review: answer } = yield* admit(review)
    const patch = JSON.parse(Buffer.from(answer.response.patch!, "base64").toString("utf8"))
    const mutated = JsonPatch.apply(patch, pod) as MutatedPod
    assert.strictEqual(mutated.spec.initContainers.length, 2) // one goofys sidecar per share
    assert.deepStrictEqual(mutated.spec.containers[0].volumeMounts.map((mount) => mount.mountPath), [
      "/home/jovyan/filers/fld5filersvm/division/project",
      "/home/jovyan/filers/fld5filersvm/home"
    ])
  }).pipe(Effect.provide(memoryAdmissionLayer(cluster).pipe(Layer.provideMerge(settings)))))
// README:end

// Not in the README: the same answer against the strict model of the kube-apiserver.
it.effect("answers the README's review with a patch the kube-apiserver accepts", () =>
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    const { review: answer } = yield* admit(review)
    const mutated = applyStrict(review.request.object, decodePatchBase64(answer.response.patch!))
    assert.deepStrictEqual(validatePod(mutated), [])
    assert.strictEqual(answer.response.uid, "42")
  }).pipe(Effect.provide(memoryAdmissionLayer(cluster).pipe(Layer.provideMerge(settings)))))
