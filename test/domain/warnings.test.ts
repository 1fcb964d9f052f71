import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Skip } from "../../src/domain/plan.ts"
import { formatWarning, maxWarningLength, maxWarnings, skipWarnings } from "../../src/domain/warnings.ts"

// C0, DEL, C1, and the two JavaScript line terminators beyond \n and \r.
const rawControl = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

const checkShape = (warning: string) => {
  expect(warning.length).toBeLessThanOrEqual(maxWarningLength)
  expect(warning.isWellFormed(), "no lone surrogate").toBe(true)
  expect(rawControl.test(warning), JSON.stringify(warning)).toBe(false)
}

describe("warnings", () => {
  it("name the SVM, the share and the reason", () => {
    const warning = formatWarning({ svm: "fld5filersvm", share: "a/../b", reason: "'..' in share path" })
    expect(warning).toBe(`filers: SVM "fld5filersvm" share "a/../b" skipped: '..' in share path`)
  })

  it("name the SVM and the reason for a skipped SVM", () => {
    expect(formatWarning({ svm: "fld6filersvm", reason: "Secret fld6filersvm-conn-secret not found" }))
      .toBe(`filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found`)
  })

  it("say mounted, not skipped, for a share mounted without env var", () => {
    expect(formatWarning({ svm: "s", share: "ü", reason: "mounted, but no env var: nothing left of the name" }))
      .toBe(`filers: SVM "s" share "ü" mounted, but no env var: nothing left of the name`)
  })

  it("stay within 120 characters for huge SVM and share names, keeping the reason readable", () => {
    const warning = formatWarning({ svm: "s".repeat(5000), share: "d/".repeat(5000), reason: "'..' in share path" })
    checkShape(warning)
    expect(warning).toMatch(/^filers: SVM "s+…" share "(d\/)+d?…" skipped: '\.\.' in share path$/)
  })

  it("stay within 120 characters when the reason itself is long", () => {
    const svm = "s".repeat(253)
    checkShape(formatWarning({ svm, reason: `Secret ${svm}-conn-secret not found` }))
  })

  it("cut unicode names between code points, never inside a surrogate pair", () => {
    checkShape(formatWarning({ svm: "🚀".repeat(100), share: "é🚀".repeat(100), reason: "x" }))
    checkShape(formatWarning({ svm: "a🚀".repeat(100), reason: "x" }))
  })

  it("escape control characters in names, C0, DEL and C1 alike (fix)", () => {
    const warning = formatWarning({ svm: "s\u007f\u0085", share: "a\nb\u0000\u009b\u2028", reason: "control character in share path" })
    checkShape(warning)
    expect(warning).toContain(String.raw`"s\u007f\u0085"`)
    expect(warning).toContain(String.raw`"a\nb\u0000\u009b\u2028"`)
  })

  it("never cut an escape sequence in half", () => {
    for (let n = 0; n < 60; n++) {
      const warning = formatWarning({ svm: "x".repeat(n) + "\u0001".repeat(40), share: "y".repeat(n) + "\u0002".repeat(40), reason: "r" })
      checkShape(warning)
      expect(warning).not.toMatch(/\\u[0-9a-f]{0,3}…/)
    }
  })

  it("are at most 120 characters, well-formed and free of raw control characters for any names", () => {
    // Any code point, with the troublesome ones (controls, separators, backslash, quote, astral) made frequent.
    const special = fc.constantFrom("\u0000", "\n", "\u001f", "\u007f", "\u0085", "\u009f", "\u2028", "\\", '"', "🚀", "é")
    const text = fc.string({ unit: fc.oneof(special, fc.integer({ min: 0, max: 0x10ffff }).map((point) => String.fromCodePoint(point))), maxLength: 200 })
    fc.assert(
      fc.property(text, fc.option(text, { nil: undefined }), fc.constantFrom("x", "mounted, but no env var: y"), (svm, share, reason) => {
        checkShape(formatWarning(share === undefined ? { svm, reason } : { svm, share, reason }))
      }),
      { numRuns: 300 }
    )
  })
})

describe(`at most ${maxWarnings} warnings`, () => {
  const unsafe = (count: number): Array<Skip> =>
    Array.from({ length: count }, (_, i) => ({ svm: "s", share: `../${i}`, code: "unsafe_share_path", reason: "'..' in share path" }))

  it("one per skip up to 25", () => {
    expect(skipWarnings(unsafe(25), true)).toEqual(unsafe(25).map(formatWarning))
  })

  it("past that, the first 24 and one saying how many more, pointing at the status annotation", () => {
    const warnings = skipWarnings(unsafe(26), true)
    expect(warnings).toHaveLength(25)
    expect(warnings.slice(0, 24)).toEqual(unsafe(24).map(formatWarning))
    expect(warnings[24]).toBe(
      "filers: 2 more SVMs or shares skipped; see the pod's annotation filer-injector-webhook.das-zone.statcan/status"
    )
    checkShape(skipWarnings(unsafe(10_000), true)[24]!)
  })

  it("count each share the share limit left out, as the status annotation does", () => {
    const limit: Skip = { svm: "t", code: "share_limit", reason: "1000 of its shares not mounted", shares: Array.from({ length: 1000 }, (_, i) => `${i}`) }
    expect(skipWarnings([...unsafe(30), limit], true)[24]).toMatch(/^filers: 1006 more SVMs or shares skipped;/)
  })

  it("say there is no status annotation when nothing was mounted", () => {
    expect(skipWarnings(unsafe(40), false)[24]).toBe(
      "filers: 16 more SVMs or shares skipped; nothing was mounted, so the pod has no status annotation"
    )
  })
})
