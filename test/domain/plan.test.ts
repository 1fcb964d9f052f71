import { describe, expect, it } from "vitest"
import { stripScheme, svmsNeedingSecrets } from "../../src/domain/plan.ts"
import { formatWarning } from "../../src/domain/warnings.ts"
import { filers, found, goodSecret, planFor } from "./fixtures.ts"

const svmNames = (plan: ReturnType<typeof planFor>) => plan.svms.map((svm) => svm.svm)
const shareNames = (plan: ReturnType<typeof planFor>, svm: string) =>
  plan.svms.find((s) => s.svm === svm)?.shares.map((share) => share.share)

describe("plan: SVMs and shares", () => {
  it("plans SVMs in sorted order of the keys, whatever the ConfigMap's order (fix)", () => {
    const plan = planFor({ zeta: ["a"], alpha: ["a"], mid: ["a"], "a-1": ["a"] })
    expect(svmNames(plan)).toEqual(["a-1", "alpha", "mid", "zeta"])
  })

  it("keeps the shares of an SVM in list order", () => {
    expect(shareNames(planFor({ svm: ["b", "a", "c/d"] }), "svm")).toEqual(["b", "a", "c/d"])
  })

  it("drops a repeated share silently, keeping the first (fix)", () => {
    const plan = planFor({ svm: ["home", "x", "home", "home"] })
    expect(shareNames(plan, "svm")).toEqual(["home", "x"])
    expect(plan.skips).toEqual([])
  })

  it("mounts each share at /home/jovyan/filers/<svm>/<share> (kept)", () => {
    const plan = planFor({ fld5filersvm: ["division/project"] })
    expect(plan.svms[0].shares[0].mountPath).toBe("/home/jovyan/filers/fld5filersvm/division/project")
  })

  it("mounts at most maxShares shares, the first in plan order, and warns once per SVM for the rest", () => {
    const plan = planFor({ b: ["p", "q", "r"], a: ["x", "y"], c: ["z"] }, { maxShares: 3 })
    expect(svmNames(plan)).toEqual(["a", "b"])
    expect(shareNames(plan, "a")).toEqual(["x", "y"])
    expect(shareNames(plan, "b")).toEqual(["p"])
    expect(plan.skips).toEqual([
      { svm: "b", code: "share_limit", reason: "2 of its shares not mounted: a pod gets at most 3", shares: ["q", "r"] },
      { svm: "c", code: "share_limit", reason: "1 of its shares not mounted: a pod gets at most 3", shares: ["z"] }
    ])
  })

  it("counts toward the limit only shares it mounts: repeated, unsafe and duplicate-path shares do not", () => {
    const plan = planFor({ svm: ["a", "a", "/abs", "a/", "b", "c"] }, { maxShares: 2 })
    expect(shareNames(plan, "svm")).toEqual(["a", "b"])
    expect(plan.skips.map((skip) => skip.code)).toEqual(["unsafe_share_path", "duplicate_mount_path", "share_limit"])
  })

  it("skips quietly an SVM with an empty list", () => {
    const plan = planFor({ svm: [] })
    expect(plan).toEqual({ svms: [], skips: [] })
  })
})

describe("plan: SVMs skipped with a warning", () => {
  it.each([
    ["not JSON", "home"],
    ["not an array", '{"home": 1}'],
    ["not strings only", '["home", 1]']
  ])("skips an SVM whose list is %s", (_, raw) => {
    const plan = planFor({ svm: raw })
    expect(plan.svms).toEqual([])
    expect(plan.skips).toEqual([{ svm: "svm", code: "invalid_share_list", reason: expect.stringMatching(/share list/) }])
  })

  it("skips an SVM whose Secret is missing", () => {
    const plan = planFor({ svm: ["home"] }, { secrets: new Map([["svm", { _tag: "Missing" }]]) })
    expect(plan.svms).toEqual([])
    expect(plan.skips).toEqual([{ svm: "svm", code: "secret_missing", reason: "Secret svm-conn-secret not found" }])
  })

  it("skips an SVM whose Secret RBAC forbids, naming the Secret and the fix, and mounts the other SVMs", () => {
    const secrets = new Map([["fld5filersvm", { _tag: "Forbidden" } as const], ["fld9filersvm", goodSecret]])
    const plan = planFor({ fld5filersvm: ["home", "data"], fld9filersvm: ["team"] }, { secrets })
    expect(svmNames(plan)).toEqual(["fld9filersvm"])
    expect(plan.skips).toEqual([{
      svm: "fld5filersvm",
      code: "secret_forbidden",
      reason: "RBAC forbids Secret fld5filersvm-conn-secret: re-run filer-sidecar-injector rbac"
    }])
    // The whole fix fits in one warning for SVM names as long as the usual ones.
    expect(formatWarning(plan.skips[0]!)).toBe(
      `filers: SVM "fld5filersvm" skipped: RBAC forbids Secret fld5filersvm-conn-secret: re-run filer-sidecar-injector rbac`
    )
  })

  it.each([
    ["S3_ACCESS empty", found("", "s"), "S3_ACCESS"],
    ["S3_ACCESS absent", found(undefined, "s"), "S3_ACCESS"],
    ["S3_SECRET empty", found("a", ""), "S3_SECRET"],
    ["S3_SECRET absent", found("a", undefined), "S3_SECRET"]
  ])("skips an SVM whose Secret has %s", (_, lookup, key) => {
    const plan = planFor({ svm: ["home"] }, { secrets: new Map([["svm", lookup]]) })
    expect(plan.svms).toEqual([])
    expect(plan.skips).toEqual([{ svm: "svm", code: "secret_incomplete", reason: `Secret svm-conn-secret has no ${key}` }])
  })

  it("skips an SVM that is not in filers-list", () => {
    const plan = planFor({ svm: ["home"], other: ["home"] }, { filers: filers({ other: "https://o.example.test" }) })
    expect(svmNames(plan)).toEqual(["other"])
    expect(plan.skips).toEqual([{ svm: "svm", code: "svm_not_in_filers_list", reason: "not in filers-list" }])
  })

  it.each([["empty", ""], ["absent", undefined]])("skips an SVM whose url is %s", (_, url) => {
    const plan = planFor({ svm: ["home"] }, { filers: filers({ svm: url }) })
    expect(plan.svms).toEqual([])
    expect(plan.skips).toEqual([{ svm: "svm", code: "invalid_filer_url", reason: "no url in filers-list" }])
  })

  it("reads the Secret only of SVMs that pass every other check", () => {
    const shares = { good: '["a"]', nolist: "x", empty: "[]", unknown: '["a"]', nourl: '["a"]' }
    expect(svmsNeedingSecrets(shares, filers({ good: "https://g", empty: "https://e", nourl: "" }))).toEqual(["good"])
  })
})

describe("plan: shares skipped or mounted without env var", () => {
  it("skips unsafe shares, each with a warning naming it, and mounts the rest", () => {
    const plan = planFor({ svm: ["/abs", "a/../b", "", "ok", "a\u0001b"] })
    expect(shareNames(plan, "svm")).toEqual(["ok"])
    expect(plan.skips.map((skip) => skip.share)).toEqual(["/abs", "a/../b", "", "a\u0001b"])
    expect(plan.skips.every((skip) => skip.code === "unsafe_share_path")).toBe(true)
  })

  it("skips a share whose mount path an earlier share already has, with its own code", () => {
    const plan = planFor({ svm: ["home", "home/"] })
    expect(shareNames(plan, "svm")).toEqual(["home"])
    expect(plan.skips).toEqual([
      { svm: "svm", share: "home/", code: "duplicate_mount_path", reason: "same mount path as an earlier share" }
    ])
  })

  it("skips an SVM whose name is not a valid ConfigMap key, with its own code", () => {
    const plan = planFor({ "..": ["home"] })
    expect(plan.skips).toEqual([{ svm: "..", code: "invalid_svm_name", reason: "not a valid SVM name" }])
  })

  it("mounts a share whose env suffix is empty without an env var, with a warning", () => {
    const plan = planFor({ svm: ["ü", "home"] })
    expect(plan.svms[0].shares.map((s) => [s.share, s.envName])).toEqual([["ü", undefined], ["home", "svm_home"]])
    expect(plan.skips).toEqual([
      { svm: "svm", share: "ü", code: "mounted_without_env", reason: expect.stringMatching(/^mounted, but no env var/) }
    ])
  })

  it("mounts a share whose env name collides with an earlier share's without an env var, with a warning", () => {
    const plan = planFor({ svm: ["team-a", "team/a"] })
    expect(plan.svms[0].shares.map((s) => [s.share, s.envName])).toEqual([["team-a", "svm_team_a"], ["team/a", undefined]])
    expect(plan.skips).toEqual([
      { svm: "svm", share: "team/a", code: "mounted_without_env", reason: expect.stringMatching(/^mounted, but no env var/) }
    ])
  })

  it("never lets a share's env name take the SVM's own <svm>_access, _secret or _url (fix)", () => {
    const plan = planFor({ svm: ["access", "secret", "url", "home"] })
    expect(plan.svms[0].shares.map((s) => s.envName)).toEqual([undefined, undefined, undefined, "svm_home"])
    expect(plan.skips.map((skip) => skip.share)).toEqual(["access", "secret", "url"])
  })

  it("never gives two shares of different SVMs the same env name (fix)", () => {
    // "a" + "b/c" and "a_b" + "c" both make a_b_c; "a" + "b/access" would take a_b's credentials' name.
    const plan = planFor({ a: ["b/c", "b/access"], a_b: ["c"] })
    const envNames = plan.svms.flatMap((svm) => [
      `${svm.svm}_access`,
      `${svm.svm}_secret`,
      `${svm.svm}_url`,
      ...svm.shares.flatMap((share) => share.envName ?? [])
    ])
    expect(new Set(envNames).size).toBe(envNames.length)
    expect(plan.skips.length).toBeGreaterThanOrEqual(2)
  })

  it("plans no SVM, so no <svm>_access/_secret/_url, when every share was skipped (fix)", () => {
    const plan = planFor({ svm: ["/abs", "../up"], other: ["home"] })
    expect(svmNames(plan)).toEqual(["other"])
    expect(plan.skips.map((skip) => [skip.svm, skip.share])).toEqual([["svm", "/abs"], ["svm", "../up"]])
  })

  it("mounts an SVM whose name is no valid env name, without env vars, with a warning", () => {
    const plan = planFor({ "5svm": ["home"] })
    expect(plan.svms.map((svm) => [svm.svm, svm.svmEnv, svm.shares[0].envName])).toEqual([["5svm", false, undefined]])
    expect(plan.skips).toEqual([{ svm: "5svm", code: "mounted_without_env", reason: expect.stringMatching(/^mounted/) }])
  })
})

describe("BUCKET_HOST: the url without its scheme (fix: the original cut 8 characters)", () => {
  it("strips https:// and http://, keeping port and path", () => {
    expect(stripScheme("https://filer.example.test")).toBe("filer.example.test")
    expect(stripScheme("http://filer.example.test:9000")).toBe("filer.example.test:9000")
    expect(stripScheme("https://filer.example.test:8443/s3/")).toBe("filer.example.test:8443/s3/")
  })

  it("leaves a url without a scheme as it is", () => {
    expect(stripScheme("filer.example.test:9000")).toBe("filer.example.test:9000")
  })

  it("is what the plan gives each SVM, while <svm>_url keeps the url as filers-list has it", () => {
    const plan = planFor({ svm: ["home"] }, { filers: filers({ svm: "http://h.example.test:9000/p" }) })
    expect(plan.svms[0]).toMatchObject({ url: "http://h.example.test:9000/p", bucketHost: "h.example.test:9000/p" })
  })
})

describe("plan: credentials", () => {
  it("carries the credentials Redacted, never as plain strings", () => {
    const plan = planFor({ svm: ["home"] }, { secrets: new Map([["svm", goodSecret]]) })
    expect(String(plan.svms[0].access)).not.toContain("FAKE")
    expect(JSON.stringify(plan)).not.toContain("FAKE")
  })
})
