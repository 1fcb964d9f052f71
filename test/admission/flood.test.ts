/**
 * Hostile namespaces (README, "Limits"; docs/behaviour.md, "Limits"): an
 * `existing-shares` with 10,000 SVM keys, or one SVM with 100,000 shares,
 * through the whole pipeline. The answer carries at most 25 warnings, the
 * last saying how many more were skipped and where to look; the patch
 * applies and mounts at most MAX_SHARES_PER_POD shares; the skips add at most
 * 64 KiB to the answer; the admission's log line holds counts and the first
 * few reasons. (What it costs in time is measured by test/bench/flood.ts,
 * not asserted here.)
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { Admission } from "../../src/admission/outcome.ts"
import { statusAnnotation } from "../../src/domain/pod.ts"
import { maxSkippedEntries } from "../../src/domain/status.ts"
import { maxWarningLength, maxWarnings } from "../../src/domain/warnings.ts"
import { outcomeAnnotations } from "../../src/observability/Admission.ts"
import { type Flood, shareFlood, svmKeyFlood } from "../support/flood.ts"
import { admitSettled, memoryPipeline, mutatedPod, notebookPod, podReview } from "../support/pipelineHarness.ts"

const review = podReview(notebookPod())
const maxShares = 100

const admitIn = (objects: Flood["objects"]): Promise<Admission> =>
  Effect.runPromise(admitSettled(review).pipe(Effect.provide(memoryPipeline(objects, { maxSharesPerPod: maxShares }))))

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

const moreSkipped = /^filers: (\d+) more SVMs or shares skipped; (.*)$/

describe.each([
  ["10,000 SVM keys", () => svmKeyFlood(10_000), 2],
  ["100,000 shares", () => shareFlood(100_000, maxShares), maxShares]
] as const)("a namespace with %s", (_, makeFlood, mounted) => {
  const flood = makeFlood()
  const admitted = admitIn(flood.objects)

  it("is injected with what can be mounted, at most MAX_SHARES_PER_POD shares", async () => {
    const { outcome, review: answer } = await admitted
    expect(outcome.decision).toBe("injected")
    expect(answer.response.patchType).toBe("JSONPatch")
    const pod = mutatedPod(review, answer.response)
    expect(pod.spec.initContainers).toHaveLength(mounted)
    expect(outcome.sharesMounted).toBe(mounted)
  })

  it(`answers with ${maxWarnings} warnings, the last saying how many more and pointing at the status annotation`, async () => {
    const { review: answer } = await admitted
    const warnings = answer.response.warnings ?? []
    expect(warnings).toHaveLength(maxWarnings)
    for (const warning of warnings) expect(warning.length).toBeLessThanOrEqual(maxWarningLength)
    const last = moreSkipped.exec(warnings.at(-1)!)
    expect(last, warnings.at(-1)).not.toBeNull()
    // The first 24 warnings are one skipped SVM or share each.
    expect(Number(last![1])).toBe(flood.skipped - (maxWarnings - 1))
    expect(last![2]).toBe(`see the pod's annotation ${statusAnnotation}`)
  })

  it("lists the first skips in the status annotation and counts the rest", async () => {
    const { review: answer } = await admitted
    const status = JSON.parse(mutatedPod(review, answer.response).metadata.annotations[statusAnnotation]) as {
      mounted: Array<unknown>
      skipped: Array<unknown>
      skippedMore: number
    }
    expect(status.mounted).toHaveLength(mounted)
    expect(status.skipped.length).toBeLessThanOrEqual(maxSkippedEntries)
    expect(status.skipped.length + status.skippedMore).toBe(flood.skipped)
  })

  it("adds at most 64 KiB to the answer for what it skips", async () => {
    const { review: answer } = await admitted
    const { review: withoutSkips } = await admitIn(flood.mountedOnly)
    expect(withoutSkips.response.warnings).toBeUndefined()
    expect(mutatedPod(review, withoutSkips.response).spec.initContainers).toHaveLength(mounted)
    const added = bytes(answer) - bytes(withoutSkips)
    expect(added).toBeGreaterThan(0)
    expect(added).toBeLessThanOrEqual(64 * 1024)
  })

  it("logs counts and the first few reasons, in a line of a few hundred bytes", async () => {
    const { outcome, review: answer } = await admitted
    const annotations = outcomeAnnotations(answer.response.uid, outcome, 1)
    expect(annotations.skippedCount).toBe(flood.skipped)
    expect((annotations.skipped as Array<string>).length).toBe(5)
    expect(annotations.warnings).toBe(maxWarnings)
    expect(bytes(annotations)).toBeLessThanOrEqual(2048)
  })
})

describe("a namespace whose 10,000 SVM keys are all skipped", () => {
  it("says so in the 25th warning, without pointing at an annotation the pod does not get", async () => {
    const flood = svmKeyFlood(10_000)
    const { outcome, review: answer } = await admitIn(withoutMounting(flood))
    expect(outcome.decision).toBe("skipped")
    expect(answer.response.patch).toBeUndefined()
    const warnings = answer.response.warnings ?? []
    expect(warnings).toHaveLength(maxWarnings)
    expect(warnings.at(-1)).toBe(
      `filers: ${10_000 - (maxWarnings - 1)} more SVMs or shares skipped; nothing was mounted, so the pod has no status annotation`
    )
  })
})

/** The flood's cluster without its one SVM that mounts: every SVM key is skipped. */
function withoutMounting(flood: Flood): Flood["objects"] {
  return flood.objects.map((object) => {
    const metadata = (object as { metadata?: { name?: string } }).metadata
    if (metadata?.name !== "existing-shares") return object
    const { fld5filersvm: _, ...data } = (object as { data: Record<string, string> }).data
    return { ...object, data }
  })
}
