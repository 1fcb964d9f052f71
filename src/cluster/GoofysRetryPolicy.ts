/**
 * GoofysRetryPolicy: how each sidecar retries its goofys mount (attempts,
 * delay, goofys flags), from Settings.
 */
import { Context, Effect, Layer } from "effect"
import type { GoofysRetryPolicyValues } from "../domain/goofys.ts"
import { Settings } from "../settings.ts"

export class GoofysRetryPolicy extends Context.Service<GoofysRetryPolicy, GoofysRetryPolicyValues>()(
  "filer-sidecar-injector/cluster/GoofysRetryPolicy"
) {
  /** From Settings (GOOFYS_ATTEMPTS, GOOFYS_RETRY_DELAY_SECONDS, GOOFYS_FLAGS). */
  static readonly layer: Layer.Layer<GoofysRetryPolicy, never, Settings> = Layer.effect(
    GoofysRetryPolicy,
    Effect.map(Settings, (settings) => ({
      attempts: settings.goofysAttempts,
      delaySeconds: settings.goofysRetryDelaySeconds,
      flags: settings.goofysFlags
    }))
  )
}
