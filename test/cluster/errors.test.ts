/**
 * KubeError: one error for every Kubernetes failure, its `reason` saying
 * which, its message naming the object (and, when refused, the RBAC rule to
 * add), never a response body.
 */
import { assert, describe, it } from "@effect/vitest"
import { isKubeError, isRetryable, KubeError } from "../../src/cluster/errors.ts"

const shares = { resource: "configmaps", verb: "get", namespace: "jane-doe", objectName: "existing-shares" } as const
const webhook = {
  resource: "mutatingwebhookconfigurations",
  verb: "update",
  namespace: "",
  objectName: "filer-sidecar-injector-webhook"
} as const

describe("KubeError", () => {
  it("names the object in every message", () => {
    assert.strictEqual(KubeError.notFound(shares).message, `configmaps "jane-doe/existing-shares" not found`)
    assert.strictEqual(
      KubeError.transient(shares, "connection failed: ECONNRESET").message,
      `cannot get configmaps "jane-doe/existing-shares": connection failed: ECONNRESET`
    )
    assert.strictEqual(
      KubeError.requestFailed(shares, "the answer is not JSON").message,
      `cannot get configmaps "jane-doe/existing-shares": the answer is not JSON`
    )
    assert.strictEqual(
      KubeError.conflict(webhook).message,
      `cannot update mutatingwebhookconfigurations "filer-sidecar-injector-webhook": conflict (it already exists or changed meanwhile)`
    )
  })

  it("forbidden names the RBAC rule the ServiceAccount lacks", () => {
    assert.strictEqual(
      KubeError.forbidden(shares, 403).message,
      `forbidden: cannot get configmaps "jane-doe/existing-shares"; the injector's ServiceAccount needs RBAC rule ` +
        `apiGroups=[""] resources=["configmaps"] verbs=["get"] in namespace "jane-doe"`
    )
    assert.strictEqual(
      KubeError.forbidden(webhook, 401).message,
      `unauthorized: cannot update mutatingwebhookconfigurations "filer-sidecar-injector-webhook"; the injector's ` +
        `ServiceAccount needs RBAC rule apiGroups=["admissionregistration.k8s.io"] ` +
        `resources=["mutatingwebhookconfigurations"] verbs=["update"] cluster-wide`
    )
  })

  it("each constructor gives its reason; only transient is worth retrying", () => {
    const errors = {
      transient: KubeError.transient(shares, "the API server answered 503", { status: 503, retryAfterMillis: 1000 }),
      forbidden: KubeError.forbidden(shares, 403),
      not_found: KubeError.notFound(shares),
      conflict: KubeError.conflict(shares),
      request_failed: KubeError.requestFailed(shares, "the answer is not JSON")
    }
    for (const [reason, error] of Object.entries(errors)) {
      assert.strictEqual(error.reason, reason)
      assert.strictEqual(error._tag, "KubeError")
      assert.isTrue(isKubeError(error))
      assert.strictEqual(isRetryable(error), reason === "transient", reason)
    }
    assert.strictEqual(errors.transient.retryAfterMillis, 1000)
    assert.isFalse(isKubeError(new Error("x")))
  })

  it("keeps only the call's own fields from a wider description", () => {
    const error = KubeError.notFound({ ...shares, body: "S3_SECRET=hunter2" } as typeof shares)
    assert.notInclude(JSON.stringify(error), "hunter2")
  })

  it("a not_found carries no stack trace: it is an expected answer, and capturing one is costly", () => {
    const error = KubeError.notFound(shares)
    assert.notMatch(error.stack ?? "", /\n\s+at /)
    assert.match(KubeError.forbidden(shares, 403).stack ?? "", /\n\s+at /)
  })
})
