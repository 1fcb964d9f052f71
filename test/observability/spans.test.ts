/**
 * One trace per admission: the span tree `admit` leaves in an in-memory
 * tracer for an injected pod, a skipped pod and a Kubernetes API that keeps
 * failing; and, through the HTTP server, the request span as the admission's
 * parent.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { SharesCache } from "../../src/cluster/SharesCache.ts"
import { eventually } from "../support/eventually.ts"
import {
  answer,
  clusterObjects,
  memoryPipeline,
  notebookPod,
  type Pod,
  podReview,
  userNamespace
} from "../support/pipelineHarness.ts"
import {
  attributesOf,
  childNames,
  childrenOf,
  get,
  observation,
  only,
  parentOf,
  post,
  servedRoutes
} from "./support.ts"

const objects = clusterObjects([
  { svm: "fld5filersvm", shares: ["division/project", "home"] },
  { svm: "fld9filersvm", shares: ["research"] },
  // Listed and in filers-list, but no Secret: skipped with a warning.
  { svm: "fld6filersvm", shares: ["shared"], credentials: null }
])

const uid = "7d1e0c52-0000-4000-8000-00000000a001"

/** Answers `review` with the pipeline over `objects`, every span kept; with `watchShares`, once the cache is in sync. */
const traced = (
  review: Pod,
  prepare: (cluster: MemoryCluster["Service"]) => void = () => {},
  options: { readonly watchShares?: boolean } = {}
) => {
  const observed = observation()
  return Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
    if (options.watchShares === true) yield* eventually("the cache in sync", (yield* SharesCache).inSync, (inSync) => inSync)
    prepare(yield* MemoryCluster)
    const response = yield* answer(review)
    const root = only(observed.spans.filter((span) => span.name === "admission"), "admission span")
    return { response, spans: observed.spans, root }
  }).pipe(Effect.provide(memoryPipeline(objects, {}, Layer.empty, options)), Effect.provide(observed.layer))
}

const stages = ["decode", "decide", "resolve", "plan", "render", "diff", "encode"]

describe("the spans of one admission", () => {
  it.effect("an injected pod: every stage under `admission`, each Kubernetes read under its resolve step", () =>
    Effect.gen(function*() {
      const { response, root, spans } = yield* traced(podReview(notebookPod(), { uid }))
      assert.isTrue(response.response.allowed)
      assert.isDefined(response.response.patch)

      // One trace: the admission span is its root, every span shares its trace id and has ended.
      assert.isUndefined(parentOf(root))
      assert.isTrue(spans.every((span) => span.traceId === root.traceId))
      assert.isTrue(spans.every((span) => span.status._tag === "Ended"))

      assert.deepStrictEqual(childNames(spans, root), [...stages].sort())
      const resolve = only(childrenOf(spans, root).filter((span) => span.name === "resolve"), "resolve")
      assert.deepStrictEqual(childNames(spans, resolve), [
        "resolve.clusterConfig",
        "resolve.secret",
        "resolve.secret",
        "resolve.secret",
        "resolve.shares"
      ])

      const attributes = attributesOf(root)
      assert.deepInclude(attributes, {
        uid,
        namespace: userNamespace,
        pod: "analysis-*",
        "admission.decision": "injected",
        "admission.svms": 2,
        "admission.shares_mounted": 3,
        "admission.shares_skipped": 1,
        "admission.warnings": 1
      })
      assert.deepStrictEqual(attributes["admission.skip_reasons"], ["secret_missing"])
      assert.notProperty(attributes, "admission.failure")

      const shares = only(childrenOf(spans, resolve).filter((span) => span.name === "resolve.shares"), "resolve.shares")
      assert.deepInclude(attributesOf(shares), { namespace: userNamespace, source: "live", "k8s.outcome": "ok" })
      const read = only(childrenOf(spans, shares), "read of existing-shares")
      assert.strictEqual(read.name, "KubeClient.getConfigMap")
      assert.strictEqual(read.kind, "client")
      assert.deepStrictEqual(attributesOf(read), {
        "k8s.resource": "configmaps",
        "k8s.verb": "get",
        "k8s.namespace": userNamespace,
        "k8s.name": "existing-shares",
        "k8s.outcome": "ok"
      })

      const secrets = childrenOf(spans, resolve).filter((span) => span.name === "resolve.secret")
      const bySvm = Object.fromEntries(secrets.map((span) => [attributesOf(span).svm, span]))
      assert.deepStrictEqual(Object.keys(bySvm).sort(), ["fld5filersvm", "fld6filersvm", "fld9filersvm"])
      assert.strictEqual(attributesOf(bySvm.fld5filersvm)["k8s.outcome"], "ok")
      // A missing Secret is an answer, not a failure: the SVM is skipped.
      assert.strictEqual(attributesOf(bySvm.fld6filersvm)["k8s.outcome"], "not_found")
      const secretRead = only(childrenOf(spans, bySvm.fld5filersvm), "Secret read")
      assert.deepInclude(attributesOf(secretRead), {
        "k8s.resource": "secrets",
        "k8s.verb": "get",
        "k8s.name": "fld5filersvm-conn-secret",
        "k8s.outcome": "ok"
      })
      const config = only(childrenOf(spans, resolve).filter((span) => span.name === "resolve.clusterConfig"), "config")
      assert.strictEqual(attributesOf(config)["config.outcome"], "ok")
    }))

  it.live("existing-shares from the cache: `resolve.shares` says so, and has no read under it", () =>
    Effect.gen(function*() {
      const { response, root, spans } = yield* traced(podReview(notebookPod(), { uid }), undefined, { watchShares: true })
      assert.strictEqual(response.response.patchType, "JSONPatch")
      const resolve = only(childrenOf(spans, root).filter((span) => span.name === "resolve"), "resolve")
      const shares = only(childrenOf(spans, resolve).filter((span) => span.name === "resolve.shares"), "resolve.shares")
      assert.deepStrictEqual(attributesOf(shares), { namespace: userNamespace, source: "cache" })
      assert.deepStrictEqual(childrenOf(spans, shares), [])
      assert.isFalse(spans.some((span) => span.name === "KubeClient.getConfigMap"))
    }))

  it.effect("a skipped pod: decode and decide only, the reason on the admission span", () =>
    Effect.gen(function*() {
      const pod = notebookPod()
      delete pod.metadata.labels["notebook-name"]
      const { response, root, spans } = yield* traced(podReview(pod, { uid }))
      assert.isTrue(response.response.allowed)
      assert.isUndefined(response.response.patch)
      assert.deepStrictEqual(childNames(spans, root), ["decide", "decode"])
      assert.isFalse(spans.some((span) => span.name.startsWith("KubeClient.")))
      assert.deepInclude(attributesOf(root), {
        uid,
        "admission.decision": "skipped",
        "admission.reason": "no notebook-name label",
        "admission.svms": 0,
        "admission.shares_mounted": 0,
        "admission.shares_skipped": 0
      })
    }))

  it.effect("an infrastructure failure: every retried read a span with its outcome, the pod denied", () =>
    Effect.gen(function*() {
      const fault = {
        matches: (call: CallDescription) => call.resource === "secrets" && call.objectName === "fld9filersvm-conn-secret",
        error: (call: CallDescription) => KubeError.transient(call, "the API server answered 503")
      }
      const { response, root, spans } = yield* traced(podReview(notebookPod(), { uid }), (c) => c.addFault(fault))
      assert.isFalse(response.response.allowed)
      assert.strictEqual(response.response.status?.code, 503)

      assert.deepInclude(attributesOf(root), {
        "admission.decision": "denied",
        "admission.failure": "KubeTransient"
      })
      // Denied after resolve: no plan, render, diff or encode.
      assert.deepStrictEqual(childNames(spans, root), ["decide", "decode", "resolve"])
      const failing = spans.filter((span) =>
        span.name === "resolve.secret" && attributesOf(span).svm === "fld9filersvm"
      )
      const lookup = only(failing, "resolve.secret of fld9filersvm")
      assert.strictEqual(attributesOf(lookup)["k8s.outcome"], "transient")
      const attempts = childrenOf(spans, lookup)
      assert.isAbove(attempts.length, 1, "the read is retried")
      for (const attempt of attempts) {
        assert.strictEqual(attempt.name, "KubeClient.getSecret")
        assert.strictEqual(attributesOf(attempt)["k8s.outcome"], "transient")
        const status = attempt.status
        assert.isTrue(status._tag === "Ended" && status.exit._tag === "Failure")
      }
      // The other SVM's read went through, in the same trace.
      const other = only(
        spans.filter((span) => span.name === "resolve.secret" && attributesOf(span).svm === "fld5filersvm"),
        "resolve.secret of fld5filersvm"
      )
      assert.strictEqual(attributesOf(other)["k8s.outcome"], "ok")
      assert.strictEqual(other.traceId, root.traceId)
    }))
})

describe("through the HTTP server", () => {
  it.live("the request span is the parent of the admission span: one trace per request", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      const answered = yield* post("/inject?timeout=10s", podReview(notebookPod(), { uid }))
      assert.strictEqual(answered.status, 200)

      const root = only(observed.spans.filter((span) => span.name === "admission"), "admission span")
      const request = parentOf(root)
      assert.isDefined(request)
      const server = only(observed.spans.filter((span) => span.spanId === request!.spanId), "request span")
      assert.strictEqual(server.kind, "server")
      assert.isUndefined(parentOf(server))
      assert.deepInclude(attributesOf(server), {
        "http.request.method": "POST",
        "http.route": "/inject",
        "http.response.status_code": 200
      })
      // Every span of the admission shares the request's trace.
      const admissionSpans = observed.spans.filter((span) => span.name !== server.name)
      assert.isTrue(admissionSpans.every((span) => span.traceId === server.traceId))

      // Probes and scrapes make no traces.
      const before = observed.spans.length
      assert.strictEqual((yield* get("/readyz")).status, 200)
      assert.strictEqual((yield* get("/metrics")).status, 200)
      assert.strictEqual(observed.spans.length, before)
    }).pipe(Effect.provide(servedRoutes(objects)), Effect.provide(observed.layer))
  })
})
