/**
 * One request and its whole answer on an undici dispatcher, with the call
 * timeout counted from the moment the request has a connection: undici calls
 * `onRequestStart` when it writes the request to a socket, so the time a
 * request waits in the pool's queue for one of its connections is not
 * counted (the transport's header says who bounds that wait).
 *
 * A handler of our own rather than `dispatcher.request`: it keeps the
 * answer's chunks as they come, without a Readable stream and an async
 * resource per request, and it knows when the request was sent.
 */
import type { Dispatcher } from "undici"
import type { ResponseHeaders } from "./classify.ts"

export interface Answer {
  readonly status: number
  readonly headers: ResponseHeaders
  readonly text: string
}

/** Rejected with when the call's own timer aborted it. */
export class CallTimedOut {}

/** Rejected with when `signal` aborted the call before it was sent. */
export class CallAbandoned extends Error {
  override readonly name = "AbortError"
  constructor() {
    super("the call was abandoned before it was sent")
  }
}

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler["onRequestStart"]>>[0]

/**
 * Sends `options` on `dispatcher`; resolves with the answer once it has been
 * read whole. `signal` (interruption) aborts it, queued or sent.
 */
export const exchange = (
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  timeoutMillis: number,
  signal: AbortSignal
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CallAbandoned())
    let controller: Controller | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    let status = 0
    let headers: ResponseHeaders = {}
    const chunks: Array<Buffer> = []
    const onAbort = () => controller?.abort(new CallAbandoned())
    signal.addEventListener("abort", onAbort, { once: true })
    const settle = () => {
      clearTimeout(timer)
      signal.removeEventListener("abort", onAbort)
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (started) => {
        controller = started
        // Abandoned while it waited for a connection: it goes no further.
        if (signal.aborted) return started.abort(new CallAbandoned())
        timer = setTimeout(() => {
          timedOut = true
          started.abort(new CallAbandoned())
        }, timeoutMillis)
      },
      onResponseStart: (_controller, statusCode, responseHeaders) => {
        // 1xx answers are not the answer.
        if (statusCode < 200) return
        status = statusCode
        headers = responseHeaders as ResponseHeaders
      },
      onResponseData: (_controller, chunk) => {
        chunks.push(chunk)
      },
      onResponseEnd: () => {
        settle()
        resolve({ status, headers, text: Buffer.concat(chunks).toString("utf8") })
      },
      onResponseError: (_controller, error) => {
        settle()
        reject(timedOut ? new CallTimedOut() : error)
      }
    }
    try {
      dispatcher.dispatch(options, handler)
    } catch (error) {
      settle()
      reject(error)
    }
  })
