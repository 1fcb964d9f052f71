/**
 * Skips as warnings: one short line each, at most 120 characters (the
 * kube-apiserver truncates longer ones), naming the SVM, the share and why.
 * Names come from users' ConfigMaps, so they are quoted, with control
 * characters escaped, and shortened to fit. At most 25 per response: a
 * namespace may list thousands of SVMs and shares (README, "Limits").
 */
import type { Skip } from "./plan.ts"
import { statusAnnotation } from "./pod.ts"
import { jsonQuote, maxWarningLength, quote } from "./quote.ts"

export { maxWarningLength }
import { skippedCount } from "./status.ts"

/** The most warnings one response carries; past it, the last says how many more and where they are. */
export const maxWarnings = 25

export const formatWarning = (skip: Pick<Skip, "svm" | "share" | "reason"> & { readonly code?: Skip["code"] }): string => {
  const fixed = skip.share === undefined ? `filers: SVM  skipped: ${skip.reason}` : `filers: SVM  share  skipped: ${skip.reason}`
  const room = Math.max(maxWarningLength - fixed.length, 16)
  if (skip.share === undefined) {
    // Shares past the limit: the SVM itself is mounted, with its first shares.
    const verb = skip.code === "share_limit" ? ":" : " skipped:"
    return `filers: SVM ${quote(skip.svm, room)}${verb} ${skip.reason}`.slice(0, maxWarningLength)
  }
  const svmRoom = Math.min(jsonQuote(skip.svm).length, Math.floor(room / 2))
  const svm = quote(skip.svm, svmRoom)
  const share = quote(skip.share, room - svm.length)
  const text = skip.reason.startsWith("mounted")
    ? `filers: SVM ${svm} share ${share} ${skip.reason}`
    : `filers: SVM ${svm} share ${share} skipped: ${skip.reason}`
  return text.slice(0, maxWarningLength)
}

/**
 * The warnings of a plan's skips: one each, or, past `maxWarnings`, the first
 * 24 and one saying how many more SVMs or shares were skipped (counted as the
 * status annotation counts them) and pointing at that annotation, which a
 * pod gets only when `mutated`. Only the warnings sent are formatted.
 */
export const skipWarnings = (
  skips: ReadonlyArray<Skip>,
  mutated: boolean,
  room: number = maxWarnings
): ReadonlyArray<string> => {
  if (skips.length <= room) return skips.map(formatWarning)
  const shown = skips.slice(0, Math.max(0, room - 1))
  const more = skippedCount(skips) - skippedCount(shown)
  const where = mutated ? `see the pod's annotation ${statusAnnotation}` : "nothing was mounted, so the pod has no status annotation"
  return [...shown.map(formatWarning), `filers: ${more} more SVMs or shares skipped; ${where}`]
}
