/**
 * How the live transport classifies what the API server answers, or what
 * the network throws, into a KubeError's reason (src/cluster/live/transport.ts).
 * Over real HTTP, test/cluster/KubeClientLive.test.ts shows the same.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Call, fromStatus, fromThrown, retryAfterMillis } from "../../../src/cluster/live/classify.ts"

const call: Call = { resource: "secrets", verb: "get", namespace: "jane-doe", objectName: "fld5filersvm-conn-secret" }

const statusBody = (reason: string) => JSON.stringify({ kind: "Status", reason, message: "S3_SECRET=hunter2 echoed" })

describe("fromStatus", () => {
  it("404 is not_found", () => {
    const error = fromStatus(call, 404, {}, statusBody("NotFound"))
    assert.strictEqual(error.reason, "not_found")
    assert.strictEqual(error.message, `secrets "jane-doe/fld5filersvm-conn-secret" not found`)
  })

  it("401 and 403 are forbidden, keeping the status", () => {
    for (const status of [401, 403]) {
      const error = fromStatus(call, status, {}, statusBody("Forbidden"))
      assert.strictEqual(error.reason, "forbidden")
      assert.strictEqual(error.status, status)
    }
  })

  it("409 is conflict", () => {
    assert.strictEqual(fromStatus({ ...call, verb: "create" }, 409, {}, statusBody("AlreadyExists")).reason, "conflict")
  })

  it("408, 429 and 5xx are transient, with the server's Retry-After", () => {
    for (const status of [408, 429, 500, 502, 503, 504]) {
      const error = fromStatus(call, status, {}, "")
      assert.strictEqual(error.reason, "transient", String(status))
      assert.strictEqual(error.status, status)
      assert.include(error.message, `the API server answered ${status}`)
      assert.isUndefined(error.retryAfterMillis)
    }
    assert.strictEqual(fromStatus(call, 429, { "retry-after": "3" }, "").retryAfterMillis, 3000)
    assert.strictEqual(fromStatus(call, 503, { "retry-after": ["1", "9"] }, "").retryAfterMillis, 1000)
  })

  it("any other status is request_failed, naming the Status reason word and nothing else of the body", () => {
    const error = fromStatus(call, 422, {}, statusBody("Invalid"))
    assert.strictEqual(error.reason, "request_failed")
    assert.strictEqual(error.status, 422)
    assert.strictEqual(
      error.message,
      `cannot get secrets "jane-doe/fld5filersvm-conn-secret": the API server answered 422 Unprocessable Entity (Invalid)`
    )
    assert.notInclude(fromStatus(call, 400, {}, "not json hunter2").message, "hunter2")
  })
})

describe("retryAfterMillis", () => {
  it("reads delay-seconds and HTTP dates; ignores anything else", () => {
    assert.strictEqual(retryAfterMillis(" 2 "), 2000)
    const inFiveSeconds = new Date(Date.now() + 5000).toUTCString()
    const millis = retryAfterMillis(inFiveSeconds)!
    assert.isAtLeast(millis, 3000)
    assert.isAtMost(millis, 5000)
    assert.strictEqual(retryAfterMillis(new Date(Date.now() - 60_000).toUTCString()), 0)
    assert.isUndefined(retryAfterMillis("soon"))
    assert.isUndefined(retryAfterMillis(undefined))
  })
})

describe("fromThrown", () => {
  const withCode = (code: string, message = "boom") => Object.assign(new Error(message), { code })

  it("a socket error is transient, named by its code", () => {
    for (const code of ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET"]) {
      const error = fromThrown(call, withCode(code))
      assert.strictEqual(error.reason, "transient", code)
      assert.strictEqual(error.detail, `connection failed: ${code}`)
    }
  })

  it("finds the code along the cause chain, as undici wraps it", () => {
    const wrapped = new TypeError("fetch failed", { cause: withCode("ECONNRESET", "read ECONNRESET") })
    assert.strictEqual(fromThrown(call, wrapped).detail, "connection failed: ECONNRESET")
  })

  it("an abort, a timeout or a hung-up socket without a code is transient", () => {
    const abort = new Error("This operation was aborted")
    abort.name = "AbortError"
    assert.strictEqual(fromThrown(call, abort).reason, "transient")
    assert.strictEqual(fromThrown(call, new Error("socket hang up")).reason, "transient")
    assert.strictEqual(fromThrown(call, new Error("fetch failed", { cause: new Error("other side closed") })).reason, "transient")
  })

  it("anything else is request_failed, described without its payload", () => {
    const certificate = fromThrown(call, withCode("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"))
    assert.strictEqual(certificate.reason, "request_failed")
    assert.strictEqual(certificate.detail, "request failed: DEPTH_ZERO_SELF_SIGNED_CERT (Error)")
    assert.strictEqual(fromThrown(call, "a string").detail, "request failed: unknown error")
  })
})
