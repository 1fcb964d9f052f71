/**
 * The sidecar template (ConfigMap `filer-sidecar-injector-json`, key
 * `sidecarconfig.json`): one container and two volumes, an emptyDir for fd
 * passing and the meta-fuse-csi-plugin csi volume. Everything in it is kept
 * as raw JSON and copied into each sidecar; only the fields the injector
 * fills in, and the container's privileges, are validated here, with errors
 * naming the field (docs/behaviour.md, "The sidecar template").
 */
import { Result, Schema } from "effect"
import { ConfigurationError } from "./configurationError.ts"
import type { JsonObject } from "./json.ts"
import { describeIssue } from "./schemaErrors.ts"

export const sidecarTemplateName = "filer-sidecar-injector-json"
export const sidecarTemplateKey = "sidecarconfig.json"

const NonEmpty = Schema.NonEmptyString

const SecurityContext = Schema.Struct({
  privileged: Schema.optional(Schema.Boolean),
  allowPrivilegeEscalation: Schema.optional(Schema.Boolean),
  capabilities: Schema.optional(Schema.Struct({ add: Schema.optional(Schema.Array(Schema.String)) }))
})

const TemplateShape = Schema.Struct({
  containers: Schema.NonEmptyArray(Schema.Struct({
    image: NonEmpty,
    volumeMounts: Schema.optional(Schema.Array(Schema.Struct({ name: Schema.String, mountPath: Schema.String }))),
    securityContext: Schema.optional(SecurityContext)
  })),
  volumes: Schema.Array(Schema.Struct({
    name: NonEmpty,
    emptyDir: Schema.optional(Schema.Unknown),
    csi: Schema.optional(Schema.Struct({
      driver: NonEmpty,
      volumeAttributes: Schema.optional(Schema.Record(Schema.String, Schema.String))
    }))
  }))
})
const decodeTemplate = Schema.decodeUnknownResult(TemplateShape)

export interface SidecarTemplate {
  /** The template's first container, raw: every field is copied into each sidecar. */
  readonly container: JsonObject
  /** The emptyDir volume through which goofys hands the FUSE fd to the CSI driver. */
  readonly fdPassingVolume: JsonObject
  readonly csiVolume: JsonObject
  readonly fdPassingVolumeName: string
  readonly csiVolumeName: string
  /** Where the sidecar mounts the fd-passing emptyDir. */
  readonly fdPassingMountPath: string
  /** The csi volume's `volumeAttributes.fdPassingSocketName`. */
  readonly fdPassingSocketName: string
}

/**
 * The first privilege a template container asks for, as the field and what is
 * wrong with it. The template is copied into every notebook pod, and the
 * sidecar needs none: the CSI driver opens /dev/fuse and mounts for it
 * (README, "The sidecar template").
 */
const privilegeProblem = (containers: typeof TemplateShape.Type["containers"]): string | undefined => {
  for (const [index, container] of containers.entries()) {
    const at = `containers[${index}].securityContext`
    const context = container.securityContext
    if (context?.privileged === true) return `${at}.privileged must not be true`
    if (context?.allowPrivilegeEscalation === true) return `${at}.allowPrivilegeEscalation must not be true`
    if ((context?.capabilities?.add ?? []).length > 0) return `${at}.capabilities.add must be empty`
  }
  return undefined
}

export const parseSidecarTemplate = (
  namespace: string,
  data: Readonly<Record<string, string>>
): Result.Result<SidecarTemplate, ConfigurationError> => {
  const object = `ConfigMap ${namespace}/${sidecarTemplateName}`
  const field = `data["${sidecarTemplateKey}"]`
  const problem = (text: string) => Result.fail(new ConfigurationError({ object, problem: text }))
  const raw = data[sidecarTemplateKey]
  if (raw === undefined) return problem(`${field} is missing`)
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return problem(`${field} is not valid JSON`)
  }
  const decoded = decodeTemplate(json)
  if (Result.isFailure(decoded)) return problem(describeIssue(decoded.failure.issue, field))
  // Decoding drops unknown keys, so the raw JSON is what gets copied.
  const template = json as { containers: ReadonlyArray<JsonObject>; volumes: ReadonlyArray<JsonObject> }
  const shape = decoded.success
  const privilege = privilegeProblem(shape.containers)
  if (privilege !== undefined) return problem(`${field}.${privilege}`)

  const fdIndex = shape.volumes.findIndex((volume) => volume.emptyDir !== undefined)
  if (fdIndex < 0) return problem(`${field}.volumes needs an emptyDir volume (fd passing)`)
  const csiIndex = shape.volumes.findIndex((volume) => volume.csi !== undefined)
  if (csiIndex < 0) return problem(`${field}.volumes needs a csi volume`)
  const csi = shape.volumes[csiIndex].csi!
  const fdPassingSocketName = csi.volumeAttributes?.fdPassingSocketName
  if (fdPassingSocketName === undefined || fdPassingSocketName === "") {
    return problem(`${field}.volumes[${csiIndex}].csi.volumeAttributes.fdPassingSocketName is missing`)
  }
  const fdPassingVolumeName = shape.volumes[fdIndex].name
  const csiVolumeName = shape.volumes[csiIndex].name
  const mounts = shape.containers[0].volumeMounts ?? []
  // Only the two volumes are copied into the pod: a mount of any other would name a volume that does not exist.
  const stray = mounts.findIndex((mount) => mount.name !== fdPassingVolumeName && mount.name !== csiVolumeName)
  if (stray >= 0) {
    return problem(
      `${field}.containers[0].volumeMounts[${stray}] mounts "${mounts[stray].name}", which is neither the emptyDir nor the csi volume`
    )
  }
  const fdMount = mounts.find((mount) => mount.name === fdPassingVolumeName)
  if (fdMount === undefined || fdMount.mountPath === "") {
    return problem(`${field}.containers[0].volumeMounts needs a mount of volume "${fdPassingVolumeName}"`)
  }
  return Result.succeed({
    container: template.containers[0],
    fdPassingVolume: template.volumes[fdIndex],
    csiVolume: template.volumes[csiIndex],
    fdPassingVolumeName,
    csiVolumeName,
    fdPassingMountPath: fdMount.mountPath,
    fdPassingSocketName
  })
}
