/**
 * The transport of the live KubeClient: one HTTP request to the API server,
 * signed by client-node, sent with `undici.request`, within the call timeout;
 * and what comes back (or is thrown) classified into a `KubeError`.
 *
 * Requests go out through `undici.request` on client-node's TLS dispatcher,
 * not through the library's fetch-based transport: fetch's web streams cost
 * about three times the CPU per call, and an admission makes up to four calls
 * (test/bench/RESULTS.md). Every request carries an `AbortSignal` that
 * interruption and the per-call timeout fire.
 *
 * Errors are built from status codes, error codes and the `reason` of a
 * `Status` only: a response body may echo a Secret and never reaches an error
 * or a log line.
 */
import { type KubeConfig, RequestContext } from "@kubernetes/client-node"
import { Duration, Effect, Predicate, type Scope, Stream } from "effect"
import { request as undiciRequest } from "undici"
import { KubeError } from "../errors.ts"
import type { RawObject } from "../objects.ts"
import { type Call, fromStatus, fromThrown, PrepareError, type ResponseHeaders } from "./classify.ts"
import { describeThrown } from "./thrown.ts"

export type Method = "GET" | "POST" | "PUT"

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string>>
  readonly body?: RawObject
  /** The `kind` a successful answer must have. */
  readonly kind?: string
}

export interface Transport {
  /** A request whose success is a JSON object (of `kind` when given). */
  readonly requestObject: (
    call: Call,
    method: Method,
    urlPath: string,
    options: RequestOptions
  ) => Effect.Effect<RawObject, KubeError>
  /**
   * The non-empty lines of a streamed answer (a watch), once it has opened
   * within the call timeout. The request is aborted when the stream ends.
   */
  readonly streamLines: (
    call: Call,
    urlPath: string,
    query: Readonly<Record<string, string>>
  ) => Stream.Stream<string, KubeError>
  /**
   * The same, as an effect that succeeds once the answer's head has arrived
   * (the server accepted the watch); the request is aborted with the scope.
   */
  readonly openLines: (
    call: Call,
    urlPath: string,
    query: Readonly<Record<string, string>>
  ) => Effect.Effect<Stream.Stream<string, KubeError>, KubeError, Scope.Scope>
}

interface Answer {
  readonly status: number
  readonly headers: ResponseHeaders
  readonly text: string
}

/** Response headers as undici gives them: lower-case names, repeated ones as arrays. */
type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>

/** Thrown when a call's own timer aborted it. */
class CallTimedOut {}

const parseObject = (call: Call, text: string, kind?: string): Effect.Effect<RawObject, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // The parser's message quotes the text: never pass it on.
    return Effect.fail(KubeError.requestFailed(call, "the answer is not JSON"))
  }
  if (!Predicate.isObject(parsed) || Array.isArray(parsed)) {
    return Effect.fail(KubeError.requestFailed(call, "the answer is not a JSON object"))
  }
  const object = parsed as RawObject
  if (kind !== undefined && object.kind !== undefined && object.kind !== kind) {
    const actual = typeof object.kind === "string" && /^\w{1,64}$/.test(object.kind) ? ` but a ${object.kind}` : ""
    return Effect.fail(KubeError.requestFailed(call, `the answer is not a ${kind}${actual}`))
  }
  return Effect.succeed(object)
}

/**
 * The transport to the cluster `kc` points at; every call within `timeout`.
 * Its connection pool is closed with the scope.
 */
export const makeTransport = (kc: KubeConfig, timeout: Duration.Duration): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeoutMillis = Duration.toMillis(timeout)

    // client-node makes a new undici Agent (a new connection pool, a new TLS
    // handshake) for every request it authenticates; keep the first one and
    // reuse it, closed with the scope.
    let dispatcher: Dispatcher | undefined
    yield* Effect.addFinalizer(() =>
      dispatcher === undefined ? Effect.void : Effect.promise(() => dispatcher!.destroy().catch(() => undefined))
    )
    const server = kc.getCurrentCluster()?.server.replace(/\/+$/, "")

    /** Sends one request; the promise settles when the answer's head arrives. */
    const send = async (
      method: Method,
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
        throw new PrepareError(describeThrown(error))
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

    const timedOutError = (call: Call) => KubeError.transient(call, `no answer within ${timeoutMillis} ms`)
    const timedOut = (call: Call) => () => Effect.fail(timedOutError(call))

    /**
     * A whole request and its answer's body, within the call timeout. The
     * timeout is a timer aborting the request, not an Effect race: a race
     * forks two fibers per call, and an admission makes up to four calls.
     */
    const request = (call: Call, method: Method, urlPath: string, options: RequestOptions): Effect.Effect<Answer, KubeError> =>
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

    const requestObject: Transport["requestObject"] = (call, method, urlPath, options) =>
      Effect.flatMap(request(call, method, urlPath, options), (answer) =>
        answer.status >= 200 && answer.status < 300
          ? parseObject(call, answer.text, options.kind)
          : Effect.fail(fromStatus(call, answer.status, answer.headers, answer.text)))

    const openLines: Transport["openLines"] = (call, urlPath, query) =>
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
          Stream.filter((line) => line.trim() !== "")
        )
      })

    const streamLines: Transport["streamLines"] = (call, urlPath, query) => Stream.unwrap(openLines(call, urlPath, query))

    return { requestObject, streamLines, openLines }
  })
