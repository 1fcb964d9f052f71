/**
 * Running the command line as a user runs it: `node src/bin.ts ...`, with
 * node_modules/.bin first on PATH (Node 24 runs the TypeScript directly).
 * At most two processes at a time across a test file: each costs about two
 * seconds of CPU.
 */
import { spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect } from "vitest"
import { repoRoot } from "./pipelineHarness.ts"

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

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

/** Runs `filer-sidecar-injector ...args` to its end, `stdin` on its standard input, `env` over this process's. */
export const cli = (
  args: ReadonlyArray<string>,
  stdin?: string,
  env: Readonly<Record<string, string>> = {}
): Promise<Run> => limited(() => spawnCli(args, stdin, env))

const spawnCli = (args: ReadonlyArray<string>, stdin: string | undefined, env: Readonly<Record<string, string>>) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn("node", [join(repoRoot, "src", "bin.ts"), ...args], {
      cwd: repoRoot,
      env: {
        ...process.env,
        PATH: `${join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
        // Node keeps the compiled sources between runs: the later processes start faster.
        NODE_COMPILE_CACHE: join(tmpdir(), "filer-sidecar-injector-cli-test-cache"),
        ...env
      },
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

/** Exactly one line on stderr, and no output. */
export const expectOneErrorLine = (run: Run, code: number, pattern: RegExp) => {
  expect(run.code).toBe(code)
  expect(run.stdout).toBe("")
  const lines = run.stderr.split("\n").filter((line) => line !== "")
  expect(lines.length, run.stderr).toBe(1)
  expect(lines[0]).toMatch(pattern)
}
