/**
 * A strict, independent RFC 6902 JSON Patch applier: the test-side model of
 * what the kube-apiserver (evanphx/json-patch) does with the `patch` of an
 * AdmissionReview response.
 *
 * It is deliberately written without effect's JsonPatch module, so that tests
 * can check the patches `JsonPatch.get` produces against a second opinion.
 *
 * Strictness, as the apiserver has it:
 * - the patch is an array of operation objects with a known `op`;
 * - `add` never creates missing parents (no intermediate objects/arrays);
 * - array indices are canonical decimal (no leading zeros, no sign),
 *   0..length for `add`, 0..length-1 otherwise; `-` (append) only for `add`;
 * - `remove`/`replace` of a missing member fail; `test` compares deep-equal;
 * - the input document and the patch are never mutated.
 * Any failure throws a `JsonPatchError` naming the operation index and path.
 */

/** A JSON Patch failure: which operation (0-based) failed, at which path, and why. */
export class JsonPatchError extends Error {
  readonly operationIndex: number
  readonly path: string
  constructor(operationIndex: number, path: string, reason: string) {
    super(`JSON Patch operation ${operationIndex} at path ${JSON.stringify(path)}: ${reason}`)
    this.name = "JsonPatchError"
    this.operationIndex = operationIndex
    this.path = path
  }
}

type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

/** Internal failure without operation context; `applyStrict` wraps it into a `JsonPatchError`. */
class OpFailure extends Error {}

const fail = (reason: string): never => {
  throw new OpFailure(reason)
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const hasMember = (object: JsonObject, key: string): boolean => Object.hasOwn(object, key)

/** Sets an own property, even for keys like `__proto__` that plain assignment would misread. */
const setMember = (object: JsonObject, key: string, value: Json): void => {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
}

/** Deep copy of a JSON value; rejects anything JSON cannot hold (undefined, functions, NaN, ...). */
const cloneJson = (value: unknown): Json => {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value
  if (typeof value === "number") return Number.isFinite(value) ? value : fail(`${value} is not a JSON number`)
  if (Array.isArray(value)) return value.map(cloneJson)
  if (isObject(value)) {
    const copy: JsonObject = {}
    for (const key of Object.keys(value)) setMember(copy, key, cloneJson(value[key]))
    return copy
  }
  return fail(`${typeof value} is not a JSON value`)
}

/** Structural equality of JSON values: arrays in order, objects by key set regardless of order. */
export const jsonEqual = (a: Json, b: Json): boolean => {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]!))
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => hasMember(b, k) && jsonEqual(a[k]!, b[k]!))
  }
  return a === b
}

/** RFC 6901: "" is the whole document; otherwise "/"-separated tokens with `~1` → `/` and `~0` → `~`. */
const parsePointer = (pointer: unknown): Array<string> => {
  if (typeof pointer !== "string") return fail("path is not a string")
  if (pointer === "") return []
  if (!pointer.startsWith("/")) return fail("JSON Pointer must be empty or start with '/'")
  if (/~(?![01])/.test(pointer)) return fail("'~' must be followed by '0' or '1' in a JSON Pointer")
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~([01])/g, (_, digit: string) => (digit === "1" ? "/" : "~")))
}

/** An array index token: "0" or a digit string without a leading zero, at most `max`. */
const arrayIndex = (token: string, max: number): number => {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return fail(`${JSON.stringify(token)} is not a valid array index`)
  const index = Number(token)
  return index <= max ? index : fail(`array index ${index} is out of range (at most ${max})`)
}

/** Follows all tokens to an existing value; every step must exist. */
const getAt = (document: Json, tokens: ReadonlyArray<string>): Json => {
  let current = document
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[arrayIndex(token, current.length - 1)]!
    else if (isObject(current) && hasMember(current, token)) current = current[token]!
    else return fail(`${JSON.stringify(token)} does not exist`)
  }
  return current
}

/** The existing container (object or array) a non-root pointer's last token lives in. */
const parentOf = (document: Json, tokens: ReadonlyArray<string>): { parent: JsonObject | Array<Json>; last: string } => {
  const parent = getAt(document, tokens.slice(0, -1))
  if (!Array.isArray(parent) && !isObject(parent)) return fail("parent is neither an object nor an array")
  return { parent, last: tokens[tokens.length - 1]! }
}

const add = (document: Json, tokens: ReadonlyArray<string>, value: Json): Json => {
  if (tokens.length === 0) return value
  const { parent, last } = parentOf(document, tokens)
  if (Array.isArray(parent)) {
    if (last === "-") parent.push(value)
    else parent.splice(arrayIndex(last, parent.length), 0, value)
  } else {
    setMember(parent, last, value)
  }
  return document
}

const remove = (document: Json, tokens: ReadonlyArray<string>): Json => {
  if (tokens.length === 0) return fail("cannot remove the whole document")
  const { parent, last } = parentOf(document, tokens)
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length - 1), 1)
  else if (hasMember(parent, last)) delete parent[last]
  else fail(`${JSON.stringify(last)} does not exist`)
  return document
}

const replace = (document: Json, tokens: ReadonlyArray<string>, value: Json): Json => {
  if (tokens.length === 0) return value
  const { parent, last } = parentOf(document, tokens)
  if (Array.isArray(parent)) parent[arrayIndex(last, parent.length - 1)] = value
  else if (hasMember(parent, last)) setMember(parent, last, value)
  else fail(`${JSON.stringify(last)} does not exist`)
  return document
}

/** The operation's `value` member (required for add, replace, test), deep-copied. */
const valueOf = (operation: JsonObject): Json =>
  hasMember(operation, "value") ? cloneJson(operation["value"]) : fail(`"${operation["op"]}" needs a "value"`)

/** Applies one operation to `document` (which it may mutate) and returns the new document. */
const applyOperation = (document: Json, operation: JsonObject): Json => {
  const path = parsePointer(operation["path"])
  switch (operation["op"]) {
    case "add":
      return add(document, path, valueOf(operation))
    case "remove":
      return remove(document, path)
    case "replace":
      return replace(document, path, valueOf(operation))
    case "move": {
      const from = parsePointer(operation["from"])
      const value = getAt(document, from)
      if (from.length === path.length && from.every((t, i) => t === path[i])) return document
      if (from.length < path.length && from.every((t, i) => t === path[i])) {
        return fail("cannot move a value into one of its own children")
      }
      return add(remove(document, from), path, value)
    }
    case "copy":
      return add(document, path, cloneJson(getAt(document, parsePointer(operation["from"]))))
    case "test": {
      const expected = valueOf(operation)
      return jsonEqual(getAt(document, path), expected) ? document : fail("test failed: value differs")
    }
    default:
      return fail(`unknown op ${JSON.stringify(operation["op"])}`)
  }
}

/**
 * Applies `patch` to a deep copy of `document` and returns the result.
 * Throws `JsonPatchError` on the first failing operation (the input is left untouched).
 */
export const applyStrict = (document: unknown, patch: unknown): unknown => {
  if (!Array.isArray(patch)) throw new JsonPatchError(-1, "", "the patch is not an array of operations")
  let result: Json
  try {
    result = cloneJson(document)
  } catch (e) {
    throw new JsonPatchError(-1, "", `the document is not JSON: ${(e as Error).message}`)
  }
  patch.forEach((operation: unknown, index) => {
    if (!isObject(operation)) throw new JsonPatchError(index, "", "operation is not an object")
    const path = typeof operation["path"] === "string" ? operation["path"] : ""
    try {
      result = applyOperation(result, operation)
    } catch (e) {
      if (e instanceof OpFailure) throw new JsonPatchError(index, path, e.message)
      throw e
    }
  })
  return result
}

/** Decodes an AdmissionReview `response.patch` (standard base64 of JSON text), strictly. */
export const decodePatchBase64 = (b64: string): unknown => {
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
    throw new Error("patch is not valid standard base64")
  }
  return JSON.parse(Buffer.from(b64, "base64").toString("utf8"))
}
