import { describe, expect, it } from "vitest"
import {
  type ChoiceBounds,
  choiceAnnotation,
  type ChoiceName,
  choicesStatus,
  checkSelection,
  formatChoiceWarning,
  noChoices,
  parseChoices
} from "../../src/domain/choices.ts"
import { selectsShare, selectsSvm } from "../../src/domain/selection.ts"
import { maxWarningLength } from "../../src/domain/warnings.ts"

const bounds: ChoiceBounds = {
  defaults: { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "500m", memory: "10Gi" } },
  maxima: { cpu: "2", memory: "16Gi" }
}

const annotated = (choices: Partial<Record<ChoiceName, string>>) =>
  Object.fromEntries(Object.entries(choices).map(([name, value]) => [choiceAnnotation(name as ChoiceName), value]))

const parse = (choices: Partial<Record<ChoiceName, string>>) => parseChoices(annotated(choices), bounds)

const warnings = (choices: Partial<Record<ChoiceName, string>>) => parse(choices).problems.map(formatChoiceWarning)

describe("per-notebook choices", () => {
  it("choose nothing without their annotations, whatever else the pod carries", () => {
    expect(parseChoices(undefined, bounds)).toEqual({ choices: noChoices, problems: [] })
    expect(parseChoices({ "kubeflow-resource-stopped": "x", "filer-injector-webhook.das-zone.statcan/inject": "true" }, bounds))
      .toEqual({ choices: noChoices, problems: [] })
    expect(choicesStatus(noChoices)).toBeUndefined()
  })

  describe("shares", () => {
    it("select svm/share and svm/* entries, trimmed, deduplicated and sorted; a share is a path", () => {
      const { choices, problems } = parse({ shares: " fld9/* , fld5/division/project,fld5/home, fld5/home ,," })
      expect(problems).toEqual([])
      expect(choices.shares?.entries).toEqual(["fld5/division/project", "fld5/home", "fld9/*"])
      expect(selectsSvm(choices.shares, "fld5")).toBe(true)
      expect(selectsSvm(choices.shares, "fld6")).toBe(false)
      expect(selectsShare(choices.shares, "fld5", "division/project")).toBe(true)
      expect(selectsShare(choices.shares, "fld5", "division")).toBe(false)
      expect(selectsShare(choices.shares, "fld9", "anything/at/all")).toBe(true)
      expect(selectsShare(choices.shares, "fld6", "home")).toBe(false)
    })

    it("svm/* wins over a share of the same SVM, in either order", () => {
      for (const value of ["a/x,a/*", "a/*,a/x"]) {
        expect(selectsShare(parse({ shares: value }).choices.shares, "a", "y")).toBe(true)
      }
    })

    it("without the annotation, select every SVM and share", () => {
      expect(selectsSvm(undefined, "any")).toBe(true)
      expect(selectsShare(undefined, "any", "share")).toBe(true)
    })

    it.each([
      ["", "no svm/share or svm/* in it"],
      [" , ", "no svm/share or svm/* in it"],
      ["fld5", `"fld5" is not svm/share or svm/*`],
      ["fld5/home,/home", `"/home" is not svm/share or svm/*`],
      ["fld5/", `"fld5/" is not svm/share or svm/*`],
      ["x".repeat(4097), "longer than 4096 characters"]
    ])("refuse %j as malformed with one warning, and mount every share", (value, why) => {
      const { choices, problems } = parse({ shares: value })
      expect(choices.shares).toBeUndefined()
      expect(choices.refused).toEqual(["shares"])
      expect(problems).toHaveLength(1)
      expect(problems[0]?.code).toBe("invalid_choice")
      expect(formatChoiceWarning(problems[0]!)).toBe(`filers: choice "shares" refused, every share mounted: ${why}`)
    })

    it("warn about each entry naming an SVM or share that existing-shares does not have, sorted", () => {
      const { choices } = parse({ shares: "zz/*,b/gone,b/home,a/x,c/home" })
      const problems = checkSelection(choices.shares, { a: '["x"]', b: '["home", "team"]', c: "not json" })
      expect(problems.map((problem) => problem.code)).toEqual(["choice_not_found", "choice_not_found"])
      expect(problems.map(formatChoiceWarning)).toEqual([
        `filers: choice "shares" names share "gone" of SVM "b", not in existing-shares`,
        `filers: choice "shares" names SVM "zz", which is not in existing-shares`
      ])
      expect(checkSelection(undefined, {})).toEqual([])
    })
  })

  describe("read-only", () => {
    it("is true or false, in any case", () => {
      expect(parse({ "read-only": "true" }).choices.readOnly).toBe(true)
      expect(parse({ "read-only": " TRUE\n" }).choices.readOnly).toBe(true)
      expect(parse({ "read-only": "false" })).toEqual({ choices: noChoices, problems: [] })
    })

    it.each(["yes", "1", "", "on"])("refuses %j with a warning and mounts read-write", (value) => {
      const { choices, problems } = parse({ "read-only": value })
      expect(choices.readOnly).toBe(false)
      expect(choices.refused).toEqual(["read-only"])
      expect(problems.map(formatChoiceWarning)).toEqual([
        `filers: choice "read-only" refused, mounted read-write: ${JSON.stringify(value)} is not true or false`
      ])
    })
  })

  describe("sidecar resources", () => {
    it("are taken within the maxima, as written", () => {
      const { choices, problems } = parse({
        "sidecar-cpu-request": "250m",
        "sidecar-cpu-limit": "2",
        "sidecar-memory-request": "0.5Gi",
        "sidecar-memory-limit": "16Gi"
      })
      expect(problems).toEqual([])
      expect(choices.sidecarResources).toEqual({
        requests: { cpu: "250m", memory: "0.5Gi" },
        limits: { cpu: "2", memory: "16Gi" }
      })
    })

    it("a request may equal its limit; one chosen alone is compared with the other's default", () => {
      expect(parse({ "sidecar-cpu-request": "500m" }).problems).toEqual([])
      expect(parse({ "sidecar-memory-limit": "100Mi" }).problems).toEqual([])
    })

    it.each<[Partial<Record<ChoiceName, string>>, string, string]>([
      [{ "sidecar-cpu-limit": "lots" }, "invalid_choice", `"sidecar-cpu-limit" refused, 500m kept: "lots" is not a Kubernetes quantity`],
      [{ "sidecar-memory-limit": "10GB" }, "invalid_choice", `"sidecar-memory-limit" refused, 10Gi kept: "10GB" is not a Kubernetes quantity`],
      [{ "sidecar-cpu-request": "0" }, "choice_out_of_bounds", `"sidecar-cpu-request" refused, 100m kept: "0" is not more than 0`],
      [{ "sidecar-memory-request": "-1Gi" }, "choice_out_of_bounds", `"sidecar-memory-request" refused, 100Mi kept: "-1Gi" is not more than 0`],
      [{ "sidecar-cpu-limit": "2001m" }, "choice_out_of_bounds", `"sidecar-cpu-limit" refused, 500m kept: "2001m" is above the most allowed, 2`],
      [{ "sidecar-memory-limit": "17Gi" }, "choice_out_of_bounds", `"sidecar-memory-limit" refused, 10Gi kept: "17Gi" is above the most allowed, 16Gi`],
      [{ "sidecar-memory-request": "1e11" }, "choice_out_of_bounds", `"sidecar-memory-request" refused, 100Mi kept: "1e11" is above the most allowed, 16Gi`],
      [{ "sidecar-cpu-request": "1" }, "choice_out_of_bounds", `"sidecar-cpu-request" refused, 100m kept: "1" is above the cpu limit, 500m`],
      [{ "sidecar-cpu-limit": "50m" }, "choice_out_of_bounds", `"sidecar-cpu-limit" refused, 500m kept: "50m" is below the cpu request, 100m`]
    ])("refuse %j with a warning, keeping the default", (choice, code, warning) => {
      const { choices, problems } = parse(choice)
      expect(choices.sidecarResources).toEqual({ requests: {}, limits: {} })
      expect(choices.refused).toEqual(Object.keys(choice))
      expect(problems.map((problem) => problem.code)).toEqual([code])
      expect(problems.map(formatChoiceWarning)).toEqual([`filers: choice ${warning}`])
    })

    it("refuse a request above the chosen limit, and keep the limit", () => {
      const { choices, problems } = parse({ "sidecar-memory-request": "4Gi", "sidecar-memory-limit": "2Gi" })
      expect(choices.sidecarResources).toEqual({ requests: {}, limits: { memory: "2Gi" } })
      expect(problems.map(formatChoiceWarning)).toEqual([
        `filers: choice "sidecar-memory-request" refused, 100Mi kept: "4Gi" is above the memory limit, 2Gi`
      ])
    })

    it("refuse both when the limit is below even the default request", () => {
      const { choices, problems } = parse({ "sidecar-cpu-request": "60m", "sidecar-cpu-limit": "50m" })
      expect(choices.sidecarResources).toEqual({ requests: {}, limits: {} })
      expect(choices.refused).toEqual(["sidecar-cpu-request", "sidecar-cpu-limit"])
      expect(problems.map(formatChoiceWarning)).toEqual([
        `filers: choice "sidecar-cpu-request" refused, 100m kept: "60m" is above the cpu limit, 50m`,
        `filers: choice "sidecar-cpu-limit" refused, 500m kept: "50m" is below the cpu request, 100m`
      ])
    })
  })

  it("keep every warning within 120 characters, user text quoted and cut", () => {
    const long = `${"\u0007".repeat(50)}${"x".repeat(1500)}`
    const all = [
      ...warnings({ shares: `${long}`, "read-only": long, "sidecar-memory-request": long, "sidecar-cpu-limit": long }),
      ...checkSelection(parse({ shares: `${long}/${long}` }).choices.shares, { [long]: "[]" }).map(formatChoiceWarning)
    ]
    expect(all).toHaveLength(5)
    for (const warning of all) {
      expect(warning.length).toBeLessThanOrEqual(maxWarningLength)
      expect(warning).not.toMatch(/[\u0000-\u001f]/)
    }
  })

  it("are listed in the status annotation: what was applied, then what was refused, keys in a fixed order", () => {
    const { choices } = parse({
      "sidecar-memory-limit": "2Gi",
      "read-only": "true",
      shares: "b/*,a/home",
      "sidecar-cpu-request": "lots",
      "sidecar-cpu-limit": "1"
    })
    expect(JSON.stringify(choicesStatus(choices))).toBe(
      `{"shares":["a/home","b/*"],"readOnly":true,"sidecarResources":{"limits":{"cpu":"1","memory":"2Gi"}},` +
        `"refused":["sidecar-cpu-request"]}`
    )
    expect(choicesStatus(parse({ "read-only": "maybe" }).choices)).toEqual({ refused: ["read-only"] })
    expect(choicesStatus(parse({ "read-only": "false" }).choices)).toBeUndefined()
  })
})
