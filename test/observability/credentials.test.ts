/**
 * No credential reaches a log line, a span, a metric or a response: every
 * one of them produced while serving the example cluster (its fixture
 * credentials are fake and recognisable) is searched for each credential,
 * plain and base64 at any alignment. In plain credential mode the patch
 * carries the credentials by design, so there only logs, spans and metrics
 * are searched.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import type { CredentialMode } from "../../src/admission/AdmissionSettings.ts"
import {
  configMap,
  exampleClusterObjects,
  exampleReview,
  injectorNamespace,
  type Pod,
  podReview
} from "../support/pipelineHarness.ts"
import { decodePatchBase64 } from "../support/strictJsonPatch.ts"
import { get, leaks, observation, parseLogs, post, servedRoutes, spanText } from "./support.ts"

const objects = exampleClusterObjects()

/** The credentials in the example cluster's Secrets, decoded. */
const credentials: ReadonlyArray<string> = objects
  .filter((object) => object.kind === "Secret")
  .flatMap((object) => [
    ...Object.values((object.data ?? {}) as Record<string, string>).map((value) =>
      Buffer.from(value, "base64").toString("utf8")
    ),
    ...Object.values((object.stringData ?? {}) as Record<string, string>)
  ])

const withUid = (review: Pod, uid: string): Pod => ({ ...review, request: { ...review.request, uid } })

/** Every kind of answer, against the example cluster, everything observable kept. */
const serveExample = (credentialMode: CredentialMode) => {
  const observed = observation()
  const responses: Array<string> = []
  return Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    const cluster = yield* MemoryCluster
    const example = exampleReview()
    const send = (body: unknown) =>
      Effect.tap(post("/inject", body), (answer) => Effect.sync(() => responses.push(answer.body)))

    // Injected, as the example review is.
    const injected = yield* send(withUid(example, "leak-1"))
    assert.include(injected.body, "\"patchType\":\"JSONPatch\"")
    // Skipped: an UPDATE, and a pod that opted out.
    yield* send(withUid({ ...example, request: { ...example.request, operation: "UPDATE" } }, "leak-2"))
    const optedOut = structuredClone(example.request.object)
    optedOut.metadata.annotations = { "filer-injector-webhook.das-zone.statcan/inject": "off" }
    yield* send(podReview(optedOut, { uid: "leak-3", namespace: example.request.namespace }))
    // Not a Pod that decodes, and not an AdmissionReview at all.
    yield* send(withUid({ ...example, request: { ...example.request, object: { spec: "nope" } } }, "leak-4"))
    yield* send("{\"kind\": \"AdmissionReview\"}")
    // One Secret forbidden (that SVM skipped); then denied: one Secret read unauthorized, then one failing
    // as a 503 until the budget runs out.
    const failOn = (secretName: string, error: (call: CallDescription) => KubeError) =>
      cluster.addFault({ matches: (call) => call.objectName === secretName, error }, Infinity)
    failOn("fld5filersvm-conn-secret", (call) => KubeError.forbidden(call, 403))
    const skipped = yield* send(withUid(example, "leak-5a"))
    assert.include(skipped.body, "RBAC forbids Secret fld5filersvm-conn-secret")
    cluster.clearFaults()
    failOn("fld5filersvm-conn-secret", (call) => KubeError.forbidden(call, 401))
    const denied = yield* send(withUid(example, "leak-5"))
    assert.include(denied.body, "\"allowed\":false")
    cluster.clearFaults()
    failOn("fld9filersvm-conn-secret", (call) => KubeError.transient(call, "the API server answered 503"))
    yield* send(withUid(example, "leak-6"))
    cluster.clearFaults()
    // A configuration update that is refused (logged), then the good one again.
    cluster.put(configMap(injectorNamespace, "filers-list", { filers: "[{\"vserver\": 5}]" }))
    cluster.put(objects.find((object) => (object.metadata as RawObject).name === "filers-list")!)
    yield* Effect.sleep("50 millis")
    // Injected again once all is well.
    yield* send(withUid(example, "leak-7"))
    const metrics = (yield* get("/metrics")).body
    return { observed, responses, metrics }
  }).pipe(Effect.provide(servedRoutes(objects, { credentialMode })), Effect.provide(observed.layer))
}

const assertNoLeak = (where: string, texts: ReadonlyArray<string>) => {
  assert.isNotEmpty(texts, `nothing was collected from ${where}`)
  for (const text of texts) {
    for (const credential of credentials) {
      assert.isFalse(leaks(text, credential), `${where} holds a credential: ${text.slice(0, 300)}`)
    }
  }
}

describe("credentials never leak", () => {
  it("the fixture has the four fake credentials", () => {
    assert.deepStrictEqual([...credentials].sort(), [
      "FAKE-ACCESS-fld5-do-not-use",
      "FAKE-ACCESS-fld9-do-not-use",
      "FAKE-SECRET-fld5-do-not-use",
      "FAKE-SECRET-fld9-do-not-use"
    ])
    // The scanner finds them where they would hide.
    const [one] = credentials
    assert.isTrue(leaks(`x ${one} y`, one))
    for (const prefix of ["", "a", "ab", "abc"]) {
      assert.isTrue(leaks(Buffer.from(`${prefix}${one}{"more":1}`).toString("base64"), one), `after ${prefix.length}`)
    }
    assert.isFalse(leaks("FAKE-ACCESS-fld5", one))
  })

  for (const mode of ["secretKeyRef", "plain"] as const) {
    it.live(`in ${mode} mode: not in a log line, a span or a metric`, () =>
      Effect.gen(function*() {
        const { metrics, observed, responses } = yield* serveExample(mode)
        assert.strictEqual(responses.length, 9)

        const logs = parseLogs(observed.logs)
        // What was served is in the logs: one line per admission, the refused update, the denials.
        const admissions = logs.filter((line) => line.message.startsWith("admission "))
        assert.deepStrictEqual(admissions.map((line) => line.annotations.decision), [
          "injected",
          "skipped",
          "skipped",
          "invalid-pod",
          "injected",
          "denied",
          "denied",
          "injected"
        ])
        assert.isTrue(logs.some((line) => line.level === "ERROR" && line.message.includes("filers-list")))
        assertNoLeak("the logs", observed.logs)

        const spans = observed.spans.map(spanText)
        assert.isTrue(observed.spans.some((span) => span.name === "KubeClient.getSecret"))
        assertNoLeak("the spans", spans)

        assertNoLeak("the metrics", [metrics])

        if (mode === "secretKeyRef") {
          const patches = responses.flatMap((body) => {
            const patch = (JSON.parse(body) as { response?: { patch?: string } }).response?.patch
            return patch === undefined ? [] : [JSON.stringify(decodePatchBase64(patch))]
          })
          assert.strictEqual(patches.length, 3)
          assertNoLeak("the responses", [...responses, ...patches])
        } else {
          // The check itself works: plain mode's patch does carry them, as it must.
          assert.isTrue(responses.some((body) => credentials.some((credential) => leaks(body, credential))))
        }
      }))
  }
})
