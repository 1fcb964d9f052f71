/**
 * A fake Kubernetes API server for tests: real HTTP on 127.0.0.1, the real
 * REST paths and JSON shapes, objects held in memory, and switches to make it
 * misbehave while a test runs. It is an HTTP front over a `MemoryClusterStore`
 * (src/cluster/MemoryCluster.ts, `store`): objects, faults and latency have
 * the one implementation the memory KubeClient also uses; the front adds
 * the token check, TLS, the request log and the watch connections.
 *
 * What it serves: see fakeApiRoutes.ts.
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
 *   api.hang({ path: "watch=true" })       // matching requests never get an answer
 *   api.setLatency(20)                       // round-trip time added to every request
 *   api.dropWatches()                        // the server ends every open watch
 *   await api.close()
 *
 * In Effect tests, `FakeApi.layer()` starts one for the layer's lifetime.
 */
import type { KubeConfig } from "../../src/cluster/live/kubeconfigTypes.ts"
import { Context, Duration, Effect, Layer } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo, Socket } from "node:net"
import type { Resource } from "../../src/cluster/errors.ts"
import { type CallDescription, type FaultHandle, MemoryClusterStore, type WireFault } from "../../src/cluster/MemoryCluster.ts"
import {
  faultMessage,
  HttpError,
  kinds,
  kubeConfigFor,
  type KubeConfigOptions,
  type LoggedRequest,
  type RequestMatch,
  parseRoute,
  readBody,
  sendJson,
  sendStatus,
  statusObject,
  verbOf,
  waitOrGiveUp,
  writeKubeconfigFile
} from "./fakeApiHttp.ts"
import { defaulted, ObjectRoutes } from "./fakeApiRoutes.ts"

export { statusObject }
export type { KubeConfigOptions }
export type { FaultHandle, LoggedRequest, RequestMatch }

/** An object as the API speaks it: plain JSON. */
export type JsonObject = { [key: string]: unknown }

/** The resources the fake serves. */
export type FakeResource = Resource

export interface FakeApiServerOptions {
  /** The bearer token requests must carry. Default "fake-token". */
  readonly token?: string
  /** Objects to start with, as for `put`. */
  readonly objects?: Iterable<JsonObject>
  /** Serve HTTPS with this pair; `kubeConfig()` then trusts `caPem`. Default: plain HTTP. */
  readonly tls?: { readonly certPem: string; readonly keyPem: string; readonly caPem: string }
  /** Who the token is, as a SelfSubjectAccessReview asks `allowAccess`. Default: the injector's ServiceAccount. */
  readonly user?: string
  /** How access reviews are answered from the start, as for `allowAccess`. */
  readonly access?: (question: AccessQuestion) => boolean
}

/** The `spec.resourceAttributes` of a SubjectAccessReview, and its `spec.user`. */
export interface AccessQuestion {
  readonly user: string
  readonly namespace: string
  readonly verb: string
  readonly resource: string
  readonly name: string
}

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value)

const subjectAccessReviewsPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
const selfSubjectAccessReviewsPath = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

export class FakeApiServer {
  // The fake serves every request its token makes, so it allows every question unless told otherwise.
  private accessAnswer: (question: AccessQuestion) => boolean = () => true
  /** Who the token is: a SelfSubjectAccessReview asks about this user. */
  readonly user: string
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string
  readonly port: number
  /** The bearer token requests must carry. */
  readonly token: string
  /** The objects, faults and latency: the same store `KubeClient.layerMemory` serves. */
  readonly store = new MemoryClusterStore([])

  private readonly routes = new ObjectRoutes(this.store)
  private readonly sockets = new Set<Socket>()
  private readonly pending = new Set<() => void>()
  private readonly log: Array<LoggedRequest> = []
  private connectionCount = 0
  private abandonedCount = 0
  private closed = false

  private readonly server: http.Server | https.Server
  private readonly caPem: string | undefined

  private constructor(server: http.Server | https.Server, token: string, caPem: string | undefined, user: string) {
    this.server = server
    this.caPem = caPem
    this.token = token
    this.user = user
    this.port = (server.address() as AddressInfo).port
    this.url = `${caPem === undefined ? "http" : "https"}://127.0.0.1:${this.port}`
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
    const user = options.user ?? "system:serviceaccount:das:filer-sidecar-injector"
    const api = new FakeApiServer(server, options.token ?? "fake-token", options.tls?.caPem, user)
    server.on("connection", (socket) => {
      api.connectionCount += 1
      api.sockets.add(socket)
      socket.on("close", () => api.sockets.delete(socket))
    })
    server.on("request", (request, response) => {
      void api.handle(request, response).catch(() => {
        if (!response.headersSent) sendStatus(response, 500, "fake API server: unexpected failure")
        else response.destroy()
      })
    })
    for (const object of options.objects ?? []) api.put(object)
    if (options.access !== undefined) api.allowAccess(options.access)
    return api
  }

  /** A KubeConfig pointing at this server (over HTTPS trusting its CA, or `caPem`). */
  kubeConfig(options: KubeConfigOptions = {}): KubeConfig {
    return kubeConfigFor(this.url, this.token, this.caPem, options)
  }

  /** `kubeConfig()` as a kubeconfig YAML file; with `caFile`, an HTTPS server's CA goes there (as a pod's service account has it). */
  writeKubeconfig(file: string, options: { readonly caFile?: string } = {}): void {
    writeKubeconfigFile(file, this.url, this.token, this.caPem, options.caFile)
  }

  /** Stops the server: ends open watches, drops every connection, cancels pending delays. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const cancel of [...this.pending]) cancel()
    for (const watcher of this.routes.watchers) watcher.response.destroy()
    this.routes.watchers.clear()
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    for (const socket of this.sockets) socket.destroy()
    await closing
  }

  // Objects: held by the store; the front adds what the API server defaults (uid, creationTimestamp, a Secret's data).

  /** Adds or replaces an object by its kind, namespace ("default" when absent) and name. Returns it as stored. */
  put(object: JsonObject): JsonObject {
    const resource = Object.entries(kinds).find(([, info]) => info.kind === object.kind)?.[0] as Resource | undefined
    if (resource === undefined) throw new Error(`FakeApiServer.put: unsupported kind ${String(object.kind)}`)
    const metadata = (object.metadata ?? {}) as JsonObject
    const clusterScoped = resource === "mutatingwebhookconfigurations" || resource === "namespaces"
    const namespace = clusterScoped ? "" : String(metadata.namespace ?? "default")
    return structuredClone(this.store.put(defaulted(this.store, resource, namespace, object))!) as JsonObject
  }

  /**
   * How SubjectAccessReviews, and the token user's SelfSubjectAccessReviews,
   * are answered from now on (default: every question allowed).
   */
  allowAccess(answer: (question: AccessQuestion) => boolean): void {
    this.accessAnswer = answer
  }

  /** The Events stored in `namespace`, in the order they were created (copies). */
  events(namespace: string): ReadonlyArray<JsonObject> {
    return this.store.events(namespace).map((event) => structuredClone(event) as JsonObject)
  }

  /** Deletes an object (watches see DELETED). Returns whether it existed. */
  remove(resource: FakeResource, namespace: string, name: string): boolean {
    return this.store.remove(resource, namespace, name)
  }

  /** The object as stored (a copy), if any. */
  get(resource: FakeResource, namespace: string, name: string): JsonObject | undefined {
    const found = this.store.get(resource, namespace, name)
    return found._tag === "Some" ? structuredClone(found.value) as JsonObject : undefined
  }

  /** The last change's resource version. */
  get resourceVersion(): string {
    return String(this.store.resourceVersion)
  }

  /** Forgets the change history: a watch from an older resource version gets an ERROR event 410 Expired. */
  compact(): void {
    this.store.compact()
  }

  // Faults: recorded in the store's fault plan, so the memory KubeClient would meet the same ones.

  /** Answers matching requests with `status` and a `Status` body (with Retry-After, or a planted message). */
  respondWith(
    status: number,
    match: RequestMatch & { readonly retryAfterSeconds?: number; readonly message?: string } = {}
  ): FaultHandle {
    return this.fault(match, { kind: "status", status, retryAfterSeconds: match.retryAfterSeconds, message: match.message })
  }

  /** Delays matching requests by `millis` before anything else happens to them. */
  delay(millis: number, match: RequestMatch = {}): FaultHandle {
    return this.fault(match, { kind: "delay", millis })
  }

  /** Destroys the connection of matching requests without an answer. */
  resetConnections(match: RequestMatch = {}): FaultHandle {
    return this.fault(match, { kind: "reset" })
  }

  /** Never answers matching requests (until the client gives up or the server closes). */
  hang(match: RequestMatch = {}): FaultHandle {
    return this.fault(match, { kind: "hang" })
  }

  /** Round-trip time added to every request (0 to stop). */
  setLatency(millis: number): void {
    this.store.setLatency(Duration.millis(millis))
  }

  /** Removes every fault and the latency. */
  clearFaults(): void {
    this.store.clearFaults()
    this.store.setLatency(Duration.zero)
  }

  // Watches

  /** How many watch requests are open now (one the client just aborted may count a moment more). */
  get openWatches(): number {
    return this.routes.watchers.size
  }

  /** How many watches have been opened since start. */
  get watchesOpened(): number {
    return this.routes.opened
  }

  /** Ends every open watch, as the API server does after its watch timeout: cleanly, or by a `reset`. */
  dropWatches(options: { readonly reset?: boolean } = {}): void {
    this.routes.drop(options.reset === true)
  }

  /** Writes a line that is not a watch event on every open watch. */
  sendGarbage(line = "this is not a watch event {"): void {
    this.routes.broadcast(undefined, () => line)
  }

  /** Sends a BOOKMARK event at the current resource version on every open watch. */
  sendBookmark(): void {
    const metadata = { resourceVersion: this.resourceVersion }
    this.routes.broadcast("BOOKMARK", (route) => {
      const { kind, apiVersion } = kinds[route.resource]
      return { kind, apiVersion, metadata }
    })
  }

  /** Sends an ERROR event carrying a Status with `code` on every open watch (they stay open). */
  sendWatchError(code = 410, message = "too old resource version"): void {
    this.routes.broadcast("ERROR", () => statusObject(code, message))
  }

  /** Resolves once at least `count` watches are open (mind leftovers from an earlier test), or rejects. */
  waitForWatches(count = 1, timeoutMillis = 2000): Promise<void> {
    return this.waitFor(() => this.openWatches >= count, timeoutMillis, `${count} open watches`)
  }

  /** Resolves once `condition()` holds (checked every 5 ms), or rejects after `timeoutMillis`. */
  async waitFor(condition: () => boolean, timeoutMillis = 2000, what = "a condition"): Promise<void> {
    const deadline = Date.now() + timeoutMillis
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`FakeApiServer: waited ${timeoutMillis} ms for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  // Request log

  /** Every request received since start (or the last `clearRequests`), faulted ones included. */
  get requests(): ReadonlyArray<LoggedRequest> {
    return [...this.log]
  }

  clearRequests(): void {
    this.log.length = 0
  }

  /** How many delayed or hung requests the client gave up on (closing the connection before the answer). */
  get requestsAbandoned(): number {
    return this.abandonedCount
  }

  /** How many TCP connections the server has accepted since start (over HTTPS, before their handshakes). */
  get connectionsAccepted(): number {
    return this.connectionCount
  }

  /** How many connections are open now, watches' and idle kept-alive ones included. */
  get openConnections(): number {
    return this.sockets.size
  }

  // Internals

  private fault(match: RequestMatch, wire: WireFault): FaultHandle {
    const matches = ({ request }: CallDescription) =>
      (match.method === undefined || request?.method === match.method.toUpperCase()) &&
      (match.path === undefined || request?.url.includes(match.path) === true)
    return this.store.addFault({ matches, wire }, match.times ?? Infinity)
  }

  /** A SubjectAccessReview, or a SelfSubjectAccessReview (about `user`), answered by `allowAccess`. */
  private async reviewAccess(request: http.IncomingMessage, response: http.ServerResponse, self: boolean): Promise<void> {
    const resource = self ? "selfsubjectaccessreviews" : "subjectaccessreviews"
    const body = await readBody(request, { group: "authorization.k8s.io", resource, namespace: "", name: undefined })
    const spec = isObject(body.spec) ? body.spec : {}
    const attributes = isObject(spec.resourceAttributes) ? spec.resourceAttributes : {}
    const text = (value: unknown) => (typeof value === "string" ? value : "")
    const allowed = this.accessAnswer({
      user: self ? this.user : text(spec.user),
      namespace: text(attributes.namespace),
      verb: text(attributes.verb),
      resource: text(attributes.resource),
      name: text(attributes.name)
    })
    sendJson(response, 201, { ...body, status: allowed ? { allowed: true } : { allowed: false, reason: "no RBAC rule allows it" } })
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase()
    const url = request.url ?? "/"
    const parsed = new URL(url, "http://fake")
    const query = Object.fromEntries(parsed.searchParams)
    this.log.push({ method, path: parsed.pathname, query, url, at: Date.now() })
    const route = parseRoute(parsed.pathname)
    const watch = query.watch === "true" || query.watch === "1"
    const verb = verbOf(method, route?.name, watch)
    const { latency, failure } = this.store.plan({
      // A path the fake does not serve still meets the faults; it names no resource.
      resource: (route?.resource ?? "") as Resource,
      verb,
      namespace: route?.namespace ?? "",
      objectName: route?.name ?? "",
      request: { method, url }
    })
    const waitMillis = failure?.kind === "hang" ? Infinity : Duration.toMillis(latency)
    const answer = await waitOrGiveUp(waitMillis, request.socket, this.pending, () => this.abandonedCount += 1)
    if (!answer || this.closed) return
    if (failure?.kind === "reset") return void request.socket.destroy()
    if (failure?.kind === "status") {
      request.resume() // the body is discarded, so the connection stays usable
      const headers = failure.retryAfterSeconds === undefined ? {} : { "Retry-After": String(failure.retryAfterSeconds) }
      const message = failure.message ??
        (route === undefined ? `fake fault ${failure.status}` : faultMessage(failure.status, verb, route))
      return sendStatus(response, failure.status, message, headers)
    }
    if (request.headers.authorization !== `Bearer ${this.token}`) {
      request.resume()
      return sendStatus(response, 401, "Unauthorized")
    }
    if (method === "POST" && parsed.pathname === subjectAccessReviewsPath) return this.reviewAccess(request, response, false)
    if (method === "POST" && parsed.pathname === selfSubjectAccessReviewsPath) return this.reviewAccess(request, response, true)
    if (route === undefined) return sendStatus(response, 404, "the server could not find the requested resource")
    try {
      await this.routes.serve(method, route, query, watch, request, response)
    } catch (error) {
      if (error instanceof HttpError) sendStatus(response, error.code, error.message, {}, error.reason)
      else throw error
    }
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
