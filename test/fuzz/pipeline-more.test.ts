/**
 * Groups 4 to 7 of the in-process fuzz (pipeline.test.ts has 0 to 3 and says
 * what is checked): a file of its own so that vitest runs both halves at once.
 */
import { afterAll, describe, expect, it } from "vitest"
import { prototypeSnapshot } from "./check.ts"
import { describeGroup, fuzzGroup, logLines, runsPerGroup, stats } from "./runner.ts"

const mine = [4, 5, 6, 7]
const prototypesBefore = prototypeSnapshot()

describe("hostile AdmissionReviews and cluster states, through the pipeline (2 of 2)", () => {
  for (const index of mine) it(describeGroup(index), () => fuzzGroup(index), 120_000)

  it("left no prototype polluted", () => {
    expect(prototypeSnapshot()).toEqual(prototypesBefore)
  })

  it(`ran ${mine.length * runsPerGroup} hostile cases`, () => {
    expect(stats.cases).toBeGreaterThanOrEqual(mine.length * runsPerGroup)
  })

  afterAll(() => {
    process.stdout.write(`fuzz (pipeline, 2 of 2): ${JSON.stringify({ ...stats, slowestMs: Math.round(stats.slowestMs), logLines })}\n`)
  })
})
