/**
 * The test-side model of the kube-apiserver's Pod validation, limited to the
 * fields the injector touches: container names, volumes, volume mounts,
 * environment variables and resources. A patched pod that passes here would not be rejected
 * by the apiserver for anything the injector did.
 *
 * `validatePod` returns problems as strings that start with the field path,
 * e.g. `spec.initContainers[2].name: "Bad_Name" is not a DNS-1123 label`.
 * An empty array means valid.
 *
 * Two rules are stricter than the apiserver on purpose:
 * - duplicate env names within one container are only a warning there, but
 *   the injector must never produce them, so they are reported here;
 * - env names follow the classic rule (`[-._a-zA-Z][-._a-zA-Z0-9]*`, not
 *   `.`, `..` or starting with `..`), not the relaxed one of newer clusters.
 */

type Obj = Record<string, unknown>

const isObject = (value: unknown): value is Obj =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** DNS-1123 label: lowercase alphanumerics and '-', alphanumeric at both ends, at most 63 characters. */
const isDns1123Label = (value: unknown): boolean =>
  typeof value === "string" && value.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value)

/** Kubernetes' IsEnvVarName: the regex, and no `.`/`..` current/parent-directory names. */
const isEnvVarName = (value: unknown): boolean =>
  typeof value === "string" && /^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(value) && value !== "." && !value.startsWith("..")

const isNonEmptyString = (value: unknown): value is string => typeof value === "string" && value !== ""

const show = (value: unknown): string => JSON.stringify(value) ?? String(value)

/** The sources an env `valueFrom` may name; exactly one must be set. */
const valueFromSources = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"]

/** The list at `owner[key]` as an array: absent is empty, anything else but an array is a problem. */
const listAt = (owner: Obj, key: string, path: string, problems: Array<string>): ReadonlyArray<unknown> => {
  const value = owner[key]
  if (value === undefined || value === null) return []
  if (Array.isArray(value)) return value
  problems.push(`${path}: must be a list`)
  return []
}

/** Reports a duplicate the second (and later) time a value is seen. */
const uniqueness = (problems: Array<string>) => {
  const seen = new Set<unknown>()
  return (value: unknown, path: string): void => {
    if (seen.has(value)) problems.push(`${path}: duplicate value ${show(value)}`)
    seen.add(value)
  }
}

const validateEnv = (env: unknown, path: string, problems: Array<string>): void => {
  if (!isObject(env)) {
    problems.push(`${path}: must be an object`)
    return
  }
  if (!isEnvVarName(env["name"])) problems.push(`${path}.name: ${show(env["name"])} is not a valid environment variable name`)
  const valueFrom = env["valueFrom"]
  if (valueFrom === undefined || valueFrom === null) return
  // The apiserver allows an empty `value` beside `valueFrom`, but not a non-empty one.
  if (isNonEmptyString(env["value"])) problems.push(`${path}: may not have both "value" and "valueFrom"`)
  if (!isObject(valueFrom)) {
    problems.push(`${path}.valueFrom: must be an object`)
    return
  }
  const sources = valueFromSources.filter((source) => valueFrom[source] !== undefined && valueFrom[source] !== null)
  if (sources.length !== 1) {
    problems.push(`${path}.valueFrom: must name exactly one of ${valueFromSources.join(", ")} (found ${sources.length})`)
  }
  const secretKeyRef = valueFrom["secretKeyRef"]
  if (secretKeyRef !== undefined && secretKeyRef !== null) {
    const ref = isObject(secretKeyRef) ? secretKeyRef : {}
    if (!isNonEmptyString(ref["name"])) problems.push(`${path}.valueFrom.secretKeyRef.name: required`)
    if (!isNonEmptyString(ref["key"])) problems.push(`${path}.valueFrom.secretKeyRef.key: required`)
  }
}

// Kubernetes' quantity grammar, and a value close enough to compare requests with limits in tests.
const quantityPattern = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+)|([numkMGTPE]))?$/
const binaryPowers: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 }
const decimalPowers: Record<string, number> = { n: -3, u: -2, m: -1, k: 1, M: 2, G: 3, T: 4, P: 5, E: 6 }

/** The value of a quantity, or undefined when the apiserver would not parse it. */
const quantityValue = (value: unknown): number | undefined => {
  const match = typeof value === "string" ? quantityPattern.exec(value) : null
  if (match === null) return undefined
  const [, sign, number, binary, exponent, decimal] = match
  const magnitude = Number(number) *
    (binary !== undefined ? 1024 ** binaryPowers[binary]! : 1) *
    (exponent !== undefined ? 10 ** Number(exponent) : 1) *
    (decimal !== undefined ? 1000 ** decimalPowers[decimal]! : 1)
  return sign === "-" ? -magnitude : magnitude
}

/** Requests and limits are non-negative quantities, and a request is not above its limit. */
const validateResources = (resources: unknown, path: string, problems: Array<string>): void => {
  if (resources === undefined || resources === null) return
  if (!isObject(resources)) {
    problems.push(`${path}: must be an object`)
    return
  }
  const values: Record<string, Record<string, number>> = {}
  for (const kind of ["requests", "limits"]) {
    const list = resources[kind]
    if (list === undefined || list === null) continue
    if (!isObject(list)) {
      problems.push(`${path}.${kind}: must be an object`)
      continue
    }
    values[kind] = {}
    for (const [name, quantity] of Object.entries(list)) {
      const value = quantityValue(quantity)
      if (value === undefined) problems.push(`${path}.${kind}.${name}: ${show(quantity)} is not a quantity`)
      else if (value < 0) problems.push(`${path}.${kind}.${name}: must be greater than or equal to 0`)
      else values[kind]![name] = value
    }
  }
  for (const [name, request] of Object.entries(values["requests"] ?? {})) {
    const limit = values["limits"]?.[name]
    if (limit !== undefined && request > limit) problems.push(`${path}.requests.${name}: must be less than or equal to ${name} limit`)
  }
}

const validateContainer = (
  container: unknown,
  path: string,
  volumeNames: ReadonlySet<unknown>,
  problems: Array<string>
): void => {
  if (!isObject(container)) {
    problems.push(`${path}: must be an object`)
    return
  }
  if (!isDns1123Label(container["name"])) problems.push(`${path}.name: ${show(container["name"])} is not a DNS-1123 label`)

  const envName = uniqueness(problems)
  listAt(container, "env", `${path}.env`, problems).forEach((env, i) => {
    validateEnv(env, `${path}.env[${i}]`, problems)
    if (isObject(env)) envName(env["name"], `${path}.env[${i}].name`)
  })

  const mountPath = uniqueness(problems)
  listAt(container, "volumeMounts", `${path}.volumeMounts`, problems).forEach((mount, i) => {
    const mountAt = `${path}.volumeMounts[${i}]`
    if (!isObject(mount)) {
      problems.push(`${mountAt}: must be an object`)
      return
    }
    if (!volumeNames.has(mount["name"])) problems.push(`${mountAt}.name: ${show(mount["name"])} does not name a volume in spec.volumes`)
    if (!isNonEmptyString(mount["mountPath"])) problems.push(`${mountAt}.mountPath: required`)
    else mountPath(mount["mountPath"], `${mountAt}.mountPath`)
    if (mount["readOnly"] != null && typeof mount["readOnly"] !== "boolean") problems.push(`${mountAt}.readOnly: must be a boolean`)
  })
  validateResources(container["resources"], `${path}.resources`, problems)
}

/** The problems the kube-apiserver would report for this pod's injector-touched fields; empty = valid. */
export const validatePod = (pod: unknown): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const spec = isObject(pod) ? pod["spec"] : undefined
  if (!isObject(spec)) return ["spec: required"]

  // Volumes first: mounts are checked against their names.
  const volumeName = uniqueness(problems)
  const volumeNames = new Set<unknown>()
  listAt(spec, "volumes", "spec.volumes", problems).forEach((volume, i) => {
    const path = `spec.volumes[${i}]`
    if (!isObject(volume)) {
      problems.push(`${path}: must be an object`)
      return
    }
    if (!isDns1123Label(volume["name"])) problems.push(`${path}.name: ${show(volume["name"])} is not a DNS-1123 label`)
    volumeName(volume["name"], `${path}.name`)
    volumeNames.add(volume["name"])
    const csi = volume["csi"]
    if (csi !== undefined && csi !== null && !(isObject(csi) && isNonEmptyString(csi["driver"]))) {
      problems.push(`${path}.csi.driver: required`)
    }
  })

  // Container names are unique across containers, initContainers and ephemeralContainers together.
  const containerName = uniqueness(problems)
  for (const kind of ["containers", "initContainers", "ephemeralContainers"]) {
    const containers = listAt(spec, kind, `spec.${kind}`, problems)
    if (kind === "containers" && containers.length === 0) problems.push("spec.containers: must have at least one container")
    containers.forEach((container, i) => {
      const path = `spec.${kind}[${i}]`
      validateContainer(container, path, volumeNames, problems)
      if (!isObject(container)) return
      containerName(container["name"], `${path}.name`)
      // Only sidecar-style init containers may set a restartPolicy, and only "Always".
      const restartPolicy = container["restartPolicy"]
      if (kind === "initContainers" && restartPolicy != null && restartPolicy !== "Always") {
        problems.push(`${path}.restartPolicy: ${show(restartPolicy)} is not supported, only "Always"`)
      }
    })
  }
  return problems
}
