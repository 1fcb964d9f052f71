/**
 * The admission pipeline over the live KubeClient and a fake API server
 * (real HTTP on 127.0.0.1), in this process: the layers `serve` composes
 * without `--cluster`, with a short budget so that faults play out quickly.
 *
 * Every admission goes through `admitTimed`, which says how long it took and
 * checks the answer the way the kube-apiserver would: a patch must apply
 * strictly to the pod as sent, the result must pass Pod validation, and no
 * fixture credential may appear in it.
 */
import { assert } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Logger, References } from "effect"
import { AdmissionSettings, type AdmissionSettingsShape } from "../../src/admission/AdmissionSettings.ts"
import { admissionLayer } from "../../src/admission/layers.ts"
import { admit } from "../../src/admission/pipeline.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { ClusterSettings, type ClusterSettingsShape } from "../../src/cluster/ClusterSettings.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import type { AdmissionResponse } from "../../src/domain/admission.ts"
import { FakeApi, type FakeApiServer } from "../support/fakeApiServer.ts"
import { exampleClusterObjects, exampleReview, mutatedPod, noEnvironment, type Pod } from "../support/pipelineHarness.ts"

/** The whole admission may take this long, retries included. */
export const budgetMillis = 1200
/** One API call may take this long. */
export const callTimeoutMillis = 250
/**
 * What "timely" allows above the budget: the answer is built after the
 * budget runs out, and this machine has two cores shared with other tests.
 */
export const marginMillis = 1500

/** Every line logged while the layer lives, to scan for credentials. */
export const logLines: Array<string> = []

const capturingLogger = Logger.make((options) => {
  logLines.push(Logger.formatLogFmt.log(options))
})

/**
 * The pipeline over KubeClientLive and a fake API server holding `objects`
 * (the example cluster by default). FakeApi stays reachable for the tests.
 */
export const faultLayer = (
  options: {
    readonly objects?: ReadonlyArray<RawObject>
    readonly admission?: Partial<AdmissionSettingsShape>
    readonly cluster?: Partial<ClusterSettingsShape>
    /** Hold existing-shares in the watch-backed cache, as `serve` does (default: read them live). */
    readonly watchShares?: boolean
  } = {}
) =>
  Layer.unwrap(
    Effect.gen(function*() {
      const api = yield* FakeApi
      return admissionLayer(layerFromKubeConfig(api.kubeConfig(), { watchTimeoutSeconds: 60 }), {
        // Quick recovery of the configuration watch (and the shares cache's), so tests need not wait long.
        watch: { initialBackoff: "20 millis", maxBackoff: "200 millis" },
        watchShares: options.watchShares ?? false
      })
    })
  ).pipe(
    Layer.provideMerge(FakeApi.layer({ objects: options.objects ?? exampleClusterObjects() })),
    Layer.provideMerge(
      Layer.mergeAll(
        AdmissionSettings.layerValues({ requestBudget: Duration.millis(budgetMillis), ...options.admission }),
        ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(callTimeoutMillis), ...options.cluster }),
        noEnvironment
      )
    ),
    Layer.orDie,
    Layer.provideMerge(Layer.mergeAll(Logger.layer([capturingLogger]), Layer.succeed(References.MinimumLogLevel, "All")))
  )

/** The fake API server with no faults or latency left over from an earlier test, the configuration loaded. */
export const freshApi = Effect.gen(function*() {
  const api = yield* FakeApi
  api.clearFaults()
  yield* (yield* ClusterConfig).settled
  return api
})

export interface Timed {
  readonly response: AdmissionResponse
  readonly millis: number
  /** The pod as the API server would store it (the pod as sent when there is no patch). */
  readonly pod: Pod
}

const fixtureSecrets = [
  "FAKE-ACCESS-fld5-do-not-use",
  "FAKE-SECRET-fld5-do-not-use",
  "FAKE-ACCESS-fld9-do-not-use",
  "FAKE-SECRET-fld9-do-not-use"
]

/** Fails when `text` holds a fixture credential, plain or base64. */
export const assertNoSecret = (text: string, where: string) => {
  for (const secret of fixtureSecrets) {
    assert.notInclude(text, secret, `${where} holds a credential`)
    assert.notInclude(text, Buffer.from(secret).toString("base64"), `${where} holds a credential (base64)`)
  }
}

let uidCounter = 0

/**
 * One admission of the example review (or `review`), timed. The effect
 * itself must succeed: a failure or a defect here is a crash of the request.
 */
export const admitTimed = (review: Pod = exampleReview()) =>
  Effect.gen(function*() {
    review.request.uid = `fault-${++uidCounter}`
    const budget = Duration.toMillis((yield* AdmissionSettings).requestBudget)
    const started = Date.now()
    const exit = yield* Effect.exit(admit(review))
    const millis = Date.now() - started
    if (Exit.isFailure(exit)) assert.fail(`the admission failed instead of answering: ${String(exit.cause)}`)
    const response = exit.value.review.response
    assert.strictEqual(response.uid, review.request.uid)
    assertNoSecret(JSON.stringify(exit.value.review), "the answer")
    assert.isAtMost(millis, budget + marginMillis, `answered after ${millis} ms`)
    return { response, millis, pod: mutatedPod(review, response) } satisfies Timed
  })

/** The example review's full injection: three sidecars (fld5 ×2, fld9 ×1), fld6 skipped for want of its Secret. */
export const assertInjected = (timed: Timed) => {
  assert.isTrue(timed.response.allowed, `not allowed: ${JSON.stringify(timed.response.status)}`)
  assert.strictEqual(timed.response.patchType, "JSONPatch")
  const sidecars = (timed.pod.spec.initContainers ?? []) as Array<{ name: string; restartPolicy?: string }>
  assert.strictEqual(sidecars.length, 3)
  for (const sidecar of sidecars) assert.strictEqual(sidecar.restartPolicy, "Always")
  assert.deepStrictEqual(timed.response.warnings, [
    `filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found`
  ])
}

/** A denial (docs/behaviour.md, "Infrastructure failures"): allowed false, 503, the message naming what failed. */
export const assertDenied = (timed: Timed, ...mentions: ReadonlyArray<string>) => {
  assert.isFalse(timed.response.allowed)
  assert.isUndefined(timed.response.patch)
  const status = timed.response.status
  assert.isDefined(status)
  assert.strictEqual(status!.code, 503)
  assert.include(status!.message, "filer-sidecar-injector could not look up the pod's filer shares")
  for (const mention of mentions) assert.include(status!.message, mention, status!.message)
}

/** Waits until the configuration has loaded (or failed to) once. */
export const settled = Effect.gen(function*() {
  const config = yield* ClusterConfig
  yield* config.settled
})

export { eventually } from "../support/eventually.ts"
export type { FakeApiServer }
