/**
 * What every answer to hostile input must be, whoever produced it (the
 * pipeline in this process, or the HTTPS server): an AdmissionReview for
 * the request's uid, whose patch applies strictly to the pod as sent and
 * makes no Pod validation problem that was not there before, and in which no
 * credential appears, not even inside the base64 patch.
 */
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { validatePod } from "../support/podValidation.ts"
import { applyStrict, decodePatchBase64, jsonEqual } from "../support/strictJsonPatch.ts"
import { credentialTexts, injectAnnotation } from "./arbitraries.ts"

export class Violation extends Error {
  override readonly name = "Violation"
}

const fail = (message: string): never => {
  throw new Violation(message)
}

/** Fails when `text` holds a fixture credential (plain, base64 or JSON-escaped). */
export const assertNoCredential = (text: string, where: string) => {
  for (const credential of credentialTexts) {
    if (text.includes(credential)) fail(`${where} holds a credential`)
  }
}

type Obj = Record<string, any>

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

const isObject = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value)

/** The uid the request carries, when it is one the injector must echo. */
export const requestUid = (input: unknown): unknown => (isObject(input) && isObject(input.request) ? input.request.uid : undefined)

/**
 * Checks a 200 answer to `input` (the review as parsed from the body).
 * Returns the pod as the API server would store it, when a patch was given.
 */
export const checkReviewAnswer = (input: unknown, answer: unknown): Obj | undefined => {
  if (!isObject(answer)) return fail("the answer is not an object")
  if (answer.apiVersion !== "admission.k8s.io/v1" || answer.kind !== "AdmissionReview") {
    fail(`the answer is not an AdmissionReview v1: ${JSON.stringify(answer).slice(0, 200)}`)
  }
  if ("request" in answer) fail("the answer echoes the request")
  const response = answer.response
  if (!isObject(response)) return fail("no response")
  if (response.uid !== requestUid(input)) fail(`uid ${JSON.stringify(response.uid)} does not match the request's`)
  if (typeof response.allowed !== "boolean") fail("allowed is not a boolean")
  const text = JSON.stringify(answer)
  assertNoCredential(text, "the answer")
  if (response.warnings !== undefined) {
    if (!Array.isArray(response.warnings)) fail("warnings is not an array")
    if ((response.warnings as Array<unknown>).length > 25) fail(`${(response.warnings as Array<unknown>).length} warnings, more than 25`)
    for (const warning of response.warnings as Array<unknown>) {
      if (typeof warning !== "string") fail("a warning is not a string")
      if ((warning as string).length > 120) fail(`a warning is longer than 120 characters: ${warning}`)
      if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(warning as string)) fail(`a warning holds a control character: ${JSON.stringify(warning)}`)
      if (loneSurrogate.test(warning as string)) fail(`a warning holds half a surrogate pair: ${JSON.stringify(warning)}`)
    }
  }
  if (!response.allowed) {
    if (response.patch !== undefined) fail("a denial carries a patch")
    if (!isObject(response.status) || typeof response.status.code !== "number" || typeof response.status.message !== "string") {
      fail("a denial without a status code and message")
    }
    // Short, whatever the request held: an invalid pod's denial names the field, hostile keys cut.
    const message = (response.status as Obj).message as string
    if (message.length > 2000) fail(`a denial message of ${message.length} characters`)
    return undefined
  }
  if (response.patch === undefined) {
    if (response.patchType !== undefined) fail("patchType without a patch")
    return undefined
  }
  if (response.patchType !== "JSONPatch") fail("a patch whose patchType is not JSONPatch")
  if (typeof response.patch !== "string") fail("the patch is not a string")
  const patchText = Buffer.from(response.patch as string, "base64").toString("utf8")
  assertNoCredential(patchText, "the patch")
  const patch = decodePatchBase64(response.patch as string)
  if (!Array.isArray(patch) || patch.length === 0) fail("the patch is not a non-empty array")
  const object = (input as Obj).request.object
  let patched: unknown
  try {
    patched = applyStrict(object, patch)
  } catch (error) {
    fail(`the patch does not apply: ${error instanceof Error ? error.message : String(error)}`)
  }
  const before = new Set(validatePod(object))
  const introduced = validatePod(patched).filter((problem) => !before.has(problem))
  if (introduced.length > 0) fail(`the patch makes the pod invalid:\n  ${introduced.slice(0, 5).join("\n  ")}`)
  // Each share is one sidecar; past the limit the pod would outgrow what the API server stores (runner.ts: default settings).
  const sidecars = (pod: unknown) => {
    const list = isObject(pod) && isObject(pod.spec) ? pod.spec.initContainers : undefined
    return Array.isArray(list) ? list.length : 0
  }
  const added = sidecars(patched) - sidecars(object)
  if (added > AdmissionSettings.defaults.maxSharesPerPod) fail(`the patch adds ${added} sidecars, more than ${AdmissionSettings.defaults.maxSharesPerPod}`)
  const annotations = (patched as Obj).metadata?.annotations
  if (!isObject(annotations) || annotations[injectAnnotation] !== "injected") fail("the patched pod is not annotated as injected")
  return patched as Obj
}

/** A 400/413/415 answer: a JSON object whose `error` is a short string. */
export const checkErrorBody = (status: number, body: string) => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return fail(`HTTP ${status} with a body that is not JSON: ${body.slice(0, 100)}`)
  }
  if (!isObject(parsed) || typeof parsed.error !== "string" || parsed.error === "") fail(`HTTP ${status} without an error message`)
  if ((parsed as Obj).error.length > 2000) fail(`HTTP ${status} with an error of ${(parsed as Obj).error.length} characters`)
  assertNoCredential(body, `the ${status} body`)
}

/** Whether two JSON documents are equal. */
export const sameJson = (a: unknown, b: unknown) => jsonEqual(a as never, b as never)

/** Object.prototype and Array.prototype as they are now, to compare after the run. */
export const prototypeSnapshot = () => ({
  object: Object.getOwnPropertyNames(Object.prototype).sort().join(","),
  array: Object.getOwnPropertyNames(Array.prototype).sort().join(","),
  polluted: ({} as Obj).polluted
})
