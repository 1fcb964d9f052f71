/**
 * The base's ClusterRole (manifests/base/clusterrole.yaml) is generated: it
 * must be, byte for byte, what `filer-sidecar-injector rbac` prints for the
 * filers list the base ships, so it can be regenerated whole (README,
 * "Adding a filer"). No kubectl needed.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { cli } from "../support/cli.ts"
import { repoRoot } from "../support/pipelineHarness.ts"

const base = join(repoRoot, "manifests", "base")

describe("manifests/base/clusterrole.yaml", () => {
  it("is exactly what `rbac --cluster manifests/base` prints for the shipped filers list", async () => {
    const run = await cli(["rbac", "--cluster", base])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    // To fix a failure: node src/bin.ts rbac --cluster manifests/base > manifests/base/clusterrole.yaml
    expect(readFileSync(join(base, "clusterrole.yaml"), "utf8")).toBe(run.stdout)
  }, 60_000)

  it("is one of the base's resources", () => {
    expect(readFileSync(join(base, "kustomization.yaml"), "utf8")).toMatch(/^ {2}- clusterrole\.yaml$/m)
  })
})
