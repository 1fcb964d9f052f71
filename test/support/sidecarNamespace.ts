/**
 * Running the sidecar's command as generated, as the container's PID 1: in a
 * PID namespace of its own (`unshare --pid --fork`), chrooted into a small
 * root that holds the host's /usr, /etc and /dev (bind mounts, read-only
 * where possible, visible only in a private mount namespace) and a stand-in
 * at `/goofys`, the absolute path the script calls. Nothing is written
 * outside a temporary folder. Needs root and `unshare` (util-linux).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { goofysCommand, type GoofysRetryPolicyValues } from "../../src/domain/goofys.ts"

/** What the kubelet does to command and args: `$$` → `$`, `$(VAR)` → the variable's value. */
export const kubeletExpand = (text: string, env: Readonly<Record<string, string>> = {}): string =>
  text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    match === "$$" || name === undefined ? "$" : env[name] ?? match)

/** Why sidecars cannot run as PID 1 here, or undefined when they can. */
export const namespaceUnavailable = (): string | undefined => {
  if (process.getuid?.() !== 0) return "not root: unshare --mount --pid needs root"
  const probe = spawnSync("unshare", ["--mount", "--pid", "--fork", "true"], { encoding: "utf8" })
  if (probe.error !== undefined) return `unshare is unavailable (${probe.error.message})`
  if (probe.status !== 0) return `unshare cannot make namespaces here: ${probe.stderr.trim()}`
  return undefined
}

/** The busybox binary, to run the script with busybox ash as /bin/sh, or undefined when not installed. */
export const busyboxPath = (): string | undefined => {
  const found = spawnSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" })
  return found.status === 0 ? found.stdout.trim() : undefined
}

// The host's folders the sidecar's root shows (bind mounts, or the same
// symbolic links), and /proc, mounted there.
const boundFolders = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc"]

const isEmptyOrAbsent = (path: string): boolean => {
  try {
    return readdirSync(path).length === 0
  } catch {
    // absent, or a symbolic link to a folder absent here
    return !existsSync(path)
  }
}

// Runs in the new namespaces as their PID 1, then becomes the sidecar's
// command through `exec` (keeping PID 1). Arguments: root, busybox or "",
// then the command. Its host pid is read before /proc is replaced.
const setup = `set -e
folders="${boundFolders.filter((name) => name !== "proc").join(" ")}"
root=$1 busybox=$2
shift 2
read -r pid rest < /proc/self/stat
echo "$pid" > "$root/out/pid.tmp"
mv "$root/out/pid.tmp" "$root/out/pid"
for name in $folders; do
  if [ -L "/$name" ]; then ln -s "$(readlink "/$name")" "$root/$name"
  elif [ -d "/$name" ]; then
    mkdir "$root/$name"
    mount --rbind "/$name" "$root/$name"
    [ "$name" = dev ] || mount -o remount,bind,ro "$root/$name"
  fi
done
# An image whose /bin/sh is busybox ash.
[ -z "$busybox" ] || mount --bind "$busybox" "$root/bin/sh"
mkdir "$root/proc" "$root/tmp"
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"
`

export interface SidecarRun {
  /** The namespace's PID 1 (the sidecar's shell) as the host sees it. */
  readonly pid: number
  /** What the stand-in and the script wrote: `/out` inside the sidecar. */
  readonly out: string
  readonly stderr: () => string
  /** Resolves with the exit code (or signal) of the namespace's PID 1. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly hasExited: () => boolean
}

export interface SidecarOptions {
  /** The stand-in for goofys: a `/bin/sh` script body; its folder `/out` is shared with the test. */
  readonly standIn: string
  readonly policy: GoofysRetryPolicyValues
  readonly endpoint?: string
  readonly bucket?: string
  /** Run with busybox ash as /bin/sh (a path from `busyboxPath`). */
  readonly busybox?: string
}

const poll = async (what: string, ready: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Starts folders and processes; `stopAll` ends and removes what is left. */
export const sidecarRunner = () => {
  const started: Array<{ readonly child: ChildProcess; readonly run: SidecarRun; readonly dir: string }> = []

  const start = async (options: SidecarOptions): Promise<SidecarRun> => {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-pid1-"))
    const root = join(dir, "root")
    const out = join(root, "out")
    mkdirSync(out, { recursive: true })
    writeFileSync(join(root, "goofys"), `#!/bin/sh\n${options.standIn}\n`)
    chmodSync(join(root, "goofys"), 0o755)
    writeFileSync(join(dir, "setup.sh"), setup)

    const generated = goofysCommand(
      options.policy,
      options.endpoint ?? "https://filer.example.test",
      options.bucket ?? "12638187200555641996"
    )
    const argv = [...generated.command, ...generated.args].map((part) => kubeletExpand(part))
    const child = spawn(
      "unshare",
      ["--mount", "--pid", "--fork", "/bin/sh", join(dir, "setup.sh"), root, options.busybox ?? "", ...argv],
      { env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }, stdio: ["ignore", "pipe", "pipe"] }
    )
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text))
    child.stdout.resume()
    let exitedYet = false
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => {
        exitedYet = true
        resolve({ code, signal })
      })
    )
    const pidFile = join(out, "pid")
    await poll("the sidecar to start", () => existsSync(pidFile) || exitedYet)
    if (!existsSync(pidFile)) throw new Error(`the sidecar did not start: ${stderr}`)
    const run: SidecarRun = {
      pid: Number(readFileSync(pidFile, "utf8").trim()),
      out,
      stderr: () => stderr,
      exited,
      hasExited: () => exitedYet
    }
    started.push({ child, run, dir })
    return run
  }

  const stopAll = async () => {
    for (const { child, dir, run } of started.splice(0)) {
      if (!run.hasExited()) {
        // SIGKILL reaches a namespace's init from outside; the kernel then ends the rest of it.
        try {
          process.kill(run.pid, "SIGKILL")
        } catch {
          // already gone
        }
        child.kill("SIGKILL")
        await run.exited
      }
      // The bind mounts live in the sidecar's mount namespace only; never delete through one.
      if (boundFolders.every((name) => isEmptyOrAbsent(join(dir, "root", name)))) {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }

  return { start, stopAll, poll }
}
