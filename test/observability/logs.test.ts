/**
 * The log lines of the webhook: one JSON object per admission with what an
 * operator searches by (uid, namespace, pod, decision, skip reasons), errors
 * with their tag and message, and a bug logged before it becomes a 500.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { clusterObjects, notebookPod, podReview, userNamespace } from "../support/pipelineHarness.ts"
import { get, observation, parseLogs, parsePrometheus, post, servedRoutes, valueOf } from "./support.ts"

const objects = clusterObjects([
  { svm: "fld5filersvm", shares: ["home", "../escape"] },
  { svm: "fld6filersvm", shares: ["shared"], credentials: null }
])

describe("log lines", () => {
  it.live("one line per admission, at info, with uid, namespace, pod, decision and the skip reasons", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      observed.logs.length = 0
      yield* post("/inject", podReview(notebookPod(), { uid: "uid-injected" }))
      const lines = parseLogs(observed.logs)
      assert.strictEqual(lines.length, 1)
      const [line] = lines
      assert.strictEqual(line.level, "INFO")
      assert.strictEqual(line.message, "admission injected")
      assert.deepInclude(line.annotations, {
        uid: "uid-injected",
        namespace: userNamespace,
        pod: "analysis-*",
        decision: "injected",
        svms: 1,
        sharesMounted: 1,
        warnings: 2
      })
      assert.deepStrictEqual(line.annotations.skipped, ["'..' in share path", "Secret fld6filersvm-conn-secret not found"])
      assert.isNumber(line.annotations.durationMs)
    }).pipe(Effect.provide(servedRoutes(objects)), Effect.provide(observed.layer))
  })

  it.live("a denial: warn, with the error's tag and message; every line of the admission carries its uid", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      ;(yield* MemoryCluster).addFault({
        matches: (call: CallDescription) => call.resource === "configmaps" && call.verb === "get",
        error: (call: CallDescription) => KubeError.transient(call, "the API server answered 429")
      })
      observed.logs.length = 0
      yield* post("/inject", podReview(notebookPod(), { uid: "uid-denied" }))
      const lines = parseLogs(observed.logs)
      assert.isAbove(lines.length, 0)
      assert.isTrue(lines.every((line) => line.annotations.uid === "uid-denied"))
      const summary = lines.filter((line) => line.message === "admission denied")
      assert.strictEqual(summary.length, 1)
      assert.strictEqual(summary[0].level, "WARN")
      assert.deepInclude(summary[0].annotations, {
        decision: "denied",
        "error.tag": "KubeTransient",
        "error.message": `cannot get configmaps "${userNamespace}/existing-shares": the API server answered 429`
      })
    }).pipe(Effect.provide(servedRoutes(objects)), Effect.provide(observed.layer))
  })

  it.live("a bug: logged at error with its name and message, answered 500, counted", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      ;(yield* MemoryCluster).addFault({
        matches: (call: CallDescription) => call.resource === "secrets",
        error: () => {
          throw new TypeError("cannot read properties of undefined")
        }
      })
      observed.logs.length = 0
      const answer = yield* post("/inject", podReview(notebookPod(), { uid: "uid-bug" }))
      assert.strictEqual(answer.status, 500)
      const errors = parseLogs(observed.logs).filter((line) => line.level === "ERROR")
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0].message, "a bug in the injector")
      assert.deepInclude(errors[0].annotations, {
        uid: "uid-bug",
        "error.tag": "TypeError",
        "error.message": "cannot read properties of undefined"
      })
      const samples = parsePrometheus((yield* get("/metrics")).body)
      assert.strictEqual(valueOf(samples, "filer_sidecar_injector_http_requests_total", { route: "/inject", code: "500" }), 1)
    }).pipe(Effect.provide(servedRoutes(objects)), Effect.provide(observed.layer))
  })
})
