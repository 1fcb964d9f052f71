/**
 * The share list of an SVM (one value of ConfigMap `existing-shares`) and the
 * safety of each share path, which becomes part of a mount path.
 */
import { Result } from "effect"

/** The list must be a JSON array of strings, else the whole SVM is skipped. */
export const parseShareList = (raw: string): Result.Result<ReadonlyArray<string>, string> => {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return Result.fail("share list is not valid JSON")
  }
  if (!Array.isArray(json)) return Result.fail("share list is not a JSON array")
  if (!json.every((share) => typeof share === "string")) return Result.fail("share list holds a non-string")
  return Result.succeed(json as ReadonlyArray<string>)
}

const maxShareLength = 1024
// C0 controls, DEL and C1 controls: none belongs in a path, a log line or a warning.
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/
// Segments `..` and `.`, looked for without splitting: a namespace may list 100,000 shares.
const dotDotSegment = /(?:^|\/)\.\.(?:\/|$)/
const dotSegment = /(?:^|\/)\.(?:\/|$)/

/**
 * Why a share cannot be mounted, or undefined when it can. A share is a
 * relative path below the SVM's folder: no leading `/`, no `.` or `..`
 * segment (**fix**: the original put it unchecked into a mount path).
 */
export const unsafeShareReason = (share: string): string | undefined => {
  if (share.trim() === "") return "empty share path"
  if (share.length > maxShareLength) return `share path longer than ${maxShareLength} characters`
  if (controlCharacters.test(share)) return "control character in share path"
  if (share.startsWith("/")) return "absolute share path"
  if (share.includes("\\")) return "backslash in share path"
  if (!share.includes(".")) return undefined
  if (dotDotSegment.test(share)) return "'..' in share path"
  if (dotSegment.test(share)) return "'.' segment in share path"
  return undefined
}

/** The path below the SVM's folder: empty segments (`a//b`, a trailing `/`) dropped. */
export const shareMountSuffix = (share: string): string =>
  share.startsWith("/") || share.endsWith("/") || share.includes("//")
    ? share.split("/").filter((segment) => segment !== "").join("/")
    : share
