/**
 * `GET /metrics` after known traffic: the counts in the Prometheus text
 * match what was answered, labels come from fixed sets only, and the
 * endpoint answers whether or not the replica is ready.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { KubeError } from "../../src/cluster/errors.ts"
import { type CallDescription, MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import {
  decisions,
  filerSkipReasons,
  failureCauses,
  httpRoutes,
  kubeOutcomes,
  overloadLimits,
  podSkipReasons,
  eventResults,
  reloadResults
} from "../../src/observability/Metrics.ts"
import {
  clusterObjects,
  configMap,
  fakeCredentials,
  filersList,
  notebookPod,
  podReview,
  secret,
  sidecarTemplate
} from "../support/pipelineHarness.ts"
import { get, observation, parsePrometheus, post, type Sample, servedRoutes, valueOf } from "./support.ts"

const m = (name: string) => `filer_sidecar_injector_${name}`

const scrape = Effect.gen(function*() {
  const answer = yield* get("/metrics")
  assert.strictEqual(answer.status, 200)
  return parsePrometheus(answer.body)
})

/** Scrapes until `ok` holds (the configuration reloads in the background). */
const scrapeUntil = (ok: (samples: ReadonlyArray<Sample>) => boolean) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 200; attempt++) {
      const samples = yield* scrape
      if (ok(samples)) return samples
      yield* Effect.sleep("10 millis")
    }
    return assert.fail("the metrics never reached the expected state")
  })

const reviewOf = (index: number, pod = notebookPod(), options: { namespace?: string; operation?: string } = {}) =>
  podReview(pod, { uid: `0a0b0c0d-0000-4000-8000-${String(index).padStart(12, "0")}`, ...options })

const teamB = "team-b"
const objects: Array<RawObject> = [
  ...clusterObjects([
    { svm: "fld5filersvm", shares: ["division/project", "home"] },
    { svm: "fld9filersvm", shares: ["research"] },
    { svm: "fld6filersvm", shares: ["shared"], credentials: null }
  ]),
  configMap(teamB, "existing-shares", { fld5filersvm: "[\"home\"]" }),
  secret(teamB, "fld5filersvm-conn-secret", fakeCredentials("fld5filersvm"))
]

// Every Secret read in team-b fails as a 503 would.
const teamBDown = {
  matches: (call: CallDescription) => call.namespace === teamB && call.resource === "secrets",
  error: (call: CallDescription) => KubeError.transient(call, "the API server answered 503")
}

describe("GET /metrics", () => {
  it.live("counts 3 injected, 2 skipped and 1 denied admission, and everything around them", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      ;(yield* MemoryCluster).addFault(teamBDown)

      for (const index of [1, 2, 3]) assert.strictEqual((yield* post("/inject", reviewOf(index))).status, 200)
      const unlabelled = notebookPod()
      delete unlabelled.metadata.labels["notebook-name"]
      yield* post("/inject", reviewOf(4, unlabelled))
      yield* post("/inject", reviewOf(5, notebookPod(), { operation: "UPDATE" }))
      const denied = yield* post("/inject", reviewOf(6, notebookPod({ namespace: teamB }), { namespace: teamB }))
      assert.include(denied.body, "\"allowed\":false")
      assert.strictEqual((yield* post("/inject", "{not json")).status, 400)

      const answer = yield* get("/metrics")
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.body.includes("# TYPE filer_sidecar_injector_admissions_total counter"), true)
      const samples = parsePrometheus(answer.body)
      const value = (name: string, labels: Record<string, string> = {}) => valueOf(samples, m(name), labels)

      assert.deepStrictEqual(
        Object.fromEntries(decisions.map((decision) => [decision, value("admissions_total", { decision })])),
        { injected: 3, skipped: 2, denied: 1, "admitted-without-filers": 0, "invalid-pod": 0 }
      )
      assert.strictEqual(value("admission_duration_seconds_count"), 6)
      assert.strictEqual(value("admission_duration_seconds_bucket", { le: "+Inf" }), 6)
      assert.isAbove(value("admission_duration_seconds_sum"), 0)
      // Three shares per injected pod.
      assert.strictEqual(value("sidecars_injected_total"), 9)
      assert.strictEqual(value("pod_skips_total", { reason: "no_notebook_label" }), 1)
      assert.strictEqual(value("pod_skips_total", { reason: "not_create" }), 1)
      assert.strictEqual(value("filer_skips_total", { reason: "secret_missing" }), 3)
      assert.strictEqual(value("infrastructure_failures_total", { cause: "transient" }), 1)

      const kube = (labels: Record<string, string>) => value("kube_requests_total", labels)
      assert.strictEqual(kube({ resource: "configmaps", verb: "get", outcome: "ok" }), 4)
      assert.strictEqual(kube({ resource: "secrets", verb: "get", outcome: "ok" }), 6)
      assert.strictEqual(kube({ resource: "secrets", verb: "get", outcome: "not_found" }), 3)
      const attempts = kube({ resource: "secrets", verb: "get", outcome: "transient" })
      assert.isAbove(attempts, 1, "the failing read was retried")
      assert.strictEqual(
        value("kube_request_duration_seconds_count", { resource: "secrets", verb: "get" }),
        6 + 3 + attempts
      )

      for (const object of ["filers-list", "filer-sidecar-injector-json"]) {
        assert.strictEqual(value("config_reloads_total", { object, result: "loaded" }), 1)
        assert.strictEqual(value("config_current", { object }), 1)
      }
      assert.strictEqual(value("ready"), 1)
      assert.strictEqual(value("http_requests_total", { route: "/inject", code: "200" }), 6)
      assert.strictEqual(value("http_requests_total", { route: "/inject", code: "400" }), 1)
    }).pipe(Effect.provide(servedRoutes(objects)), Effect.provide(observed.layer))
  })

  it.live("answers while not ready, and shows why: the configuration is missing, then invalid", () => {
    const observed = observation()
    // No filers-list at all.
    const withoutFilers = objects.filter((object) => (object.metadata as { name?: string }).name !== "filers-list")
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      assert.strictEqual((yield* get("/readyz")).status, 503)
      const before = yield* scrape
      assert.strictEqual(valueOf(before, m("ready")), 0)
      assert.strictEqual(valueOf(before, m("config_current"), { object: "filers-list" }), 0)
      assert.strictEqual(valueOf(before, m("config_reloads_total"), { object: "filers-list", result: "missing" }), 1)

      const cluster = yield* MemoryCluster
      cluster.put(filersList([{ vserver: "fld5filersvm", url: "https://fld5.example.test" }]))
      const loaded = yield* scrapeUntil((samples) => valueOf(samples, m("ready")) === 1)
      assert.strictEqual(valueOf(loaded, m("config_current"), { object: "filers-list" }), 1)

      // An invalid update is refused, the last good version kept: still ready, no longer current.
      cluster.put(sidecarTemplate({ containers: [] }))
      const refused = yield* scrapeUntil((samples) =>
        valueOf(samples, m("config_reloads_total"), { object: "filer-sidecar-injector-json", result: "invalid" }) === 1
      )
      assert.strictEqual(valueOf(refused, m("config_current"), { object: "filer-sidecar-injector-json" }), 0)
      assert.strictEqual(valueOf(refused, m("ready")), 1)
      assert.strictEqual(valueOf(refused, m("http_requests_total"), { route: "/readyz", code: "503" }), 1)
    }).pipe(Effect.provide(servedRoutes(withoutFilers)), Effect.provide(observed.layer))
  })

  it.live("the existing-shares cache: in sync, the namespaces it holds, its list and watch counted; no GET of it", () => {
    const observed = observation()
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      const samples = yield* scrapeUntil((samples) => valueOf(samples, m("existing_shares_cache_synced"), {}) === 1)
      assert.strictEqual(valueOf(samples, m("existing_shares_cache_namespaces"), {}), 2)
      assert.strictEqual((yield* post("/inject", reviewOf(1))).status, 200)
      const after = yield* scrape
      const kube = (labels: Record<string, string>) => valueOf(after, m("kube_requests_total"), labels)
      assert.strictEqual(kube({ resource: "configmaps", verb: "list", outcome: "ok" }), 1)
      assert.strictEqual(kube({ resource: "configmaps", verb: "get", outcome: "ok" }), 0)
      assert.strictEqual(kube({ resource: "secrets", verb: "get", outcome: "ok" }), 2)
    }).pipe(Effect.provide(servedRoutes(objects, {}, { watchShares: true })), Effect.provide(observed.layer))
  })

  it.live("labels come from fixed sets: no namespace, pod, SVM, share or Secret name becomes a label", () => {
    const observed = observation()
    const namespace = "weird-ns"
    const svms = {
      "fld5filersvm": "[\"home\", \"../escape\", \"---\"]",
      "nosecretsvm": "[\"home\"]",
      "emptysecretsvm": "[\"home\"]",
      "unlistedsvm": "[\"home\"]",
      "badlistsvm": "{\"home\": 1}",
      "Bad SVM\"name": "[\"home\"]"
    }
    const cluster: Array<RawObject> = [
      filersList(
        ["fld5filersvm", "nosecretsvm", "emptysecretsvm", "badlistsvm"].map((vserver) => ({
          vserver,
          url: `https://${vserver}.example.test`
        }))
      ),
      sidecarTemplate(),
      configMap(namespace, "existing-shares", svms),
      secret(namespace, "fld5filersvm-conn-secret", fakeCredentials("fld5filersvm")),
      secret(namespace, "emptysecretsvm-conn-secret", { S3_ACCESS: "FAKE-ACCESS-empty", S3_SECRET: "" })
    ]
    return Effect.gen(function*() {
      yield* (yield* ClusterConfig).settled
      const answered = yield* post("/inject", reviewOf(7, notebookPod({ namespace }), { namespace }))
      assert.include(answered.body, "\"patchType\":\"JSONPatch\"")
      const text = (yield* get("/metrics")).body
      const samples = parsePrometheus(text)
      const reasons = samples
        .filter((sample) => sample.name === m("filer_skips_total"))
        .map((sample) => `${sample.labels.reason}=${sample.value}`)
        .sort()
      assert.deepStrictEqual(reasons, [
        "invalid_share_list=1",
        "invalid_svm_name=1",
        "mounted_without_env=1",
        "secret_incomplete=1",
        "secret_missing=1",
        "svm_not_in_filers_list=1",
        "unsafe_share_path=1"
      ])

      const allowed: Record<string, ReadonlyArray<string>> = {
        decision: decisions,
        reason: [...podSkipReasons, ...filerSkipReasons],
        cause: failureCauses,
        outcome: kubeOutcomes,
        resource: ["configmaps", "secrets", "mutatingwebhookconfigurations", "events"],
        verb: ["get", "list", "watch", "create", "update"],
        object: ["filers-list", "filer-sidecar-injector-json", "other"],
        result: [...reloadResults, ...eventResults],
        route: httpRoutes,
        code: ["200", "400", "401", "404", "405", "413", "415", "429", "500", "503"],
        limit: overloadLimits,
        le: []
      }
      for (const sample of samples) {
        for (const [label, value] of Object.entries(sample.labels)) {
          if (label === "le") continue
          assert.include(allowed[label] ?? [], value, `${sample.name}{${label}="${value}"}`)
        }
      }
      for (const name of [namespace, "fld5filersvm", "nosecretsvm", "analysis", "escape", "conn-secret", "FAKE"]) {
        assert.notInclude(text, name)
      }
    }).pipe(Effect.provide(servedRoutes(cluster)), Effect.provide(observed.layer))
  })
})
