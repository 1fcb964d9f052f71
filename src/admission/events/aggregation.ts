/**
 * Events as the API stores them, and the repeats they count. As client-go's
 * event recorder does: the same (involved object, type, reason, message)
 * seen again within a window updates the first Event (count + 1,
 * lastTimestamp) instead of making another, so a crash-looping notebook does
 * not flood its namespace. The cache of first Events is an LRU of bounded size.
 */
import type { RawObject } from "../../cluster/objects.ts"
import type { EventIntent } from "./eventFor.ts"

export const component = "filer-sidecar-injector"

/** How long a repeat still counts on the first Event (docs/behaviour.md, "Events"). */
export const aggregationWindowMillis = 10 * 60 * 1000

/** metav1.Time: RFC 3339 in whole seconds. */
const timestamp = (millis: number): string => new Date(millis).toISOString().replace(/\.\d{3}Z$/, "Z")

// An object name is at most 253 characters; the suffix is `.` and up to 16 hex digits.
const maxPrefix = 253 - 17

/**
 * A new Event, named as client-go names them: `<object>.<time in hex>`
 * (`unique` keeps two Events of the same millisecond apart).
 */
export const newEvent = (intent: EventIntent, nowMillis: number, unique: number, reportingInstance: string): RawObject => {
  const involved = intent.involvedObject
  const suffix = (BigInt(nowMillis) * 1_000_000n + BigInt(unique % 1_000_000)).toString(16)
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${involved.name.slice(0, maxPrefix).replace(/\.+$/, "")}.${suffix}`, namespace: involved.namespace },
    involvedObject: { ...involved },
    reason: intent.reason,
    message: intent.message,
    type: intent.type,
    source: { component },
    reportingComponent: component,
    reportingInstance,
    firstTimestamp: timestamp(nowMillis),
    lastTimestamp: timestamp(nowMillis),
    count: 1
  }
}

/** The stored Event, seen once more. */
export const repeated = (stored: RawObject, nowMillis: number): RawObject => ({
  ...stored,
  count: (typeof stored.count === "number" ? stored.count : 1) + 1,
  lastTimestamp: timestamp(nowMillis)
})

/** What makes two Events the same one. */
export const aggregationKey = (intent: EventIntent): string => {
  const o = intent.involvedObject
  return JSON.stringify([o.namespace, o.apiVersion, o.kind, o.name, o.uid ?? "", intent.type, intent.reason, intent.message])
}

export interface CachedEvent {
  /** The Event as the API last returned it (its resourceVersion guards the update). */
  readonly stored: RawObject
  readonly firstMillis: number
}

/** The first Event of each key, the least recently seen forgotten first past `capacity`. */
export class EventCache {
  private readonly entries = new Map<string, CachedEvent>()
  private readonly capacity: number

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity)
  }

  /** The Event a repeat at `nowMillis` counts on, if it is still within the window. */
  current(key: string, nowMillis: number): CachedEvent | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (nowMillis - entry.firstMillis >= aggregationWindowMillis) {
      this.entries.delete(key)
      return undefined
    }
    // Most recently used last.
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry
  }

  set(key: string, entry: CachedEvent): void {
    this.entries.delete(key)
    this.entries.set(key, entry)
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done === true) break
      this.entries.delete(oldest.value)
    }
  }

  forget(key: string): void {
    this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }
}
