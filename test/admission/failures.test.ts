/**
 * What the pipeline answers when it cannot do its job: the Kubernetes API
 * failing, the injector's own configuration missing or invalid, a Pod that
 * does not decode, and input that is no AdmissionReview at all.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { parseJson } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { eventFor } from "../../src/admission/events/eventFor.ts"
import {
  admitSettled,
  answer,
  clusterObjects,
  configMap,
  exampleTemplate,
  filersList,
  injectorNamespace,
  memoryPipeline,
  mutatedPod,
  notebookContainer,
  notebookPod,
  type Pod,
  podReview,
  quietLogs,
  type AdmissionOverrides,
  sidecarTemplate
} from "../support/pipelineHarness.ts"
import type { RawObject } from "../../src/cluster/objects.ts"

const svms = [{ svm: "fld5filersvm", shares: ["home"] }]

/** Answers a notebook pod's review on a fresh cluster, after `prepare` had its way with it. */
const answerWith = (
  objects: Array<RawObject>,
  settings: AdmissionOverrides = {},
  prepare: (cluster: MemoryCluster["Service"]) => void = () => {}
) =>
  Effect.gen(function*() {
    // Faults and latency start once the configuration has loaded, as they would in a running injector.
    yield* (yield* ClusterConfig).settled
    prepare(yield* MemoryCluster)
    const pod = notebookPod()
    pod.metadata.name = "analysis-0"
    const review = podReview(pod)
    const admission = yield* admitSettled(review)
    return { review, response: admission.review.response, admission }
  }).pipe(Effect.provide(Layer.mergeAll(memoryPipeline(objects, settings), quietLogs)))

const transientOn = (resource: string) => ({
  matches: (call: CallDescription) => call.resource === resource && call.verb === "get",
  error: (call: CallDescription) => KubeError.transient(call, "HTTP 503 Service Unavailable")
})

const forbiddenOn = (resource: string) => ({
  matches: (call: CallDescription) => call.resource === resource && call.verb === "get",
  error: (call: CallDescription) => KubeError.forbidden(call, 403)
})

/**
 * The answer, on the test clock, when every read takes 600 ms and the first
 * read of existing-shares fails (retries are instant in these tests).
 */
const slowThenFailingOnce = (requestBudget: Duration.Duration) =>
  Effect.gen(function*() {
    const answered = yield* Effect.forkChild(answerWith(clusterObjects(svms), { requestBudget }, (c) => {
      c.addFault(transientOn("configmaps"), 1)
      c.setLatency("600 millis")
    }))
    yield* TestClock.adjust("5 seconds")
    return (yield* Fiber.join(answered)).response
  })

describe("the Kubernetes API failing", () => {
  it.effect("denies the pod, naming what failed, when a Secret read keeps failing (default policy)", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith(clusterObjects(svms), {}, (c) => c.addFault(transientOn("secrets")))
      assert.isFalse(response.allowed)
      assert.isUndefined(response.patch)
      assert.strictEqual(response.status?.code, 503)
      assert.include(response.status?.message, `cannot get secrets "jane-doe/fld5filersvm-conn-secret": HTTP 503`)
      assert.include(response.status?.message, "denied")
    }))

  it.effect("admits the pod without mounts, with a warning, under onInfrastructureFailure: admit", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith(
        clusterObjects(svms),
        { onInfrastructureFailure: "admit" },
        (c) => c.addFault(transientOn("secrets"))
      )
      assert.isTrue(response.allowed)
      assert.isUndefined(response.patch)
      assert.strictEqual(response.warnings?.length, 1)
      assert.match(response.warnings![0], /^filers not mounted: cannot get secrets "jane-doe\/fld5filersvm-conn-secret"/)
      assert.isAtMost(response.warnings![0].length, 120)
    }))

  it.effect("retries a transient failure and injects once the API answers", () =>
    Effect.gen(function*() {
      const { response, review } = yield* answerWith(clusterObjects(svms), {}, (c) => {
        c.addFault(transientOn("secrets"), 2)
        c.addFault(transientOn("configmaps"), 2)
      })
      assert.isTrue(response.allowed)
      assert.strictEqual(mutatedPod(review, response).spec.initContainers.length, 1)
    }))

  it.effect("denies the pod naming the missing RBAC rule when reading existing-shares is forbidden", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith(clusterObjects(svms), {}, (c) => c.addFault(forbiddenOn("configmaps")))
      assert.isFalse(response.allowed)
      assert.include(
        response.status?.message,
        `apiGroups=[""] resources=["configmaps"] verbs=["get"] in namespace "jane-doe"`
      )
    }))

  it.effect("skips only the SVM whose Secret is forbidden (403), mounting the others, with one warning naming the Secret", () =>
    Effect.gen(function*() {
      const twoSvms = [...svms, { svm: "fld9filersvm", shares: ["team-a"] }]
      const forbidden = {
        matches: (call: CallDescription) => call.resource === "secrets" && call.objectName === "fld5filersvm-conn-secret",
        error: (call: CallDescription) => KubeError.forbidden(call, 403)
      }
      const { review, response, admission } = yield* answerWith(clusterObjects(twoSvms), {}, (c) => c.addFault(forbidden))
      assert.isTrue(response.allowed)
      const pod = mutatedPod(review, response)
      assert.strictEqual(pod.spec.initContainers.length, 1)
      assert.deepStrictEqual(
        notebookContainer(pod).volumeMounts.map((m: Pod) => m.mountPath).filter((path: string) => path.includes("/filers/")),
        ["/home/jovyan/filers/fld9filersvm/team-a"]
      )
      assert.deepStrictEqual(response.warnings, [
        `filers: SVM "fld5filersvm" skipped: RBAC forbids Secret fld5filersvm-conn-secret: re-run filer-sidecar-injector rbac`
      ])
      const status = JSON.parse(pod.metadata.annotations["filer-injector-webhook.das-zone.statcan/status"])
      assert.deepStrictEqual(status.skipped, [{ svm: "fld5filersvm", reason: "secret_forbidden" }])
      assert.deepStrictEqual(admission.outcome.skipCounts, { secret_forbidden: 1 })
      // The Event on the notebook says it too.
      const event = eventFor(review, admission)
      assert.strictEqual(event?.reason, "FilerSharesSkipped")
      assert.include(event?.message, "RBAC forbids Secret fld5filersvm-conn-secret")
    }))

  it.effect("denies the pod when a Secret read is unauthorized (401): the injector's own credentials, not one Secret", () =>
    Effect.gen(function*() {
      const unauthorized = { ...forbiddenOn("secrets"), error: (call: CallDescription) => KubeError.forbidden(call, 401) }
      const { response } = yield* answerWith(clusterObjects(svms), {}, (c) => c.addFault(unauthorized))
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, `unauthorized: cannot get secrets "jane-doe/fld5filersvm-conn-secret"`)
    }))

  it.effect("names the last error when the budget runs out while a retry still waits for its answer", () =>
    Effect.gen(function*() {
      // The first read of existing-shares fails at 600 ms; its retry would answer after the 1 s budget.
      const response = yield* slowThenFailingOnce(Duration.seconds(1))
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, `cannot get configmaps "jane-doe/existing-shares": HTTP 503 Service Unavailable`)
      assert.notInclude(response.status?.message, "did not answer within")
    }))

  it.effect("does not blame a read that failed once and then got through", () =>
    Effect.gen(function*() {
      // existing-shares answers at 1.2 s, on its retry; the Secret read is still on its way at the 1.5 s budget.
      const response = yield* slowThenFailingOnce(Duration.millis(1500))
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, "did not answer within the 1s 500ms budget")
      assert.notInclude(response.status?.message, "existing-shares")
    }))

  it.live("denies the pod when the API is slower than the request budget", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith(clusterObjects(svms), { requestBudget: Duration.millis(150) }, (c) =>
        c.setLatency("2 seconds"))
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, "did not answer within")
    }), 10_000)
})

describe("the injector's configuration missing or invalid", () => {
  const userObjects = clusterObjects(svms).slice(2)

  it.effect("denies the pod naming filers-list when it is missing", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith([sidecarTemplate(), ...userObjects])
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, "ConfigMap das/filers-list: not found")
    }))

  it.effect("denies the pod naming filers-list and its field when it is not JSON", () =>
    Effect.gen(function*() {
      const broken = configMap(injectorNamespace, "filers-list", { filers: "[{" })
      const { response } = yield* answerWith([broken, sidecarTemplate(), ...userObjects])
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, "ConfigMap das/filers-list: data.filers is not valid JSON")
    }))

  it.effect("denies the pod naming the template and its field when the template is invalid", () =>
    Effect.gen(function*() {
      const template = exampleTemplate()
      const { response } = yield* answerWith([
        filersList([{ vserver: "fld5filersvm", url: "https://f" }]),
        sidecarTemplate({ ...template, volumes: [template.volumes[0]] }),
        ...userObjects
      ])
      assert.isFalse(response.allowed)
      assert.include(
        response.status?.message,
        `ConfigMap das/filer-sidecar-injector-json: data["sidecarconfig.json"].volumes needs a csi volume`
      )
    }))

  it.effect("denies the pod naming the field when the only template asks for privilege", () =>
    Effect.gen(function*() {
      const template = exampleTemplate()
      const privileged = { ...template.containers[0], securityContext: { capabilities: { add: ["SYS_ADMIN"] } } }
      const { response } = yield* answerWith([
        filersList([{ vserver: "fld5filersvm", url: "https://f" }]),
        sidecarTemplate({ ...template, containers: [privileged] }),
        ...userObjects
      ])
      assert.isFalse(response.allowed)
      assert.include(
        response.status?.message,
        `ConfigMap das/filer-sidecar-injector-json: data["sidecarconfig.json"].containers[0].securityContext.capabilities.add must be empty`
      )
    }))

  it.effect("denies the pod naming the template's key when it is missing from the ConfigMap", () =>
    Effect.gen(function*() {
      const { response } = yield* answerWith([
        filersList([{ vserver: "fld5filersvm", url: "https://f" }]),
        configMap(injectorNamespace, "filer-sidecar-injector-json", { "other.json": "{}" }),
        ...userObjects
      ])
      assert.isFalse(response.allowed)
      assert.include(response.status?.message, `data["sidecarconfig.json"] is missing`)
    }))

  it.effect("still admits unchanged a pod whose namespace has no existing-shares (fix: rule 4 comes first)", () =>
    Effect.gen(function*() {
      // No filers-list at all, and no existing-shares in the pod's namespace.
      const { response } = yield* answerWith([sidecarTemplate()])
      assert.isTrue(response.allowed)
      assert.isUndefined(response.patch)
      assert.isUndefined(response.warnings)
    }))
})

describe("a Pod that does not decode", () => {
  const cluster = Layer.mergeAll(memoryPipeline(clusterObjects(svms)), quietLogs)
  const rejected = (object: unknown) =>
    Effect.map(answer(podReview(object)), ({ response }) => {
      assert.isFalse(response.allowed)
      assert.strictEqual(response.status?.code, 400)
      return response.status?.message ?? ""
    }).pipe(Effect.provide(cluster))

  it.effect("is refused with the field, when a container has no name", () =>
    Effect.gen(function*() {
      const pod = notebookPod()
      delete pod.spec.containers[0].name
      assert.match(yield* rejected(pod), /request\.object is not a valid Pod: spec\.containers\[0\]\.name/)
    }))

  it.effect("is refused with the field, when spec.containers is not a list", () =>
    Effect.gen(function*() {
      const pod = notebookPod()
      pod.spec.containers = { analysis: {} }
      assert.match(yield* rejected(pod), /spec\.containers/)
    }))

  it.effect("is refused with the field, when there is no spec", () =>
    Effect.gen(function*() {
      assert.match(yield* rejected({ metadata: { labels: { "notebook-name": "x" } } }), /spec/)
    }))

  it.effect("is refused with the field, when a label is not a string", () =>
    Effect.gen(function*() {
      const pod: Pod = notebookPod()
      pod.metadata.labels.broken = 3
      assert.match(yield* rejected(pod), /metadata\.labels\.broken/)
    }))
})

describe("input that is not an AdmissionReview", () => {
  const cluster = Layer.mergeAll(memoryPipeline(clusterObjects(svms)), quietLogs)
  const decodeError = (input: unknown) =>
    Effect.map(Effect.flip(answer(input)), (error) => {
      assert.strictEqual(error._tag, "AdmissionDecodeError")
      return error.message
    }).pipe(Effect.provide(cluster))
  const valid = () => podReview(notebookPod())

  it.effect("fails on text that is not JSON", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseJson("{not json"))
      assert.strictEqual(error._tag, "AdmissionDecodeError")
      assert.match(error.message, /^body is not JSON/)
    }))

  it.effect("fails on JSON that is not an object", () =>
    Effect.gen(function*() {
      assert.match(yield* decodeError([valid()]), /not a JSON object/)
    }))

  it.effect("names kind when it is not AdmissionReview", () =>
    Effect.gen(function*() {
      assert.match(yield* decodeError({ ...valid(), kind: "Pod" }), /^not an AdmissionReview v1: kind: /)
    }))

  it.effect("names apiVersion when it is not admission.k8s.io/v1", () =>
    Effect.gen(function*() {
      assert.match(yield* decodeError({ ...valid(), apiVersion: "admission.k8s.io/v1beta1" }), /apiVersion: /)
    }))

  it.effect("names request when it is missing", () =>
    Effect.gen(function*() {
      const { request: _, ...rest } = valid()
      assert.match(yield* decodeError(rest), /: request: /)
    }))

  it.effect("names request.uid when it is missing or empty", () =>
    Effect.gen(function*() {
      const review = valid()
      delete review.request.uid
      assert.match(yield* decodeError(review), /request\.uid: /)
      assert.match(yield* decodeError({ ...review, request: { ...review.request, uid: "" } }), /request\.uid: /)
    }))
})
