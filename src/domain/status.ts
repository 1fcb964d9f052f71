/**
 * The status annotation: what the webhook mounted in a pod and what it
 * skipped, as compact JSON, where people (`kubectl get pod -o yaml`) and
 * tools look, since admission warnings reach only the pod's creator, a
 * StatefulSet controller that drops them (README, "What it injects, and
 * when"). Built from the plan alone: names, paths, buckets and skip codes,
 * never a credential. The same plan gives the same bytes.
 */
import { type Choices, choicesStatus, type ChoicesStatus } from "./choices.ts"
import type { FilerSkipCode, Plan, Skip } from "./plan.ts"

export interface MountedStatus {
  readonly svm: string
  readonly share: string
  readonly path: string
  readonly bucket: string
}

export interface SkippedStatus {
  readonly svm: string
  /** Absent when the whole SVM was skipped (or, `mounted_without_env`, got no env vars). */
  readonly share?: string
  readonly reason: FilerSkipCode
}

export interface FilerStatus {
  readonly mounted: ReadonlyArray<MountedStatus>
  /** Mounted shares left out of `mounted` to keep the annotation within its size budget. */
  readonly mountedMore?: number
  readonly skipped: ReadonlyArray<SkippedStatus>
  /** Skipped entries past the first `maxSkippedEntries` (or past `skippedBudgetBytes`). */
  readonly skippedMore?: number
  /** What the pod chose by annotation and what was refused; absent when it chose nothing. */
  readonly choices?: ChoicesStatus
}

export const maxSkippedEntries = 50

/**
 * A pod's annotations may take 256 KiB in all (the API server refuses more,
 * and the pod with them); this one takes at most half. Only pathological
 * share names (up to 1,024 characters each, times the share cap) come near.
 */
export const statusBudgetBytes = 128 * 1024

/**
 * At most this many UTF-8 bytes of JSON for a skipped entry's SVM or share:
 * a skipped share may be any string, megabytes long or all control
 * characters, and what skips add to the answer stays small (README, "Limits
 * against hostile namespaces").
 */
export const maxSkippedNameBytes = 256

/**
 * At most this many UTF-8 bytes of JSON for the skipped entries together.
 * Usual names take a few KiB for all 50; entries of pathological names stop
 * earlier (`skippedMore` counts the rest), so that, quoted again in the
 * patch and base64-encoded, the skips add at most 64 KiB to the answer with
 * the warnings (README, "Limits").
 */
export const skippedBudgetBytes = 16 * 1024

const encoder = new TextEncoder()
const jsonBytes = (value: unknown): number => encoder.encode(JSON.stringify(value)).length

/** `text` cut (by code points, marked `…`) so that its JSON string takes at most `max` bytes. */
const clip = (text: string, max: number): string => {
  // No UTF-16 unit takes more than 6 bytes of JSON (`\u001f`, a lone surrogate).
  if (text.length * 6 + 2 <= max) return text
  let bytes = 2
  let fits = 0 // units of `text` that fit with the 3 bytes of `…` after them
  let index = 0
  for (const point of text) {
    bytes += jsonBytes(point) - 2
    if (bytes > max) return `${text.slice(0, fits)}…`
    index += point.length
    if (bytes <= max - 3) fits = index
  }
  return text
}

/** The skips as status entries, in plan order: each share left out by the share limit is one. */
function* skippedEntries(skips: ReadonlyArray<Skip>): Generator<SkippedStatus> {
  for (const skip of skips) {
    const svm = clip(skip.svm, maxSkippedNameBytes)
    if (skip.shares !== undefined) {
      for (const share of skip.shares) yield { svm, share: clip(share, maxSkippedNameBytes), reason: skip.code }
    } else if (skip.share === undefined) {
      yield { svm, reason: skip.code }
    } else {
      yield { svm, share: clip(skip.share, maxSkippedNameBytes), reason: skip.code }
    }
  }
}

/** How many SVMs and shares `skips` skip, as the annotation counts them: each share left out by the share limit is one. */
export const skippedCount = (skips: ReadonlyArray<Skip>): number =>
  skips.reduce((count, skip) => count + (skip.shares?.length ?? 1), 0)

/** The mounted shares that fit in the budget beside `skipped`, the first in plan order, and how many did not. */
const withinBudget = (
  mounted: ReadonlyArray<MountedStatus>,
  skipped: ReadonlyArray<SkippedStatus>,
  choices: ChoicesStatus | undefined
): { readonly kept: ReadonlyArray<MountedStatus>; readonly more: number } => {
  // The frame with room for both counts; each mounted entry then costs its JSON and a comma.
  let bytes = jsonBytes({ mounted: [], mountedMore: 0, skipped, skippedMore: 0, choices }) + 2 * 16
  let count = 0
  for (const entry of mounted) {
    bytes += jsonBytes(entry) + 1
    if (bytes > statusBudgetBytes) break
    count += 1
  }
  return { kept: mounted.slice(0, count), more: mounted.length - count }
}

const build = (plan: Plan, chosen: Choices | undefined): { readonly status: FilerStatus; readonly text: string } => {
  const skipped: Array<SkippedStatus> = []
  let skippedBytes = 0
  for (const entry of skippedEntries(plan.skips)) {
    if (skipped.length === maxSkippedEntries) break
    skippedBytes += jsonBytes(entry) + 1
    if (skippedBytes > skippedBudgetBytes) break
    skipped.push(entry)
  }
  const skippedMore = skippedCount(plan.skips) - skipped.length
  const more = skippedMore > 0 ? { skippedMore } : {}
  const mounted = plan.svms.flatMap((svm) =>
    svm.shares.map((share) => ({ svm: svm.svm, share: share.share, path: share.mountPath, bucket: share.bucket }))
  )
  const choices = chosen === undefined ? undefined : choicesStatus(chosen)
  // Last, so a pod that chose nothing keeps the bytes it always had.
  const withChoices = choices === undefined ? {} : { choices }
  const status: FilerStatus = { mounted, skipped, ...more, ...withChoices }
  const text = JSON.stringify(status)
  // UTF-8 takes at most 3 bytes per UTF-16 unit: the usual pod needs no counting.
  if (text.length * 3 <= statusBudgetBytes) return { status, text }
  const { kept, more: mountedMore } = withinBudget(mounted, skipped, choices)
  const trimmed: FilerStatus = {
    mounted: kept,
    ...(mountedMore > 0 ? { mountedMore } : {}),
    skipped,
    ...more,
    ...withChoices
  }
  return { status: trimmed, text: JSON.stringify(trimmed) }
}

/** The status of a plan, as a value. */
export const filerStatus = (plan: Plan, choices?: Choices): FilerStatus => build(plan, choices).status

/** The annotation's value: compact JSON, keys in a fixed order. */
export const statusAnnotationValue = (plan: Plan, choices?: Choices): string => build(plan, choices).text
