import { Result } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseShareList, shareMountSuffix, unsafeShareReason } from "../../src/domain/shares.ts"

describe("share list of an SVM", () => {
  it("is a JSON array of strings", () => {
    expect(parseShareList('["division/project", "home"]')).toEqual(Result.succeed(["division/project", "home"]))
  })

  it("is refused when not JSON, not an array, or holding a non-string", () => {
    expect(Result.isFailure(parseShareList("division/project"))).toBe(true)
    expect(Result.isFailure(parseShareList('{"home": true}'))).toBe(true)
    expect(Result.isFailure(parseShareList('["home", 1]'))).toBe(true)
    expect(Result.isFailure(parseShareList('"home"'))).toBe(true)
  })
})

describe("share path safety (fix: the original mounted any text)", () => {
  it("refuses an empty or blank share", () => {
    expect(unsafeShareReason("")).toMatch(/empty/)
    expect(unsafeShareReason("  ")).toMatch(/empty/)
  })

  it("refuses a leading /", () => {
    expect(unsafeShareReason("/etc")).toMatch(/absolute/)
  })

  it("refuses a .. segment anywhere", () => {
    for (const share of ["..", "../x", "a/../b", "a/.."]) expect(unsafeShareReason(share), share).toMatch(/'\.\.'/)
  })

  it("refuses a . segment", () => {
    for (const share of [".", "./a", "a/./b", "a/."]) expect(unsafeShareReason(share), share).toMatch(/'\.'/)
  })

  it("refuses control characters (C0, DEL, C1)", () => {
    for (const share of ["a\u0000b", "a\nb", "a\tb", "a\u007fb", "a\u0085b"]) {
      expect(unsafeShareReason(share), JSON.stringify(share)).toMatch(/control/)
    }
  })

  it("accepts ordinary relative paths, dots inside names and unicode", () => {
    for (const share of ["home", "division/project", "a..b", ".hidden", "données/équipe 1", "a/b/"]) {
      expect(unsafeShareReason(share), share).toBeUndefined()
    }
  })

  it("mounts below the SVM folder without empty segments", () => {
    expect(shareMountSuffix("a//b/")).toBe("a/b")
  })

  // The checks look for segments without splitting each share (a namespace may
  // list 100,000): they must say what splitting says.
  it("finds . and .. segments and empty ones as splitting the path into segments does", () => {
    const pathLike = fc.array(fc.constantFrom("", ".", "..", "...", ".a", "a.", "a", "b/c"), { maxLength: 6 })
      .map((segments) => segments.join("/"))
    fc.assert(fc.property(fc.oneof(pathLike, fc.string()), (share) => {
      const segments = share.split("/")
      const reason = unsafeShareReason(share)
      if (share.trim() !== "" && !share.startsWith("/") && !/[\u0000-\u001f\u007f-\u009f\\]/.test(share) && share.length <= 1024) {
        const expected = segments.includes("..") ? "'..' in share path" : segments.includes(".") ? "'.' segment in share path" : undefined
        expect(reason, JSON.stringify(share)).toBe(expected)
      }
      expect(shareMountSuffix(share)).toBe(segments.filter((segment) => segment !== "").join("/"))
    }), { numRuns: 2000 })
  })
})
