import { spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { escapeForKubelet, goofysBinary, goofysCommand } from "../../src/domain/goofys.ts"

const policy = { attempts: 3, delaySeconds: 0, flags: ["--cheap", "--http-timeout", "1500s", "-o", "allow_other", "-f"] }

/** What the kubelet does to command and args: `$$` → `$`, `$(VAR)` → the variable's value. */
const kubeletExpand = (text: string, env: Record<string, string>) =>
  text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    match === "$$" ? "$" : env[name!] ?? match)

/** Every `$` is part of a `$$` pair. */
const allDollarsDoubled = (text: string) => text.replace(/\$\$/g, "").includes("$") === false

describe("goofys command", () => {
  it("passes attempts, delay and each goofys flag as separate arguments", () => {
    const { args } = goofysCommand(policy, "https://filer.example.test", "123")
    expect(args).toEqual([
      "https://filer.example.test",
      "123",
      "/tmp",
      "3",
      "0",
      "--cheap",
      "--http-timeout",
      "1500s",
      "-o",
      "allow_other",
      "-f"
    ])
  })

  it("passes the endpoint and bucket as whole arguments, never inside the script (fix: no shell splicing)", () => {
    const endpoint = "https://filer.example.test/x; touch /tmp/pwned #"
    const { args, command } = goofysCommand(policy, endpoint, "4624382957487889774")
    expect(args[0]).toBe(endpoint)
    expect(args[1]).toBe("4624382957487889774")
    expect(command.join("\n")).not.toContain("filer.example.test")
    expect(command.join("\n")).not.toContain("4624382957487889774")
  })

  it("doubles every $ of command and args, so the kubelet hands them over unchanged", () => {
    const endpoint = "https://h.example.test/$(HOME)/$x"
    const { args, command } = goofysCommand({ ...policy, flags: ["--opt=$(PATH)"] }, endpoint, "1")
    for (const text of [...command, ...args]) expect(allDollarsDoubled(text), text).toBe(true)
    expect(kubeletExpand(args[0], { HOME: "/root" })).toBe(endpoint)
    expect(kubeletExpand(args.at(-1)!, { PATH: "/bin" })).toBe("--opt=$(PATH)")
    expect(escapeForKubelet("a$b$$c")).toBe("a$$b$$$$c")
  })
})

describe("goofys command, run by a shell with a stand-in for goofys", () => {
  const dir = mkdtempSync(join(tmpdir(), "goofys-test-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** Runs the sidecar's command as the kubelet and sh would, goofys replaced by a script that records its argv. */
  const run = (endpoint: string, bucket: string, succeedOnAttempt: number) => {
    const log = join(dir, `calls-${Math.random().toString(36).slice(2)}`)
    const fake = join(dir, "goofys")
    writeFileSync(fake, `#!/bin/sh\nprintf '%s\\0' "$@" >> "${log}"\nprintf '\\n' >> "${log}"\n` +
      `[ "$(wc -l < "${log}")" -ge ${succeedOnAttempt} ]\n`)
    chmodSync(fake, 0o755)
    const { args, command } = goofysCommand(policy, endpoint, bucket)
    const [shell, flag, script, name] = command.map((part) => kubeletExpand(part, {}))
    expect([shell, flag, name]).toEqual(["/bin/sh", "-c", "goofys-mount"])
    expect(script).toContain(`${goofysBinary} `)
    const testable = script.replace(`${goofysBinary} `, `${fake} `).replace("exec sleep infinity", "echo SLEEPING FOREVER")
    const result = spawnSync(shell, [flag, testable, name, ...args.map((arg) => kubeletExpand(arg, {}))], {
      encoding: "utf8",
      cwd: dir
    })
    let calls: Array<Array<string>> = []
    try {
      calls = readFileSync(log, "utf8").split("\n").filter((line) => line !== "").map((line) =>
        line.split("\0").slice(0, -1)
      )
    } catch {
      // no call at all
    }
    return { ...result, calls }
  }

  it("runs goofys with the endpoint, the flags, the bucket and the mount point, each one argument", () => {
    const endpoint = "https://h.example.test:9000/a b;$(id)`id`"
    const { calls, status } = run(endpoint, "12638187200555641996", 1)
    expect(status).toBe(0)
    expect(calls).toEqual([["--endpoint", endpoint, ...policy.flags, "12638187200555641996", "/tmp"]])
  })

  it("retries a failing mount the policy's number of times, then says it gave up and sleeps instead of exiting", () => {
    const { calls, stderr, stdout } = run("https://h.example.test", "1", 99)
    expect(calls.length).toBe(3)
    expect(stderr).toContain("gave up after 3 attempts")
    expect(stdout).toContain("SLEEPING FOREVER")
  })

  it("stops retrying once a mount succeeds", () => {
    const { calls, status } = run("https://h.example.test", "1", 2)
    expect(status).toBe(0)
    expect(calls.length).toBe(2)
  })
})
