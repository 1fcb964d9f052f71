/**
 * GoofysRetryPolicy: how each sidecar retries its goofys mount (attempts,
 * delay, goofys flags). Defaults in docs/behaviour.md ("The goofys command"),
 * overridable by GOOFYS_ATTEMPTS, GOOFYS_RETRY_DELAY_SECONDS and GOOFYS_FLAGS.
 */
import { Result } from "effect"
import { configOf, type Parse, setting, SettingsService, wholeNumber } from "../config/setting.ts"
import type { GoofysRetryPolicyValues } from "../domain/goofys.ts"

const defaultFlags = "--cheap --http-timeout 1500s --dir-mode 0777 --file-mode 0777 -o allow_other -f"

/** Space-separated flags; blank means the defaults. They are arguments of goofys, never shell text, but must stay printable. */
const flagWords: Parse<ReadonlyArray<string>> = (raw) => {
  const words = (raw.trim() === "" ? defaultFlags : raw).trim().split(/\s+/)
  return words.some((word) => /[\u0000-\u001f\u007f]/.test(word))
    ? Result.fail("contains control characters")
    : Result.succeed(words)
}

export const goofysSettings = {
  attempts: setting({
    env: "GOOFYS_ATTEMPTS",
    default: "5",
    parse: wholeNumber(1, 100),
    description: "goofys mount attempts before the sidecar gives up (default 5)"
  }),
  delaySeconds: setting({
    env: "GOOFYS_RETRY_DELAY_SECONDS",
    default: "1",
    parse: wholeNumber(0, 3600),
    description: "seconds between goofys attempts (default 1)"
  }),
  flags: setting({
    env: "GOOFYS_FLAGS",
    default: defaultFlags,
    parse: flagWords,
    description: `goofys flags, space-separated (default ${defaultFlags})`
  })
}

/** Read by the pipeline for each sidecar's command; its own Config, read directly. */
export class GoofysRetryPolicy extends SettingsService<GoofysRetryPolicy, GoofysRetryPolicyValues>()(
  "filer-sidecar-injector/cluster/GoofysRetryPolicy",
  configOf(goofysSettings)
) {}
