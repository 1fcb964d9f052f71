import { spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { escapeForKubelet, goofysBinary, goofysCommand } from "../../src/domain/goofys.ts"
import { busyboxPath, kubeletExpand } from "../support/sidecarNamespace.ts"

const policy = { attempts: 3, delaySeconds: 0, flags: ["--cheap", "--http-timeout", "1500s", "-o", "allow_other", "-f"] }

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

describe("goofys script", () => {
  // Run as the sidecar's PID 1 in test/sidecar/pid1.test.ts; here only parsed, by each POSIX shell at hand.
  const script = kubeletExpand(goofysCommand(policy, "https://h.example.test", "1").command[2])
  const busybox = busyboxPath()

  it("parses with sh -n (dash on Debian)", () => {
    const parsed = spawnSync("sh", ["-n", "-c", script], { encoding: "utf8" })
    expect(parsed.stderr).toBe("")
    expect(parsed.status).toBe(0)
  })

  it.skipIf(busybox === undefined)("parses with busybox ash (sh -n)", () => {
    const parsed = spawnSync(busybox!, ["sh", "-n", "-c", script], { encoding: "utf8" })
    expect(parsed.stderr).toBe("")
    expect(parsed.status).toBe(0)
  })

  it("calls goofys by its absolute path, in the background under a trap for SIGTERM and SIGINT", () => {
    expect(script).toContain(`\n  ${goofysBinary} --endpoint "$endpoint" "$@" "$bucket" "$mountpoint" &\n`)
    expect(script).toContain("\ntrap stop TERM INT\n")
    expect(script).not.toContain("exec ")
  })
})
