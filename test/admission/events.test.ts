/**
 * Events (docs/behaviour.md, "Events"), through the webhook route over the
 * in-memory cluster: which Event each answer gets and on which object, none
 * for dry runs, denials and pods the webhook leaves alone, repeats counted on
 * the first Event, and never a credential.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { HttpClient } from "effect/http"
import { EventRecorder } from "../../src/admission/events/EventRecorder.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { observation, post, servedRoutes } from "../observability/support.ts"
import { clusterObjects, fakeCredentials, notebookPod, podReview, userNamespace } from "../support/pipelineHarness.ts"

const mountable = clusterObjects([
  { svm: "fld5filersvm", shares: ["division/project", "home"] },
  { svm: "fld9filersvm", shares: ["research"] }
])
const withSkip = clusterObjects([
  { svm: "fld5filersvm", shares: ["home"] },
  { svm: "fld6filersvm", shares: ["shared"], credentials: null }
])

const statefulSetOwner = {
  apiVersion: "apps/v1",
  kind: "StatefulSet",
  name: "analysis",
  uid: "5b1a2c3d-0000-4000-8000-000000000042",
  controller: true,
  blockOwnerDeletion: true
}

/** A notebook pod as its StatefulSet makes it: named, owned by the StatefulSet. */
const statefulSetPod = () => {
  const pod = notebookPod()
  return { ...pod, metadata: { ...pod.metadata, name: "analysis-0", ownerReferences: [statefulSetOwner] } }
}
const namedPod = () => ({ ...notebookPod(), metadata: { ...notebookPod().metadata, name: "analysis-bare" } })

let uidCounter = 0
const review = (pod: unknown, options: { readonly dryRun?: boolean; readonly namespace?: string } = {}) => {
  const built = podReview(pod, {
    uid: `0e0e0e0e-0000-4000-8000-${String(++uidCounter).padStart(12, "0")}`,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace })
  })
  return options.dryRun === true ? { ...built, request: { ...built.request, dryRun: true } } : built
}

/** Admits each review over HTTP, then waits until the recorder has sent everything. */
const admitAll = (...reviews: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    for (const body of reviews) assert.strictEqual((yield* post("/inject", body)).status, 200)
    const recorder = yield* EventRecorder
    while ((yield* recorder.pending) > 0) yield* Effect.sleep("5 millis")
    return (yield* MemoryCluster).events()
  })

const served = (objects: Iterable<RawObject>, settings: Parameters<typeof servedRoutes>[1] = {}) => {
  const observed = observation()
  return <A, E>(self: Effect.Effect<A, E, EventRecorder | MemoryCluster | ClusterConfig | HttpClient.HttpClient>) =>
    self.pipe(Effect.provide(servedRoutes(objects, settings)), Effect.provide(observed.layer))
}

describe("Events", () => {
  it.live("a notebook mounted in full: Normal FilersMounted on its StatefulSet, naming the shares and SVMs", () =>
    Effect.gen(function*() {
      const events = yield* admitAll(review(statefulSetPod()))
      assert.strictEqual(events.length, 1)
      const event = events[0]!
      assert.deepStrictEqual(event.involvedObject, {
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        name: "analysis",
        namespace: userNamespace,
        uid: statefulSetOwner.uid
      })
      assert.strictEqual(event.type, "Normal")
      assert.strictEqual(event.reason, "FilersMounted")
      assert.strictEqual(event.message, "mounted 3 filer shares: 2 of SVM \"fld5filersvm\", 1 of SVM \"fld9filersvm\"")
      assert.deepStrictEqual(event.source, { component: "filer-sidecar-injector" })
      assert.strictEqual(event.reportingComponent, "filer-sidecar-injector")
      assert.strictEqual(event.count, 1)
      assert.strictEqual(event.firstTimestamp, event.lastTimestamp)
      assert.strictEqual(event.eventTime, undefined)
      const metadata = event.metadata as { name: string; namespace: string }
      assert.strictEqual(metadata.namespace, userNamespace)
      assert.match(metadata.name, /^analysis\.[0-9a-f]+$/)
    }).pipe(served(mountable)))

  it.live("a pod without a controller but with a name: Warning FilerSharesSkipped on the Pod, with the skips' warnings", () =>
    Effect.gen(function*() {
      const events = yield* admitAll(review(namedPod()))
      assert.strictEqual(events.length, 1)
      const event = events[0]!
      assert.deepStrictEqual(event.involvedObject, { apiVersion: "v1", kind: "Pod", name: "analysis-bare", namespace: userNamespace })
      assert.strictEqual(event.type, "Warning")
      assert.strictEqual(event.reason, "FilerSharesSkipped")
      assert.include(String(event.message), "filers: SVM \"fld6filersvm\" skipped:")
      assert.notInclude(String(event.message), "fld5filersvm")
    }).pipe(served(withSkip)))

  it.live("every share skipped: still FilerSharesSkipped, though nothing was mounted", () =>
    Effect.gen(function*() {
      const onlySkips = clusterObjects([{ svm: "fld6filersvm", shares: ["shared"], credentials: null }])
      const events = yield* admitAll(review(statefulSetPod())).pipe(served(onlySkips))
      assert.deepStrictEqual(events.map((event) => event.reason), ["FilerSharesSkipped"])
    }))

  it.live("a pod with neither a controller nor a name gets no Event", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* admitAll(review(notebookPod())), [])
    }).pipe(served(mountable)))

  it.live("admitted without filers after an infrastructure failure (admit setting): Warning FilersNotMounted", () =>
    Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      ;(yield* MemoryCluster).addFault({
        matches: (call: CallDescription) => call.resource === "secrets",
        error: (call: CallDescription) => KubeError.transient(call, "the API server answered 503", { status: 503 })
      })
      const events = yield* admitAll(review(statefulSetPod()))
      assert.deepStrictEqual(events.map((event) => [event.type, event.reason]), [["Warning", "FilersNotMounted"]])
      assert.match(String(events[0]!.message), /^filers not mounted: .*503/)
    }).pipe(served(mountable, { onInfrastructureFailure: "admit" })))

  it.live("no Event for a dry run, a denial, or a pod the webhook leaves alone", () =>
    Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      const unlabelled = statefulSetPod()
      const { labels: _labels, ...metadata } = unlabelled.metadata
      const optedOut = statefulSetPod()
      optedOut.metadata = { ...optedOut.metadata, annotations: { "filer-injector-webhook.das-zone.statcan/inject": "false" } }
      const elsewhere = { ...statefulSetPod(), metadata: { ...statefulSetPod().metadata, namespace: "no-shares" } }
      const events = yield* admitAll(
        review(statefulSetPod(), { dryRun: true }),
        review({ ...unlabelled, metadata }),
        review(optedOut),
        review(elsewhere, { namespace: "no-shares" })
      )
      assert.deepStrictEqual(events, [])
      // A denial: every Secret read fails, and the default is to deny.
      ;(yield* MemoryCluster).addFault({
        matches: (call: CallDescription) => call.resource === "secrets",
        error: (call: CallDescription) => KubeError.transient(call, "the API server answered 503", { status: 503 })
      })
      const denied = yield* post("/inject", review(statefulSetPod()))
      assert.include(denied.body, "\"allowed\":false")
      assert.deepStrictEqual(yield* admitAll(), [])
    }).pipe(served(mountable)))

  it.live("the same Event again counts on the first; another message makes another Event", () =>
    Effect.gen(function*() {
      const first = yield* admitAll(review(statefulSetPod()), review(statefulSetPod()))
      assert.strictEqual(first.length, 1)
      assert.strictEqual(first[0]!.count, 2)
      // The same StatefulSet, with a share fewer: another message.
      ;(yield* MemoryCluster).put({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "existing-shares", namespace: userNamespace },
        data: { fld5filersvm: "[\"home\"]" }
      })
      const second = yield* admitAll(review(statefulSetPod()))
      assert.deepStrictEqual(second.map((event) => [event.message, event.count]), [
        [first[0]!.message, 2],
        ["mounted 1 filer share: 1 of SVM \"fld5filersvm\"", 1]
      ])
    }).pipe(served(mountable)))

  for (const credentialMode of ["secretKeyRef", "plain"] as const) {
    it.live(`no Event carries a credential (${credentialMode} credentials)`, () =>
      Effect.gen(function*() {
        const events = yield* admitAll(review(statefulSetPod()), review(namedPod()))
        assert.strictEqual(events.length, 2)
        const text = JSON.stringify(events)
        for (const value of [...Object.values(fakeCredentials("fld5filersvm")), ...Object.values(fakeCredentials("fld6filersvm"))]) {
          assert.notInclude(text, value)
          assert.notInclude(text, Buffer.from(value).toString("base64"))
        }
      }).pipe(served(withSkip, { credentialMode })))
  }
})
