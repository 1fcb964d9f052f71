/**
 * The parts of a Pod the injector reads. Decoding checks their types so the
 * rest of the code can trust them; every other field stays in the raw object
 * and survives untouched.
 */
import { Schema } from "effect"

const EnvVar = Schema.Struct({ name: Schema.String })
const VolumeMount = Schema.Struct({ name: Schema.String, mountPath: Schema.String })
const Named = Schema.Struct({ name: Schema.String })

export const Container = Schema.Struct({
  name: Schema.String,
  env: Schema.optional(Schema.Array(EnvVar)),
  volumeMounts: Schema.optional(Schema.Array(VolumeMount))
})
export type Container = typeof Container.Type

export const Pod = Schema.Struct({
  metadata: Schema.optional(Schema.Struct({
    name: Schema.optional(Schema.String),
    generateName: Schema.optional(Schema.String),
    namespace: Schema.optional(Schema.String),
    labels: Schema.optional(Schema.Record(Schema.String, Schema.String)),
    annotations: Schema.optional(Schema.Record(Schema.String, Schema.String))
  })),
  spec: Schema.Struct({
    containers: Schema.Array(Container),
    initContainers: Schema.optional(Schema.Array(Named)),
    ephemeralContainers: Schema.optional(Schema.Array(Named)),
    volumes: Schema.optional(Schema.Array(Named))
  })
})
export type Pod = typeof Pod.Type

/** The label every Kubeflow notebook pod carries. */
export const notebookLabel = "notebook-name"
/** The annotation that turns injection off, and that the injector sets once done. */
export const injectAnnotation = "filer-injector-webhook.das-zone.statcan/inject"
/** The annotation that says what was mounted and skipped (src/domain/status.ts). */
export const statusAnnotation = "filer-injector-webhook.das-zone.statcan/status"
/** The env var that marks the notebook container among the pod's containers. */
export const notebookMarkerEnv = "NB_PREFIX"

/** A name for logs and warnings: the pod's name, else its generateName prefix. */
export const podDisplayName = (pod: Pod): string =>
  pod.metadata?.name ?? (pod.metadata?.generateName === undefined ? "" : `${pod.metadata.generateName}*`)
