/**
 * A fake Kubernetes API server for tests: real HTTP on 127.0.0.1, the real
 * REST paths and JSON shapes, objects held in memory, and switches to make it
 * misbehave while a test runs.
 *
 * What it serves (for configmaps, secrets, events and mutatingwebhookconfigurations):
 *
 *   GET    /api/v1/namespaces/{ns}/{configmaps|secrets|events}/{name}
 *   GET    /api/v1/namespaces/{ns}/{configmaps|secrets}[?fieldSelector=metadata.name%3D{name}]   a {Kind}List
 *   GET    ...same list path...&watch=true[&resourceVersion=N][&timeoutSeconds=S]                newline-delimited watch events
 *   POST   /api/v1/namespaces/{ns}/{configmaps|secrets|events}                                    create (409 AlreadyExists)
 *   PUT    /api/v1/namespaces/{ns}/{configmaps|secrets|events}/{name}                             replace (409 Conflict on a stale resourceVersion)
 *   DELETE /api/v1/namespaces/{ns}/{configmaps|secrets}/{name}
 *   GET|POST|PUT|DELETE /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations[/{name}]   the same, cluster-scoped
 *   GET    /api/v1/namespaces/{ns}/pods/{name}, /api/v1/namespaces/{ns}/pods[?labelSelector=k%3Dv,...]   pods (as `explain` reads them)
 *   GET    /api/v1/namespaces/{name}                                                               a Namespace
 *   POST   /apis/authorization.k8s.io/v1/subjectaccessreviews                                      answered by `allowAccess`
 *
 * Errors are Kubernetes `Status` objects. Every request must carry the
 * bearer token of `kubeConfig()` (401 otherwise). Resource versions are one
 * counter for the whole server, as etcd's revision is; a watch from version N
 * replays the changes after N (or answers an ERROR event 410 Expired when N
 * is older than the last `compact()`), then follows live changes.
 *
 * Usage:
 *
 *   const api = await FakeApiServer.start()
 *   api.put({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "filers-list", namespace: "das" }, data: {} })
 *   const kc = api.kubeConfig()              // a KubeConfig pointing at it, for KubeClientLive.layerFromKubeConfig
 *   const fault = api.respondWith(403, { path: "/secrets/" })   // until fault.clear()
 *   api.respondWith(429, { times: 2, retryAfterSeconds: 1 })   // the next two requests
 *   api.setLatency(20)                       // round-trip time added to every request
 *   api.dropWatches()                        // the server ends every open watch
 *   await api.close()
 *
 * In Effect tests, `FakeApi.layer()` starts one for the layer's lifetime.
 */
import { KubeConfig } from "@kubernetes/client-node"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo, Socket } from "node:net"

/** An object as the API speaks it: plain JSON. */
export type JsonObject = { [key: string]: unknown }

/** The resources the fake serves. */
export type FakeResource = "configmaps" | "secrets" | "events" | "mutatingwebhookconfigurations" | "pods" | "namespaces"

/** The `spec.resourceAttributes` of a SubjectAccessReview, and its `spec.user`. */
export interface AccessQuestion {
  readonly user: string
  readonly namespace: string
  readonly verb: string
  readonly resource: string
  readonly name: string
}

/** Which requests a fault applies to. Every given field must match; an empty match takes every request. */
export interface RequestMatch {
  /** The HTTP method, e.g. "GET" (any when absent). */
  readonly method?: string
  /**
   * A substring of the request's path and query string as sent, e.g. "/secrets/",
   * "configmaps/filers-list" or "watch=true" (any when absent). Note that query
   * values are URL-encoded: `fieldSelector=metadata.name%3Dfilers-list`.
   */
  readonly path?: string
  /** How many matching requests the fault takes; when absent, every one until cleared. */
  readonly times?: number
}

/** A fault in force. */
export interface FaultHandle {
  /** How many requests it has taken so far. */
  readonly hits: number
  /** Removes the fault; requests that already met it are not affected. */
  readonly clear: () => void
}

/** One request as the server received it. */
export interface LoggedRequest {
  readonly method: string
  /** The path, without the query string. */
  readonly path: string
  /** The query parameters, decoded. */
  readonly query: Readonly<Record<string, string>>
  /** Path and query string as sent. */
  readonly url: string
  /** `Date.now()` when it arrived. */
  readonly at: number
}

export interface FakeApiServerOptions {
  /** The bearer token requests must carry. Default "fake-token". */
  readonly token?: string
  /** Objects to start with, as for `put`. */
  readonly objects?: Iterable<JsonObject>
  /**
   * Serve HTTPS with this pair (as a real API server does); `kubeConfig()`
   * then trusts `caPem` instead of skipping verification. Default: plain HTTP.
   */
  readonly tls?: { readonly certPem: string; readonly keyPem: string; readonly caPem: string }
}

export interface KubeConfigOptions {
  /** The token the KubeConfig's user sends. Default: the server's token. */
  readonly token?: string
  /** The context's default namespace. Default "default". */
  readonly namespace?: string
  /** The CA to trust instead of the server's own (HTTPS only). */
  readonly caPem?: string
}

type StatusFault = {
  readonly kind: "status"
  readonly status: number
  readonly retryAfterSeconds: number | undefined
  readonly message: string | undefined
}
type Fault = StatusFault | { readonly kind: "reset" } | { readonly kind: "delay"; readonly millis: number }

interface FaultEntry {
  readonly match: RequestMatch
  readonly fault: Fault
  remaining: number
  hits: number
}

interface Route {
  readonly group: string
  readonly version: string
  readonly resource: FakeResource
  /** "" for cluster-scoped resources. */
  readonly namespace: string
  readonly name: string | undefined
}

interface Watcher {
  readonly resource: FakeResource
  readonly namespace: string
  /** From `fieldSelector=metadata.name=...`. */
  readonly name: string | undefined
  readonly response: http.ServerResponse
  readonly socket: Socket
  readonly path: string
}

interface HistoryEvent {
  readonly revision: number
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: FakeResource
  readonly object: JsonObject
}

const kinds: Readonly<Record<FakeResource, { kind: string; apiVersion: string; group: string }>> = {
  configmaps: { kind: "ConfigMap", apiVersion: "v1", group: "" },
  secrets: { kind: "Secret", apiVersion: "v1", group: "" },
  events: { kind: "Event", apiVersion: "v1", group: "" },
  mutatingwebhookconfigurations: {
    kind: "MutatingWebhookConfiguration",
    apiVersion: "admissionregistration.k8s.io/v1",
    group: "admissionregistration.k8s.io"
  },
  pods: { kind: "Pod", apiVersion: "v1", group: "" },
  namespaces: { kind: "Namespace", apiVersion: "v1", group: "" }
}

/** Cluster-scoped resources: their objects' key has namespace "". */
const clusterScoped = (resource: FakeResource) => resource === "mutatingwebhookconfigurations" || resource === "namespaces"

const resourceOfKind = (kind: unknown): FakeResource | undefined => {
  for (const [resource, info] of Object.entries(kinds)) {
    if (info.kind === kind) return resource as FakeResource
  }
  return undefined
}

const reasons: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout"
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const metadataOf = (object: JsonObject): JsonObject => {
  if (!isObject(object.metadata)) object.metadata = {}
  return object.metadata as JsonObject
}

const nameOf = (object: JsonObject): string => {
  const name = metadataOf(object).name
  return typeof name === "string" ? name : ""
}

const keyOf = (resource: FakeResource, namespace: string, name: string) => `${resource}/${namespace}/${name}`

const verbOf = (method: string, route: Route, watch: boolean): string => {
  switch (method) {
    case "GET":
      return route.name !== undefined ? "get" : watch ? "watch" : "list"
    case "POST":
      return "create"
    case "PUT":
      return "update"
    case "PATCH":
      return "patch"
    case "DELETE":
      return "delete"
    default:
      return method.toLowerCase()
  }
}

const parseRoute = (path: string): Route | undefined => {
  const parts = path.split("/").filter((part) => part !== "").map(decodeURIComponent)
  // /api/v1/namespaces/{ns}/{resource}[/{name}]
  if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "namespaces" && parts.length >= 5 && parts.length <= 6) {
    const resource = parts[4]
    if (resource !== "configmaps" && resource !== "secrets" && resource !== "pods" && resource !== "events") return undefined
    return { group: "", version: "v1", resource, namespace: parts[3]!, name: parts[5] }
  }
  // /api/v1/namespaces/{name}
  if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "namespaces" && parts.length === 4) {
    return { group: "", version: "v1", resource: "namespaces", namespace: "", name: parts[3] }
  }
  // /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations[/{name}]
  if (
    parts[0] === "apis" && parts[1] === "admissionregistration.k8s.io" && parts[2] === "v1" &&
    parts[3] === "mutatingwebhookconfigurations" && parts.length <= 5
  ) {
    return {
      group: "admissionregistration.k8s.io",
      version: "v1",
      resource: "mutatingwebhookconfigurations",
      namespace: "",
      name: parts[4]
    }
  }
  return undefined
}

/** A Kubernetes `Status` object, as the API server answers errors. */
export const statusObject = (code: number, message: string, details?: JsonObject): JsonObject => ({
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message,
  reason: reasons[code] ?? "Unknown",
  ...(details === undefined ? {} : { details }),
  code
})

class HttpError {
  readonly code: number
  readonly message: string
  readonly reason: string | undefined
  constructor(code: number, message: string, reason?: string) {
    this.code = code
    this.message = message
    this.reason = reason
  }
}

export class FakeApiServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string
  readonly port: number
  /** The bearer token requests must carry. */
  readonly token: string

  private readonly server: http.Server | https.Server
  private readonly caPem: string | undefined
  private readonly objects = new Map<string, JsonObject>()
  private readonly history: Array<HistoryEvent> = []
  private readonly watchers = new Set<Watcher>()
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly faults: Array<FaultEntry> = []
  private readonly log: Array<LoggedRequest> = []
  private connectionCount = 0
  private abandonedCount = 0
  private watchCount = 0
  private revision = 100
  private compactedRevision = 0
  private latencyMillis = 0
  private uidCounter = 0
  private closed = false
  private accessAnswer: (question: AccessQuestion) => boolean = () => false

  private constructor(server: http.Server | https.Server, token: string, caPem: string | undefined) {
    this.server = server
    this.token = token
    this.caPem = caPem
    const address = server.address() as AddressInfo
    this.port = address.port
    this.url = `${caPem === undefined ? "http" : "https"}://127.0.0.1:${address.port}`
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const server = options.tls === undefined
      ? http.createServer()
      : https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem })
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => resolve())
    })
    const api = new FakeApiServer(server, options.token ?? "fake-token", options.tls?.caPem)
    server.on("connection", (socket) => {
      api.connectionCount += 1
      api.sockets.add(socket)
      socket.on("close", () => api.sockets.delete(socket))
    })
    server.on("request", (request, response) => {
      void api.handle(request, response).catch(() => {
        if (!response.headersSent) {
          api.sendStatus(response, 500, "fake API server: unexpected failure")
        } else {
          response.destroy()
        }
      })
    })
    for (const object of options.objects ?? []) api.put(object)
    return api
  }

  /**
   * A KubeConfig pointing at this server: cluster `server: http://127.0.0.1:PORT`
   * with `skipTLSVerify` (which client-node demands for plain HTTP), or over
   * HTTPS trusting the server's CA (`caPem` overrides it); a user with the
   * server's bearer token.
   */
  kubeConfig(options: KubeConfigOptions = {}): KubeConfig {
    const kc = new KubeConfig()
    const caPem = options.caPem ?? this.caPem
    const trust = caPem === undefined
      ? { skipTLSVerify: true }
      : { skipTLSVerify: false, caData: Buffer.from(caPem).toString("base64") }
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, ...trust }],
      users: [{ name: "fake-user", token: options.token ?? this.token }],
      contexts: [{ name: "fake", cluster: "fake", user: "fake-user", namespace: options.namespace ?? "default" }],
      currentContext: "fake"
    })
    return kc
  }

  /**
   * The same as `kubeConfig()`, written to `file` as a kubeconfig YAML file,
   * as `kubectl` (and a process started with KUBECONFIG) reads it. With
   * `caFile`, an HTTPS server's CA is written there and the kubeconfig names
   * the file (`certificate-authority`), as a pod's service account has it,
   * instead of carrying it inline.
   */
  writeKubeconfig(file: string, options: { readonly caFile?: string } = {}): void {
    if (this.caPem !== undefined && options.caFile !== undefined) fs.writeFileSync(options.caFile, this.caPem)
    const cluster = this.caPem === undefined
      ? ["    insecure-skip-tls-verify: true"]
      : options.caFile !== undefined
      ? [`    certificate-authority: ${options.caFile}`]
      : [`    certificate-authority-data: ${Buffer.from(this.caPem).toString("base64")}`]
    fs.writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: fake",
        "  cluster:",
        `    server: ${this.url}`,
        ...cluster,
        "users:",
        "- name: fake-user",
        "  user:",
        `    token: ${this.token}`,
        "contexts:",
        "- name: fake",
        "  context:",
        "    cluster: fake",
        "    user: fake-user",
        "current-context: fake",
        ""
      ].join("\n"),
      { mode: 0o600 }
    )
  }

  /** Stops the server: ends open watches, drops every connection, cancels pending delays. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    for (const watcher of this.watchers) watcher.response.destroy()
    this.watchers.clear()
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    for (const socket of this.sockets) socket.destroy()
    await closing
  }

  // ---------------------------------------------------------------------------
  // Objects

  /**
   * Adds or replaces an object, found by its `kind` (ConfigMap, Secret,
   * MutatingWebhookConfiguration), namespace and name. Stamps a new
   * `metadata.resourceVersion` (and `uid`, `creationTimestamp` when new),
   * turns a Secret's `stringData` into `data`, and tells matching watches
   * (ADDED or MODIFIED). Returns the object as stored.
   */
  put(object: JsonObject): JsonObject {
    const resource = resourceOfKind(object.kind)
    if (resource === undefined) throw new Error(`FakeApiServer.put: unsupported kind ${String(object.kind)}`)
    const copy = structuredClone(object)
    const metadata = metadataOf(copy)
    const namespace = clusterScoped(resource) ? "" : String(metadata.namespace ?? "default")
    return this.store(resource, namespace, copy)
  }

  /** How SubjectAccessReviews are answered from now on (default: every question denied). */
  allowAccess(answer: (question: AccessQuestion) => boolean): void {
    this.accessAnswer = answer
  }

  /** Deletes an object and tells matching watches (DELETED). Returns whether it existed. */
  remove(resource: FakeResource, namespace: string, name: string): boolean {
    const key = keyOf(resource, namespace, name)
    const existing = this.objects.get(key)
    if (existing === undefined) return false
    this.objects.delete(key)
    const deleted = structuredClone(existing)
    metadataOf(deleted).resourceVersion = String(++this.revision)
    this.record("DELETED", resource, deleted)
    return true
  }

  /** The Events stored in `namespace`, in the order they were created (copies). */
  events(namespace: string): ReadonlyArray<JsonObject> {
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(`events/${namespace}/`))
      .map(([, object]) => structuredClone(object))
  }

  /** The object as stored (a copy), if any. */
  get(resource: FakeResource, namespace: string, name: string): JsonObject | undefined {
    const found = this.objects.get(keyOf(resource, namespace, name))
    return found === undefined ? undefined : structuredClone(found)
  }

  /** The server's current resource version (the last change's). */
  get resourceVersion(): string {
    return String(this.revision)
  }

  /**
   * Forgets the change history, as etcd compaction does: a watch from an older
   * resource version then gets an ERROR event with a 410 Expired Status.
   */
  compact(): void {
    this.history.length = 0
    this.compactedRevision = this.revision
  }

  // ---------------------------------------------------------------------------
  // Faults

  /**
   * Answers matching requests with `status` and a `Status` body instead of
   * serving them (403, 404, 429, 500, 503...). `retryAfterSeconds` adds a
   * Retry-After header; `message` replaces the Status message (to plant text a
   * client must not copy into its errors).
   */
  respondWith(
    status: number,
    match: RequestMatch & { readonly retryAfterSeconds?: number; readonly message?: string } = {}
  ): FaultHandle {
    return this.addFault(match, {
      kind: "status",
      status,
      retryAfterSeconds: match.retryAfterSeconds,
      message: match.message
    })
  }

  /** Delays matching requests by `millis` before anything else happens to them (a slow server). */
  delay(millis: number, match: RequestMatch = {}): FaultHandle {
    return this.addFault(match, { kind: "delay", millis })
  }

  /** Destroys the connection of matching requests without an answer (a reset connection). */
  resetConnections(match: RequestMatch = {}): FaultHandle {
    return this.addFault(match, { kind: "reset" })
  }

  /** Round-trip time added to every request (0 to stop). */
  setLatency(millis: number): void {
    this.latencyMillis = millis
  }

  /** Removes every fault and the latency. */
  clearFaults(): void {
    this.faults.length = 0
    this.latencyMillis = 0
  }

  // ---------------------------------------------------------------------------
  // Watches

  /**
   * How many watch requests are open now. A watch the client just aborted may
   * count for a moment more, until its connection's close reaches the server.
   */
  get openWatches(): number {
    return this.watchers.size
  }

  /** How many watches have been opened since start (to wait for a consumer to watch again). */
  get watchesOpened(): number {
    return this.watchCount
  }

  /**
   * Ends every open watch, as the API server does when its watch timeout
   * passes: cleanly by default, or by destroying the connection (`reset`).
   */
  dropWatches(options: { readonly reset?: boolean } = {}): void {
    for (const watcher of this.watchers) {
      if (options.reset === true) watcher.socket.destroy()
      else watcher.response.end()
    }
    this.watchers.clear()
  }

  /** Writes a line that is not a watch event on every open watch. */
  sendGarbage(line = "this is not a watch event {"): void {
    for (const watcher of this.watchers) watcher.response.write(`${line}\n`)
  }

  /** Sends a BOOKMARK event at the current resource version on every open watch. */
  sendBookmark(): void {
    for (const watcher of this.watchers) {
      const info = kinds[watcher.resource]
      this.writeEvent(watcher, "BOOKMARK", {
        kind: info.kind,
        apiVersion: info.apiVersion,
        metadata: { resourceVersion: this.resourceVersion }
      })
    }
  }

  /** Sends an ERROR event carrying a Status with `code` on every open watch (the server keeps them open). */
  sendWatchError(code = 410, message = "too old resource version"): void {
    for (const watcher of this.watchers) this.writeEvent(watcher, "ERROR", statusObject(code, message))
  }

  /**
   * Resolves once at least `count` watches are open, or rejects after
   * `timeoutMillis`. Mind watches left over from an earlier test: wait for
   * `openWatches === 0` first (see `waitFor`), or compare `watchesOpened`.
   */
  waitForWatches(count = 1, timeoutMillis = 2000): Promise<void> {
    return this.waitFor(() => this.watchers.size >= count, timeoutMillis, `${count} open watches`)
  }

  /** Resolves once `condition()` holds (checked every 5 ms), or rejects after `timeoutMillis`. */
  async waitFor(condition: () => boolean, timeoutMillis = 2000, what = "a condition"): Promise<void> {
    const deadline = Date.now() + timeoutMillis
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`FakeApiServer: waited ${timeoutMillis} ms for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  // ---------------------------------------------------------------------------
  // Request log

  /** Every request received since start (or the last `clearRequests`), faulted ones included. */
  get requests(): ReadonlyArray<LoggedRequest> {
    return [...this.log]
  }

  clearRequests(): void {
    this.log.length = 0
  }

  /**
   * How many delayed requests (see `delay`, `setLatency`) the client gave up
   * on, closing the connection before the answer: evidence that a timed-out or
   * interrupted call aborts its request rather than leaving it open.
   */
  get requestsAbandoned(): number {
    return this.abandonedCount
  }

  /** How many TCP connections the server has accepted since start (a client that reuses connections keeps it low). */
  get connectionsAccepted(): number {
    return this.connectionCount
  }

  // ---------------------------------------------------------------------------
  // Internals

  private addFault(match: RequestMatch, fault: Fault): FaultHandle {
    const entry: FaultEntry = { match, fault, remaining: match.times ?? Infinity, hits: 0 }
    this.faults.push(entry)
    const faults = this.faults
    return {
      get hits() {
        return entry.hits
      },
      clear: () => {
        const index = faults.indexOf(entry)
        if (index >= 0) faults.splice(index, 1)
      }
    }
  }

  /** The faults a request meets: every matching delay, then the first matching status or reset. */
  private faultsFor(method: string, url: string): { delayMillis: number; terminal: Fault | undefined } {
    let delayMillis = this.latencyMillis
    let terminal: Fault | undefined
    for (const entry of [...this.faults]) {
      if (entry.remaining <= 0) continue
      if (entry.match.method !== undefined && entry.match.method.toUpperCase() !== method) continue
      if (entry.match.path !== undefined && !url.includes(entry.match.path)) continue
      if (entry.fault.kind === "delay") {
        delayMillis += entry.fault.millis
      } else if (terminal === undefined) {
        terminal = entry.fault
      } else {
        continue
      }
      entry.remaining -= 1
      entry.hits += 1
      if (entry.remaining <= 0) {
        const index = this.faults.indexOf(entry)
        if (index >= 0) this.faults.splice(index, 1)
      }
    }
    return { delayMillis, terminal }
  }

  private sleep(millis: number, request: http.IncomingMessage): Promise<boolean> {
    if (millis <= 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const socket = request.socket
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        socket.off("close", onClose)
        resolve(!this.closed)
      }, millis)
      // The client gave up (aborted, closing its connection) while we were slow.
      const onClose = () => {
        this.abandonedCount += 1
        clearTimeout(timer)
        this.timers.delete(timer)
        resolve(false)
      }
      socket.once("close", onClose)
      this.timers.add(timer)
    })
  }

  private store(resource: FakeResource, namespace: string, object: JsonObject): JsonObject {
    const info = kinds[resource]
    object.kind = info.kind
    object.apiVersion = info.apiVersion
    const metadata = metadataOf(object)
    const name = nameOf(object)
    if (namespace === "") delete metadata.namespace
    else metadata.namespace = namespace
    const key = keyOf(resource, namespace, name)
    const existing = this.objects.get(key)
    if (existing === undefined) {
      metadata.uid = `00000000-0000-4000-8000-${String(++this.uidCounter).padStart(12, "0")}`
      metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z")
    } else {
      metadata.uid = metadataOf(existing).uid
      metadata.creationTimestamp = metadataOf(existing).creationTimestamp
    }
    if (resource === "secrets") {
      const data: JsonObject = isObject(object.data) ? { ...object.data } : {}
      if (isObject(object.stringData)) {
        for (const [field, value] of Object.entries(object.stringData)) {
          data[field] = Buffer.from(String(value)).toString("base64")
        }
      }
      delete object.stringData
      object.data = data
      if (object.type === undefined) object.type = "Opaque"
    }
    metadata.resourceVersion = String(++this.revision)
    this.objects.set(key, object)
    this.record(existing === undefined ? "ADDED" : "MODIFIED", resource, object)
    return structuredClone(object)
  }

  private record(type: HistoryEvent["type"], resource: FakeResource, object: JsonObject): void {
    const event: HistoryEvent = { revision: this.revision, type, resource, object: structuredClone(object) }
    this.history.push(event)
    for (const watcher of this.watchers) {
      if (this.watches(watcher, event)) this.writeEvent(watcher, type, event.object)
    }
  }

  private watches(watcher: Watcher, event: HistoryEvent): boolean {
    if (event.resource !== watcher.resource) return false
    const metadata = metadataOf(event.object)
    if (watcher.namespace !== "" && (metadata.namespace ?? "") !== watcher.namespace) return false
    return watcher.name === undefined || metadata.name === watcher.name
  }

  private writeEvent(watcher: Watcher, type: string, object: JsonObject): void {
    if (!watcher.response.writableEnded && !watcher.response.destroyed) {
      watcher.response.write(`${JSON.stringify({ type, object })}\n`)
    }
  }

  private sendJson(response: http.ServerResponse, code: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) {
    const text = JSON.stringify(body)
    response.writeHead(code, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(text),
      ...headers
    })
    response.end(text)
  }

  private sendStatus(
    response: http.ServerResponse,
    code: number,
    message: string,
    headers: http.OutgoingHttpHeaders = {},
    reason?: string
  ) {
    const status = statusObject(code, message)
    if (reason !== undefined) status.reason = reason
    this.sendJson(response, code, status, headers)
  }

  private async readBody(request: http.IncomingMessage): Promise<JsonObject> {
    const chunks: Array<Buffer> = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    let parsed: unknown
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      throw new HttpError(400, "the request body is not JSON")
    }
    if (!isObject(parsed)) throw new HttpError(400, "the request body is not an object")
    return parsed
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase()
    const rawUrl = request.url ?? "/"
    const parsedUrl = new URL(rawUrl, "http://fake")
    const query = Object.fromEntries(parsedUrl.searchParams)
    this.log.push({ method, path: parsedUrl.pathname, query, url: rawUrl, at: Date.now() })

    const { delayMillis, terminal } = this.faultsFor(method, rawUrl)
    if (!(await this.sleep(delayMillis, request))) return
    if (terminal?.kind === "reset") {
      request.socket.destroy()
      return
    }

    const route = parseRoute(parsedUrl.pathname)
    const watch = query.watch === "true" || query.watch === "1"

    if (terminal?.kind === "status") {
      // Discard any request body, so the connection stays usable.
      request.resume()
      const headers: http.OutgoingHttpHeaders = terminal.retryAfterSeconds === undefined
        ? {}
        : { "Retry-After": String(terminal.retryAfterSeconds) }
      const message = terminal.message ??
        (route === undefined ? `fake fault ${terminal.status}` : this.faultMessage(terminal.status, method, route, watch))
      this.sendStatus(response, terminal.status, message, headers)
      return
    }

    if (request.headers.authorization !== `Bearer ${this.token}`) {
      request.resume()
      this.sendStatus(response, 401, "Unauthorized")
      return
    }
    if (method === "POST" && parsedUrl.pathname === "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
      const body = await this.readBody(request)
      const spec = isObject(body.spec) ? body.spec : {}
      const attributes = isObject(spec.resourceAttributes) ? spec.resourceAttributes : {}
      const text = (value: unknown) => (typeof value === "string" ? value : "")
      const allowed = this.accessAnswer({
        user: text(spec.user),
        namespace: text(attributes.namespace),
        verb: text(attributes.verb),
        resource: text(attributes.resource),
        name: text(attributes.name)
      })
      this.sendJson(response, 201, { ...body, status: allowed ? { allowed: true } : { allowed: false, reason: "no RBAC rule allows it" } })
      return
    }
    if (route === undefined) {
      this.sendStatus(response, 404, "the server could not find the requested resource")
      return
    }

    try {
      await this.serve(method, route, query, watch, request, response)
    } catch (error) {
      if (error instanceof HttpError) this.sendStatus(response, error.code, error.message, {}, error.reason)
      else throw error
    }
  }

  /** The message the API server gives for a fault's status, as near as it can be. */
  private faultMessage(status: number, method: string, route: Route, watch: boolean): string {
    const what = route.name === undefined ? route.resource : `${route.resource} "${route.name}"`
    const verb = verbOf(method, route, watch)
    switch (status) {
      case 401:
        return "Unauthorized"
      case 403:
        return `${what} is forbidden: User "system:serviceaccount:das:filer-sidecar-injector" cannot ${verb} ` +
          `resource "${route.resource}" in API group "${route.group}"` +
          (route.namespace === "" ? " at the cluster scope" : ` in the namespace "${route.namespace}"`)
      case 404:
        return `${what} not found`
      case 409:
        return `Operation cannot be fulfilled on ${what}: the object has been modified; please apply your changes to the latest version and try again`
      case 429:
        return "Too many requests, please try again later."
      default:
        return `fake fault ${status}`
    }
  }

  private async serve(
    method: string,
    route: Route,
    query: Readonly<Record<string, string>>,
    watch: boolean,
    request: http.IncomingMessage,
    response: http.ServerResponse
  ): Promise<void> {
    const { resource, namespace } = route
    const what = (name: string) => `${resource} "${name}"`
    if (route.name === undefined) {
      if (method === "GET") {
        const selected = this.fieldSelector(query.fieldSelector)
        if (watch) return this.openWatch(route, selected, query, request, response)
        // Equality label selectors only (`k=v,k2=v2`), as `explain` sends them.
        const labels = (query.labelSelector ?? "").split(",").filter((term) => term !== "").map((term) => term.split("="))
        const items = [...this.objects.entries()]
          .filter(([key]) => key.startsWith(`${resource}/${namespace}/`))
          .map(([, object]) => structuredClone(object))
          .filter((object) => selected === undefined || nameOf(object) === selected)
          .filter((object) => {
            const held = isObject(metadataOf(object).labels) ? metadataOf(object).labels as JsonObject : {}
            return labels.every(([key, value]) => held[key!] === value)
          })
          .map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest)
        this.sendJson(response, 200, {
          kind: `${kinds[resource].kind}List`,
          apiVersion: kinds[resource].apiVersion,
          metadata: { resourceVersion: this.resourceVersion },
          items
        })
        return
      }
      if (method === "POST") {
        const body = await this.readBody(request)
        const name = nameOf(body)
        if (name === "") throw new HttpError(422, `${resource} "" is invalid: metadata.name: Required value: name is required`)
        this.checkNamespace(body, route)
        if (this.objects.has(keyOf(resource, namespace, name))) {
          throw new HttpError(409, `${what(name)} already exists`, "AlreadyExists")
        }
        delete metadataOf(body).resourceVersion
        this.sendJson(response, 201, this.store(resource, namespace, body))
        return
      }
      throw new HttpError(405, `method ${method} is not allowed on ${resource}`)
    }

    const name = route.name
    const key = keyOf(resource, namespace, name)
    switch (method) {
      case "GET": {
        const found = this.objects.get(key)
        if (found === undefined) throw new HttpError(404, `${what(name)} not found`)
        this.sendJson(response, 200, found)
        return
      }
      case "PUT": {
        const body = await this.readBody(request)
        if (nameOf(body) !== name) {
          throw new HttpError(400, `the name of the object (${nameOf(body)}) does not match the name on the URL (${name})`)
        }
        this.checkNamespace(body, route)
        const existing = this.objects.get(key)
        if (existing === undefined) throw new HttpError(404, `${what(name)} not found`)
        const sent = metadataOf(body).resourceVersion
        if (sent === undefined || sent === "") {
          throw new HttpError(
            422,
            `${what(name)} is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`
          )
        }
        if (sent !== metadataOf(existing).resourceVersion) {
          throw new HttpError(
            409,
            `Operation cannot be fulfilled on ${what(name)}: the object has been modified; please apply your changes to the latest version and try again`
          )
        }
        this.sendJson(response, 200, this.store(resource, namespace, body))
        return
      }
      case "DELETE": {
        const existing = this.objects.get(key)
        if (existing === undefined) throw new HttpError(404, `${what(name)} not found`)
        this.remove(resource, namespace, name)
        this.sendJson(response, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" })
        return
      }
      default:
        throw new HttpError(405, `method ${method} is not allowed on ${what(name)}`)
    }
  }

  private checkNamespace(body: JsonObject, route: Route): void {
    if (route.namespace === "") return
    const given = metadataOf(body).namespace
    if (given !== undefined && given !== route.namespace) {
      throw new HttpError(
        400,
        "the namespace of the provided object does not match the namespace sent on the request"
      )
    }
  }

  /** The name of a `metadata.name=X` field selector; undefined without one; 400 for other selectors. */
  private fieldSelector(selector: string | undefined): string | undefined {
    if (selector === undefined || selector === "") return undefined
    const match = /^metadata\.name(?:=|==)(.*)$/.exec(selector)
    if (match === null) throw new HttpError(400, `the fake API server only supports metadata.name field selectors`)
    return match[1]!
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
    const watcher: Watcher = {
      resource: route.resource,
      namespace: route.namespace,
      name,
      response,
      socket: request.socket,
      path: request.url ?? ""
    }
    const from = query.resourceVersion
    if (from === undefined || from === "" || from === "0") {
      // No version: the current state as synthetic ADDED events, then live changes.
      for (const [key, object] of this.objects) {
        if (!key.startsWith(`${route.resource}/${route.namespace}/`)) continue
        if (name !== undefined && nameOf(object) !== name) continue
        this.writeEvent(watcher, "ADDED", object)
      }
    } else {
      const revision = Number(from)
      if (!Number.isInteger(revision)) {
        this.writeEvent(watcher, "ERROR", statusObject(400, `invalid resource version ${JSON.stringify(from)}`))
        response.end()
        return
      }
      if (revision < this.compactedRevision) {
        this.writeEvent(
          watcher,
          "ERROR",
          statusObject(410, `too old resource version: ${revision} (${this.compactedRevision})`)
        )
        response.end()
        return
      }
      for (const event of this.history) {
        if (event.revision > revision && this.watches(watcher, event)) this.writeEvent(watcher, event.type, event.object)
      }
    }
    this.watchers.add(watcher)
    this.watchCount += 1
    const timeoutSeconds = Number(query.timeoutSeconds)
    let timer: NodeJS.Timeout | undefined
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      timer = setTimeout(() => {
        this.timers.delete(timer!)
        this.watchers.delete(watcher)
        response.end()
      }, timeoutSeconds * 1000)
      this.timers.add(timer)
    }
    response.on("close", () => {
      this.watchers.delete(watcher)
      if (timer !== undefined) {
        clearTimeout(timer)
        this.timers.delete(timer)
      }
    })
  }
}

/** `FakeApiServer.start()` as an Effect, closed when the scope closes. */
export const acquireFakeApiServer = (options: FakeApiServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => FakeApiServer.start(options)),
    (api) => Effect.promise(() => api.close())
  )

/** A fake API server as an Effect service, for `layer(...)` in @effect/vitest. */
export class FakeApi extends Context.Service<FakeApi, FakeApiServer>()("test/support/FakeApi") {
  /** Starts a server for the layer's lifetime. */
  static readonly layer = (options: FakeApiServerOptions = {}): Layer.Layer<FakeApi> =>
    Layer.effect(FakeApi, acquireFakeApiServer(options))
}
