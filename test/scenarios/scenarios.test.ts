/**
 * Scenario (golden file) tests: each folder `test/scenarios/<name>/` is one
 * AdmissionReview against one cluster, and its expected result as a whole
 * mutated pod, so any change of output shows up in review.
 *
 * A scenario folder holds:
 * - `cluster/`: the cluster as manifests (ConfigMaps, Secrets), read like
 *   `review --cluster DIR` reads it (through `directoryAdmissionLayer`);
 * - `review.json`: the AdmissionReview the kube-apiserver sends;
 * - `expected-pod.yaml`: the golden file, the whole pod after the answer's
 *   patch was applied (strictly) to `request.object`;
 * - `expected-warnings.txt`: the answer's warnings, one per line;
 * - `scenario.json` (optional): `{ "description", "cluster", "review",
 *   "settings" }`. `cluster` and `review` are paths relative to the folder
 *   that replace `cluster/` and `review.json` (the example scenario points at
 *   manifests/examples instead of copying it); `settings` are Settings
 *   overrides over the defaults, e.g. `{ "credentialMode": "plain" }`.
 *
 * To accept a change of output, regenerate the golden files and review the
 * diff before committing it:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/scenarios
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parse, stringify } from "yaml"
import { directoryPipeline, mutatedPod, quietLogs, type AdmissionOverrides, answer } from "../support/pipelineHarness.ts"

const updateGolden = process.env.UPDATE_GOLDEN === "1"

interface Scenario {
  readonly name: string
  readonly folder: string
  readonly cluster: string
  readonly review: string
  readonly settings: AdmissionOverrides
}

interface ScenarioFile {
  readonly description?: string
  readonly cluster?: string
  readonly review?: string
  readonly settings?: AdmissionOverrides
}

const scenarios: ReadonlyArray<Scenario> = readdirSync(import.meta.dirname, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()
  .map((name) => {
    const folder = join(import.meta.dirname, name)
    const file = join(folder, "scenario.json")
    const options: ScenarioFile = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {}
    return {
      name,
      folder,
      cluster: join(folder, options.cluster ?? "cluster"),
      review: join(folder, options.review ?? "review.json"),
      settings: options.settings ?? {}
    }
  })

/** The golden text of a pod: YAML as `inject` prints it. */
const podYaml = (pod: unknown) => stringify(pod, { lineWidth: 0 })

describe("scenarios", () => {
  it("are found", () => {
    assert.isAtLeast(scenarios.length, 8)
  })

  for (const scenario of scenarios) {
    it.effect(scenario.name, () =>
      Effect.gen(function*() {
        const review = JSON.parse(readFileSync(scenario.review, "utf8"))
        const reviewed = yield* answer(review)
        assert.strictEqual(reviewed.response.uid, review.request.uid)
        assert.isTrue(reviewed.response.allowed, reviewed.response.status?.message)
        const pod = mutatedPod(review, reviewed.response)
        const warnings = (reviewed.response.warnings ?? []).map((warning) => `${warning}\n`).join("")

        const podFile = join(scenario.folder, "expected-pod.yaml")
        const warningsFile = join(scenario.folder, "expected-warnings.txt")
        if (updateGolden) {
          writeFileSync(podFile, podYaml(pod))
          writeFileSync(warningsFile, warnings)
          return
        }
        assert.isTrue(existsSync(podFile), `${podFile} is missing: run with UPDATE_GOLDEN=1 and review it`)
        assert.deepStrictEqual(pod, parse(readFileSync(podFile, "utf8")))
        assert.strictEqual(warnings, readFileSync(warningsFile, "utf8"))
      }).pipe(Effect.provide(Layer.mergeAll(directoryPipeline(scenario.cluster, scenario.settings), quietLogs))))
  }
})
