/**
 * Faults of the configuration watch (filers-list and the sidecar template,
 * watched through the live KubeClient on a fake API server): a watch the
 * server ends or resets, garbage or an ERROR event on it, failing re-lists,
 * a ConfigMap that becomes invalid or disappears. Admissions keep injecting
 * with the last good configuration meanwhile, and a later good change is
 * picked up without a restart (the watch recovered by itself).
 *
 * And a start with the configuration broken or missing: every admission is
 * denied naming the object and field, pods of namespaces without shares are
 * still admitted, and the first good version is used as soon as it appears.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { RawObject } from "../../src/cluster/objects.ts"
import { exampleClusterObjects, exampleReview, notebookContainer, type Pod } from "../support/pipelineHarness.ts"
import {
  admitTimed,
  assertDenied,
  assertInjected,
  assertNoSecret,
  eventually,
  faultLayer,
  type FakeApiServer,
  freshApi,
  logLines
} from "./support.ts"

const injectorNamespace = "das"

/** The url the notebook container got for `svm`, if any. */
const urlIn = (pod: Pod, svm: string): string | undefined =>
  (notebookContainer(pod).env as Array<{ name: string; value?: string }>).find((env) => env.name === `${svm}_url`)?.value

/** The example's filers-list entries. */
const exampleFilers = () => {
  const object = exampleFilersList()
  return JSON.parse((object.data as { filers: string }).filers) as Array<{ vserver: string; url: string }>
}

const exampleFilersList = () =>
  exampleClusterObjects().find((object) =>
    object.kind === "ConfigMap" && (object.metadata as { name: string }).name === "filers-list"
  )!

/** Rewrites filers-list as the example's, with fld9filersvm at `url` (the watch must carry the change to the injector). */
const setFld9Url = (api: FakeApiServer, url: string) => {
  const filers = exampleFilers().map((filer) => filer.vserver === "fld9filersvm" ? { ...filer, url } : filer)
  api.put({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "filers-list", namespace: injectorNamespace },
    data: { filers: JSON.stringify(filers) }
  })
}

const putConfigMap = (api: FakeApiServer, name: string, data: Record<string, string>) =>
  api.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: injectorNamespace }, data })

let urlCounter = 0

/** Changes fld9's url and waits until an admission shows it: proof the watch works again. */
const changeIsPickedUp = (api: FakeApiServer) =>
  Effect.gen(function*() {
    const url = `http://fld9-${++urlCounter}.filers.example.internal:9000`
    setFld9Url(api, url)
    const timed = yield* eventually("the new url reaches an admission", admitTimed(), (t) => urlIn(t.pod, "fld9filersvm") === url)
    assertInjected(timed)
  })

layer(faultLayer(), { excludeTestServices: true })("the configuration watch under faults", (it) => {
  it.effect("a change of filers-list reaches the next admissions without a restart", () =>
    Effect.gen(function*() {
      const api = yield* freshApi
      assertInjected(yield* admitTimed())
      yield* changeIsPickedUp(api)
    }))

  describe("the watch ends", () => {
    for (const reset of [false, true]) {
      it.effect(`the server ends every watch${reset ? " by resetting its connection" : ""}: watched again, admissions go on`, () =>
        Effect.gen(function*() {
          const api = yield* freshApi
          yield* Effect.promise(() => api.waitForWatches(2))
          const opened = api.watchesOpened
          api.dropWatches({ reset })
          assertInjected(yield* admitTimed())
          yield* Effect.promise(() => api.waitFor(() => api.watchesOpened >= opened + 2, 5000, "both watches reopened"))
          yield* changeIsPickedUp(api)
        }))
    }

    it.effect("garbage on the watch: it is dropped and opened again; the last good configuration serves meanwhile", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        yield* Effect.promise(() => api.waitForWatches(2))
        const opened = api.watchesOpened
        api.sendGarbage()
        api.sendGarbage("{\"type\":\"MODIFIED\",\"object\":\"not an object\"}")
        assertInjected(yield* admitTimed())
        yield* Effect.promise(() => api.waitFor(() => api.watchesOpened >= opened + 2, 5000, "both watches reopened"))
        yield* changeIsPickedUp(api)
      }))

    it.effect("an ERROR event (410 Expired) on the watch: listed and watched again", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        yield* Effect.promise(() => api.waitForWatches(2))
        const opened = api.watchesOpened
        api.sendWatchError(410)
        assertInjected(yield* admitTimed())
        yield* Effect.promise(() => api.waitFor(() => api.watchesOpened >= opened + 2, 5000, "both watches reopened"))
        yield* changeIsPickedUp(api)
      }))

    it.effect("the watch ends and re-listing fails for a while (503, then resets): the last good version serves; recovers", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        yield* Effect.promise(() => api.waitForWatches(2))
        const listFault = api.respondWith(503, { path: `/namespaces/${injectorNamespace}/configmaps?` })
        const resets = api.resetConnections({ path: "watch=true" })
        api.dropWatches()
        for (let i = 0; i < 3; i++) {
          assertInjected(yield* admitTimed())
          yield* Effect.sleep("100 millis")
        }
        assert.isAbove(listFault.hits, 0, "the injector did not try to list again")
        listFault.clear()
        resets.clear()
        yield* changeIsPickedUp(api)
      }))
  })

  describe("the ConfigMaps themselves", () => {
    it.effect("filers-list becomes invalid JSON: the last good version keeps serving; a valid one is picked up", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const before = urlIn((yield* admitTimed()).pod, "fld9filersvm")
        putConfigMap(api, "filers-list", { filers: "[{\"vserver\": \"fld5filersvm\"," })
        yield* Effect.sleep("100 millis")
        const timed = yield* admitTimed()
        assertInjected(timed)
        assert.strictEqual(urlIn(timed.pod, "fld9filersvm"), before)
        yield* changeIsPickedUp(api)
      }))

    it.effect("filers-list loses its key or gets wrong types: the last good version keeps serving", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const good = api.get("configmaps", injectorNamespace, "filers-list")!.data as Record<string, string>
        for (const data of [{}, { filers: "{}" }, { filers: "[{\"vserver\": 5, \"url\": []}]" }, { filers: "null" }]) {
          putConfigMap(api, "filers-list", data)
          yield* Effect.sleep("50 millis")
          assertInjected(yield* admitTimed())
        }
        putConfigMap(api, "filers-list", good)
        yield* changeIsPickedUp(api)
      }))

    it.effect("the sidecar template becomes invalid: the last good version keeps serving; a valid one is picked up", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const good = api.get("configmaps", injectorNamespace, "filer-sidecar-injector-json")!.data as Record<string, string>
        for (const template of ["not json", "{\"containers\": [], \"volumes\": []}", "{\"containers\": [{}]}"]) {
          putConfigMap(api, "filer-sidecar-injector-json", { "sidecarconfig.json": template })
          yield* Effect.sleep("50 millis")
          assertInjected(yield* admitTimed())
        }
        // A template asking for privilege is refused like a broken one: logged, and no sidecar gets it.
        const privileged = JSON.parse(good["sidecarconfig.json"]!) as { containers: Array<Record<string, unknown>> }
        privileged.containers[0]!.securityContext = { privileged: true }
        putConfigMap(api, "filer-sidecar-injector-json", { "sidecarconfig.json": JSON.stringify(privileged) })
        yield* eventually(
          "the privileged template is refused",
          Effect.sync(() => logLines.join("\n")),
          (logs) => logs.includes("securityContext.privileged must not be true; keeping the last good version")
        )
        const kept = yield* admitTimed()
        assertInjected(kept)
        const sidecars = kept.pod.spec.initContainers as Array<{ securityContext?: { privileged?: boolean } }>
        assert.isTrue(sidecars.every((sidecar) => sidecar.securityContext?.privileged !== true))
        // A valid template with a new image is picked up.
        const changed = JSON.parse(good["sidecarconfig.json"]!) as { containers: Array<{ image: string }> }
        changed.containers[0]!.image = "registry.example/goofys-sidecar:2"
        putConfigMap(api, "filer-sidecar-injector-json", { "sidecarconfig.json": JSON.stringify(changed) })
        const timed = yield* eventually(
          "the new image reaches an admission",
          admitTimed(),
          (t) => (t.pod.spec.initContainers as Array<{ image: string }>).every((c) => c.image.endsWith(":2"))
        )
        assertInjected(timed)
        putConfigMap(api, "filer-sidecar-injector-json", good)
      }))

    it.effect("filers-list is deleted: the last good version keeps serving; re-created, it is picked up", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const good = api.get("configmaps", injectorNamespace, "filers-list")!.data as Record<string, string>
        api.remove("configmaps", injectorNamespace, "filers-list")
        yield* Effect.sleep("100 millis")
        assertInjected(yield* admitTimed())
        putConfigMap(api, "filers-list", good)
        yield* changeIsPickedUp(api)
      }))
  })

  it.effect("no log line holds a credential", () => Effect.sync(() => assertNoSecret(logLines.join("\n"), "the logs")))
})

const withFilersList = (data: Record<string, string> | undefined): Array<RawObject> =>
  exampleClusterObjects().flatMap((object) => {
    const metadata = object.metadata as { name: string }
    if (object.kind !== "ConfigMap" || metadata.name !== "filers-list") return [object]
    return data === undefined ? [] : [{ ...object, data }]
  })

const noSharesReview = () => {
  const review = exampleReview()
  review.request.namespace = "no-shares"
  review.request.object.metadata.namespace = "no-shares"
  return review
}

layer(faultLayer({ objects: withFilersList({ filers: "[not json" }) }), { excludeTestServices: true })(
  "starting with an invalid filers-list",
  (it) => {
    it.effect("denied naming the object and field; pods without shares admitted; the first valid version is used", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        const denied = yield* admitTimed()
        assertDenied(denied, "ConfigMap das/filers-list", "data.filers")
        const unrelated = yield* admitTimed(noSharesReview())
        assert.isTrue(unrelated.response.allowed)
        assert.isUndefined(unrelated.response.patch)
        // Fixed by the operator: no restart needed.
        setFld9UrlFromExample(api)
        assertInjected(yield* eventually("injection after the fix", admitTimed(), (t) => t.response.allowed))
      }))
  }
)

layer(faultLayer({ objects: withFilersList(undefined) }), { excludeTestServices: true })(
  "starting without a filers-list",
  (it) => {
    it.effect("denied naming the missing object; created later, it is used at once", () =>
      Effect.gen(function*() {
        const api = yield* freshApi
        assertDenied(yield* admitTimed(), "ConfigMap das/filers-list", "not found")
        setFld9UrlFromExample(api)
        assertInjected(yield* eventually("injection once filers-list exists", admitTimed(), (t) => t.response.allowed))
      }))
  }
)

/** Puts the example's filers-list back. */
const setFld9UrlFromExample = (api: FakeApiServer) => {
  api.put(exampleFilersList() as Record<string, unknown>)
}
