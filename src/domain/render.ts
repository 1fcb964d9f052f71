/**
 * render: the mutated pod as a value, `(raw pod, plan, template, settings) →
 * pod'`. It copies only what it changes, so every field it does not know
 * (a newer Kubernetes adds them) stays exactly as sent. Entries are replaced
 * by name (or mount path) and otherwise appended, which makes rendering a
 * rendered pod again change nothing.
 */
import { Redacted } from "effect"
import { type Choices, noChoices } from "./choices.ts"
import { escapeForKubelet, goofysCommand, type GoofysRetryPolicyValues } from "./goofys.ts"
import { arrayAt, isJsonObject, type Json, type JsonObject, objectAt } from "./json.ts"
import { type Plan, type PlannedShare, type PlannedSvm, secretKeys } from "./plan.ts"
import { injectAnnotation, statusAnnotation } from "./pod.ts"
import { statusAnnotationValue } from "./status.ts"
import type { SidecarTemplate } from "./template.ts"

export interface RenderSettings {
  readonly credentialMode: "secretKeyRef" | "plain"
  readonly sidecarResources: {
    readonly requests: { readonly cpu: string; readonly memory: string }
    readonly limits: { readonly cpu: string; readonly memory: string }
  }
  readonly goofys: GoofysRetryPolicyValues
}

export interface RenderInput {
  /** `request.object` exactly as sent. */
  readonly pod: JsonObject
  /** Index in `spec.containers` of the notebook container. */
  readonly notebookContainer: number
  readonly plan: Plan
  readonly template: SidecarTemplate
  readonly settings: RenderSettings
  /** What the pod chose by annotation (src/domain/choices.ts), already within bounds. Absent: nothing. */
  readonly choices?: Choices
}

/**
 * `list` with each item, in order, in place of the first entry whose `key`
 * matches (an entry an earlier item added included), or appended. One pass
 * with an index of first positions: item by item with `findIndex` and a copy
 * each, a pod with a thousand shares took a second (test/bench/RESULTS.md).
 */
const upsertAll = (list: ReadonlyArray<Json>, items: ReadonlyArray<JsonObject>, key: string): ReadonlyArray<Json> => {
  if (items.length === 0) return list
  const result = [...list]
  const firstIndex = new Map<Json | undefined, number>()
  result.forEach((entry, index) => {
    if (isJsonObject(entry) && !firstIndex.has(entry[key])) firstIndex.set(entry[key], index)
  })
  for (const item of items) {
    const index = firstIndex.get(item[key])
    if (index === undefined) {
      firstIndex.set(item[key], result.length)
      result.push(item)
    } else {
      result[index] = item
    }
  }
  return result
}

const plainEnv = (name: string, value: string): JsonObject => ({ name, value: escapeForKubelet(value) })

/** A credential: a Secret reference by default, so no value ever appears in the pod or the patch. */
const credentialEnv = (
  name: string,
  svm: PlannedSvm,
  key: keyof typeof secretKeys,
  settings: RenderSettings
): JsonObject =>
  settings.credentialMode === "secretKeyRef"
    ? { name, valueFrom: { secretKeyRef: { name: svm.secretName, key: secretKeys[key], optional: true } } }
    : plainEnv(name, Redacted.value(key === "access" ? svm.access : svm.secret))

/** goofys' `-o` options reach the FUSE mount; the CSI volume's readOnly is what the driver mounts with. */
const readOnlyGoofysFlags = ["-o", "ro"]

const sidecar = (
  svm: PlannedSvm,
  share: PlannedShare,
  template: SidecarTemplate,
  settings: RenderSettings,
  choices: Choices
): JsonObject => {
  const base = template.container
  // The template's mounts name the template's volumes; point them at this share's copies.
  const renamed: Readonly<Record<string, string>> = {
    [template.fdPassingVolumeName]: share.names.fdPassingVolume,
    [template.csiVolumeName]: share.names.csiVolume
  }
  const volumeMounts = arrayAt(base, "volumeMounts").map((mount) =>
    isJsonObject(mount) && typeof mount.name === "string" && renamed[mount.name] !== undefined
      ? { ...mount, name: renamed[mount.name] }
      : mount
  )
  const socketPath = `${template.fdPassingMountPath.replace(/\/+$/, "")}/${template.fdPassingSocketName}`
  const env = upsertAll(arrayAt(base, "env"), [
    plainEnv("FUSERMOUNT3PROXY_FDPASSING_SOCKPATH", socketPath),
    credentialEnv("AWS_ACCESS_KEY_ID", svm, "access", settings),
    credentialEnv("AWS_SECRET_ACCESS_KEY", svm, "secret", settings),
    plainEnv("BUCKET_HOST", svm.bucketHost)
  ], "name")
  const goofys = choices.readOnly
    ? { ...settings.goofys, flags: [...settings.goofys.flags, ...readOnlyGoofysFlags] }
    : settings.goofys
  const { args, command } = goofysCommand(goofys, svm.url, share.bucket)
  return {
    ...base,
    name: share.names.container,
    command,
    args,
    env,
    volumeMounts,
    resources: {
      requests: { ...settings.sidecarResources.requests, ...choices.sidecarResources.requests },
      limits: { ...settings.sidecarResources.limits, ...choices.sidecarResources.limits }
    },
    // A native sidecar: started before the notebook, kept running beside it.
    restartPolicy: "Always"
  }
}

const volumesFor = (share: PlannedShare, template: SidecarTemplate, readOnly: boolean): ReadonlyArray<JsonObject> => {
  const csi = objectAt(template.csiVolume, "csi") ?? {}
  return [
    { ...template.fdPassingVolume, name: share.names.fdPassingVolume },
    {
      ...template.csiVolume,
      name: share.names.csiVolume,
      csi: {
        ...csi,
        ...(readOnly ? { readOnly: true } : {}),
        volumeAttributes: { ...objectAt(csi, "volumeAttributes"), fdPassingEmptyDirName: share.names.fdPassingVolume }
      }
    }
  ]
}

const notebookEnv = (svm: PlannedSvm, settings: RenderSettings): ReadonlyArray<JsonObject> => [
  ...(svm.svmEnv
    ? [
      credentialEnv(`${svm.svm}_access`, svm, "access", settings),
      credentialEnv(`${svm.svm}_secret`, svm, "secret", settings),
      plainEnv(`${svm.svm}_url`, svm.url)
    ]
    : []),
  ...svm.shares.flatMap((share) => share.envName === undefined ? [] : [plainEnv(share.envName, share.bucket)])
]

const notebookMount = (share: PlannedShare, readOnly: boolean): JsonObject => ({
  name: share.names.csiVolume,
  mountPath: share.mountPath,
  mountPropagation: "HostToContainer",
  readOnly
})

/** The pod with every planned share mounted. A plan with nothing to mount returns the pod itself. */
export const render = (
  { choices = noChoices, notebookContainer, plan, pod, settings, template }: RenderInput
): JsonObject => {
  if (plan.svms.length === 0) return pod
  const shares = plan.svms.flatMap((svm) => svm.shares.map((share) => ({ svm, share })))
  const spec = objectAt(pod, "spec") ?? {}
  const metadata = objectAt(pod, "metadata") ?? {}

  const containers = [...arrayAt(spec, "containers")]
  const found = containers[notebookContainer]
  const notebook = isJsonObject(found) ? found : {}
  containers[notebookContainer] = {
    ...notebook,
    env: upsertAll(arrayAt(notebook, "env"), plan.svms.flatMap((svm) => notebookEnv(svm, settings)), "name"),
    volumeMounts: upsertAll(arrayAt(notebook, "volumeMounts"), shares.map(({ share }) => notebookMount(share, choices.readOnly)), "mountPath")
  }

  return {
    ...pod,
    metadata: {
      ...metadata,
      annotations: {
        ...objectAt(metadata, "annotations"),
        [injectAnnotation]: "injected",
        [statusAnnotation]: statusAnnotationValue(plan, choices)
      }
    },
    spec: {
      ...spec,
      containers,
      initContainers: upsertAll(
        arrayAt(spec, "initContainers"),
        shares.map(({ share, svm }) => sidecar(svm, share, template, settings, choices)),
        "name"
      ),
      volumes: upsertAll(arrayAt(spec, "volumes"), shares.flatMap(({ share }) => volumesFor(share, template, choices.readOnly)), "name")
    }
  }
}
