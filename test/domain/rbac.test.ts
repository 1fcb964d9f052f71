import { Result } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { type Filers, parseFilers } from "../../src/domain/filers.ts"
import { secretNameFor } from "../../src/domain/names.ts"
import { svmsNeedingSecrets } from "../../src/domain/plan.ts"
import { connectionSecretNames, injectorClusterRole } from "../../src/domain/rbac.ts"

const filersOf = (vservers: ReadonlyArray<string>): Filers => {
  const parsed = parseFilers("das", {
    filers: JSON.stringify(vservers.map((vserver) => ({ vserver, url: `https://${vserver}.example.test` })))
  })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}

const secretRules = (filers: Filers) =>
  injectorClusterRole(filers).rules.filter((rule) => rule.resources.includes("secrets"))

describe("the injector's ClusterRole from the filers list", () => {
  it("gets, lists and watches existing-shares and gets each filer's connection Secret, by name; records Events; nothing else", () => {
    expect(injectorClusterRole(filersOf(["fld9filersvm", "fld5_filer_svm"]))).toEqual({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "filer-sidecar-injector", labels: { "app.kubernetes.io/name": "filer-sidecar-injector" } },
      rules: [
        { apiGroups: [""], resources: ["configmaps"], resourceNames: ["existing-shares"], verbs: ["get", "list", "watch"] },
        {
          apiGroups: [""],
          resources: ["secrets"],
          resourceNames: ["fld5-filer-svm-conn-secret", "fld9filersvm-conn-secret"],
          verbs: ["get"]
        },
        { apiGroups: [""], resources: ["events"], verbs: ["create", "update"] }
      ]
    })
  })

  it("lists a Secret once when two SVM names give the same Secret name", () => {
    expect(connectionSecretNames(filersOf(["a_b", "a-b", "a_b"]))).toEqual(["a-b-conn-secret"])
  })

  it("leaves out an SVM whose Secret name would not be valid (the webhook never reads it)", () => {
    expect(connectionSecretNames(filersOf(["UPPER", "ok", "dot.", "x".repeat(250)]))).toEqual(["ok-conn-secret"])
  })

  it("has no Secret rule at all without a filer: an empty resourceNames would allow every Secret", () => {
    expect(secretRules(filersOf([]))).toEqual([])
    expect(secretRules(filersOf(["Not_Valid"]))).toEqual([])
    expect(injectorClusterRole(filersOf([])).rules.map((rule) => rule.resources)).toEqual([["configmaps"], ["events"]])
  })

  it("allows every Secret the webhook reads, whatever the filers list and the namespace's shares", () => {
    const svm = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,12}$/)
    fc.assert(
      fc.property(fc.array(svm, { maxLength: 8 }), fc.array(svm, { maxLength: 8 }), (listed, keys) => {
        const filers = filersOf(listed)
        // The namespace's SVMs: some in the filers list, some not, each with one share.
        const shares = Object.fromEntries([...keys, ...listed].map((key) => [key, '["home"]']))
        const allowed = secretRules(filers).flatMap((rule) => rule.resourceNames)
        for (const read of svmsNeedingSecrets(shares, filers)) expect(allowed).toContain(secretNameFor(read))
        for (const rule of secretRules(filers)) expect(rule.resourceNames?.length ?? 0).toBeGreaterThan(0)
      })
    )
  })
})
