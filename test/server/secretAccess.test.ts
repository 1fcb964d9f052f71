/**
 * The review of the injector's own access (src/server/secretAccess.ts):
 * SelfSubjectAccessReviews through the live KubeClient against the fake API
 * server, whose authorizer (`allowAccess`) refuses some connection Secrets.
 * What it may not get is logged, counted and listed in `/readyz`'s body; the
 * replica stays ready; a changed filers list is reviewed again; a review
 * that cannot be made is made again later. Over a cluster held in memory,
 * everything is allowed unless the test's access plan says otherwise.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { admissionLayer } from "../../src/admission/layers.ts"
import { layerFromKubeConfig } from "../../src/cluster/KubeClientLive.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { KubeRetry } from "../../src/cluster/retry.ts"
import { Readiness } from "../../src/server/Readiness.ts"
import { routes } from "../../src/server/routes.ts"
import { secretAccessReview } from "../../src/server/secretAccess.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"
import { type AccessQuestion, FakeApi, type JsonObject } from "../support/fakeApiServer.ts"
import { exampleClusterObjects, filersList, memoryPipeline, pipelineSettings } from "../support/pipelineHarness.ts"
import { get, observation, parseLogs, parsePrometheus, valueOf } from "../observability/support.ts"

const injector = "system:serviceaccount:das:filer-sidecar-injector"
const exampleFilers = [
  { vserver: "fld5filersvm", url: "https://fld5filersvm.filers.example.internal" },
  { vserver: "fld6filersvm", url: "https://fld6filersvm.filers.example.internal" },
  { vserver: "fld9filersvm", url: "http://fld9filersvm.filers.example.internal:9000" }
]
const rbacFix = "(rbac: re-run `filer-sidecar-injector rbac`)"

/** The routes and the review, as `serve` composes them, over `kube`. */
const served = <ROut>(pipeline: Layer.Layer<ROut>) =>
  Layer.merge(
    HttpRouter.serve(routes(Effect.succeed(true)), { disableLogger: true, disableListenLog: true }),
    secretAccessReview
  ).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(Readiness.layer),
    Layer.provideMerge(ServerSettings.layerValues()),
    Layer.provideMerge(pipeline)
  )

/**
 * The routes and the review over the live KubeClient and a fake API server
 * holding the example cluster, whose authorizer answers by `access` from the start.
 */
const overFakeApi = (access: (question: AccessQuestion) => boolean) => served(
  Layer.unwrap(Effect.gen(function*() {
    const api = yield* FakeApi
    return admissionLayer(layerFromKubeConfig(api.kubeConfig()), {
      retry: KubeRetry.layerInstant,
      watch: { initialBackoff: "20 millis", maxBackoff: "200 millis" }
    })
  })).pipe(
      Layer.provideMerge(FakeApi.layer({ objects: exampleClusterObjects() as Array<JsonObject>, access })),
      Layer.provideMerge(pipelineSettings()),
      Layer.orDie
    )
)

/** Polls `attempt` every 20 ms until `done` holds; fails after 10 s. */
const until = <A, E, R>(attempt: Effect.Effect<A, E, R>, done: (value: A) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let tries = 0; tries < 500; tries++) {
      const value = yield* attempt
      if (done(value)) return value
      yield* Effect.sleep("20 millis")
    }
    return assert.fail(`never: ${what}`)
  })

const readyz = get("/readyz")
const unreadableGauge = Effect.map(get("/metrics"), (answer) =>
  valueOf(parsePrometheus(answer.body), "filer_sidecar_injector_secrets_unreadable"))

describe("the review of the injector's own access, against an API server", () => {
  it.live("names the Secret it may not get in the log, the gauge and /readyz's body, and stays ready", () => {
    const observed = observation()
    const asked: Array<AccessQuestion> = []
    const access = (question: AccessQuestion) => {
      asked.push(question)
      return question.name !== "fld9filersvm-conn-secret"
    }
    return Effect.gen(function*() {
      const api = yield* FakeApi
      const ready = yield* until(readyz, (answer) => answer.body.includes("warning:"), "a warning in /readyz")
      assert.strictEqual(ready.status, 200)
      assert.strictEqual(ready.body, `ok\nwarning: may not get secrets fld9filersvm-conn-secret ${rbacFix}\n`)
      assert.strictEqual(yield* unreadableGauge, 1)

      const warnings = parseLogs(observed.logs).filter((line) => line.level === "WARN" && line.message.includes("may not get"))
      assert.deepStrictEqual(warnings.map((line) => line.message), [
        `may not get secrets fld9filersvm-conn-secret ${rbacFix}; until then pods skip their SVMs (secret_forbidden)`
      ])
      // One SelfSubjectAccessReview per Secret of the filers list: the injector's own, get, every namespace ("").
      const questions = asked.map(({ name, namespace, resource, user, verb }) => ({ user, namespace, verb, resource, name }))
      assert.deepStrictEqual(questions.sort((a, b) => a.name.localeCompare(b.name)), [
        { user: injector, namespace: "", verb: "get", resource: "secrets", name: "fld5filersvm-conn-secret" },
        { user: injector, namespace: "", verb: "get", resource: "secrets", name: "fld6filersvm-conn-secret" },
        { user: injector, namespace: "", verb: "get", resource: "secrets", name: "fld9filersvm-conn-secret" }
      ])
      assert.isTrue(api.requests.every((request) => request.method === "GET" || request.path.endsWith("/selfsubjectaccessreviews")))
    }).pipe(Effect.provide(overFakeApi(access)), Effect.provide(observed.layer))
  })

  it.live("reviews again when filers-list changes: an SVM added without its RBAC is listed too", () =>
    Effect.gen(function*() {
      const api = yield* FakeApi
      yield* until(readyz, (answer) => answer.body.includes("fld9filersvm-conn-secret"), "fld9 listed")
      api.put(filersList([...exampleFilers, { vserver: "fld7filersvm", url: "https://fld7filersvm.filers.example.internal" }]))
      const answer = yield* until(readyz, (answer) => answer.body.includes("fld7filersvm"), "fld7 listed")
      assert.strictEqual(answer.status, 200)
      assert.include(answer.body, "warning: may not get secrets fld7filersvm-conn-secret, fld9filersvm-conn-secret (rbac:")
      assert.strictEqual(yield* unreadableGauge, 2)
      // The ClusterRole re-applied, and the list reloaded: the warning is gone.
      api.allowAccess(() => true)
      api.put(filersList(exampleFilers))
      assert.strictEqual((yield* until(readyz, (answer) => !answer.body.includes("warning"), "no warning")).body, "ok\n")
      assert.strictEqual(yield* unreadableGauge, 0)
    }).pipe(
      Effect.provide(overFakeApi((question) => !["fld7filersvm-conn-secret", "fld9filersvm-conn-secret"].includes(question.name))),
      Effect.provide(observation().layer)
    ))

  it.live("may not create SelfSubjectAccessReviews: stays ready, says so, and reviews once it may", () => {
    const observed = observation()
    return Effect.gen(function*() {
      const api = yield* FakeApi
      const refused = api.respondWith(403, { path: "/selfsubjectaccessreviews" })
      // Reviewed again (a review begun before the fault is dropped for the new one).
      api.put(filersList(exampleFilers))
      const ready = yield* until(readyz, (answer) => answer.body.includes("cannot check"), "the refusal in /readyz")
      assert.strictEqual(ready.status, 200)
      assert.match(ready.body, /^ok\nwarning: cannot check which connection Secrets it may get: forbidden: cannot create selfsubjectaccessreviews/)
      assert.isTrue(parseLogs(observed.logs).some((line) => line.level === "WARN" && line.message.includes("trying again later")))
      refused.clear()
      const answer = yield* until(readyz, (answer) => answer.body.includes("may not get"), "the review made again")
      assert.strictEqual(answer.body, `ok\nwarning: may not get secrets fld5filersvm-conn-secret ${rbacFix}\n`)
    }).pipe(Effect.provide(overFakeApi((question) => question.name !== "fld5filersvm-conn-secret")), Effect.provide(observed.layer))
  })
})

describe("the review of the injector's own access, over a cluster held in memory", () => {
  const inMemory = served(memoryPipeline(exampleClusterObjects(), {}, Layer.empty))

  it.live("finds every Secret readable by default, and what the cluster's access plan refuses once it changes", () =>
    Effect.gen(function*() {
      yield* until(unreadableGauge.pipe(Effect.zip(readyz)), ([, answer]) => answer.body === "ok\n", "ready")
      const cluster = yield* MemoryCluster
      cluster.allowOwnAccess((question) => question.name !== "fld6filersvm-conn-secret")
      cluster.put(filersList(exampleFilers))
      const answer = yield* until(readyz, (answer) => answer.body.includes("warning"), "a warning")
      assert.strictEqual(answer.body, `ok\nwarning: may not get secrets fld6filersvm-conn-secret ${rbacFix}\n`)
    }).pipe(Effect.provide(inMemory), Effect.provide(observation().layer)))
})
