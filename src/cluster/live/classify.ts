/**
 * How a Kubernetes call's failure becomes a KubeError: an HTTP status (with
 * its Retry-After) or a thrown error (the network's, transient; the
 * configuration's, not). A leaf, without the HTTP client: the in-memory
 * KubeClient maps its wire-level faults through the same functions, so both
 * clients fail alike.
 */
import { Predicate } from "effect"
import { STATUS_CODES } from "node:http"
import { KubeError, type KubeCall } from "../errors.ts"
import { describeThrown, errorCode } from "./thrown.ts"

export type Verb = "get" | "list" | "watch" | "create" | "update"

/** What a request is about: every error names it. */
export interface Call extends KubeCall {
  readonly verb: Verb
}

export type ResponseHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/** Thrown while preparing a request (the configuration's fault, not the network's). */
export class PrepareError {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
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
export const fromThrown = (call: Call, error: unknown): KubeError => {
  if (error instanceof PrepareError) return KubeError.requestFailed(call, `cannot prepare the request: ${error.message}`)
  const code = errorCode(error)
  const name = error instanceof Error ? error.name : ""
  const message = error instanceof Error ? error.message : ""
  if (
    (code !== undefined && transientCodes.has(code)) || name === "AbortError" || name === "TimeoutError" ||
    (code === undefined && transientMessages.test(message)) ||
    (code === undefined && error instanceof Error && error.cause instanceof Error &&
      transientMessages.test(error.cause.message))
  ) {
    return KubeError.transient(call, `connection failed: ${code ?? (message || name)}`)
  }
  return KubeError.requestFailed(call, `request failed: ${describeThrown(error)}`)
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date. */
export const retryAfterMillis = (header: string | ReadonlyArray<string> | undefined): number | undefined => {
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

/** An answer that is not a success, as a KubeError. The body is not copied: at most its Status reason word. */
export const fromStatus = (call: Call, status: number, headers: ResponseHeaders, text: string): KubeError => {
  const statusText = `${status} ${STATUS_CODES[status] ?? "Unknown"}`
  if (status === 404) return KubeError.notFound(call)
  if (status === 401 || status === 403) return KubeError.forbidden(call, status)
  if (status === 409) return KubeError.conflict(call)
  if (status === 429 || status >= 500 || status === 408) {
    return KubeError.transient(call, `the API server answered ${statusText}`, {
      status,
      retryAfterMillis: retryAfterMillis(headers["retry-after"])
    })
  }
  const reason = statusReason(text)
  return KubeError.requestFailed(
    call,
    `the API server answered ${statusText}${reason === undefined ? "" : ` (${reason})`}`,
    status
  )
}
