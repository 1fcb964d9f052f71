/**
 * KubeClientLive: the KubeClient over a real API server, through
 * `@kubernetes/client-node`.
 *
 * The library provides the configuration (`KubeConfig`: in-cluster service
 * account or kubeconfig file) and the authentication (bearer token, client
 * certificate, exec plugins, the TLS dispatcher). The requests go out through
 * `undici.request` on that dispatcher, not through the library's fetch-based
 * transport: fetch's web streams cost about three times the CPU per call, and
 * an admission makes up to four calls (test/bench/RESULTS.md).
 *
 * The requests are raw: the generated `CoreV1Api` turns answers into class
 * instances and back, which drops fields its models do not know (a replaced
 * webhook configuration would lose them) and gives no hold on the request; its
 * `Watch` skips lines it cannot parse and cannot be aborted before the server
 * answers. Here every answer stays the API's JSON, every request carries an
 * `AbortSignal` that interruption and the per-call timeout
 * (`ClusterSettings.kubeCallTimeout`) fire, and a watch line that is not an event
 * ends the watch with an error.
 *
 * Errors are the tagged `KubeError`s of `errors.ts`, built from status codes,
 * error codes and the `reason` of a `Status` only: a response body may echo a
 * Secret and never reaches an error or a log line.
 */
import { KubeConfig, RequestContext } from "@kubernetes/client-node"
import { Duration, Effect, Layer, Option, Predicate, Schema, Stream } from "effect"
import * as fs from "node:fs"
import { STATUS_CODES } from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { request as undiciRequest } from "undici"
import { observeKubeClient } from "../observability/Kube.ts"
import { ClusterSettings } from "./ClusterSettings.ts"
import {
  KubeConflict,
  type KubeError,
  KubeForbidden,
  notFound,
  KubeRequestFailed,
  KubeTransient,
  type Resource
} from "./errors.ts"
import { KubeClient } from "./KubeClient.ts"
import { type ConfigMap, metadataOf, type RawObject, toConfigMap, toSecret } from "./objects.ts"

/** No Kubernetes configuration could be found or loaded. */
export class KubeConfigError extends Schema.TaggedError<KubeConfigError>()("KubeConfigError", {
  reason: Schema.String
}) {
  override get message() {
    return `no usable Kubernetes configuration: ${this.reason}`
  }
}

/** Where the service account's credentials are mounted in a pod. */
export const serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

export interface LoadKubeConfigOptions {
  /** The environment to read (KUBERNETES_SERVICE_HOST, KUBECONFIG, HOME). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * Prefixed to the service-account paths, as `KubeConfig.loadFromCluster`
   * does (tests point it at a temporary folder). Default "".
   */
  readonly serviceAccountPrefix?: string
}

/**
 * The configuration to use: in a pod (KUBERNETES_SERVICE_HOST set and the
 * service-account token mounted) the service account; otherwise the files of
 * KUBECONFIG, or `~/.kube/config`. Unlike `KubeConfig.loadFromDefault`, which
 * falls back to `http://localhost:8080` when it finds nothing, finding nothing
 * is a `KubeConfigError`.
 */
export const loadKubeConfig = (options: LoadKubeConfigOptions = {}): Effect.Effect<KubeConfig, KubeConfigError> =>
  Effect.suspend(() => {
    const env = options.env ?? process.env
    const prefix = options.serviceAccountPrefix ?? ""
    const tokenFile = `${prefix}${serviceAccountDirectory}/token`
    const host = env.KUBERNETES_SERVICE_HOST
    const inPod = host !== undefined && host !== "" && fs.existsSync(tokenFile)
    const kubeconfigFiles = (env.KUBECONFIG ?? "").split(path.delimiter).filter((file) => file !== "")
    const home = env.HOME !== undefined && env.HOME !== "" ? env.HOME : os.homedir()
    const homeConfig = path.join(home, ".kube", "config")

    const load = (describe: string, run: (kc: KubeConfig) => void) =>
      Effect.try({
        try: () => {
          const kc = new KubeConfig()
          run(kc)
          return kc
        },
        catch: (error) =>
          new KubeConfigError({ reason: `cannot load ${describe}: ${shortMessage(error)}` })
      }).pipe(
        Effect.flatMap((kc) =>
          kc.getCurrentCluster() === null
            ? Effect.fail(new KubeConfigError({ reason: `${describe} names no current context with a cluster` }))
            : Effect.succeed(kc)
        )
      )

    if (inPod) {
      return load("the in-cluster service account", (kc) => {
        // loadFromCluster reads the host and port from process.env.
        withEnv(env, () => kc.loadFromCluster(prefix))
      })
    }
    if (kubeconfigFiles.length > 0) {
      const missing = kubeconfigFiles.filter((file) => !fs.existsSync(file))
      if (missing.length === kubeconfigFiles.length) {
        return Effect.fail(
          new KubeConfigError({ reason: `KUBECONFIG names no existing file (${kubeconfigFiles.join(path.delimiter)})` })
        )
      }
      return load(`KUBECONFIG (${kubeconfigFiles.join(path.delimiter)})`, (kc) => {
        const [first, ...rest] = kubeconfigFiles.filter((file) => fs.existsSync(file))
        kc.loadFromFile(first!)
        for (const file of rest) {
          const other = new KubeConfig()
          other.loadFromFile(file)
          // As kubectl: the first file that names a current context wins.
          kc.mergeConfig(other, kc.currentContext !== undefined && kc.currentContext !== "")
        }
      })
    }
    if (fs.existsSync(homeConfig)) {
      return load(homeConfig, (kc) => kc.loadFromFile(homeConfig))
    }
    return Effect.fail(
      new KubeConfigError({
        reason: "not running in a pod (KUBERNETES_SERVICE_HOST is unset or no service-account token at " +
          `${tokenFile}), KUBECONFIG is unset and ${homeConfig} does not exist`
      })
    )
  })

const withEnv = (env: Readonly<Record<string, string | undefined>>, run: () => void) => {
  if (env === process.env) return run()
  const keys = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] as const
  const saved = keys.map((key) => process.env[key])
  keys.forEach((key) => {
    const value = env[key]
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  })
  try {
    run()
  } finally {
    keys.forEach((key, index) => {
      const value = saved[index]
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    })
  }
}

export interface LiveOptions {
  /**
   * How long the API server keeps a watch open (its `timeoutSeconds`); the
   * stream then ends and the consumer watches again. A client-side guard ends
   * it too if the server does not, so a silently dead connection cannot hold
   * a watch forever. Default 300.
   */
  readonly watchTimeoutSeconds?: number
}

// -----------------------------------------------------------------------------
// Requests

type Verb = "get" | "list" | "watch" | "create" | "update"

/** What a request is about: every error names it. */
interface Call {
  readonly resource: Resource
  readonly verb: Verb
  readonly namespace: string
  readonly objectName: string
}

interface Answer {
  readonly status: number
  readonly headers: ResponseHeaders
  readonly text: string
}

/** Response headers as undici gives them: lower-case names, repeated ones as arrays. */
type ResponseHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>

/** Thrown when a call's own timer aborted it. */
class CallTimedOut {}

/** Thrown while preparing a request (the configuration's fault, not the network's). */
class PrepareError {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

const coreObjectsPath = (namespace: string, resource: "configmaps" | "secrets" | "events", name?: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}` +
  (name === undefined ? "" : `/${encodeURIComponent(name)}`)

const webhookPath = (name?: string) =>
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations" +
  (name === undefined ? "" : `/${encodeURIComponent(name)}`)

/** A short, body-free description of a thrown value: its error code, else its name. */
const shortMessage = (error: unknown): string => {
  if (error instanceof PrepareError) return error.message
  if (error instanceof Error) {
    const code = errorCode(error)
    const message = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message
    return code === undefined ? `${error.name}: ${message}` : `${code} (${error.name})`
  }
  return "unknown error"
}

/** The first `code` along an error's `cause` chain (undici wraps socket errors in `TypeError: fetch failed`). */
const errorCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && Predicate.isObject(current); depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    const errors = (current as { errors?: unknown }).errors
    if (Array.isArray(errors) && errors.length > 0) {
      current = errors[0]
      continue
    }
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

const transientCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_ABORTED"
])

const transientMessages = /socket hang up|other side closed|terminated|ECONNRESET|ECONNREFUSED/i

/** A failure to get an answer at all: the network's (transient) or the configuration's (not). */
const fromThrown = (call: Call, error: unknown): KubeError => {
  if (error instanceof PrepareError) {
    return new KubeRequestFailed({ ...call, reason: `cannot prepare the request: ${error.message}` })
  }
  const code = errorCode(error)
  const name = error instanceof Error ? error.name : ""
  const message = error instanceof Error ? error.message : ""
  if (
    (code !== undefined && transientCodes.has(code)) || name === "AbortError" || name === "TimeoutError" ||
    (code === undefined && transientMessages.test(message)) ||
    (code === undefined && error instanceof Error && error.cause instanceof Error &&
      transientMessages.test(error.cause.message))
  ) {
    return new KubeTransient({ ...call, reason: `connection failed: ${code ?? (message || name)}` })
  }
  return new KubeRequestFailed({ ...call, reason: `request failed: ${shortMessage(error)}` })
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date. */
const retryAfterMillis = (header: string | ReadonlyArray<string> | undefined): number | undefined => {
  const value = typeof header === "string" ? header : header?.[0]
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** The `reason` of a `Status` body when it is a plain word (NotFound, AlreadyExists...); nothing else is read. */
const statusReason = (text: string): string | undefined => {
  try {
    const parsed: unknown = JSON.parse(text)
    if (Predicate.isObject(parsed) && "reason" in parsed && typeof parsed.reason === "string") {
      return /^[A-Za-z]{1,64}$/.test(parsed.reason) ? parsed.reason : undefined
    }
  } catch {
    // not JSON: nothing to say
  }
  return undefined
}

/** An answer that is not a success, as a tagged error. The body is not copied: at most its Status reason word. */
const fromStatus = (call: Call, status: number, headers: ResponseHeaders, text: string): KubeError => {
  const statusText = `${status} ${STATUS_CODES[status] ?? "Unknown"}`
  if (status === 404) return notFound(call)
  if (status === 401 || status === 403) return new KubeForbidden({ ...call, status })
  if (status === 409) return new KubeConflict(call)
  if (status === 429 || status >= 500 || status === 408) {
    const after = retryAfterMillis(headers["retry-after"])
    return new KubeTransient({
      ...call,
      reason: `the API server answered ${statusText}`,
      ...(after === undefined ? {} : { retryAfterMillis: after })
    })
  }
  const reason = statusReason(text)
  return new KubeRequestFailed({
    ...call,
    reason: `the API server answered ${statusText}${reason === undefined ? "" : ` (${reason})`}`
  })
}

const parseObject = (call: Call, text: string, kind?: string): Effect.Effect<RawObject, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // The parser's message quotes the text: never pass it on.
    return Effect.fail(new KubeRequestFailed({ ...call, reason: "the answer is not JSON" }))
  }
  if (!Predicate.isObject(parsed) || Array.isArray(parsed)) {
    return Effect.fail(new KubeRequestFailed({ ...call, reason: "the answer is not a JSON object" }))
  }
  const object = parsed as RawObject
  if (kind !== undefined && object.kind !== undefined && object.kind !== kind) {
    return Effect.fail(
      new KubeRequestFailed({
        ...call,
        reason: `the answer is not a ${kind}` + (typeof object.kind === "string" && /^\w{1,64}$/.test(object.kind)
          ? ` but a ${object.kind}`
          : "")
      })
    )
  }
  return Effect.succeed(object)
}

/** One watch event line, as what the stream emits: nothing (BOOKMARK), the new state, or an error. */
const parseWatchLine = (call: Call, line: string): Stream.Stream<Option.Option<ConfigMap>, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return Stream.fail(new KubeTransient({ ...call, reason: "the watch sent a line that is not JSON" }))
  }
  if (!Predicate.isObject(parsed) || !("type" in parsed) || !("object" in parsed) || !Predicate.isObject(parsed.object)) {
    return Stream.fail(new KubeTransient({ ...call, reason: "the watch sent something that is not a watch event" }))
  }
  const object = parsed.object as RawObject
  switch (parsed.type) {
    case "ADDED":
    case "MODIFIED":
      return Stream.succeed(Option.some(toConfigMap(object)))
    case "DELETED":
      return Stream.succeed(Option.none())
    case "BOOKMARK":
      return Stream.empty
    case "ERROR": {
      const code = typeof object.code === "number" ? object.code : undefined
      const reason = typeof object.reason === "string" && /^[A-Za-z]{1,64}$/.test(object.reason)
        ? ` ${object.reason}`
        : ""
      return Stream.fail(
        new KubeTransient({
          ...call,
          reason: `the watch ended with an ERROR event${code === undefined ? "" : ` (${code}${reason})`}`
        })
      )
    }
    default:
      return Stream.fail(new KubeTransient({ ...call, reason: "the watch sent an event of unknown type" }))
  }
}

// -----------------------------------------------------------------------------
// The layer

/**
 * The KubeClient over the cluster `kc` points at. Every call gets
 * `ClusterSettings.kubeCallTimeout` (a watch: to open; then it streams as long as
 * the server keeps it) and aborts its request when interrupted.
 */
export const layerFromKubeConfig = (
  kc: KubeConfig,
  options: LiveOptions = {}
): Layer.Layer<KubeClient, never, ClusterSettings> =>
  Layer.effect(
    KubeClient,
    Effect.gen(function*() {
      const settings = yield* ClusterSettings
      const timeout = settings.kubeCallTimeout
      const timeoutMillis = Duration.toMillis(timeout)
      const watchTimeoutSeconds = Math.max(1, Math.round(options.watchTimeoutSeconds ?? 300))

      // client-node makes a new undici Agent (a new connection pool, a new TLS
      // handshake) for every request it authenticates; keep the first one and
      // reuse it, closed with the layer.
      let dispatcher: Dispatcher | undefined
      yield* Effect.addFinalizer(() =>
        dispatcher === undefined ? Effect.void : Effect.promise(() => dispatcher!.destroy().catch(() => undefined))
      )
      const server = kc.getCurrentCluster()?.server.replace(/\/+$/, "")

      /** Sends one request; the promise settles when the answer's head arrives. */
      const send = async (
        method: "GET" | "POST" | "PUT",
        urlPath: string,
        query: Readonly<Record<string, string>>,
        body: RawObject | undefined,
        signal: AbortSignal
      ) => {
        if (server === undefined) throw new PrepareError("the kubeconfig has no current cluster")
        let url: URL
        let headers: Record<string, string>
        try {
          url = new URL(server + urlPath)
          for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value)
          // Authentication is asked for on every request: tokens from files and
          // exec plugins are refreshed by client-node, which caches them itself.
          const context = new RequestContext(url.toString(), method)
          await kc.applySecurityAuthentication(context)
          if (dispatcher === undefined) dispatcher = context.getDispatcher()
          headers = context.getHeaders()
        } catch (error) {
          throw new PrepareError(shortMessage(error))
        }
        headers["Accept"] = "application/json"
        headers["User-Agent"] = "filer-sidecar-injector"
        if (body !== undefined) headers["Content-Type"] = "application/json"
        return undiciRequest(url, {
          method,
          headers,
          signal,
          ...(dispatcher === undefined ? {} : { dispatcher }),
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
      }

      const timedOutError = (call: Call) => new KubeTransient({ ...call, reason: `no answer within ${timeoutMillis} ms` })
      const timedOut = (call: Call) => () => Effect.fail(timedOutError(call))

      /**
       * A whole request and its answer's body, within the call timeout. The
       * timeout is a timer aborting the request, not an Effect race: a race
       * forks two fibers per call, and an admission makes up to four calls.
       */
      const request = (
        call: Call,
        method: "GET" | "POST" | "PUT",
        urlPath: string,
        options: { readonly query?: Readonly<Record<string, string>>; readonly body?: RawObject } = {}
      ): Effect.Effect<Answer, KubeError> =>
        Effect.tryPromise({
          try: async (interrupted): Promise<Answer> => {
            const controller = new AbortController()
            let timerFired = false
            const timer = setTimeout(() => {
              timerFired = true
              controller.abort()
            }, timeoutMillis)
            const onInterrupt = () => controller.abort()
            interrupted.addEventListener("abort", onInterrupt, { once: true })
            try {
              const response = await send(method, urlPath, options.query ?? {}, options.body, controller.signal)
              const text = await response.body.text()
              return { status: response.statusCode, headers: response.headers, text }
            } catch (error) {
              throw timerFired ? new CallTimedOut() : error
            } finally {
              clearTimeout(timer)
              interrupted.removeEventListener("abort", onInterrupt)
            }
          },
          catch: (error) => error instanceof CallTimedOut ? timedOutError(call) : fromThrown(call, error)
        })

      /** A request whose success is a JSON object (of `kind` when given). */
      const requestObject = (
        call: Call,
        method: "GET" | "POST" | "PUT",
        urlPath: string,
        options: { readonly query?: Readonly<Record<string, string>>; readonly body?: RawObject; readonly kind?: string }
      ): Effect.Effect<RawObject, KubeError> =>
        Effect.flatMap(request(call, method, urlPath, options), (answer) =>
          answer.status >= 200 && answer.status < 300
            ? parseObject(call, answer.text, options.kind)
            : Effect.fail(fromStatus(call, answer.status, answer.headers, answer.text)))

      /** The events of a watch from `resourceVersion`, as states; ends when the server ends the watch. */
      const watchEvents = (
        call: Call,
        urlPath: string,
        query: Readonly<Record<string, string>>
      ): Stream.Stream<Option.Option<ConfigMap>, KubeError> =>
        Stream.unwrap(
          Effect.gen(function*() {
            // Aborted when the stream ends, fails or is interrupted: the request does not outlive it.
            const controller = yield* Effect.acquireRelease(
              Effect.sync(() => new AbortController()),
              (controller) => Effect.sync(() => controller.abort())
            )
            const response = yield* Effect.tryPromise({
              try: () => send("GET", urlPath, query, undefined, controller.signal),
              catch: (error) => fromThrown(call, error)
            }).pipe(Effect.timeoutOrElse({ duration: timeout, orElse: timedOut(call) }))
            if (response.statusCode !== 200) {
              const text = yield* Effect.tryPromise({
                try: () => response.body.text(),
                catch: (error) => fromThrown(call, error)
              }).pipe(Effect.timeoutOrElse({ duration: timeout, orElse: timedOut(call) }))
              return yield* Effect.fail(fromStatus(call, response.statusCode, response.headers, text))
            }
            return Stream.fromAsyncIterable<Uint8Array, KubeError>(response.body, (error) => fromThrown(call, error)).pipe(
              Stream.decodeText,
              Stream.splitLines,
              Stream.filter((line) => line.trim() !== ""),
              Stream.flatMap((line) => parseWatchLine(call, line)),
              // The server promised to end it after timeoutSeconds; do not wait much longer.
              Stream.interruptWhen(Effect.sleep(Duration.sum(Duration.seconds(watchTimeoutSeconds), timeout)))
            )
          })
        )

      // Every call gets a span and metrics (observability/Kube.ts).
      return KubeClient.of(observeKubeClient({
        getConfigMap: (namespace, name) => {
          const call: Call = { resource: "configmaps", verb: "get", namespace, objectName: name }
          return requestObject(call, "GET", coreObjectsPath(namespace, "configmaps", name), { kind: "ConfigMap" }).pipe(
            Effect.map(toConfigMap)
          )
        },

        getSecret: (namespace, name) => {
          const call: Call = { resource: "secrets", verb: "get", namespace, objectName: name }
          return requestObject(call, "GET", coreObjectsPath(namespace, "secrets", name), { kind: "Secret" }).pipe(
            Effect.map(toSecret)
          )
        },

        watchConfigMap: (namespace, name) => {
          const listCall: Call = { resource: "configmaps", verb: "list", namespace, objectName: name }
          const watchCall: Call = { ...listCall, verb: "watch" }
          const fieldSelector = `metadata.name=${name}`
          const urlPath = coreObjectsPath(namespace, "configmaps")
          return Stream.unwrap(
            Effect.gen(function*() {
              const list = yield* requestObject(listCall, "GET", urlPath, {
                query: { fieldSelector },
                kind: "ConfigMapList"
              })
              const metadata = Predicate.isObject(list.metadata) ? list.metadata as RawObject : {}
              const resourceVersion = metadata.resourceVersion
              if (typeof resourceVersion !== "string" || resourceVersion === "" || !Array.isArray(list.items)) {
                return yield* Effect.fail(
                  new KubeRequestFailed({ ...listCall, reason: "the answer is not a list with a resourceVersion" })
                )
              }
              const item = (list.items as ReadonlyArray<unknown>).find(
                (item): item is RawObject => Predicate.isObject(item) && metadataOf(item as RawObject).name === name
              )
              const current = item === undefined ? Option.none() : Option.some(toConfigMap(item))
              return Stream.succeed(current).pipe(
                Stream.concat(
                  watchEvents(watchCall, urlPath, {
                    watch: "true",
                    fieldSelector,
                    resourceVersion,
                    timeoutSeconds: String(watchTimeoutSeconds)
                  })
                )
              )
            })
          )
        },

        createSecret: (secret) => {
          const call: Call = { resource: "secrets", verb: "create", namespace: secret.namespace, objectName: secret.name }
          const body: RawObject = {
            apiVersion: "v1",
            kind: "Secret",
            metadata: { name: secret.name, namespace: secret.namespace, labels: { ...secret.labels } },
            type: "Opaque",
            stringData: { ...secret.stringData }
          }
          return requestObject(call, "POST", coreObjectsPath(secret.namespace, "secrets"), { body, kind: "Secret" })
            .pipe(Effect.map(toSecret))
        },

        getWebhookConfiguration: (name) => {
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "get", namespace: "", objectName: name }
          return requestObject(call, "GET", webhookPath(name), { kind: "MutatingWebhookConfiguration" })
        },

        createWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "create", namespace: "", objectName: name }
          return requestObject(call, "POST", webhookPath(), { body: object, kind: "MutatingWebhookConfiguration" })
            .pipe(Effect.asVoid)
        },

        replaceWebhookConfiguration: (object) => {
          const name = metadataOf(object).name
          const call: Call = { resource: "mutatingwebhookconfigurations", verb: "update", namespace: "", objectName: name }
          return requestObject(call, "PUT", webhookPath(name), { body: object, kind: "MutatingWebhookConfiguration" })
            .pipe(Effect.asVoid)
        },

        // Events: POST to create, PUT to count a repeat (docs/behaviour.md, "Events").
        createEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          const call: Call = { resource: "events", verb: "create", namespace, objectName: name }
          return requestObject(call, "POST", coreObjectsPath(namespace, "events"), { body: event, kind: "Event" })
        },

        replaceEvent: (event) => {
          const { name, namespace } = metadataOf(event)
          const call: Call = { resource: "events", verb: "update", namespace, objectName: name }
          return requestObject(call, "PUT", coreObjectsPath(namespace, "events", name), { body: event, kind: "Event" })
        }
      }))
    })
  )

/**
 * The KubeClient of the cluster this process runs in (its service account) or,
 * outside a pod, of the default kubeconfig (KUBECONFIG, `~/.kube/config`).
 */
export const layer: Layer.Layer<KubeClient, KubeConfigError, ClusterSettings> = Layer.unwrap(
  Effect.map(loadKubeConfig(), (kc) => layerFromKubeConfig(kc))
)
