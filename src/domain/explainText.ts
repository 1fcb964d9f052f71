/**
 * `explain`'s text output for a terminal: a header, the shares as a table,
 * the checks with ✓ (ok), ✗ (a problem) or ? (not checked), then what a
 * restart of the notebook would change.
 */
import type { Check, Explanation } from "./explain.ts"

const mark = (check: Check): string => (check.ok === true ? "✓" : check.ok === false ? "✗" : "?")

/** Rows as columns padded to the widest cell; the last column is not padded. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => [...row[column]!].length)))
  return rows.map((row) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell + " ".repeat(widths[column]! - [...cell].length)))
      .join("  ")
      .trimEnd()
  )
}

export const explainText = (explanation: Explanation): string => {
  const lines: Array<string> = [
    `Pod:       ${explanation.namespace}/${explanation.pod}`,
    `Decision:  ${explanation.decision}`,
    `Reason:    ${explanation.reason}`,
    ""
  ]
  const shares = [
    ...explanation.mounted.map((mount) => [mount.svm, mount.share, "mounted", mount.path]),
    ...explanation.skipped.map((skip) => [skip.svm, skip.share ?? "(all)", "skipped", skip.message])
  ]
  if (shares.length === 0) lines.push("Shares: none would be mounted.")
  else lines.push(...table([["SVM", "SHARE", "STATUS", "PATH OR REASON"], ...shares]))
  lines.push("", "Checks:")
  for (const check of explanation.checks) lines.push(`  ${mark(check)} ${check.name}: ${check.message}`)
  const drift = explanation.drift
  if (drift !== undefined) {
    lines.push("", "Since the pod was injected:")
    if (drift.notMounted.length === 0 && drift.noLongerListed.length === 0) lines.push("  nothing changed.")
    for (const entry of drift.notMounted) {
      lines.push(`  restart the notebook to get ${entry.svm}/${entry.share} (${entry.path})`)
    }
    for (const entry of drift.noLongerListed) {
      lines.push(`  ${entry.svm}/${entry.share} is mounted but would not be now: a restart removes it`)
    }
  }
  return lines.join("\n")
}
