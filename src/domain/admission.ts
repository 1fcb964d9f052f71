/**
 * AdmissionReview `admission.k8s.io/v1`: the request the kube-apiserver sends
 * and the response it expects. Only the fields the injector reads are
 * decoded; `request.object` stays raw JSON, because the patch is a diff of
 * the object exactly as sent (docs/behaviour.md, "What stays as it was").
 */
import { Schema } from "effect"

export const admissionApiVersion = "admission.k8s.io/v1"

const GroupVersionKind = Schema.Struct({
  group: Schema.String,
  version: Schema.String,
  kind: Schema.String
})

const GroupVersionResource = Schema.Struct({
  group: Schema.String,
  version: Schema.String,
  resource: Schema.String
})

export const AdmissionRequest = Schema.Struct({
  uid: Schema.NonEmptyString,
  kind: Schema.optional(GroupVersionKind),
  resource: Schema.optional(GroupVersionResource),
  subResource: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  namespace: Schema.optional(Schema.String),
  operation: Schema.optional(Schema.String),
  object: Schema.optional(Schema.Unknown),
  dryRun: Schema.optional(Schema.Boolean)
})
export type AdmissionRequest = typeof AdmissionRequest.Type

export const AdmissionReviewRequest = Schema.Struct({
  apiVersion: Schema.Literal(admissionApiVersion),
  kind: Schema.Literal("AdmissionReview"),
  request: AdmissionRequest
})
export type AdmissionReviewRequest = typeof AdmissionReviewRequest.Type

export interface AdmissionStatus {
  readonly code: number
  readonly message: string
  readonly reason?: string
}

export interface AdmissionResponse {
  readonly uid: string
  readonly allowed: boolean
  readonly patchType?: "JSONPatch"
  /** Base64 of the RFC 6902 patch. */
  readonly patch?: string
  readonly warnings?: ReadonlyArray<string>
  readonly status?: AdmissionStatus
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof admissionApiVersion
  readonly kind: "AdmissionReview"
  readonly response: AdmissionResponse
}

export const reviewResponse = (response: AdmissionResponse): AdmissionReviewResponse => ({
  apiVersion: admissionApiVersion,
  kind: "AdmissionReview",
  response
})
