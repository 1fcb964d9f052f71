import { describe, expect, it } from "vitest"
import { choiceAnnotation, parseChoices } from "../../src/domain/choices.ts"
import { bucketName } from "../../src/domain/hash.ts"
import {
  filerStatus,
  maxSkippedEntries,
  maxSkippedNameBytes,
  skippedBudgetBytes,
  statusAnnotationValue,
  statusBudgetBytes
} from "../../src/domain/status.ts"
import { filers, found, planFor } from "./fixtures.ts"

const bytes = (text: string) => new TextEncoder().encode(text).length

describe("status annotation", () => {
  it("is compact JSON: mounted, then skipped, in plan order, keys in a fixed order", () => {
    const plan = planFor({ b: ["x", "../up"], a: ["home"], c: "not json" }, {
      filers: filers({ a: "https://a.example.test", b: "https://b.example.test" })
    })
    expect(statusAnnotationValue(plan)).toBe(
      `{"mounted":[` +
        `{"svm":"a","share":"home","path":"/home/jovyan/filers/a/home","bucket":"${bucketName("home")}"},` +
        `{"svm":"b","share":"x","path":"/home/jovyan/filers/b/x","bucket":"${bucketName("x")}"}` +
        `],"skipped":[` +
        `{"svm":"b","share":"../up","reason":"unsafe_share_path"},` +
        `{"svm":"c","reason":"invalid_share_list"}` +
        `]}`
    )
  })

  it("gives the same bytes for the same inputs, whatever the order of the ConfigMap's keys", () => {
    const shares = { zeta: ["a", "b"], alpha: ["/abs", "c"], mid: "[1]" }
    const reversed = Object.fromEntries(Object.entries(shares).reverse())
    expect(statusAnnotationValue(planFor(reversed))).toBe(statusAnnotationValue(planFor(shares)))
    expect(statusAnnotationValue(planFor(shares))).toBe(statusAnnotationValue(planFor(shares)))
  })

  it("leaves `share` out when a whole SVM was skipped", () => {
    const plan = planFor({ gone: ["home"], kept: ["home"] }, {
      secrets: new Map([["kept", found("FAKE-A", "FAKE-S")]])
    })
    const { skipped } = JSON.parse(statusAnnotationValue(plan))
    expect(skipped).toEqual([{ svm: "gone", reason: "secret_missing" }])
    expect(Object.keys(skipped[0])).toEqual(["svm", "reason"])
  })

  it("names each share the share limit left out, as a skip of that share (the SVM itself is mounted)", () => {
    const plan = planFor({ a: ["p", "q", "r"], b: ["s"] }, { maxShares: 1 })
    expect(filerStatus(plan)).toEqual({
      mounted: [{ svm: "a", share: "p", path: "/home/jovyan/filers/a/p", bucket: bucketName("p") }],
      skipped: [
        { svm: "a", share: "q", reason: "share_limit" },
        { svm: "a", share: "r", reason: "share_limit" },
        { svm: "b", share: "s", reason: "share_limit" }
      ]
    })
  })

  it(`lists at most ${maxSkippedEntries} skipped entries, then how many more`, () => {
    const unsafe = Array.from({ length: 40 }, (_, i) => `/abs-${i}`)
    const overLimit = Array.from({ length: 1000 }, (_, i) => `share-${i}`)
    const status = filerStatus(planFor({ a: unsafe, b: ["kept", ...overLimit] }, { maxShares: 1 }))
    expect(status.skipped.length).toBe(maxSkippedEntries)
    expect(status.skipped.slice(0, 40).every((entry) => entry.reason === "unsafe_share_path")).toBe(true)
    expect(status.skipped.slice(40).map((entry) => entry.share)).toEqual(overLimit.slice(0, 10))
    expect(status.skippedMore).toBe(40 + 1000 - maxSkippedEntries)
    expect(status.mounted.map((entry) => entry.share)).toEqual(["kept"])
    expect(Object.keys(JSON.parse(statusAnnotationValue(planFor({ a: unsafe }))))).toEqual(["mounted", "skipped"])
  })

  it("cuts a skipped share of any length or content to a few hundred bytes, marked …", () => {
    const long = `a/${"b".repeat(2_000_000)}`
    const controls = "\u0001".repeat(1500)
    const status = filerStatus(planFor({ s: [long, controls, "ok"] }))
    const [first, second] = status.skipped
    expect(first.share?.endsWith("…")).toBe(true)
    expect(long.startsWith(first.share!.slice(0, -1))).toBe(true)
    expect(second.share?.endsWith("…")).toBe(true)
    for (const entry of status.skipped) expect(bytes(JSON.stringify(entry.share))).toBeLessThanOrEqual(maxSkippedNameBytes)
    // Short and multi-byte names are kept whole; no lone surrogate is left by a cut.
    const emoji = "📁".repeat(200)
    const [cut] = filerStatus(planFor({ s: [`/${emoji}`] })).skipped
    expect(cut.share).toMatch(/^\/(📁)+…$/u)
  })

  it(`stays within ${statusBudgetBytes / 1024} KiB, keeping the first mounted shares and counting the rest`, () => {
    const longShares = Array.from({ length: 300 }, (_, i) => `${i}/${"é".repeat(1000)}`)
    const plan = planFor({ s: longShares }, { maxShares: 300 })
    expect(plan.svms[0].shares.length).toBe(300)
    const value = statusAnnotationValue(plan)
    expect(bytes(value)).toBeLessThanOrEqual(statusBudgetBytes)
    const status = JSON.parse(value)
    expect(status.mounted.length + status.mountedMore).toBe(300)
    expect(status.mounted.map((entry: { share: string }) => entry.share)).toEqual(
      longShares.slice(0, status.mounted.length)
    )
    // A usual pod is far from it: nothing left out.
    expect(filerStatus(planFor({ s: longShares.map((_, i) => `project-${i}/data`) }, { maxShares: 300 })))
      .not.toHaveProperty("mountedMore")
  })

  it("ends with the pod's choices when it made some, within the budget too; the same bytes as ever when it made none", () => {
    const chosen = (annotations: Record<string, string>) =>
      parseChoices(annotations, {
        defaults: { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "500m", memory: "10Gi" } },
        maxima: { cpu: "2", memory: "16Gi" }
      }).choices
    const plan = planFor({ a: ["home"] })
    expect(statusAnnotationValue(plan, chosen({}))).toBe(statusAnnotationValue(plan))
    const value = statusAnnotationValue(plan, chosen({ [choiceAnnotation("read-only")]: "true" }))
    expect(value).toBe(`${statusAnnotationValue(plan).slice(0, -1)},"choices":{"readOnly":true}}`)

    const longShares = Array.from({ length: 300 }, (_, i) => `${i}/${"é".repeat(1000)}`)
    const big = planFor({ s: longShares }, { maxShares: 300 })
    const entries = Array.from({ length: 400 }, (_, i) => `s/\u0001${i}`).join(",").slice(0, 4096)
    const withChoices = statusAnnotationValue(big, chosen({ [choiceAnnotation("shares")]: entries }))
    expect(bytes(withChoices)).toBeLessThanOrEqual(statusBudgetBytes)
    expect(JSON.parse(withChoices).choices.shares.length).toBeGreaterThan(300)
  })

  it(`lists fewer skipped entries when their names would take more than ${skippedBudgetBytes / 1024} KiB, and counts the rest`, () => {
    // Backslashes and quotes: each name cut to its most bytes of JSON, and doubled again when the patch quotes the annotation.
    const svm = "s".repeat(241)
    const heavy = Array.from({ length: 80 }, (_, i) => `${'\\"'.repeat(400)}${i}`)
    const status = filerStatus(planFor({ [svm]: heavy }))
    expect(status.skipped.length).toBeGreaterThan(10)
    expect(status.skipped.length).toBeLessThan(maxSkippedEntries)
    expect(status.skippedMore).toBe(80 - status.skipped.length)
    expect(bytes(JSON.stringify(status.skipped))).toBeLessThanOrEqual(skippedBudgetBytes)
    // Usual names are far from it: all 50 listed.
    const usual = filerStatus(planFor({ s: Array.from({ length: 80 }, (_, i) => `../project-${i}/data`) }))
    expect(usual.skipped).toHaveLength(maxSkippedEntries)
  })
})
