/**
 * The sidecar's command, as generated (only the kubelet's `$$` → `$`
 * applied), run as PID 1 of its own PID namespace with a stand-in at
 * /goofys: the retry policy, and that SIGTERM and SIGINT stop it at once
 * (README, "What it injects, and when"): a PID 1 ignores a signal it has no
 * handler for, and the kubelet would wait out the grace period.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { busyboxPath, namespaceUnavailable, type SidecarRun, sidecarRunner } from "../support/sidecarNamespace.ts"

const unavailable = namespaceUnavailable()
const busybox = busyboxPath()

const flags = ["--cheap", "--http-timeout", "1500s", "-o", "allow_other", "-f"]

// Stand-ins for goofys. Each records its arguments (NUL-separated, one call a line) in /out/calls.
const recordCall = `printf '%s\\0' "$@" >> /out/calls; printf '\\n' >> /out/calls`
/** Mounts and runs until signalled, recording which signal it got. */
const mounts = `${recordCall}
trap 'echo TERM >> /out/signals; exit 0' TERM
trap 'echo INT >> /out/signals; exit 0' INT
/bin/sh --help 2>&1 | head -n 1 > /out/shell
: > /out/mounted
while :; do sleep 1 & wait $!; done`
const fails = `${recordCall}
exit 1`
const succeedsOnCall = (n: number) => `${recordCall}
[ "$(wc -l < /out/calls)" -ge ${n} ]`

const calls = (run: SidecarRun): ReadonlyArray<ReadonlyArray<string>> => {
  try {
    return readFileSync(join(run.out, "calls"), "utf8").split("\n").filter((line) => line !== "").map((line) =>
      line.split("\0").slice(0, -1)
    )
  } catch {
    return []
  }
}

const signalsGot = (run: SidecarRun): string => {
  try {
    return readFileSync(join(run.out, "signals"), "utf8")
  } catch {
    return ""
  }
}

/** The behaviour itself: stopped, the sidecar is gone well before any grace period. */
const exitsWithinTwoSeconds = async (run: SidecarRun) => {
  const outcome = await Promise.race([
    run.exited,
    new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 2_000))
  ])
  expect(outcome, run.stderr()).toEqual({ code: 0, signal: null })
}

const shells: ReadonlyArray<{ readonly name: string; readonly busybox: string | undefined; readonly skip?: string }> = [
  { name: "/bin/sh (dash here)", busybox: undefined },
  busybox === undefined
    ? { name: "busybox ash", busybox: undefined, skip: "busybox is not installed" }
    : { name: "busybox ash", busybox }
]

if (unavailable !== undefined) {
  describe("the sidecar's command as PID 1", () => {
    it.skip(`needs its own PID namespace: ${unavailable}`, () => {})
  })
} else {
  for (const shell of shells) {
    describe.skipIf(shell.skip !== undefined)(`the sidecar's command as PID 1, ${shell.name}${shell.skip ? `: skipped, ${shell.skip}` : ""}`, () => {
      const runner = sidecarRunner()
      afterEach(() => runner.stopAll())
      const start = (standIn: string, attempts: number, delaySeconds: number, endpoint?: string) =>
        runner.start({
          standIn,
          policy: { attempts, delaySeconds, flags },
          ...(endpoint === undefined ? {} : { endpoint }),
          ...(shell.busybox === undefined ? {} : { busybox: shell.busybox })
        })
      const mounted = (run: SidecarRun) => runner.poll("goofys to mount", () => existsSync(join(run.out, "mounted")))

      it("runs goofys with the endpoint, the flags, the bucket and the mount point, each one argument", async () => {
        const endpoint = "https://h.example.test:9000/a b;$(id)`id`"
        const run = await start(mounts, 5, 1, endpoint)
        await mounted(run)
        expect(calls(run)).toEqual([["--endpoint", endpoint, ...flags, "12638187200555641996", "/tmp"]])
        // The image's /bin/sh is the shell named: busybox says so when asked for help, dash does not know --help.
        expect(readFileSync(join(run.out, "shell"), "utf8").includes("BusyBox")).toBe(shell.busybox !== undefined)
      })

      // A shell starts background commands with SIGINT ignored: SIGTERM is what reaches goofys, for either.
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        it(`on ${signal} while goofys runs, tells goofys to stop (SIGTERM) and exits within 2 s`, async () => {
          const run = await start(mounts, 5, 1)
          await mounted(run)
          process.kill(run.pid, signal)
          await exitsWithinTwoSeconds(run)
          expect(signalsGot(run)).toBe("TERM\n")
        })
      }

      it("tells goofys again each second until it exits (a signal sent before goofys started is lost)", async () => {
        const run = await start(
          `${recordCall}
trap 'echo TERM >> /out/signals; [ "$(wc -l < /out/signals)" -ge 2 ] && exit 0' TERM
: > /out/mounted
while :; do sleep 1 & wait $!; done`,
          5,
          1
        )
        await mounted(run)
        process.kill(run.pid, "SIGTERM")
        expect(await run.exited).toEqual({ code: 0, signal: null })
        expect(signalsGot(run)).toBe("TERM\nTERM\n")
      })

      it("on SIGTERM while waiting 30 s between attempts, exits within 2 s", async () => {
        const run = await start(fails, 5, 30)
        await runner.poll("the first attempt to fail", () => run.stderr().includes("(attempt 1 of 5)"))
        process.kill(run.pid, "SIGTERM")
        await exitsWithinTwoSeconds(run)
        expect(calls(run).length).toBe(1)
      })

      it("after giving up, stays alive, and on SIGTERM exits within 2 s", async () => {
        const run = await start(fails, 1, 30)
        await runner.poll("the sidecar to give up", () => run.stderr().includes("gave up after 1 attempts"))
        expect(run.hasExited()).toBe(false)
        process.kill(run.pid, "SIGTERM")
        await exitsWithinTwoSeconds(run)
      })

      it("retries a failing mount the policy's number of times, then gives up and stays alive", async () => {
        const run = await start(fails, 3, 0)
        await runner.poll("the sidecar to give up", () => run.stderr().includes("gave up after 3 attempts"))
        expect(calls(run).length).toBe(3)
        expect(run.stderr()).toContain("mounting bucket 12638187200555641996 from https://filer.example.test failed (attempt 3 of 3)")
        expect(run.hasExited()).toBe(false)
      })

      it("stops retrying once goofys succeeds, and exits with its status", async () => {
        const run = await start(succeedsOnCall(2), 5, 0)
        expect(await run.exited).toEqual({ code: 0, signal: null })
        expect(calls(run).length).toBe(2)
      })
    })
  }
}
