/**
 * The ConfigMaps of one name in every namespace (`existing-shares`), listed
 * and watched cluster-wide through a `metadata.name` field selector: the
 * only form of list and watch an RBAC rule limited by `resourceNames`
 * allows, so the injector needs no right to read any other ConfigMap.
 *
 * The list is read in pages (`limit`/`continue`), each within the call
 * timeout, so a cluster with many namespaces never needs one huge answer.
 */
import { Effect, Predicate, Result, Stream } from "effect"
import { KubeError } from "../errors.ts"
import type { KubeClientShape } from "../KubeClient.ts"
import { type ConfigMap, type ConfigMapWatchEvent, metadataOf, type RawObject, toConfigMap } from "../objects.ts"
import type { Call } from "./classify.ts"
import type { Transport } from "./transport.ts"
import { parseWatchLine } from "./watchEvents.ts"

const configMapsEverywhere = "/api/v1/configmaps"

/** Items per page of the list: a page of large ConfigMaps stays a few megabytes. */
export const listPageSize = 100

/** A list answer's items and metadata, or a `request_failed` when it is not a list with a resourceVersion. */
export const listParts = (call: Call, list: RawObject) => {
  const metadata = Predicate.isObject(list.metadata) ? list.metadata as RawObject : {}
  const { resourceVersion } = metadata
  if (typeof resourceVersion !== "string" || resourceVersion === "" || !Array.isArray(list.items)) {
    return Effect.fail(KubeError.requestFailed(call, "the answer is not a list with a resourceVersion"))
  }
  const items = (list.items as ReadonlyArray<unknown>).filter((item): item is RawObject => Predicate.isObject(item))
  const next = typeof metadata.continue === "string" ? metadata.continue : ""
  return Effect.succeed({ items, resourceVersion, next })
}

const watchEvent = (call: Call, name: string, line: string): Stream.Stream<ConfigMapWatchEvent, KubeError> =>
  Result.match(parseWatchLine(call, line), {
    onFailure: Stream.fail,
    onSuccess: ({ object, type }): Stream.Stream<ConfigMapWatchEvent> => {
      if (type === "BOOKMARK") return Stream.succeed({ type, resourceVersion: metadataOf(object).resourceVersion })
      const configMap = toConfigMap(object)
      // The server selects by name already; an object of another name is not this watch's business.
      return configMap.name === name ? Stream.succeed({ type, configMap }) : Stream.empty
    }
  })

/**
 * `listConfigMapsNamed` and `watchConfigMapsNamed` over `transport`. A watch
 * lasts `watchTimeoutSeconds` (the server's `timeoutSeconds`, guarded by the
 * transport), then ends.
 */
export const configMapsNamed = (
  { openLines, requestObject }: Transport,
  watchTimeoutSeconds: number
): Pick<KubeClientShape, "listConfigMapsNamed" | "watchConfigMapsNamed"> => ({
  listConfigMapsNamed: (name) => {
    const call: Call = { resource: "configmaps", verb: "list", namespace: "", objectName: name }
    const fieldSelector = `metadata.name=${name}`
    return Effect.gen(function*() {
      const found: Array<ConfigMap> = []
      // Every page is of the first page's resource version (the server keeps it in the continue token).
      let resourceVersion = ""
      let next = ""
      do {
        const query = { fieldSelector, limit: String(listPageSize), ...(next === "" ? {} : { continue: next }) }
        const page = yield* requestObject(call, "GET", configMapsEverywhere, { query, kind: "ConfigMapList" }).pipe(
          Effect.flatMap((list) => listParts(call, list))
        )
        if (resourceVersion === "") resourceVersion = page.resourceVersion
        for (const item of page.items) {
          const configMap = toConfigMap(item)
          if (configMap.name === name) found.push(configMap)
        }
        next = page.next
      } while (next !== "")
      return { items: found, resourceVersion }
    })
  },

  watchConfigMapsNamed: (name, resourceVersion) => {
    const call: Call = { resource: "configmaps", verb: "watch", namespace: "", objectName: name }
    const query = { fieldSelector: `metadata.name=${name}`, watch: "true", resourceVersion, allowWatchBookmarks: "true" }
    return Stream.unwrap(
      Effect.map(openLines(call, configMapsEverywhere, query, watchTimeoutSeconds), (lines) =>
        Stream.succeed<ConfigMapWatchEvent>({ type: "OPENED" }).pipe(
          Stream.concat(Stream.flatMap(lines, (line) => watchEvent(call, name, line)))
        ))
    )
  }
})
