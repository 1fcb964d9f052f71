/**
 * Turning a Schema failure into one readable line that names the field, e.g.
 * `request.uid: Expected a value with a length of at least 1`.
 */
import { SchemaIssue } from "effect"

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()
const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/
// Keys come from the request (label and annotation keys, say): a hostile one
// must not make the message huge, so each is cut, and so is the whole path.
const maxKeyLength = 64
const maxPathLength = 300

const shorten = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}…`)

/** `request.object.metadata.labels["app.kubernetes.io/name"]`-style path. */
export const formatPath = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string =>
  path.reduce<string>((out, segment) => {
    const key = typeof segment === "object" ? segment.key : segment
    if (typeof key === "number") return `${out}[${key}]`
    const text = shorten(String(key), maxKeyLength)
    if (identifier.test(text)) return out === "" ? text : `${out}.${text}`
    return `${out}[${JSON.stringify(text)}]`
  }, "")

/** The first problem of an issue, with its path: `prefix.path: message`. */
export const describeIssue = (issue: SchemaIssue.Issue, prefix = ""): string => {
  const first = formatter(issue).issues[0]
  if (first === undefined) return prefix === "" ? "invalid" : `${prefix}: invalid`
  const path = shorten(formatPath(first.path ?? []), maxPathLength)
  const where = prefix === "" ? path : path === "" ? prefix : path.startsWith("[") ? `${prefix}${path}` : `${prefix}.${path}`
  return where === "" ? first.message : `${where}: ${first.message}`
}
