/**
 * The sidecar's command: mount one bucket with goofys, retried on failure,
 * then give up and stay alive, so a filer that is down does not put the pod
 * in a crash loop. **fix**: the endpoint and bucket are passed as whole
 * arguments to a fixed script, never spliced into a shell string.
 *
 * The script is the container's PID 1, and a PID 1 without a handler ignores
 * SIGTERM: it traps SIGTERM and SIGINT, passes them on to goofys while it
 * runs, and exits 0, so stopping a notebook does not wait out its grace
 * period (README, "What it injects, and when").
 */

export interface GoofysRetryPolicyValues {
  readonly attempts: number
  readonly delaySeconds: number
  /** Flags given to goofys before the bucket and mount point. */
  readonly flags: ReadonlyArray<string>
}

/** Where goofys lives in the sidecar image, and where it mounts (the CSI driver takes the fd from there). */
export const goofysBinary = "/goofys"
export const goofysMountPoint = "/tmp"

// POSIX sh (the image's /bin/sh may be dash or busybox ash). Positional
// parameters: endpoint, bucket, mount point, attempts, delay, then goofys' flags.
// goofys and the sleeps run in the background and are waited for: a trapped
// signal makes `wait` return at once, where a foreground command would be
// waited out first. On SIGTERM or SIGINT, the script exits 0 at once (a sleep
// left behind ends with the container), unless goofys runs: then it tells
// goofys to unmount (SIGTERM for both, as a shell starts background commands
// with SIGINT ignored), again each second (one sent between the fork and
// goofys' start is lost), waits for it to exit, and exits 0. `wait` returns
// early for that signal: wait again.
const script = [
  `endpoint="$1" bucket="$2" mountpoint="$3" attempts="$4" delay="$5"`,
  `shift 5`,
  `goofys= stopping=`,
  `stop() {`,
  `  [ -n "$goofys" ] || exit 0`,
  `  stopping=1`,
  `  (while kill -s TERM "$goofys" 2>/dev/null; do sleep 1; done) &`,
  `}`,
  `trap stop TERM INT`,
  `attempt=1`,
  `while :; do`,
  `  ${goofysBinary} --endpoint "$endpoint" "$@" "$bucket" "$mountpoint" &`,
  `  goofys=$!`,
  `  wait "$goofys"; status=$?`,
  `  while kill -0 "$goofys" 2>/dev/null; do wait "$goofys"; status=$?; done`,
  `  goofys=`,
  `  [ -z "$stopping" ] || exit 0`,
  `  [ "$status" -eq 0 ] && exit 0`,
  `  echo "goofys: mounting bucket $bucket from $endpoint failed (attempt $attempt of $attempts)" >&2`,
  `  [ "$attempt" -ge "$attempts" ] && break`,
  `  attempt=$((attempt + 1))`,
  `  sleep "$delay" &`,
  `  wait $!`,
  `done`,
  `echo "goofys: gave up after $attempts attempts; sleeping so the pod is not restarted in a loop" >&2`,
  `sleep infinity &`,
  `wait $!`
].join("\n")

/**
 * The kubelet expands `$(VAR)` in command, args and env values, and turns
 * `$$` into `$`; doubling every `$` makes it hand the text over unchanged.
 */
export const escapeForKubelet = (text: string): string => text.includes("$") ? text.split("$").join("$$") : text

// The same for every sidecar: escaped once, not per share (the script holds some thirty `$`).
const command: ReadonlyArray<string> = ["/bin/sh", "-c", script, "goofys-mount"].map(escapeForKubelet)

/** Command and args for one sidecar, already escaped for the kubelet. */
export const goofysCommand = (
  policy: GoofysRetryPolicyValues,
  endpoint: string,
  bucket: string
): { readonly command: ReadonlyArray<string>; readonly args: ReadonlyArray<string> } => ({
  command: [...command],
  args: [endpoint, bucket, goofysMountPoint, String(policy.attempts), String(policy.delaySeconds), ...policy.flags].map(
    escapeForKubelet
  )
})
