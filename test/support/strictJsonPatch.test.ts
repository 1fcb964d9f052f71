import { describe, expect, it } from "vitest"
import { applyStrict, decodePatchBase64, JsonPatchError } from "./strictJsonPatch.ts"

const pod = () => ({
  metadata: { name: "nb-0", annotations: { a: "1" } },
  spec: { containers: [{ name: "nb" }], volumes: [] as Array<unknown> }
})

/** Expects `applyStrict` to throw a JsonPatchError for operation `index` whose message contains `text`. */
const expectFailure = (document: unknown, patch: unknown, index: number, text: string | RegExp) => {
  let error: unknown
  try {
    applyStrict(document, patch)
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(JsonPatchError)
  expect((error as JsonPatchError).operationIndex).toBe(index)
  expect((error as JsonPatchError).message).toMatch(text)
}

describe("applyStrict: patch shape", () => {
  it("requires an array of operation objects with a known op", () => {
    expectFailure(pod(), { op: "add", path: "/x", value: 1 }, -1, "not an array")
    expectFailure(pod(), [42], 0, "not an object")
    expectFailure(pod(), [{ op: "merge", path: "/x", value: 1 }], 0, "unknown op")
    expectFailure(pod(), [{ op: "add", path: "/x" }], 0, 'needs a "value"')
    expectFailure(pod(), [{ op: "add", path: "x", value: 1 }], 0, "start with '/'")
  })

  it("applies an empty patch as the identity", () => {
    expect(applyStrict(pod(), [])).toEqual(pod())
  })

  it("names the failing operation index and path in the message", () => {
    const patch = [
      { op: "add", path: "/metadata/labels", value: {} },
      { op: "add", path: "/spec/nope/x", value: 1 }
    ]
    expectFailure(pod(), patch, 1, 'operation 1 at path "/spec/nope/x"')
  })
})

describe("applyStrict: add", () => {
  it("adds an object member, replacing an existing one", () => {
    expect(applyStrict(pod(), [{ op: "add", path: "/metadata/labels", value: { x: "y" } }])).toMatchObject({
      metadata: { labels: { x: "y" } }
    })
    expect(applyStrict(pod(), [{ op: "add", path: "/metadata/annotations/a", value: "2" }])).toMatchObject({
      metadata: { annotations: { a: "2" } }
    })
  })

  it("fails under a missing parent instead of creating it", () => {
    expectFailure(pod(), [{ op: "add", path: "/metadata/labels/x", value: "y" }], 0, "does not exist")
    expectFailure(pod(), [{ op: "add", path: "/spec/initContainers/-", value: { name: "i" } }], 0, "does not exist")
  })

  it("fails under a parent that is not a container", () => {
    expectFailure(pod(), [{ op: "add", path: "/metadata/name/x", value: 1 }], 0, "neither an object nor an array")
  })

  it("appends with '-' and inserts at 0..length", () => {
    const result = applyStrict(pod(), [
      { op: "add", path: "/spec/containers/-", value: { name: "last" } },
      { op: "add", path: "/spec/containers/0", value: { name: "first" } },
      { op: "add", path: "/spec/containers/3", value: { name: "end" } }
    ])
    expect(result).toMatchObject({ spec: { containers: [{ name: "first" }, { name: "nb" }, { name: "last" }, { name: "end" }] } })
  })

  it("rejects indices beyond length, negative, non-numeric or with leading zeros", () => {
    expectFailure(pod(), [{ op: "add", path: "/spec/containers/2", value: {} }], 0, "out of range")
    expectFailure(pod(), [{ op: "add", path: "/spec/containers/-1", value: {} }], 0, "not a valid array index")
    expectFailure(pod(), [{ op: "add", path: "/spec/containers/01", value: {} }], 0, "not a valid array index")
    expectFailure(pod(), [{ op: "add", path: "/spec/containers/one", value: {} }], 0, "not a valid array index")
  })

  it("replaces the whole document at the root path", () => {
    expect(applyStrict(pod(), [{ op: "add", path: "", value: { a: 1 } }])).toEqual({ a: 1 })
  })
})

describe("applyStrict: JSON Pointer escapes", () => {
  it("unescapes ~1 to / and ~0 to ~", () => {
    const result = applyStrict(pod(), [
      { op: "add", path: "/metadata/annotations/filer-injector-webhook.das-zone.statcan~1inject", value: "true" },
      { op: "add", path: "/metadata/annotations/a~0b", value: "tilde" },
      { op: "add", path: "/metadata/annotations/~01", value: "not a slash" }
    ])
    expect(result).toMatchObject({
      metadata: {
        annotations: { "filer-injector-webhook.das-zone.statcan/inject": "true", "a~b": "tilde", "~1": "not a slash" }
      }
    })
  })

  it("rejects a bare ~ not followed by 0 or 1", () => {
    expectFailure(pod(), [{ op: "add", path: "/metadata/annotations/a~2", value: "x" }], 0, "'~' must be followed")
  })

  it("treats __proto__ as an ordinary member name", () => {
    const result = applyStrict({}, [{ op: "add", path: "/__proto__", value: { polluted: true } }]) as object
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
    expect(Object.hasOwn(result, "__proto__")).toBe(true)
  })
})

describe("applyStrict: remove and replace", () => {
  it("remove deletes members and array elements", () => {
    const result = applyStrict(pod(), [
      { op: "remove", path: "/metadata/annotations/a" },
      { op: "remove", path: "/spec/containers/0" }
    ])
    expect(result).toMatchObject({ metadata: { annotations: {} }, spec: { containers: [] } })
  })

  it("remove and replace fail on a missing member or index", () => {
    expectFailure(pod(), [{ op: "remove", path: "/metadata/labels" }], 0, "does not exist")
    expectFailure(pod(), [{ op: "replace", path: "/metadata/labels", value: {} }], 0, "does not exist")
    expectFailure(pod(), [{ op: "remove", path: "/spec/containers/1" }], 0, "out of range")
    expectFailure(pod(), [{ op: "replace", path: "/spec/containers/1", value: {} }], 0, "out of range")
    expectFailure(pod(), [{ op: "remove", path: "/spec/containers/-" }], 0, "not a valid array index")
    expectFailure(pod(), [{ op: "remove", path: "" }], 0, "whole document")
  })

  it("replace swaps an existing value", () => {
    const result = applyStrict(pod(), [
      { op: "replace", path: "/metadata/name", value: "nb-1" },
      { op: "replace", path: "/spec/containers/0", value: { name: "other" } }
    ])
    expect(result).toMatchObject({ metadata: { name: "nb-1" }, spec: { containers: [{ name: "other" }] } })
  })
})

describe("applyStrict: move, copy, test", () => {
  it("move relocates a value; from must exist and must not be an ancestor of path", () => {
    expect(applyStrict(pod(), [{ op: "move", from: "/metadata/annotations", path: "/metadata/labels" }])).toEqual({
      metadata: { name: "nb-0", labels: { a: "1" } },
      spec: { containers: [{ name: "nb" }], volumes: [] }
    })
    expectFailure(pod(), [{ op: "move", from: "/metadata/labels", path: "/x" }], 0, "does not exist")
    expectFailure(pod(), [{ op: "move", from: "/metadata", path: "/metadata/inner" }], 0, "its own children")
  })

  it("copy duplicates a value without aliasing it", () => {
    const result = applyStrict(pod(), [
      { op: "copy", from: "/spec/containers/0", path: "/spec/containers/-" },
      { op: "replace", path: "/spec/containers/1/name", value: "copy" }
    ])
    expect(result).toMatchObject({ spec: { containers: [{ name: "nb" }, { name: "copy" }] } })
  })

  it("test compares deep-equal (object key order does not matter) and fails otherwise", () => {
    const document = { a: { x: 1, y: [1, { z: null }] } }
    expect(applyStrict(document, [{ op: "test", path: "/a", value: { y: [1, { z: null }], x: 1 } }])).toEqual(document)
    expectFailure(document, [{ op: "test", path: "/a/x", value: "1" }], 0, "test failed")
    expectFailure(document, [{ op: "test", path: "/a/y", value: [1] }], 0, "test failed")
    expectFailure(document, [{ op: "test", path: "/a/missing", value: null }], 0, "does not exist")
  })
})

describe("applyStrict: immutability", () => {
  it("never mutates the document or the patch, even when an operation fails", () => {
    const document = pod()
    const before = structuredClone(document)
    const patch = [
      { op: "add", path: "/spec/volumes/-", value: { name: "v" } },
      { op: "remove", path: "/metadata/annotations/a" }
    ]
    const patchBefore = structuredClone(patch)
    const result = applyStrict(document, patch) as { spec: { volumes: Array<{ name: string }> } }
    expect(document).toEqual(before)
    result.spec.volumes[0]!.name = "changed"
    expect(patch).toEqual(patchBefore)
    expect(() => applyStrict(document, [...patch, { op: "remove", path: "/nope" }])).toThrow(JsonPatchError)
    expect(document).toEqual(before)
  })
})

describe("decodePatchBase64", () => {
  it("decodes base64 JSON text", () => {
    const patch = [{ op: "add", path: "/metadata/labels", value: { "é": "ü" } }]
    expect(decodePatchBase64(Buffer.from(JSON.stringify(patch), "utf8").toString("base64"))).toEqual(patch)
  })

  it("rejects malformed base64 and non-JSON", () => {
    expect(() => decodePatchBase64("not base64!")).toThrow("base64")
    expect(() => decodePatchBase64("W10")).toThrow("base64")
    expect(() => decodePatchBase64(Buffer.from("{oops").toString("base64"))).toThrow(SyntaxError)
  })
})
