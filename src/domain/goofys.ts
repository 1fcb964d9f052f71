/**
 * The sidecar's command: mount one bucket with goofys, retried on failure,
 * then give up and sleep, so a filer that is down does not put the pod in a
 * crash loop. **fix**: the endpoint and bucket are passed as whole arguments
 * to a fixed script, never spliced into a shell string.
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

// Positional parameters: endpoint, bucket, mount point, attempts, delay, then goofys' flags.
const script = [
  `endpoint="$1" bucket="$2" mountpoint="$3" attempts="$4" delay="$5"`,
  `shift 5`,
  `attempt=1`,
  `while :; do`,
  `  ${goofysBinary} --endpoint "$endpoint" "$@" "$bucket" "$mountpoint" && exit 0`,
  `  echo "goofys: mounting bucket $bucket from $endpoint failed (attempt $attempt of $attempts)" >&2`,
  `  [ "$attempt" -ge "$attempts" ] && break`,
  `  attempt=$((attempt + 1))`,
  `  sleep "$delay"`,
  `done`,
  `echo "goofys: gave up after $attempts attempts; sleeping so the pod is not restarted in a loop" >&2`,
  `exec sleep infinity`
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
