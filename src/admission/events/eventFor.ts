/**
 * Which Event an answered admission deserves, if any (docs/behaviour.md,
 * "Events"): pure, from the AdmissionReview as parsed and the admission's
 * answer and outcome. The pipeline knows nothing of Events; the webhook route
 * asks this after answering.
 *
 * Messages are made of the warnings and the outcome's names and counts,
 * never of a Secret.
 */
import type { JsonObject } from "../../domain/json.ts"
import { isJsonObject } from "../../domain/json.ts"
import type { Admission } from "../outcome.ts"

/** The object an Event is about: the pod's controller, or the Pod itself. */
export interface InvolvedObject {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly namespace: string
  /** Absent for a Pod under creation: it has no uid yet. */
  readonly uid?: string
}

export type EventReason = "FilersMounted" | "FilerSharesSkipped" | "FilersNotMounted"

/** An Event to record, before it has a name and timestamps. */
export interface EventIntent {
  readonly involvedObject: InvolvedObject
  readonly type: "Normal" | "Warning"
  readonly reason: EventReason
  readonly message: string
}

export const maxMessageLength = 1024

const cut = (text: string, max = maxMessageLength): string => {
  if (text.length <= max) return text
  const points = [...text.slice(0, max - 1)]
  // Never leave half a surrogate pair at the cut.
  if (points.length > 0 && /[\ud800-\udbff]$/.test(points[points.length - 1]!)) points.pop()
  return `${points.join("")}…`
}

const stringField = (object: JsonObject, key: string): string | undefined => {
  const value = object[key]
  return typeof value === "string" && value !== "" ? value : undefined
}

/**
 * The pod's controller (`ownerReferences` entry with `controller: true`; for a
 * notebook, its StatefulSet), else the Pod by name, else nothing.
 */
export const involvedObjectOf = (pod: unknown, namespace: string): InvolvedObject | undefined => {
  if (namespace === "" || !isJsonObject(pod) || !isJsonObject(pod.metadata)) return undefined
  const metadata = pod.metadata
  const owners = Array.isArray(metadata.ownerReferences) ? metadata.ownerReferences : []
  for (const owner of owners) {
    if (!isJsonObject(owner) || owner.controller !== true) continue
    const apiVersion = stringField(owner, "apiVersion")
    const kind = stringField(owner, "kind")
    const name = stringField(owner, "name")
    const uid = stringField(owner, "uid")
    if (apiVersion !== undefined && kind !== undefined && name !== undefined && uid !== undefined) {
      return { apiVersion, kind, name, namespace, uid }
    }
  }
  const name = stringField(metadata, "name")
  return name === undefined ? undefined : { apiVersion: "v1", kind: "Pod", name, namespace }
}

/** `request` of a parsed AdmissionReview (the route's input, already decoded once by `admit`). */
const requestOf = (input: unknown): JsonObject | undefined =>
  isJsonObject(input) && isJsonObject(input.request) ? input.request : undefined

/** The skip warnings (`filers: SVM ...`), not the per-notebook choices' (`filers: choice ...`). */
const skipWarnings = (warnings: ReadonlyArray<string>): ReadonlyArray<string> =>
  warnings.filter((warning) => warning.startsWith("filers: SVM "))

const mountedMessage = (admission: Admission): string => {
  const { mounted = [], sharesMounted } = admission.outcome
  const svms = mounted.map(({ shares, svm }) => `${shares} of SVM ${JSON.stringify(svm)}`).join(", ")
  return `mounted ${sharesMounted} filer share${sharesMounted === 1 ? "" : "s"}: ${svms}`
}

/** What to say, or nothing: only what the webhook did to a pod that wanted filers, never a denial. */
const intentOf = (admission: Admission): Omit<EventIntent, "involvedObject"> | undefined => {
  const { outcome, review } = admission
  const warnings = review.response.warnings ?? []
  const skippedAny = Object.keys(outcome.skipCounts).length > 0
  switch (outcome.decision) {
    case "injected":
      return !skippedAny
        ? { type: "Normal", reason: "FilersMounted", message: cut(mountedMessage(admission)) }
        : { type: "Warning", reason: "FilerSharesSkipped", message: cut(skipWarnings(warnings).join("; ")) }
    case "skipped":
      // Every SVM and share skipped: the pod starts without filers, and should say why.
      return outcome.skipCode === "nothing_to_mount" && skippedAny
        ? { type: "Warning", reason: "FilerSharesSkipped", message: cut(skipWarnings(warnings).join("; ")) }
        : undefined
    case "admitted-without-filers":
      return { type: "Warning", reason: "FilersNotMounted", message: cut(`filers not mounted: ${outcome.reason}`) }
    case "denied":
    case "invalid-pod":
      // The StatefulSet's FailedCreate event already carries the denial's message.
      return undefined
  }
}

/** The Event an answered, non-dry-run admission deserves, or undefined. */
export const eventFor = (input: unknown, admission: Admission): EventIntent | undefined => {
  const request = requestOf(input)
  if (request === undefined || request.dryRun === true) return undefined
  const intent = intentOf(admission)
  if (intent === undefined) return undefined
  const involvedObject = involvedObjectOf(request.object, admission.outcome.namespace)
  return involvedObject === undefined ? undefined : { ...intent, involvedObject }
}
