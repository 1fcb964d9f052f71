/**
 * What the fake API server (fakeApiServer.ts) does with a request that passed
 * its faults and token check: read or write the `MemoryClusterStore`, or open
 * a watch that replays and follows the store's changes.
 *
 * What it serves (for configmaps, secrets, events and mutatingwebhookconfigurations;
 * pods and namespaces to read, as `explain` does):
 *
 *   GET    /api/v1/namespaces/{ns}/{configmaps|secrets}/{name}
 *   GET    /api/v1/namespaces/{ns}/{configmaps|secrets}[?fieldSelector=metadata.name%3D{name}]   a {Kind}List
 *   GET    /api/v1/{configmaps|secrets}[?fieldSelector=...]                                     the same, every namespace
 *          ...either list path...&limit=N[&continue=TOKEN]                                      one page; metadata.continue names the next
 *   GET    ...either list path...&watch=true[&resourceVersion=N][&timeoutSeconds=S]             newline-delimited watch events
 *   POST   /api/v1/namespaces/{ns}/{configmaps|secrets}                                           create (409 AlreadyExists)
 *   PUT    /api/v1/namespaces/{ns}/{configmaps|secrets}/{name}                                    replace (409 Conflict on a stale resourceVersion)
 *   DELETE /api/v1/namespaces/{ns}/{configmaps|secrets}/{name}
 *   GET|POST|PUT|DELETE /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations[/{name}]   the same, cluster-scoped
 *   POST   /apis/authorization.k8s.io/v1/{subjectaccessreviews|selfsubjectaccessreviews}   answered by `allowAccess` (fakeApiServer.ts)
 *
 */
import { Effect, Result } from "effect"
import type * as http from "node:http"
import type { Socket } from "node:net"
import type { Resource } from "../../src/cluster/errors.ts"
import type { ChangeEvent, MemoryClusterStore } from "../../src/cluster/MemoryCluster.ts"
import { fieldSelector, HttpError, kinds, objectDefaults, readBody, type Route, sendJson, statusObject } from "./fakeApiHttp.ts"

type JsonObject = { [key: string]: unknown }

interface Watcher {
  readonly route: Route
  readonly response: http.ServerResponse
  readonly socket: Socket
}

const write = (watcher: Watcher, type: string, object: unknown): void => {
  if (!watcher.response.writableEnded && !watcher.response.destroyed) {
    watcher.response.write(`${JSON.stringify({ type, object })}\n`)
  }
}

/** An object with what the API server defaults, keeping the stored one's uid and creationTimestamp. */
export const defaulted = (store: MemoryClusterStore, resource: Resource, namespace: string, object: JsonObject) => {
  const existing = store.get(resource, namespace, String((object.metadata as JsonObject | undefined)?.name ?? ""))
  return objectDefaults(resource, namespace, structuredClone(object), existing._tag === "Some" ? existing.value : undefined)
}

export class ObjectRoutes {
  /** The watches open now. */
  readonly watchers = new Set<Watcher>()
  /** How many watches have been opened since start. */
  opened = 0
  private readonly store: MemoryClusterStore

  constructor(store: MemoryClusterStore) {
    this.store = store
  }

  /** Ends every open watch: cleanly, or by destroying its connection. */
  drop(reset: boolean): void {
    for (const watcher of this.watchers) {
      if (reset) watcher.socket.destroy()
      else watcher.response.end()
    }
    this.watchers.clear()
  }

  /** Writes an event (or, with no type, a raw line) on every open watch. */
  broadcast(type: string | undefined, object: (route: Route) => unknown): void {
    for (const watcher of this.watchers) {
      if (type === undefined) watcher.response.write(`${String(object(watcher.route))}\n`)
      else write(watcher, type, object(watcher.route))
    }
  }

  async serve(
    method: string,
    route: Route,
    query: Readonly<Record<string, string>>,
    watch: boolean,
    request: http.IncomingMessage,
    response: http.ServerResponse
  ): Promise<void> {
    const { resource, namespace } = route
    const what = `${resource} "${route.name ?? ""}"`
    const conflict = `Operation cannot be fulfilled on ${what}: the object has been modified; ` +
      "please apply your changes to the latest version and try again"
    if (method === "GET" && route.name === undefined) {
      const name = fieldSelector(query.fieldSelector)
      if (watch) return this.openWatch(route, name, query, request, response)
      // Equality label selectors only (`k=v,k2=v2`), as `explain` sends them.
      const labels = Object.fromEntries(
        (query.labelSelector ?? "").split(",").filter((term) => term !== "").map((term) => term.split("=", 2) as [string, string])
      )
      const items = this.store.list(resource, route.allNamespaces === true ? undefined : namespace, labels)
        .filter((object) => name === undefined || (object.metadata as JsonObject).name === name)
        .map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest)
      const { kind, apiVersion } = kinds[resource]
      return sendJson(response, 200, { kind: `${kind}List`, apiVersion, ...this.page(items, query) })
    }
    if (route.allNamespaces === true) throw new HttpError(405, `method ${method} is not allowed on ${resource} of every namespace`)
    if (method === "GET" || method === "DELETE") {
      const found = this.store.get(resource, namespace, route.name!)
      if (found._tag === "None") throw new HttpError(404, `${what} not found`)
      if (method === "GET") return sendJson(response, 200, found.value)
      this.store.remove(resource, namespace, route.name!)
      return sendJson(response, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" })
    }
    if (method !== "POST" && method !== "PUT" || (method === "POST") !== (route.name === undefined)) {
      throw new HttpError(405, `method ${method} is not allowed on ${route.name === undefined ? resource : what}`)
    }
    const body = await readBody(request, route)
    const metadata = body.metadata as JsonObject
    const name = String(metadata.name ?? "")
    if (method === "POST") {
      if (name === "") throw new HttpError(422, `${resource} "" is invalid: metadata.name: Required value: name is required`)
      delete metadata.resourceVersion
      const created = Effect.runSync(Effect.result(this.store.create(resource, defaulted(this.store, resource, namespace, body))))
      if (Result.isFailure(created)) throw new HttpError(409, `${resource} "${name}" already exists`, "AlreadyExists")
      return sendJson(response, 201, created.success)
    }
    if (name !== route.name) {
      throw new HttpError(400, `the name of the object (${name}) does not match the name on the URL (${route.name})`)
    }
    if (this.store.get(resource, namespace, name)._tag === "None") throw new HttpError(404, `${what} not found`)
    if (metadata.resourceVersion === undefined || metadata.resourceVersion === "") {
      throw new HttpError(422, `${what} is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`)
    }
    const replaced = Effect.runSync(Effect.result(this.store.replace(resource, defaulted(this.store, resource, namespace, body))))
    if (Result.isFailure(replaced)) throw new HttpError(409, conflict)
    return sendJson(response, 200, replaced.success)
  }

  /**
   * The items of one page when the request has a `limit` (the next page's
   * `continue` token in the metadata), else all of them. Unlike the API
   * server, a later page is read from the objects as they are then, not as
   * they were at the first page's resource version (which it reports).
   */
  private page(items: ReadonlyArray<unknown>, query: Readonly<Record<string, string>>) {
    const limit = Number(query.limit)
    const token = query.continue === undefined ? undefined : JSON.parse(Buffer.from(query.continue, "base64").toString("utf8"))
    const resourceVersion = token?.resourceVersion ?? String(this.store.resourceVersion)
    if (!Number.isInteger(limit) || limit <= 0) return { metadata: { resourceVersion }, items }
    const start: number = token?.start ?? 0
    const end = start + limit
    const next = end < items.length
      ? { continue: Buffer.from(JSON.stringify({ resourceVersion, start: end })).toString("base64"), remainingItemCount: items.length - end }
      : {}
    return { metadata: { resourceVersion, ...next }, items: items.slice(start, end) }
  }

  private openWatch(
    route: Route,
    name: string | undefined,
    query: Readonly<Record<string, string>>,
    request: http.IncomingMessage,
    response: http.ServerResponse
  ): void {
    response.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" })
    response.flushHeaders()
    const watcher: Watcher = { route, response, socket: request.socket }
    const watches = (event: ChangeEvent) => {
      const metadata = event.object.metadata as JsonObject
      return event.resource === route.resource && (route.namespace === "" || metadata.namespace === route.namespace) &&
        (name === undefined || metadata.name === name)
    }
    const from = query.resourceVersion
    if (from === undefined || from === "" || from === "0") {
      // No version: the current state as synthetic ADDED events, then live changes.
      for (const object of this.store.list(route.resource, route.allNamespaces === true ? undefined : route.namespace)) {
        if (name === undefined || (object.metadata as JsonObject).name === name) write(watcher, "ADDED", object)
      }
    } else {
      const version = Number(from)
      const changes = Number.isInteger(version) ? this.store.changesSince(version) : "invalid"
      if (typeof changes === "string") {
        write(watcher, "ERROR", changes === "invalid"
          ? statusObject(400, `invalid resource version ${JSON.stringify(from)}`)
          : statusObject(410, `too old resource version: ${version} (${String(this.store.resourceVersion)})`))
        return void response.end()
      }
      for (const event of changes) if (watches(event)) write(watcher, event.type, event.object)
    }
    this.watchers.add(watcher)
    this.opened += 1
    const unsubscribe = this.store.onChange((event) => {
      if (this.watchers.has(watcher) && watches(event)) write(watcher, event.type, event.object)
    })
    const timeoutSeconds = Number(query.timeoutSeconds)
    const timer = Number.isFinite(timeoutSeconds) && timeoutSeconds > 0
      ? setTimeout(() => {
        this.watchers.delete(watcher)
        response.end()
      }, timeoutSeconds * 1000)
      : undefined
    response.on("close", () => {
      this.watchers.delete(watcher)
      unsubscribe()
      clearTimeout(timer)
    })
  }
}
