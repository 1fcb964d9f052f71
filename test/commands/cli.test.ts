/**
 * The command line as a user runs it: `node src/bin.ts review|inject`, with
 * node_modules/.bin first on PATH (Node 24 runs the TypeScript directly).
 * Each test spawns real processes, so they run concurrently.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import {
  answer,
  directoryPipeline,
  exampleClusterDir,
  exampleReviewFile,
  mutatedPod,
  repoRoot
} from "../support/pipelineHarness.ts"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

// Each run costs about two seconds of CPU (Node loads and strips the sources): at most two at a time.
let running = 0
const waiting: Array<() => void> = []
const limited = async <A>(task: () => Promise<A>): Promise<A> => {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await task()
  } finally {
    running--
    waiting.shift()?.()
  }
}

const cli = (args: ReadonlyArray<string>, stdin?: string): Promise<Run> => limited(() => spawnCli(args, stdin))

const spawnCli = (args: ReadonlyArray<string>, stdin?: string): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn("node", [join(repoRoot, "src", "bin.ts"), ...args], {
      cwd: repoRoot,
      env: { ...process.env, PATH: `${join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(stdin ?? "")
  })

const review = (file: string, stdin?: string) => cli(["review", "--cluster", exampleClusterDir, file], stdin)

/** Exactly one line on stderr, and no output. */
const expectOneErrorLine = (run: Run, code: number, pattern: RegExp) => {
  expect(run.code).toBe(code)
  expect(run.stdout).toBe("")
  const lines = run.stderr.split("\n").filter((line) => line !== "")
  expect(lines.length, run.stderr).toBe(1)
  expect(lines[0]).toMatch(pattern)
}

describe.concurrent("filer-sidecar-injector review", () => {
  it("prints the pipeline's answer for the example, byte-identical across runs, from a file or from - (stdin)", async () => {
    const [first, second] = await Promise.all([review(exampleReviewFile), review("-", readFileSync(exampleReviewFile, "utf8"))])
    expect(first.code).toBe(0)
    expect(first.stderr).toBe("")
    expect(first.stdout).toBe(second.stdout)
    const expected = await Effect.runPromise(
      answer(JSON.parse(readFileSync(exampleReviewFile, "utf8"))).pipe(Effect.provide(directoryPipeline(exampleClusterDir)))
    )
    expect(JSON.parse(first.stdout)).toEqual(expected)
    // One line of JSON: exactly the bytes the webhook would send, plus a newline.
    expect(first.stdout.trimEnd().includes("\n")).toBe(false)
  })

  it("exits 2 with one line when the input is not JSON", async () => {
    expectOneErrorLine(await review("-", "{not json"), 2, /^error: body is not JSON/)
  })

  it("exits 2 with one line naming kind when the input is not an AdmissionReview", async () => {
    const input = JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "x" } })
    expectOneErrorLine(await review("-", input), 2, /^error: not an AdmissionReview v1: (kind|apiVersion): /)
  })

  it("exits 2 with one line naming request when there is none", async () => {
    const input = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" })
    expectOneErrorLine(await review("-", input), 2, /^error: not an AdmissionReview v1: request: /)
  })

  it("exits 2 with one line naming request.uid when it is missing", async () => {
    const input = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { operation: "CREATE" } })
    expectOneErrorLine(await review("-", input), 2, /^error: not an AdmissionReview v1: request\.uid: /)
  })

  it("exits 1 with one line when the cluster folder does not exist", async () => {
    const run = await cli(["review", "--cluster", join(repoRoot, "no-such-cluster"), exampleReviewFile])
    expectOneErrorLine(run, 1, /^error: cluster folder: .*no-such-cluster.*cannot read/)
  })
})

describe.concurrent("filer-sidecar-injector inject", () => {
  it("prints the mutated pod as YAML, warnings on stderr", async () => {
    const run = await cli(["inject", "--cluster", exampleClusterDir, join(repoRoot, "manifests", "examples", "notebook-pod.yaml")])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe(`Warning: filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found\n`)
    // The same pod as the example review's answer applied to the example pod.
    const reviewJson = JSON.parse(readFileSync(exampleReviewFile, "utf8"))
    const expected = await Effect.runPromise(answer(reviewJson).pipe(Effect.provide(directoryPipeline(exampleClusterDir))))
    expect(parse(run.stdout)).toEqual(mutatedPod(reviewJson, expected.response))
  })
})
