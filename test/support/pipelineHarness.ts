/**
 * Running the admission pipeline in tests: a cluster given as objects (or a
 * folder), the in-memory layers, AdmissionReviews built for a pod, and the
 * mutated pod computed independently of the injector (strict RFC 6902
 * applier + the Pod validation model of the kube-apiserver).
 *
 * Layers are plain values: build one per file (or per `layer(...)` block)
 * and reuse it; only tests that change the cluster (faults, objects) need a
 * fresh one.
 */
import type { EventRecorder } from "../../src/admission/events/EventRecorder.ts"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { ConfigProvider, Effect, Layer, Logger, References } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"
import { AdmissionSettings, type AdmissionSettingsShape } from "../../src/admission/AdmissionSettings.ts"
import { directoryAdmissionLayer, memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { admit, type AdmissionServices } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import { KubeRetry } from "../../src/cluster/retry.ts"
import type { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import type { AdmissionResponse, AdmissionReviewResponse } from "../../src/domain/admission.ts"
import { validatePod } from "./podValidation.ts"
import { applyStrict, decodePatchBase64 } from "./strictJsonPatch.ts"

export const repoRoot = join(import.meta.dirname, "..", "..")
export const exampleClusterDir = join(repoRoot, "manifests", "examples", "cluster")
export const exampleReviewFile = join(repoRoot, "manifests", "examples", "admission-review.json")

export type Pod = Record<string, any>
/** The pipeline's settings a test changes, over the defaults. */
export type AdmissionOverrides = Partial<AdmissionSettingsShape>
export type PipelineLayer = Layer.Layer<AdmissionServices | EventRecorder | MemoryCluster>

// ---------------------------------------------------------------------------
// Cluster objects

export const injectorNamespace = "das"
export const userNamespace = "jane-doe"

export const configMap = (namespace: string, name: string, data: Record<string, string>): RawObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace },
  data
})

/** A Secret as the API holds it: values base64 in `data`. */
export const secret = (namespace: string, name: string, values: Record<string, string>): RawObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  type: "Opaque",
  data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]))
})

export interface FilerEntry {
  readonly vserver: string
  readonly url?: string
  readonly name?: string
  readonly uuid?: string
}

export const filersList = (filers: ReadonlyArray<FilerEntry>, namespace = injectorNamespace): RawObject =>
  configMap(namespace, "filers-list", { filers: JSON.stringify(filers) })

/** The sidecar template of the example cluster, as an object. */
export const exampleTemplate = () => ({
  containers: [{
    name: "filer-connection-x",
    image: "registry.example/goofys-sidecar:1",
    imagePullPolicy: "IfNotPresent",
    securityContext: { privileged: false },
    command: ["/bin/bash"],
    args: ["-c", "replaced by the injector"],
    volumeMounts: [{ name: "fuse-fd-passing-x", mountPath: "/fusermount3-proxy" }],
    env: [
      { name: "FUSERMOUNT3PROXY_FDPASSING_SOCKPATH", value: "replaced" },
      { name: "AWS_ACCESS_KEY_ID", value: "replaced" },
      { name: "TEMPLATE_ONLY", value: "kept" }
    ]
  }],
  volumes: [
    { name: "fuse-fd-passing-x", emptyDir: {} },
    {
      name: "fuse-csi-ephemeral-x",
      csi: {
        driver: "meta-fuse-csi-plugin.csi.storage.pfn.io",
        readOnly: false,
        volumeAttributes: { fdPassingEmptyDirName: "fuse-fd-passing-x", fdPassingSocketName: "fuse-csi-ephemeral.sock" }
      }
    }
  ]
})

export const sidecarTemplate = (template: unknown = exampleTemplate(), namespace = injectorNamespace): RawObject =>
  configMap(namespace, "filer-sidecar-injector-json", { "sidecarconfig.json": JSON.stringify(template) })

/** Fake credentials, recognisable in a leak scan. */
export const fakeCredentials = (svm: string) => ({
  S3_ACCESS: `FAKE-ACCESS-${svm}-do-not-use`,
  S3_SECRET: `FAKE-SECRET-${svm}-do-not-use`
})

export interface UserSvm {
  readonly svm: string
  readonly shares: ReadonlyArray<string> | string
  /** The filers-list url; `null` leaves the SVM out of filers-list. */
  readonly url?: string | null
  /** Secret values; `null` for no Secret. Default: `fakeCredentials(svm)`. */
  readonly credentials?: Record<string, string> | null | undefined
}

/**
 * A whole cluster: the injector's configuration and one user namespace with
 * `existing-shares` and one Secret per SVM.
 */
export const clusterObjects = (
  svms: ReadonlyArray<UserSvm>,
  options: { readonly namespace?: string; readonly template?: unknown } = {}
): Array<RawObject> => {
  const namespace = options.namespace ?? userNamespace
  return [
    filersList(
      svms.filter((s) => s.url !== null).map((s) => ({ vserver: s.svm, url: s.url ?? `https://${s.svm}.filers.example.test` }))
    ),
    sidecarTemplate(options.template),
    configMap(
      namespace,
      "existing-shares",
      Object.fromEntries(svms.map((s) => [s.svm, typeof s.shares === "string" ? s.shares : JSON.stringify(s.shares)]))
    ),
    ...svms.flatMap((s) =>
      s.credentials === null
        ? []
        : [secret(namespace, `${s.svm.replaceAll("_", "-")}-conn-secret`, s.credentials ?? fakeCredentials(s.svm))]
    )
  ]
}

/** The objects in a folder of manifests (as `--cluster DIR` reads them), read synchronously. */
export const readManifestFolder = (directory: string): Array<RawObject> =>
  readdirSync(directory, { recursive: true, encoding: "utf8" })
    .filter((file) => /\.(ya?ml|json)$/.test(file))
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(join(directory, file), "utf8")).map((doc) => doc.toJS() as RawObject))
    .filter((object) => object !== null)

export const exampleClusterObjects = (): Array<RawObject> => readManifestFolder(exampleClusterDir)
export const exampleReview = (): Pod => JSON.parse(readFileSync(exampleReviewFile, "utf8"))

// ---------------------------------------------------------------------------
// Pods and reviews

/** A small Kubeflow notebook pod: the notebook container carries NB_PREFIX. */
export const notebookPod = (overrides: { readonly namespace?: string | null } = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    generateName: "analysis-",
    ...(overrides.namespace === null ? {} : { namespace: overrides.namespace ?? userNamespace }),
    labels: { "notebook-name": "analysis" }
  },
  spec: {
    containers: [{
      name: "analysis",
      image: "jupyter/scipy:1",
      env: [{ name: "NB_PREFIX", value: "/notebook/jane-doe/analysis" }],
      volumeMounts: [{ name: "workspace", mountPath: "/home/jovyan" }]
    }],
    volumes: [{ name: "workspace", persistentVolumeClaim: { claimName: "workspace-analysis" } }]
  }
})

export interface ReviewOptions {
  readonly uid?: string
  readonly namespace?: string
  readonly operation?: string
  readonly kind?: { readonly group: string; readonly version: string; readonly kind: string }
}

/** The AdmissionReview the kube-apiserver sends for `pod`. */
export const podReview = (pod: unknown, options: ReviewOptions = {}): Pod => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: options.uid ?? "0a0b0c0d-0000-4000-8000-000000000001",
    kind: options.kind ?? { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    name: "",
    namespace: options.namespace ?? userNamespace,
    operation: options.operation ?? "CREATE",
    userInfo: { username: "system:serviceaccount:kube-system:statefulset-controller" },
    object: pod,
    oldObject: null,
    dryRun: false
  }
})

// ---------------------------------------------------------------------------
// Layers and running

/**
 * What the components that read their Config themselves (the goofys policy)
 * see in tests: no environment, so their defaults, whatever the shell has set.
 */
export const noEnvironment: Layer.Layer<never> = ConfigProvider.layer(ConfigProvider.fromUnknown({}))

/** The settings of the pipeline's components: the pipeline's over the defaults, the cluster's defaults. */
export const pipelineSettings = (admission: AdmissionOverrides = {}) =>
  Layer.mergeAll(AdmissionSettings.layerValues(admission), ClusterSettings.layerValues()).pipe(
    Layer.provideMerge(noEnvironment)
  )

/**
 * The pipeline over a cluster of objects: instant Kubernetes retries, the
 * pipeline's settings over the defaults. `logs` reaches the configuration
 * watchers the layer starts as well as the admissions run with it (quiet by default).
 * With `watchShares`, existing-shares come from the watch-backed cache, as in `serve`.
 */
export const memoryPipeline = (
  objects: Iterable<RawObject>,
  settings: AdmissionOverrides = {},
  logs: Layer.Layer<never> = quietLogs,
  options: { readonly watchShares?: boolean } = {}
): PipelineLayer =>
  memoryAdmissionLayer(objects, { retry: KubeRetry.layerInstant, watchShares: options.watchShares ?? false }).pipe(
    Layer.provideMerge(pipelineSettings(settings)),
    Layer.orDie,
    Layer.provideMerge(logs)
  )

/** The pipeline over a folder of manifests, as the `review` command builds it. */
export const directoryPipeline = (
  directory: string,
  settings: AdmissionOverrides = {},
  logs: Layer.Layer<never> = quietLogs
) =>
  directoryAdmissionLayer(directory).pipe(
    Layer.provideMerge(pipelineSettings(settings)),
    Layer.provide(NodeServices.layer),
    Layer.orDie,
    Layer.provideMerge(logs)
  )

/** `admit`, once the injector's configuration has loaded (or failed to). */
export const admitSettled = (input: unknown) =>
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    return yield* admit(input)
  })

/** The AdmissionReview answer for `input`; the decode error, if any, fails the effect. */
export const answer = (input: unknown) => Effect.map(admitSettled(input), (admission) => admission.review)

/** Runs one admission against a fresh layer, as a promise: for plain `it` and property tests. */
export const runAdmission = (layer: PipelineLayer, input: unknown): Promise<AdmissionReviewResponse> =>
  Effect.runPromise(answer(input).pipe(Effect.provide(layer)))

// ---------------------------------------------------------------------------
// Checking answers

/** The decoded patch of a response (`[]` when there is none). */
export const patchOf = (response: AdmissionResponse): Array<{ op: string; path: string; value?: unknown }> =>
  response.patch === undefined ? [] : (decodePatchBase64(response.patch) as Array<{ op: string; path: string }>)

/**
 * The pod as the kube-apiserver would store it: the response's patch applied
 * strictly to `request.object` exactly as sent. Throws when the patch does
 * not apply or the result would fail Pod validation.
 */
export const mutatedPod = (review: unknown, response: AdmissionResponse): Pod => {
  const object = (review as Pod).request.object
  if (response.patch !== undefined && response.patchType !== "JSONPatch") {
    throw new Error(`patchType is ${String(response.patchType)}, not JSONPatch`)
  }
  const pod = response.patch === undefined ? structuredClone(object) : applyStrict(object, decodePatchBase64(response.patch))
  const problems = validatePod(pod)
  if (problems.length > 0) throw new Error(`the mutated pod is invalid:\n  ${problems.join("\n  ")}`)
  return pod as Pod
}

/** Containers/initContainers/volumes of a pod, by name. */
export const byName = <T extends { name: string }>(list: ReadonlyArray<T> | undefined, name: string): T | undefined =>
  (list ?? []).find((entry) => entry.name === name)

/** The notebook container of a pod: the one with NB_PREFIX. */
export const notebookContainer = (pod: Pod): Pod =>
  pod.spec.containers.find((c: Pod) => (c.env ?? []).some((e: Pod) => e.name === "NB_PREFIX"))

// ---------------------------------------------------------------------------
// Logs

/** Logs off: the in-memory cluster's configuration loads are noise in tests. */
export const quietLogs = Layer.succeed(References.MinimumLogLevel, "None")

/**
 * A logger that keeps every line (all levels, message and annotations), for
 * tests that assert on what is logged.
 */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    lines.push(Logger.formatLogFmt.log(options))
  })
  const layer = Layer.mergeAll(
    Logger.layer([logger]),
    Layer.succeed(References.MinimumLogLevel, "All")
  )
  return { lines, layer }
}
