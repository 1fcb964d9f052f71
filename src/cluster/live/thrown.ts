/**
 * What a value thrown by undici, Node or the live client says, in a few words: its
 * error code, else its name and the start of its message. Never more: a
 * message may quote a response body or a file.
 */
import { Predicate } from "effect"

/** The first `code` along an error's `cause` chain (undici wraps socket errors in `TypeError: fetch failed`). */
export const errorCode = (error: unknown): string | undefined => {
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

/** A short, body-free description of a thrown value: its error code, else its name and message. */
export const describeThrown = (error: unknown): string => {
  if (error instanceof Error) {
    const code = errorCode(error)
    const message = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message
    return code === undefined ? `${error.name}: ${message}` : `${code} (${error.name})`
  }
  return "unknown error"
}
