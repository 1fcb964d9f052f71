import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { defaultSettings, parseSettings, settingDocs } from "../../src/settings.ts"

/** How an error names a setting: its flag and variable, or the variable alone (from the documented table). */
const settingName = (env: string) => {
  const flag = settingDocs.find((doc) => doc.env === env)?.flag
  return flag === undefined ? env : `${flag} (${env})`
}

describe("settings", () => {
  it.effect("default to the values of docs/behaviour.md and the README when nothing is set", () =>
    Effect.gen(function*() {
      const settings = yield* parseSettings({})
      assert.deepStrictEqual(settings, defaultSettings)
      assert.strictEqual(settings.credentialMode, "secretKeyRef")
      assert.strictEqual(settings.onInfrastructureFailure, "deny")
      assert.deepStrictEqual(settings.sidecarResources, {
        requests: { cpu: "100m", memory: "100Mi" },
        limits: { cpu: "500m", memory: "10Gi" }
      })
      assert.strictEqual(settings.goofysAttempts, 5)
      assert.strictEqual(settings.goofysRetryDelaySeconds, 1)
      assert.deepStrictEqual(settings.goofysFlags, [
        "--cheap", "--http-timeout", "1500s", "--dir-mode", "0777", "--file-mode", "0777", "-o", "allow_other", "-f"
      ])
    }))

  it.effect("read each value, goofys flags split on whitespace", () =>
    Effect.gen(function*() {
      const settings = yield* parseSettings({
        CREDENTIAL_MODE: "plain",
        ON_INFRASTRUCTURE_FAILURE: "admit",
        GOOFYS_ATTEMPTS: "3",
        MAX_SHARES_PER_POD: "20",
        GOOFYS_FLAGS: "  --cheap   -o allow_other ",
        REQUEST_BUDGET_MS: "5000",
        SIDECAR_MEMORY_LIMIT: "2Gi"
      })
      assert.strictEqual(settings.credentialMode, "plain")
      assert.strictEqual(settings.onInfrastructureFailure, "admit")
      assert.strictEqual(settings.goofysAttempts, 3)
      assert.strictEqual(settings.maxSharesPerPod, 20)
      assert.deepStrictEqual(settings.goofysFlags, ["--cheap", "-o", "allow_other"])
      assert.strictEqual(Duration.toMillis(settings.requestBudget), 5000)
      assert.strictEqual(settings.sidecarResources.limits.memory, "2Gi")
    }))

  it.effect.each([
    ["POD_NAMESPACE", "Not_A_Namespace"],
    ["CREDENTIAL_MODE", "cleartext"],
    ["ON_INFRASTRUCTURE_FAILURE", "ignore"],
    ["SIDECAR_CPU_REQUEST", "lots"],
    ["SIDECAR_MEMORY_REQUEST", "-1Gi"],
    ["SIDECAR_CPU_LIMIT", "1 cpu"],
    ["SIDECAR_MEMORY_LIMIT", "10GB"],
    ["GOOFYS_ATTEMPTS", "0"],
    ["GOOFYS_RETRY_DELAY_SECONDS", "1.5"],
    ["GOOFYS_FLAGS", "--cheap \u0001"],
    ["MAX_SHARES_PER_POD", "0"],
    ["MAX_SHARES_PER_POD", "301"],
    ["REQUEST_BUDGET_MS", "50"],
    ["KUBE_CALL_TIMEOUT_MS", "forever"],
    ["PORT", "70000"],
    ["REGISTER_WEBHOOK", "Bad Name"],
    ["MAX_BODY_BYTES", "10"],
    ["SHUTDOWN_GRACE_MS", "-5"],
    ["LOG_LEVEL", "verbose"]
  ])("name the setting when %s is invalid", ([env, value]) =>
    Effect.gen(function*() {
      const setting = settingName(env)
      assert.include(setting, env)
      const error = yield* Effect.flip(parseSettings({ [env]: value }))
      assert.strictEqual(error.setting, setting)
      assert.include(error.message, `invalid setting ${setting}: `)
    }))

  it.effect("name both TLS settings when only one is given", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseSettings({ TLS_CERT_FILE: "/tls/tls.crt" }))
      assert.include(error.setting, "TLS_KEY_FILE")
      assert.include(error.message, "--tls-cert and --tls-key go together")
    }))
})
