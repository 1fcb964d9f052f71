/**
 * The server's log lines are written in batches (src/observability/jsonLines.ts):
 * in order, at most `flushAfterMillis` late, at once for an error, and never
 * lost when the scope closes or the process exits.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { afterEach, beforeEach, vi } from "vitest"
import { FlushLogLines, layerBatchedJsonLines, makeLineBuffer } from "../../src/observability/jsonLines.ts"

const repoRoot = path.join(import.meta.dirname, "..", "..")

describe("the line buffer", () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it("holds lines until flushAfterMillis, then writes them in one chunk, in order", () => {
    const chunks: Array<string> = []
    const buffer = makeLineBuffer((chunk) => chunks.push(chunk), { flushAfterMillis: 50 })
    buffer.add("one\n", false)
    vi.advanceTimersByTime(30)
    buffer.add("two\n", false)
    assert.deepStrictEqual(chunks, [])
    // 50 ms after the first line, not the second.
    vi.advanceTimersByTime(20)
    assert.deepStrictEqual(chunks, ["one\ntwo\n"])
    vi.advanceTimersByTime(1000)
    assert.deepStrictEqual(chunks, ["one\ntwo\n"])
  })

  it("writes at once, with the lines before it, a line marked now", () => {
    const chunks: Array<string> = []
    const buffer = makeLineBuffer((chunk) => chunks.push(chunk), { flushAfterMillis: 50 })
    buffer.add("info\n", false)
    buffer.add("error\n", true)
    assert.deepStrictEqual(chunks, ["info\nerror\n"])
    vi.advanceTimersByTime(100)
    assert.deepStrictEqual(chunks, ["info\nerror\n"])
  })

  it("writes at once when maxBufferedChars are waiting", () => {
    const chunks: Array<string> = []
    const buffer = makeLineBuffer((chunk) => chunks.push(chunk), { flushAfterMillis: 50, maxBufferedChars: 10 })
    buffer.add("12345\n", false)
    assert.deepStrictEqual(chunks, [])
    buffer.add("67890\n", false)
    assert.deepStrictEqual(chunks, ["12345\n67890\n"])
  })

  it("writes nothing when nothing waits", () => {
    const chunks: Array<string> = []
    const buffer = makeLineBuffer((chunk) => chunks.push(chunk))
    buffer.flush()
    vi.advanceTimersByTime(1000)
    assert.deepStrictEqual(chunks, [])
  })
})

describe("the batched JSON-lines logger", () => {
  it.effect("writes effect's JSON lines, each annotation kept, when its scope closes and on FlushLogLines", () =>
    Effect.gen(function*() {
      const chunks: Array<string> = []
      const logs = layerBatchedJsonLines((chunk) => chunks.push(chunk), { flushAfterMillis: 60_000 })
      yield* Effect.gen(function*() {
        yield* Effect.logInfo("admission injected").pipe(Effect.annotateLogs({ uid: "u-1", svms: 2 }))
        assert.deepStrictEqual(chunks, [], "held, not written at once")
        const flush = yield* FlushLogLines
        flush()
        assert.strictEqual(chunks.length, 1)
        yield* Effect.logWarning("second")
      }).pipe(Effect.provide(logs))
      // The scope closed: the second line is written.
      const lines = chunks.join("").trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)
      assert.strictEqual(lines.length, 2)
      assert.strictEqual(lines[0]!.message, "admission injected")
      assert.strictEqual(lines[0]!.level, "INFO")
      assert.deepStrictEqual(lines[0]!.annotations, { uid: "u-1", svms: 2 })
      assert.strictEqual(lines[1]!.level, "WARN")
    }))

  it.effect("writes the same text as effect's own JSON format", () =>
    Effect.gen(function*() {
      const ours: Array<string> = []
      const theirs: Array<string> = []
      const capture = Logger.map(Logger.formatJson, (line) => {
        theirs.push(`${line}\n`)
      })
      const line = Effect.logInfo("same").pipe(Effect.annotateLogs({ a: "b" }))
      yield* line.pipe(Effect.provide(layerBatchedJsonLines((chunk) => ours.push(chunk))))
      yield* line.pipe(Effect.provide(Logger.layer([capture])))
      assert.strictEqual(theirs.length, 1)
      const strip = (line: string) => line.replace(/"timestamp":"[^"]*",/, "").replace(/"fiberId":"[^"]*"/, "")
      assert.strictEqual(strip(ours.join("")), strip(theirs.join("")))
    }))

  it("loses no line when the process exits right after logging", () => {
    // A real process: the line waits in the buffer when process.exit is called.
    const script = `
      import { Effect } from "effect"
      import { layerBatchedJsonLines } from "./src/observability/jsonLines.ts"
      await Effect.runPromise(Effect.gen(function*() {
        yield* Effect.logInfo("last words")
        process.exit(3)
      }).pipe(Effect.provide(layerBatchedJsonLines())))
    `
    let stdout = ""
    try {
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, encoding: "utf8" })
      assert.fail("the process should have exited with 3")
    } catch (error) {
      const failed = error as { status: number; stdout: string }
      assert.strictEqual(failed.status, 3)
      stdout = failed.stdout
    }
    const line = JSON.parse(stdout.trim()) as Record<string, unknown>
    assert.strictEqual(line.message, "last words")
  })
})
