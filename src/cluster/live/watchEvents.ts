/**
 * One line of a watch answer, as the API server streams it: a JSON event
 * `{type, object}`. A line that is not one, and an ERROR event, end the
 * watch with a `KubeError` that quotes nothing of the line (it may carry a
 * Secret); an ERROR's `Status` gives only its code and reason word.
 */
import { Predicate, Result } from "effect"
import { KubeError } from "../errors.ts"
import type { RawObject } from "../objects.ts"
import type { Call } from "./classify.ts"

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"
  readonly object: RawObject
}

/**
 * The event on `line`, or why the watch must end. An ERROR is `transient`
 * (watching again, or listing again, may pass) with the Status code as its
 * `status`: 410 Gone says the resource version is too old to watch from.
 */
export const parseWatchLine = (call: Call, line: string): Result.Result<WatchEvent, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return Result.fail(KubeError.transient(call, "the watch sent a line that is not JSON"))
  }
  if (!Predicate.isObject(parsed) || !("type" in parsed) || !("object" in parsed) || !Predicate.isObject(parsed.object)) {
    return Result.fail(KubeError.transient(call, "the watch sent something that is not a watch event"))
  }
  const object = parsed.object as RawObject
  switch (parsed.type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
    case "BOOKMARK":
      return Result.succeed({ type: parsed.type, object })
    case "ERROR": {
      const code = typeof object.code === "number" ? object.code : undefined
      const reason = typeof object.reason === "string" && /^[A-Za-z]{1,64}$/.test(object.reason)
        ? ` ${object.reason}`
        : ""
      return Result.fail(
        KubeError.transient(
          call,
          `the watch ended with an ERROR event${code === undefined ? "" : ` (${code}${reason})`}`,
          code === undefined ? {} : { status: code }
        )
      )
    }
    default:
      return Result.fail(KubeError.transient(call, "the watch sent an event of unknown type"))
  }
}

