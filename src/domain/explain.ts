/**
 * What `explain` reports for a notebook (docs/behaviour.md, "Commands"), as
 * values, and the pure parts of building it: the pod to look at among those
 * found, the pod as it was before an injection, the shares of a plan, the
 * drift against an injected pod's status annotation, the per-notebook choices
 * as checks. No credential ever reaches these values: names, paths, buckets
 * and reasons only.
 */
import type { ChoiceProblem } from "./choices.ts"
import { choiceAnnotation, choiceNames } from "./choices.ts"
import type { JsonObject } from "./json.ts"
import { isJsonObject } from "./json.ts"
import type { Plan } from "./plan.ts"
import { injectAnnotation, notebookLabel, notebookMarkerEnv, statusAnnotation } from "./pod.ts"

export type ExplainDecision = "inject" | "skip" | "deny"

export interface ExplainedMount {
  readonly svm: string
  readonly share: string
  readonly path: string
  readonly bucket: string
}

export interface ExplainedSkip {
  readonly svm: string
  /** Absent when the whole SVM is skipped. */
  readonly share?: string
  /** The skip code (docs/behaviour.md, "Skips and warnings"). */
  readonly reason: string
  /** The same in words. */
  readonly message: string
}

/** `ok: null` when it could not be checked (offline, or the caller may not ask). */
export interface Check {
  readonly name: string
  readonly ok: boolean | null
  readonly message: string
}

export interface DriftEntry {
  readonly svm: string
  readonly share: string
  readonly path: string
}

export interface Drift {
  /** Listed now and mountable, but not mounted in the pod. */
  readonly notMounted: ReadonlyArray<DriftEntry>
  /** Mounted in the pod, but not what would be mounted now. */
  readonly noLongerListed: ReadonlyArray<DriftEntry>
}

export interface Explanation {
  readonly namespace: string
  readonly pod: string
  readonly decision: ExplainDecision
  readonly reason: string
  readonly mounted: ReadonlyArray<ExplainedMount>
  readonly skipped: ReadonlyArray<ExplainedSkip>
  readonly checks: ReadonlyArray<Check>
  readonly drift?: Drift
}

const metadata = (pod: JsonObject): JsonObject => (isJsonObject(pod.metadata) ? pod.metadata : {})
const stringRecord = (value: unknown): Readonly<Record<string, string>> =>
  isJsonObject(value)
    ? Object.fromEntries(Object.entries(value).flatMap(([key, entry]) => (typeof entry === "string" ? [[key, entry]] : [])))
    : {}

export const annotationsOf = (pod: JsonObject): Readonly<Record<string, string>> => stringRecord(metadata(pod).annotations)
export const podName = (pod: JsonObject): string => {
  const name = metadata(pod).name
  return typeof name === "string" ? name : ""
}

const containersOf = (pod: JsonObject): ReadonlyArray<JsonObject> => {
  const spec = isJsonObject(pod.spec) ? pod.spec : {}
  return Array.isArray(spec.containers) ? spec.containers.filter(isJsonObject) : []
}

const hasNotebookEnv = (container: JsonObject): boolean =>
  Array.isArray(container.env) && container.env.some((env) => isJsonObject(env) && env.name === notebookMarkerEnv)

/**
 * Among the pods labelled `notebook-name: NAME`, the notebook's: exactly one
 * container with env NB_PREFIX; the first by name, so the answer is stable.
 */
export const pickNotebookPod = (pods: ReadonlyArray<JsonObject>, name: string): JsonObject | undefined =>
  pods
    .filter((pod) => stringRecord(metadata(pod).labels)[notebookLabel] === name)
    .filter((pod) => containersOf(pod).filter(hasNotebookEnv).length === 1)
    .sort((a, b) => (podName(a) < podName(b) ? -1 : podName(a) > podName(b) ? 1 : 0))[0]

/** Whether the injector has mutated this pod (it leaves `inject: injected` behind). */
export const wasInjected = (pod: JsonObject): boolean => annotationsOf(pod)[injectAnnotation]?.toLowerCase() === "injected"

/**
 * The pod without the injector's `inject: injected` and status annotations:
 * what its controller asks for. Its sidecars and volumes may stay: the plan
 * recognises an earlier injection and keeps the same names (src/domain/plan.ts).
 */
export const withoutInjectionMarks = (pod: JsonObject): JsonObject => {
  const annotations = { ...annotationsOf(pod) }
  if (annotations[injectAnnotation]?.toLowerCase() === "injected") delete annotations[injectAnnotation]
  delete annotations[statusAnnotation]
  return { ...pod, metadata: { ...metadata(pod), annotations } }
}

/** The shares a plan mounts, and what it skips (a `share_limit` skip: one entry per share), in plan order. */
export const explainPlan = (plan: Plan): Pick<Explanation, "mounted" | "skipped"> => ({
  mounted: plan.svms.flatMap((svm) =>
    svm.shares.map((share) => ({ svm: svm.svm, share: share.share, path: share.mountPath, bucket: share.bucket }))
  ),
  skipped: plan.skips.flatMap((skip): ReadonlyArray<ExplainedSkip> => {
    const base = { svm: skip.svm, reason: skip.code, message: skip.reason }
    if (skip.shares !== undefined) return skip.shares.map((share) => ({ ...base, share }))
    return [skip.share === undefined ? base : { ...base, share: skip.share }]
  })
})

/** The per-notebook choices the pod carries, one check each: applied, or refused with why. */
export const choiceChecks = (
  annotations: Readonly<Record<string, string>>,
  problems: ReadonlyArray<ChoiceProblem>
): ReadonlyArray<Check> =>
  choiceNames.flatMap((choice): ReadonlyArray<Check> => {
    const value = annotations[choiceAnnotation(choice)]
    const own = problems.filter((problem) => problem.choice === choice)
    if (value === undefined && own.length === 0) return []
    const name = `choice ${choice}`
    if (own.length === 0) return [{ name, ok: true, message: `${JSON.stringify(value)} applied` }]
    return own.map((problem) => ({ name, ok: false, message: `${problem.reason} (${problem.code})` }))
  })

/** The status annotation's mounted list and how many it left out, or undefined when it cannot be read. */
export const readStatusMounted = (
  pod: JsonObject
): { readonly mounted: ReadonlyArray<DriftEntry>; readonly mountedMore: number } | undefined => {
  const text = annotationsOf(pod)[statusAnnotation]
  if (text === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isJsonObject(parsed) || !Array.isArray(parsed.mounted)) return undefined
  const mounted = parsed.mounted.flatMap((entry): ReadonlyArray<DriftEntry> =>
    isJsonObject(entry) && typeof entry.svm === "string" && typeof entry.share === "string"
      ? [{ svm: entry.svm, share: entry.share, path: typeof entry.path === "string" ? entry.path : "" }]
      : []
  )
  const more = typeof parsed.mountedMore === "number" && parsed.mountedMore > 0 ? parsed.mountedMore : 0
  return { mounted, mountedMore: more }
}

const mountPathsOf = (pod: JsonObject): ReadonlySet<string> =>
  new Set(
    containersOf(pod).filter(hasNotebookEnv).flatMap((container) =>
      Array.isArray(container.volumeMounts)
        ? container.volumeMounts.flatMap((mount) =>
          isJsonObject(mount) && typeof mount.mountPath === "string" ? [mount.mountPath] : []
        )
        : []
    )
  )

/**
 * What changed since the pod was injected: shares mounted now but not in the
 * pod, and shares in the pod that would not be mounted now. A status that
 * left mounted entries out (`mountedMore`) hides them, so a share not in its
 * list counts as mounted when the notebook container has a mount at its path.
 */
export const driftOf = (
  status: { readonly mounted: ReadonlyArray<DriftEntry>; readonly mountedMore: number },
  pod: JsonObject,
  now: ReadonlyArray<ExplainedMount>
): Drift => {
  const key = (entry: { readonly svm: string; readonly share: string }) => JSON.stringify([entry.svm, entry.share])
  const before = new Set(status.mounted.map(key))
  const after = new Set(now.map(key))
  const paths = status.mountedMore > 0 ? mountPathsOf(pod) : new Set<string>()
  return {
    notMounted: now
      .filter((entry) => !before.has(key(entry)) && !paths.has(entry.path))
      .map(({ path, share, svm }) => ({ svm, share, path })),
    noLongerListed: status.mounted.filter((entry) => !after.has(key(entry)))
  }
}
