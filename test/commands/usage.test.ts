/**
 * Nothing exits 0 without doing its job: a command line no command takes
 * (an unknown flag with one or two dashes, no command at all) exits 2 with
 * the message on stderr; `--help` and `--version`, asked for, exit 0.
 */
import { execFile } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../support/pipelineHarness.ts"

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const cli = (args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve) => {
    const options = {
      cwd: repoRoot,
      encoding: "utf8" as const,
      // Node keeps the compiled sources between runs: the later processes start faster.
      env: { ...process.env, NODE_COMPILE_CACHE: path.join(os.tmpdir(), "filer-sidecar-injector-cli-test-cache") }
    }
    execFile(process.execPath, [path.join(repoRoot, "src", "bin.ts"), ...args], options, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }))
  })

const usageErrors: ReadonlyArray<readonly [string, ReadonlyArray<string>, RegExp]> = [
  ["an unknown flag in the Go injector's form", ["-unknown-flag=1"], /^error: flag provided but not defined: -unknown-flag /],
  ["an unknown flag with two dashes", ["--unknown-flag=1"], /^error: Unrecognized flag: --unknown-flag in command filer-sidecar-injector /],
  ["an unknown flag of serve", ["serve", "--bogus=1"], /^error: Unrecognized flag: --bogus in command filer-sidecar-injector serve /],
  ["a single-dash word after serve", ["serve", "-bogus=1"], /^error: unknown flag -bogus \(flags take two dashes: --bogus\)$/],
  ["a Go flag without its value", ["-service-name=x", "-port"], /^error: flag needs an argument: -port$/]
]

describe("the command line", () => {
  for (const [what, args, message] of usageErrors) {
    it(`exits 2 on ${what}, naming it in one line on stderr`, async () => {
      const run = await cli(args)
      expect(run.code).toBe(2)
      expect(run.stdout).toBe("")
      const lines = run.stderr.split("\n").filter((line) => line !== "")
      expect(lines.length, run.stderr).toBe(1)
      expect(lines[0]).toMatch(message)
    })
  }

  it("exits 2 with the usage on stderr when there is no command", async () => {
    const run = await cli([])
    expect(run.code).toBe(2)
    expect(run.stdout).toBe("")
    expect(run.stderr).toMatch(/USAGE\s+filer-sidecar-injector <subcommand>/)
    expect(run.stderr).toMatch(/serve\s+Run the HTTPS admission webhook/)
  })

  it("exits 0 with the usage on stdout for --help, and the version for --version", async () => {
    const [help, version] = await Promise.all([cli(["--help"]), cli(["--version"])])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/USAGE\s+filer-sidecar-injector <subcommand>/)
    expect(help.stderr).toBe("")
    expect(version.code).toBe(0)
    expect(version.stdout.trim()).toBe("filer-sidecar-injector v0.1.0")
  })
})
