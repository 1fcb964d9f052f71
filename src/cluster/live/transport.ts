/**
 * The transport of the live KubeClient: one HTTP request to the API server,
 * authenticated from the kubeconfig (credentials.ts), sent on a bounded pool
 * of kept-alive connections (connections.ts) within the call timeout; and
 * what comes back (or is thrown) classified into a `KubeError`.
 *
 * At most 8 requests are in flight, one per connection of the request pool
 * (connections.ts); the others wait in the pool's queue, in order, and each
 * is sent the moment a connection is free. The call timeout
 * (KUBE_CALL_TIMEOUT_MS) starts when a request is sent (exchange.ts): it
 * covers sending and the whole answer, not the wait. (Preparing a request,
 * which may run an exec credential plugin, and opening a connection get the
 * call timeout too.) The wait is bounded by whoever made the call: an
 * admission's budget interrupts it like any other step. So a burst is never
 * failed for waiting, and a slow API server cannot make the queue outlive
 * the budgets.
 *
 * Watches (`streamLines`) have their own pool and do not wait: each holds its
 * connection while it streams.
 *
 * Requests go out through undici's dispatcher API, not fetch: fetch's web
 * streams cost about three times the CPU per call (test/bench/RESULTS.md).
 * Interruption aborts a request, queued or sent.
 *
 * Errors are built from status codes, error codes and the `reason` of a
 * `Status` only: a response body may echo a Secret and never reaches an error
 * or a log line.
 */
import { Duration, Effect, Predicate, type Scope, Stream } from "effect"
import type { Dispatcher } from "undici"
import { KubeError } from "../errors.ts"
import type { RawObject } from "../objects.ts"
import { type Call, fromStatus, fromThrown, PrepareError } from "./classify.ts"
import { makeConnections } from "./connections.ts"
import { type Authentication, defaultRefreshMillis, makeCredentials } from "./credentials.ts"
import { type Answer, CallTimedOut, exchange } from "./exchange.ts"
import type { KubeConfig } from "./kubeconfigTypes.ts"
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
   * The non-empty lines of a watch, once it has opened within the call
   * timeout. The server is asked to end it after `timeoutSeconds`; a guard
   * ends it the call timeout later if the server has not (a connection that
   * died silently). The request is aborted when the stream ends.
   */
  readonly streamLines: (
    call: Call,
    urlPath: string,
    query: Readonly<Record<string, string>>,
    timeoutSeconds: number
  ) => Stream.Stream<string, KubeError>
  /**
   * The same, as an effect that succeeds once the answer's head has arrived
   * (the server accepted the watch); the request is aborted with the scope.
   */
  readonly openLines: (
    call: Call,
    urlPath: string,
    query: Readonly<Record<string, string>>,
    timeoutSeconds: number
  ) => Effect.Effect<Stream.Stream<string, KubeError>, KubeError, Scope.Scope>
}

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

/** `promise`, or a rejection as soon as `signal` aborts. */
const untilAborted = <A>(promise: Promise<A>, signal: AbortSignal): Promise<A> =>
  new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort))
  })

export interface TransportOptions {
  /** How often files named by the configuration (token, CA, client certificate) are read again. Default a minute. */
  readonly refreshMillis?: number
}

/**
 * The transport to the cluster `kc` points at; every call within `timeout`
 * once it has its turn. Its connections are closed with the scope.
 */
export const makeTransport = (
  kc: KubeConfig,
  timeout: Duration.Duration,
  options: TransportOptions = {}
): Effect.Effect<Transport, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeoutMillis = Duration.toMillis(timeout)
    const credentials = makeCredentials(kc, options.refreshMillis ?? defaultRefreshMillis)
    const connections = makeConnections(kc.server, timeoutMillis)
    yield* Effect.addFinalizer(() => Effect.promise(connections.destroy))

    const authenticate = async (): Promise<Authentication> => {
      try {
        return await credentials.current()
      } catch (error) {
        throw error instanceof PrepareError ? error : new PrepareError(describeThrown(error))
      }
    }

    /**
     * The request's authentication. An exec plugin may take seconds, or hang:
     * preparing gets the call timeout too, and stops when `interrupted` aborts.
     */
    const prepare = async (interrupted: AbortSignal): Promise<Authentication> => {
      if (kc.user.exec === undefined) return authenticate()
      const deadline = AbortSignal.timeout(timeoutMillis)
      try {
        return await untilAborted(authenticate(), AbortSignal.any([interrupted, deadline]))
      } catch (error) {
        throw deadline.aborted ? new CallTimedOut() : error
      }
    }

    const headersFor = (authentication: Authentication, body: RawObject | undefined): Record<string, string> => {
      const headers: Record<string, string> = {
        ...authentication.headers,
        accept: "application/json",
        "user-agent": "filer-sidecar-injector"
      }
      if (body !== undefined) headers["content-type"] = "application/json"
      return headers
    }

    const pathWith = (urlPath: string, query: Readonly<Record<string, string>>) => {
      const search = new URLSearchParams(query).toString()
      return search === "" ? urlPath : `${urlPath}?${search}`
    }

    const timedOutError = (call: Call) => KubeError.transient(call, `no answer within ${timeoutMillis} ms`)
    const timedOut = (call: Call) => () => Effect.fail(timedOutError(call))

    /**
     * A whole request and its answer's body, on the request pool: it waits
     * there for one of the connections, then has the call timeout (a timer
     * aborting it, not an Effect race, which would fork two fibers per call).
     */
    const request = (call: Call, method: Method, urlPath: string, options: RequestOptions): Effect.Effect<Answer, KubeError> =>
      Effect.tryPromise({
        try: async (interrupted): Promise<Answer> => {
          const authentication = await prepare(interrupted)
          const answer = await exchange(
            connections.forRequests(authentication.tls),
            {
              method,
              path: pathWith(urlPath, options.query ?? {}),
              headers: headersFor(authentication, options.body),
              ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
            },
            timeoutMillis,
            interrupted
          )
          if (answer.status === 401) credentials.rejected()
          return answer
        },
        catch: (error) => error instanceof CallTimedOut ? timedOutError(call) : fromThrown(call, error)
      })

    /** Opens a watch on the watch pool; the promise settles when the answer's head arrives. */
    const openWatch = async (
      urlPath: string,
      query: Readonly<Record<string, string>>,
      signal: AbortSignal
    ): Promise<Dispatcher.ResponseData> => {
      const authentication = await prepare(signal)
      const response = await connections.forWatches(authentication.tls).request({
        method: "GET",
        path: pathWith(urlPath, query),
        headers: headersFor(authentication, undefined),
        signal
      })
      if (response.statusCode === 401) credentials.rejected()
      return response
    }

    const requestObject: Transport["requestObject"] = (call, method, urlPath, options) =>
      Effect.flatMap(request(call, method, urlPath, options), (answer) =>
        answer.status >= 200 && answer.status < 300
          ? parseObject(call, answer.text, options.kind)
          : Effect.fail(fromStatus(call, answer.status, answer.headers, answer.text)))

    const openLines: Transport["openLines"] = (call, urlPath, query, timeoutSeconds) =>
      Effect.gen(function*() {
        // Aborted when the stream ends, fails or is interrupted: the request does not outlive it.
        const controller = yield* Effect.acquireRelease(
          Effect.sync(() => new AbortController()),
          (controller) => Effect.sync(() => controller.abort())
        )
        const response = yield* Effect.tryPromise({
          try: () => openWatch(urlPath, { ...query, timeoutSeconds: String(timeoutSeconds) }, controller.signal),
          catch: (error) => error instanceof CallTimedOut ? timedOutError(call) : fromThrown(call, error)
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
          // The server promised to end it after timeoutSeconds; do not wait much longer.
          Stream.interruptWhen(Effect.sleep(Duration.sum(Duration.seconds(timeoutSeconds), timeout)))
        )
      })

    const streamLines: Transport["streamLines"] = (call, urlPath, query, timeoutSeconds) =>
      Stream.unwrap(openLines(call, urlPath, query, timeoutSeconds))

    return { requestObject, streamLines, openLines }
  })
