/**
 * The shares a notebook chose to mount (the `shares` choice, parsed in
 * choices.ts), and the questions plan asks of it. A leaf module: plan reads
 * it without depending on how choices are parsed or warned about.
 */

/** Which shares a notebook wants: `svm/share` and `svm/*` entries. */
export interface ShareSelection {
  /** The entries, deduplicated and sorted: what the status annotation lists. */
  readonly entries: ReadonlyArray<string>
  /** SVM → every share (`*`), or the shares named. */
  readonly bySvm: ReadonlyMap<string, "*" | ReadonlySet<string>>
}

/** Whether the notebook wants any share of `svm`: every SVM when it chose nothing. */
export const selectsSvm = (selection: ShareSelection | undefined, svm: string): boolean =>
  selection === undefined || selection.bySvm.has(svm)

/** Whether the notebook wants `share` of `svm`. */
export const selectsShare = (selection: ShareSelection | undefined, svm: string, share: string): boolean => {
  if (selection === undefined) return true
  const wanted = selection.bySvm.get(svm)
  return wanted === "*" || (wanted !== undefined && wanted.has(share))
}
