import { describe, expect, it } from "vitest"
import { isDns1123Label, secretNameFor, shareEnvSuffix, type SidecarNames, sidecarNames } from "../../src/domain/names.ts"
import { planFor } from "./fixtures.ts"

const free = () => false
const allNames = (names: SidecarNames) => [names.container, names.fdPassingVolume, names.csiVolume]

describe("Secret name of an SVM (kept)", () => {
  it("turns every _ into - and appends -conn-secret", () => {
    expect(secretNameFor("fld5_filer_svm")).toBe("fld5-filer-svm-conn-secret")
    expect(secretNameFor("fld5filersvm")).toBe("fld5filersvm-conn-secret")
  })
})

describe("share as env-name suffix (kept)", () => {
  it("turns / into -, which then becomes _", () => {
    expect(shareEnvSuffix("division/project")).toBe("division_project")
  })

  it("drops everything but [A-Za-z0-9-], underscores included", () => {
    expect(shareEnvSuffix("a.b c!é_d")).toBe("abcd")
  })

  it("drops characters before trimming, so a - left at an end by a dropped character is trimmed", () => {
    expect(shareEnvSuffix("/home/")).toBe("home")
    expect(shareEnvSuffix("-team-")).toBe("team")
    expect(shareEnvSuffix("a/.")).toBe("a")
  })

  it("collapses runs of - (also those made by / and by dropped characters)", () => {
    expect(shareEnvSuffix("a//b")).toBe("a_b")
    expect(shareEnvSuffix("a--b")).toBe("a_b")
    expect(shareEnvSuffix("a-.-b")).toBe("a_b")
  })

  it("turns every remaining - into _ last", () => {
    expect(shareEnvSuffix("research/team-a")).toBe("research_team_a")
  })

  it("keeps letter case", () => {
    expect(shareEnvSuffix("Projects/Q1")).toBe("Projects_Q1")
  })

  it("is empty when nothing is left", () => {
    expect(shareEnvSuffix("été")).toBe("t")
    expect(shareEnvSuffix("ü/ö")).toBe("")
  })
})

describe("sidecar and volume names", () => {
  it("are DNS-1123 labels of at most 63 characters, even for very long SVM and share names", () => {
    const names = sidecarNames("FLD5_Filer.SVM".repeat(20), "Some Share/With UPPER_case/".repeat(20), free)
    for (const name of allNames(names)) {
      expect(isDns1123Label(name), name).toBe(true)
      expect(name.length).toBeLessThanOrEqual(63)
    }
  })

  it("are DNS-1123 labels when nothing readable is left of SVM and share", () => {
    for (const name of allNames(sidecarNames("___", "ü/ö", free))) expect(isDns1123Label(name), name).toBe(true)
  })

  it("keep readable prefixes from the SVM and the share", () => {
    const names = sidecarNames("fld5filersvm", "division/project", free)
    expect(names.container).toMatch(/^fld5filersvm-division-project-[0-9a-f]{10}$/)
    expect(names.fdPassingVolume).toBe(`fuse-fd-passing-${names.container}`)
    expect(names.csiVolume).toBe(`fuse-csi-ephemeral-${names.container}`)
  })

  it("differ for two SVMs sharing a 5-character prefix (fix: the original truncated to 5)", () => {
    const a = sidecarNames("fld5filersvm", "home", free)
    const b = sidecarNames("fld5fileraux", "home", free)
    expect(new Set([...allNames(a), ...allNames(b)]).size).toBe(6)
  })

  it("differ even when the readable prefixes are cut to the same text", () => {
    const a = sidecarNames("fld5filersvm-long-suffix-one", "shared/projects/2024/alpha", free)
    const b = sidecarNames("fld5filersvm-long-suffix-two", "shared/projects/2024/alpha", free)
    expect(a.container.slice(0, -10)).toBe(b.container.slice(0, -10))
    expect(a.container).not.toBe(b.container)
  })

  it("are the same for the same inputs", () => {
    expect(sidecarNames("fld5filersvm", "home", free)).toEqual(sidecarNames("fld5filersvm", "home", free))
  })

  it("move to other, still valid and deterministic names when isTaken reports a collision", () => {
    const first = sidecarNames("fld5filersvm", "home", free)
    const taken = new Set(allNames(first))
    const isTaken = (names: SidecarNames) => allNames(names).some((name) => taken.has(name))
    const second = sidecarNames("fld5filersvm", "home", isTaken)
    for (const name of allNames(second)) {
      expect(taken.has(name)).toBe(false)
      expect(isDns1123Label(name)).toBe(true)
    }
    expect(sidecarNames("fld5filersvm", "home", isTaken)).toEqual(second)
  })

  it("keep looking until free when several salted candidates are taken too", () => {
    let calls = 0
    const names = sidecarNames("svm", "share", () => ++calls <= 5)
    expect(calls).toBe(6)
    expect(isDns1123Label(names.container)).toBe(true)
  })

  it("are unique across a plan of SVMs sharing long prefixes and shares mapping to the same readable text", () => {
    const planned = planFor({
      "fld5filersvm": ["home", "Home", "h.o.m.e", "division/project"],
      "fld5filersvm1": ["home", "division-project"],
      "fld5filersvm_1": ["home"]
    })
    const names = planned.svms.flatMap((svm) => svm.shares.flatMap((share) => allNames(share.names)))
    expect(names.length).toBe(7 * 3)
    expect(new Set(names).size).toBe(names.length)
  })
})
