/**
 * The HTTP side of the fake API server (fakeApiServer.ts): the REST paths it
 * serves, `Status` bodies, and what the API server defaults on a stored
 * object. Objects, faults and latency live in a `MemoryClusterStore`.
 */
import * as fs from "node:fs"
import type * as http from "node:http"
import type { Socket } from "node:net"
import type { Resource } from "../../src/cluster/errors.ts"
import type { KubeConfig } from "../../src/cluster/live/kubeconfigTypes.ts"
import type { RawObject } from "../../src/cluster/objects.ts"

type JsonObject = { [key: string]: unknown }

export const kinds: Readonly<Record<Resource, { kind: string; apiVersion: string; group: string }>> = {
  configmaps: { kind: "ConfigMap", apiVersion: "v1", group: "" },
  secrets: { kind: "Secret", apiVersion: "v1", group: "" },
  events: { kind: "Event", apiVersion: "v1", group: "" },
  pods: { kind: "Pod", apiVersion: "v1", group: "" },
  namespaces: { kind: "Namespace", apiVersion: "v1", group: "" },
  subjectaccessreviews: {
    kind: "SubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    group: "authorization.k8s.io"
  },
  selfsubjectaccessreviews: {
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    group: "authorization.k8s.io"
  },
  mutatingwebhookconfigurations: {
    kind: "MutatingWebhookConfiguration",
    apiVersion: "admissionregistration.k8s.io/v1",
    group: "admissionregistration.k8s.io"
  }
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

export class HttpError {
  readonly code: number
  readonly message: string
  readonly reason: string | undefined
  constructor(code: number, message: string, reason?: string) {
    this.code = code
    this.message = message
    this.reason = reason
  }
}

export interface Route {
  readonly group: string
  readonly resource: Resource
  /** "" for cluster-scoped resources, and for a namespaced resource across every namespace. */
  readonly namespace: string
  readonly name: string | undefined
  /** A namespaced resource across every namespace (`/api/v1/configmaps`): list and watch only. */
  readonly allNamespaces?: boolean
}

export const parseRoute = (path: string): Route | undefined => {
  const parts = path.split("/").filter((part) => part !== "").map(decodeURIComponent)
  // /api/v1/namespaces/{ns}/{resource}[/{name}]
  if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "namespaces" && parts.length >= 5 && parts.length <= 6) {
    const resource = parts[4]
    if (resource !== "configmaps" && resource !== "secrets" && resource !== "events" && resource !== "pods") return undefined
    return { group: "", resource, namespace: parts[3]!, name: parts[5] }
  }
  // /api/v1/{resource}: a namespaced resource in every namespace
  if (parts[0] === "api" && parts[1] === "v1" && parts.length === 3) {
    const resource = parts[2]
    if (resource !== "configmaps" && resource !== "secrets" && resource !== "events" && resource !== "pods") return undefined
    return { group: "", resource, namespace: "", name: undefined, allNamespaces: true }
  }
  // /api/v1/namespaces/{name}: a Namespace, cluster-scoped
  if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "namespaces" && parts.length === 4) {
    return { group: "", resource: "namespaces", namespace: "", name: parts[3] }
  }
  // /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations[/{name}]
  if (
    parts[0] === "apis" && parts[1] === "admissionregistration.k8s.io" && parts[2] === "v1" &&
    parts[3] === "mutatingwebhookconfigurations" && parts.length <= 5
  ) {
    return { group: parts[1], resource: "mutatingwebhookconfigurations", namespace: "", name: parts[4] }
  }
  return undefined
}

export const verbOf = (method: string, name: string | undefined, watch: boolean): string => {
  switch (method) {
    case "GET":
      return name !== undefined ? "get" : watch ? "watch" : "list"
    case "POST":
      return "create"
    case "PUT":
      return "update"
    default:
      return method.toLowerCase()
  }
}

/** The message the API server gives for a fault's status, as near as it can be. */
export const faultMessage = (status: number, verb: string, route: Route): string => {
  const what = route.name === undefined ? route.resource : `${route.resource} "${route.name}"`
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

/** The name of a `metadata.name=X` field selector; undefined without one; 400 for other selectors. */
export const fieldSelector = (selector: string | undefined): string | undefined => {
  if (selector === undefined || selector === "") return undefined
  const match = /^metadata\.name(?:=|==)(.*)$/.exec(selector)
  if (match === null) throw new HttpError(400, `the fake API server only supports metadata.name field selectors`)
  return match[1]!
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A request's JSON object body, with a `metadata` object whose namespace (if any) is the route's. */
export const readBody = async (request: http.IncomingMessage, route: Route): Promise<JsonObject> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"))
  } catch {
    throw new HttpError(400, "the request body is not JSON")
  }
  if (!isObject(parsed)) throw new HttpError(400, "the request body is not an object")
  if (!isObject(parsed.metadata)) parsed.metadata = {}
  const given = (parsed.metadata as JsonObject).namespace
  if (route.namespace !== "" && given !== undefined && given !== route.namespace) {
    throw new HttpError(400, "the namespace of the provided object does not match the namespace sent on the request")
  }
  return parsed
}

let uidCounter = 0

/**
 * What the API server sets on an object it stores: kind, namespace, uid and
 * creationTimestamp (kept from the `existing` one), a Secret's `stringData`
 * merged into base64 `data`, type Opaque. Changes `object` in place.
 */
export const objectDefaults = (
  resource: Resource,
  namespace: string,
  object: JsonObject,
  existing: RawObject | undefined
): JsonObject => {
  object.kind = kinds[resource].kind
  object.apiVersion = kinds[resource].apiVersion
  if (!isObject(object.metadata)) object.metadata = {}
  const metadata = object.metadata as JsonObject
  if (namespace === "") delete metadata.namespace
  else metadata.namespace = namespace
  const before = existing?.metadata as JsonObject | undefined
  metadata.uid = before?.uid ?? `00000000-0000-4000-8000-${String(++uidCounter).padStart(12, "0")}`
  metadata.creationTimestamp = before?.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z")
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
  return object
}

export const sendJson = (
  response: http.ServerResponse,
  code: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {}
): void => {
  const text = JSON.stringify(body)
  response.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers })
  response.end(text)
}

export const sendStatus = (
  response: http.ServerResponse,
  code: number,
  message: string,
  headers: http.OutgoingHttpHeaders = {},
  reason?: string
): void => {
  const status = statusObject(code, message)
  if (reason !== undefined) status.reason = reason
  sendJson(response, code, status, headers)
}

export interface KubeConfigOptions {
  /** The token the KubeConfig's user sends. Default: the server's token. */
  readonly token?: string
  /** The context's default namespace. Default "default". */
  readonly namespace?: string
  /** The CA to trust instead of the server's own (HTTPS only). */
  readonly caPem?: string
}

/** A KubeConfig for a fake server at `url`: a user with `token`; over HTTPS trusting `caPem`. */
export const kubeConfigFor = (url: string, token: string, serverCa: string | undefined, options: KubeConfigOptions): KubeConfig => {
  const caPem = options.caPem ?? serverCa
  return {
    server: url,
    namespace: options.namespace ?? "default",
    trust: caPem === undefined ? {} : { caData: caPem },
    user: { token: options.token ?? token }
  }
}

/** The same as a kubeconfig YAML file, as kubectl reads it; with `caFile`, the CA is written there and named. */
export const writeKubeconfigFile = (
  file: string,
  url: string,
  token: string,
  caPem: string | undefined,
  caFile: string | undefined
): void => {
  if (caPem !== undefined && caFile !== undefined) fs.writeFileSync(caFile, caPem)
  const cluster = caPem === undefined
    ? "    insecure-skip-tls-verify: true"
    : caFile !== undefined
    ? `    certificate-authority: ${caFile}`
    : `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`
  const lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: fake", "  cluster:", `    server: ${url}`]
  lines.push(cluster, "users:", "- name: fake-user", "  user:", `    token: ${token}`, "contexts:", "- name: fake")
  lines.push("  context:", "    cluster: fake", "    user: fake-user", "current-context: fake", "")
  fs.writeFileSync(file, lines.join("\n"), { mode: 0o600 })
}

/** Which requests a fault applies to. Every given field must match; an empty match takes every request. */
export interface RequestMatch {
  /** The HTTP method, e.g. "GET" (any when absent). */
  readonly method?: string
  /** A substring of the path and query string as sent (URL-encoded), e.g. "/secrets/" or "watch=true". */
  readonly path?: string
  /** How many matching requests the fault takes; when absent, every one until cleared. */
  readonly times?: number
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

/**
 * Waits `millis` (Infinity: a hang) before a request is answered; false when
 * the client gave up first (closing its connection: `onGiveUp` counts it) or
 * the server cancelled every pending wait while closing.
 */
export const waitOrGiveUp = (
  millis: number,
  socket: Socket,
  pending: Set<() => void>,
  onGiveUp: () => void
): Promise<boolean> => {
  if (millis <= 0) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (answer: boolean) => {
      clearTimeout(timer)
      socket.off("close", onClose)
      pending.delete(cancel)
      resolve(answer)
    }
    const cancel = () => done(false)
    const onClose = () => {
      onGiveUp()
      done(false)
    }
    const timer = Number.isFinite(millis) ? setTimeout(() => done(true), millis) : undefined
    socket.once("close", onClose)
    pending.add(cancel)
  })
}
