/**
 * Hostile input through the admission pipeline, in this process: generated
 * and mangled AdmissionReviews against generated cluster states (see
 * arbitraries.ts and runner.ts), groups 0 to 3 here and 4 to 7 in
 * pipeline-more.test.ts: over ten thousand cases in all. Every one must end as
 * the server would answer it: a well-formed AdmissionReview for the
 * request's uid (whose patch applies strictly and leaves a valid pod valid),
 * or, for a body that is not an AdmissionReview, the decode error that
 * becomes HTTP 400. No defect, no credential anywhere (answers, patches,
 * logs), no polluted prototype, and the same input always gets the same
 * answer.
 */
import fc from "fast-check"
import { afterAll, describe, expect, it } from "vitest"
import { notebookPod, podReview } from "../support/pipelineHarness.ts"
import { rawBody } from "./arbitraries.ts"
import { checkReviewAnswer, prototypeSnapshot, Violation } from "./check.ts"
import { describeGroup, fuzzGroup, groups, logLines, runBody, runsPerGroup, runtimeFor, seed, stats } from "./runner.ts"

const mine = [0, 1, 2, 3]
const prototypesBefore = prototypeSnapshot()

describe("hostile AdmissionReviews and cluster states, through the pipeline (1 of 2)", () => {
  for (const index of mine) it(describeGroup(index), () => fuzzGroup(index), 120_000)

  it("bodies that are not AdmissionReviews: a decode error (HTTP 400) or a proper answer, never a crash", async () => {
    const runtime = runtimeFor(groups[0]!.objects)
    try {
      await fc.assert(
        fc.asyncProperty(rawBody, async (text) => {
          const outcome = await runBody(runtime, text)
          if (outcome !== "decodeError") checkReviewAnswer(outcome.input, outcome.answer)
        }),
        { seed, numRuns: 600, endOnFailure: true }
      )
    } finally {
      await runtime.dispose()
    }
  }, 60_000)

  /**
   * The denial of a pod that does not decode names the field by its path, and
   * a label or annotation key is part of that path: a 1 MB key must not give a
   * 1 MB denial message (schemaErrors.ts cuts keys and the path).
   */
  it("the denial of an undecodable pod stays short, however long the offending key", async () => {
    const runtime = runtimeFor(groups[0]!.objects)
    try {
      const review = podReview(notebookPod())
      review.request.object.metadata.labels["k".repeat(10_000)] = null
      const outcome = await runBody(runtime, JSON.stringify(review))
      if (outcome === "decodeError") throw new Violation("a review that decodes was refused")
      const response = (outcome.answer as { response: { allowed: boolean; status: { message: string } } }).response
      expect(response.allowed).toBe(false)
      expect(response.status.message.length).toBeLessThanOrEqual(2000)
    } finally {
      await runtime.dispose()
    }
  })

  it("left no prototype polluted", () => {
    expect(prototypeSnapshot()).toEqual(prototypesBefore)
  })

  it(`ran ${mine.length * runsPerGroup} hostile cases`, () => {
    expect(stats.cases).toBeGreaterThanOrEqual(mine.length * runsPerGroup)
  })

  afterAll(() => {
    process.stdout.write(`fuzz (pipeline, 1 of 2): ${JSON.stringify({ ...stats, slowestMs: Math.round(stats.slowestMs), logLines })}\n`)
  })
})
