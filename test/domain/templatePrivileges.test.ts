/**
 * The sidecar template is checked for privilege: it is copied into every
 * notebook pod, and the sidecar needs none (the CSI driver mounts FUSE for
 * it). A template container that is privileged, allows privilege escalation
 * or adds capabilities makes the template invalid, naming the field; every
 * template the repository ships passes.
 */
import { Result } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { parseAllDocuments } from "yaml"
import { parseSidecarTemplate } from "../../src/domain/template.ts"
import { exampleTemplate } from "../support/pipelineHarness.ts"

const root = resolve(import.meta.dirname, "../..")

const templateError = (template: unknown) => {
  const result = parseSidecarTemplate("das", { "sidecarconfig.json": JSON.stringify(template) })
  return Result.isFailure(result) ? result.failure.message : "parsed"
}

/** The example template with `securityContext` on its container (or on an added second one). */
const withSecurityContext = (securityContext: unknown, containerIndex = 0) => {
  const template = exampleTemplate()
  const container = { ...template.containers[0], securityContext }
  const containers = containerIndex === 0 ? [container] : [template.containers[0], container]
  return { ...template, containers }
}

const prefix = `ConfigMap das/filer-sidecar-injector-json: data["sidecarconfig.json"]`

describe("sidecar template: privileges refused", () => {
  it("refuses a privileged container, naming the field", () => {
    expect(templateError(withSecurityContext({ privileged: true }))).toBe(
      `${prefix}.containers[0].securityContext.privileged must not be true`
    )
  })

  it("refuses a container that allows privilege escalation, naming the field", () => {
    expect(templateError(withSecurityContext({ allowPrivilegeEscalation: true }))).toBe(
      `${prefix}.containers[0].securityContext.allowPrivilegeEscalation must not be true`
    )
  })

  it("refuses a container that adds capabilities, naming the field", () => {
    expect(templateError(withSecurityContext({ capabilities: { add: ["SYS_ADMIN"] } }))).toBe(
      `${prefix}.containers[0].securityContext.capabilities.add must be empty`
    )
  })

  it("checks every container of the template, not only the one copied", () => {
    expect(templateError(withSecurityContext({ privileged: true }, 1))).toBe(
      `${prefix}.containers[1].securityContext.privileged must not be true`
    )
  })

  it("names the field when it is not of the type Kubernetes gives it", () => {
    expect(templateError(withSecurityContext({ privileged: "true" }))).toMatch(
      /^ConfigMap das\/filer-sidecar-injector-json: data\["sidecarconfig\.json"\]\.containers\[0\]\.securityContext\.privileged: /
    )
    expect(templateError(withSecurityContext({ capabilities: { add: "SYS_ADMIN" } }))).toMatch(
      /\.containers\[0\]\.securityContext\.capabilities\.add: /
    )
  })

  it("accepts what asks for no privilege: false, an empty add, dropped capabilities, no securityContext", () => {
    for (
      const securityContext of [
        { privileged: false, allowPrivilegeEscalation: false },
        { capabilities: { add: [], drop: ["ALL"] } },
        { runAsUser: 65534, runAsNonRoot: true, readOnlyRootFilesystem: true },
        {}
      ]
    ) {
      expect(templateError(withSecurityContext(securityContext)), JSON.stringify(securityContext)).toBe("parsed")
    }
    const { securityContext: _, ...bare } = exampleTemplate().containers[0]
    expect(templateError({ ...exampleTemplate(), containers: [bare] })).toBe("parsed")
  })
})

/** Every `sidecarconfig.json` in a YAML file below `dir`, with the file it came from. */
const shippedTemplates = (dir: string): Array<{ readonly file: string; readonly json: string }> =>
  readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .flatMap((entry) => {
      const file = relative(root, join(entry.parentPath, entry.name))
      return parseAllDocuments(readFileSync(join(root, file), "utf8")).flatMap((document) => {
        const object = document.toJS() as { kind?: string; data?: Record<string, string> } | null
        const json = object?.kind === "ConfigMap" ? object.data?.["sidecarconfig.json"] : undefined
        return json === undefined ? [] : [{ file, json }]
      })
    })

describe("sidecar template: the templates the repository ships", () => {
  const templates = [...shippedTemplates("manifests"), ...shippedTemplates("test/scenarios")]

  it("finds the base's, the example cluster's and the scenarios'", () => {
    const files = templates.map(({ file }) => file)
    expect(files).toContain("manifests/base/injector-config.yaml")
    expect(files).toContain("manifests/examples/cluster/injector-config.yaml")
    expect(files.filter((file) => file.startsWith("test/scenarios/")).length).toBeGreaterThan(0)
  })

  it("all pass the check", () => {
    const refused = templates.flatMap(({ file, json }) => {
      const result = parseSidecarTemplate("das", { "sidecarconfig.json": json })
      return Result.isFailure(result) ? [`${file}: ${result.failure.message}`] : []
    })
    expect(refused).toEqual([])
  })

  it("the base's sidecar drops every capability and cannot escalate", () => {
    const base = templates.find(({ file }) => file === "manifests/base/injector-config.yaml")!
    const template = JSON.parse(base.json) as {
      containers: Array<{ securityContext?: { allowPrivilegeEscalation?: boolean; capabilities?: { drop?: Array<string> } } }>
    }
    expect(template.containers[0]?.securityContext?.allowPrivilegeEscalation).toBe(false)
    expect(template.containers[0]?.securityContext?.capabilities?.drop).toEqual(["ALL"])
  })
})
