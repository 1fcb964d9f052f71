import { describe, expect, it } from "vitest"
import { validatePod } from "./podValidation.ts"

/** A valid notebook pod with an injected-looking sidecar, to be spoiled one field at a time. */
const validPod = () => ({
  metadata: { name: "nb-0" },
  spec: {
    containers: [
      {
        name: "notebook",
        env: [{ name: "HOME", value: "/home/jovyan" }],
        volumeMounts: [{ name: "workspace", mountPath: "/home/jovyan" }]
      }
    ],
    initContainers: [
      {
        name: "fld-vol-0-sidecar",
        restartPolicy: "Always",
        env: [
          { name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "ns-conn-secret", key: "S3_ACCESS" } } },
          { name: "my.env-name", value: "" }
        ],
        volumeMounts: [{ name: "fld-vol-0", mountPath: "/mnt/fld" }]
      }
    ],
    volumes: [
      { name: "workspace", persistentVolumeClaim: { claimName: "ws" } },
      { name: "fld-vol-0", emptyDir: {} },
      { name: "secrets", csi: { driver: "secrets-store.csi.k8s.io" } }
    ]
  }
})

type Pod = ReturnType<typeof validPod>

/** validPod() changed by `spoil`, validated. */
const problemsOf = (spoil: (pod: Pod) => void): ReadonlyArray<string> => {
  const pod = validPod()
  spoil(pod)
  return validatePod(pod)
}

describe("validatePod", () => {
  it("accepts a valid pod", () => {
    expect(validatePod(validPod())).toEqual([])
  })

  it("requires a spec and at least one container", () => {
    expect(validatePod({})).toEqual(["spec: required"])
    expect(problemsOf((pod) => (pod.spec.containers = []))).toEqual([
      "spec.containers: must have at least one container"
    ])
  })

  describe("container names", () => {
    it("reports names that are not DNS-1123 labels, with the field path", () => {
      expect(problemsOf((pod) => pod.spec.initContainers.push({ ...pod.spec.initContainers[0]!, name: "Bad_Name" }))).toEqual(
        ['spec.initContainers[1].name: "Bad_Name" is not a DNS-1123 label']
      )
      expect(problemsOf((pod) => (pod.spec.containers[0]!.name = "a".repeat(64)))).toHaveLength(1)
      expect(problemsOf((pod) => (pod.spec.containers[0]!.name = "a".repeat(63)))).toEqual([])
      expect(problemsOf((pod) => (pod.spec.containers[0]!.name = "-lead"))).toHaveLength(1)
      expect(problemsOf((pod) => (pod.spec.containers[0]!.name = ""))).toHaveLength(1)
    })

    it("reports duplicates across containers, initContainers and ephemeralContainers", () => {
      expect(problemsOf((pod) => (pod.spec.initContainers[0]!.name = "notebook"))).toEqual([
        'spec.initContainers[0].name: duplicate value "notebook"'
      ])
      expect(
        problemsOf((pod) => Object.assign(pod.spec, { ephemeralContainers: [{ name: "fld-vol-0-sidecar" }] }))
      ).toEqual(['spec.ephemeralContainers[0].name: duplicate value "fld-vol-0-sidecar"'])
    })

    it("allows only restartPolicy Always on initContainers", () => {
      expect(problemsOf((pod) => (pod.spec.initContainers[0]!.restartPolicy = "OnFailure"))).toEqual([
        'spec.initContainers[0].restartPolicy: "OnFailure" is not supported, only "Always"'
      ])
    })
  })

  describe("volumes and mounts", () => {
    it("reports invalid and duplicate volume names", () => {
      expect(problemsOf((pod) => (pod.spec.volumes[1]!.name = "Fld.Vol"))).toEqual([
        'spec.volumes[1].name: "Fld.Vol" is not a DNS-1123 label',
        'spec.initContainers[0].volumeMounts[0].name: "fld-vol-0" does not name a volume in spec.volumes'
      ])
      expect(problemsOf((pod) => pod.spec.volumes.push({ name: "workspace", emptyDir: {} }))).toEqual([
        'spec.volumes[3].name: duplicate value "workspace"'
      ])
    })

    it("reports a mount naming a missing volume", () => {
      expect(problemsOf((pod) => pod.spec.containers[0]!.volumeMounts.push({ name: "fld-vol-9", mountPath: "/x" }))).toEqual([
        'spec.containers[0].volumeMounts[1].name: "fld-vol-9" does not name a volume in spec.volumes'
      ])
    })

    it("reports duplicate mountPaths within one container, but not across containers", () => {
      expect(
        problemsOf((pod) => pod.spec.containers[0]!.volumeMounts.push({ name: "fld-vol-0", mountPath: "/home/jovyan" }))
      ).toEqual(['spec.containers[0].volumeMounts[1].mountPath: duplicate value "/home/jovyan"'])
      expect(problemsOf((pod) => (pod.spec.initContainers[0]!.volumeMounts[0]!.mountPath = "/home/jovyan"))).toEqual([])
    })

    it("requires a csi volume's driver", () => {
      expect(problemsOf((pod) => (pod.spec.volumes[2] = { name: "secrets", csi: {} as { driver: string } }))).toEqual([
        "spec.volumes[2].csi.driver: required"
      ])
    })
  })

  describe("resources", () => {
    const withResources = (resources: unknown) =>
      problemsOf((pod) => Object.assign(pod.spec.initContainers[0]!, { resources }))

    it("accepts quantities with a request at most its limit", () => {
      expect(withResources({ requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "0.5", memory: "10Gi" } })).toEqual([])
      expect(withResources({ requests: { cpu: "1" }, limits: { cpu: "1000m" } })).toEqual([])
      expect(withResources({ requests: { memory: "1e3" }, limits: { memory: "1k" } })).toEqual([])
    })

    it("reports text that is not a quantity, and negative values", () => {
      expect(withResources({ limits: { cpu: "lots", memory: "-1Gi" } })).toEqual([
        'spec.initContainers[0].resources.limits.cpu: "lots" is not a quantity',
        "spec.initContainers[0].resources.limits.memory: must be greater than or equal to 0"
      ])
    })

    it("reports a request above its limit", () => {
      expect(withResources({ requests: { cpu: "600m", memory: "1Gi" }, limits: { cpu: "500m", memory: "1024Mi" } })).toEqual([
        "spec.initContainers[0].resources.requests.cpu: must be less than or equal to cpu limit"
      ])
    })
  })

  it("requires a volume mount's readOnly to be a boolean", () => {
    expect(problemsOf((pod) => Object.assign(pod.spec.containers[0]!.volumeMounts[0]!, { readOnly: "true" }))).toEqual([
      "spec.containers[0].volumeMounts[0].readOnly: must be a boolean"
    ])
  })

  describe("env", () => {
    it("reports invalid env names", () => {
      for (const name of ["1ABC", "A B", "A=B", "", ".", "..", "..x"]) {
        expect(problemsOf((pod) => (pod.spec.containers[0]!.env[0]!.name = name))).toEqual([
          `spec.containers[0].env[0].name: ${JSON.stringify(name)} is not a valid environment variable name`
        ])
      }
      for (const name of ["_A", "-a", ".a", "my.env-name", "MyEnvName1"]) {
        expect(problemsOf((pod) => (pod.spec.containers[0]!.env[0]!.name = name))).toEqual([])
      }
    })

    it("reports duplicate env names within one container, not across containers", () => {
      expect(problemsOf((pod) => pod.spec.containers[0]!.env.push({ name: "HOME", value: "/root" }))).toEqual([
        'spec.containers[0].env[1].name: duplicate value "HOME"'
      ])
      expect(problemsOf((pod) => (pod.spec.initContainers[0]!.env[1]!.name = "HOME"))).toEqual([])
    })

    it("rejects a non-empty value together with valueFrom", () => {
      expect(
        problemsOf((pod) => Object.assign(pod.spec.initContainers[0]!.env[0]!, { value: "plain-secret" }))
      ).toEqual(['spec.initContainers[0].env[0]: may not have both "value" and "valueFrom"'])
    })

    it("requires secretKeyRef name and key, and exactly one valueFrom source", () => {
      expect(
        problemsOf((pod) => (pod.spec.initContainers[0]!.env[0]!.valueFrom = { secretKeyRef: { name: "", key: "" } }))
      ).toEqual([
        "spec.initContainers[0].env[0].valueFrom.secretKeyRef.name: required",
        "spec.initContainers[0].env[0].valueFrom.secretKeyRef.key: required"
      ])
      expect(problemsOf((pod) => Object.assign(pod.spec.initContainers[0]!.env[0]!, { valueFrom: {} }))).toEqual([
        "spec.initContainers[0].env[0].valueFrom: must name exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef, fileKeyRef (found 0)"
      ])
    })
  })
})
