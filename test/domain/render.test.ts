import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { JsonObject } from "../../src/domain/json.ts"
import { injectAnnotation, statusAnnotation } from "../../src/domain/pod.ts"
import { render, type RenderSettings } from "../../src/domain/render.ts"
import { statusAnnotationValue } from "../../src/domain/status.ts"
import { parseSidecarTemplate, type SidecarTemplate } from "../../src/domain/template.ts"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { exampleTemplate, notebookPod } from "../support/pipelineHarness.ts"
import { filers, found, planFor } from "./fixtures.ts"

const parsed = parseSidecarTemplate("das", { "sidecarconfig.json": JSON.stringify(exampleTemplate()) })
if (Result.isFailure(parsed)) throw parsed.failure
const template: SidecarTemplate = parsed.success

const settings: RenderSettings = {
  credentialMode: "secretKeyRef",
  sidecarResources: AdmissionSettings.defaults.sidecarResources,
  goofys: { attempts: 5, delaySeconds: 1, flags: ["--cheap"] }
}

const renderOne = (overrides: Partial<RenderSettings> = {}, plan = planFor({ fld5filersvm: ["home"] })) =>
  render({ pod: notebookPod() as JsonObject, notebookContainer: 0, plan, template, settings: { ...settings, ...overrides } }) as any

describe("render", () => {
  it("returns the pod itself when nothing is planned", () => {
    const pod = notebookPod() as JsonObject
    expect(render({ pod, notebookContainer: 0, plan: { svms: [], skips: [] }, template, settings })).toBe(pod)
  })

  it("copies the template container into a native sidecar, keeping every field it does not set", () => {
    const sidecar = renderOne().spec.initContainers[0]
    expect(sidecar).toMatchObject({
      image: "registry.example/goofys-sidecar:1",
      imagePullPolicy: "IfNotPresent",
      securityContext: { privileged: false },
      restartPolicy: "Always",
      resources: { requests: { cpu: "100m", memory: "100Mi" }, limits: { cpu: "500m", memory: "10Gi" } }
    })
    expect(sidecar.name).not.toBe("filer-connection-x")
    expect(sidecar.command[0]).toBe("/bin/sh")
  })

  it("sets the sidecar's env, replacing template entries of the same name and keeping the others", () => {
    const env: Array<any> = renderOne().spec.initContainers[0].env
    expect(env.map((e) => e.name)).toEqual([
      "FUSERMOUNT3PROXY_FDPASSING_SOCKPATH",
      "AWS_ACCESS_KEY_ID",
      "TEMPLATE_ONLY",
      "AWS_SECRET_ACCESS_KEY",
      "BUCKET_HOST"
    ])
    expect(env.find((e) => e.name === "FUSERMOUNT3PROXY_FDPASSING_SOCKPATH").value).toBe(
      "/fusermount3-proxy/fuse-csi-ephemeral.sock"
    )
    expect(env.find((e) => e.name === "TEMPLATE_ONLY").value).toBe("kept")
    expect(env.find((e) => e.name === "BUCKET_HOST").value).toBe("fld5filersvm.example.test")
  })

  it("adds the template's emptyDir and csi volumes, the csi one naming its emptyDir, and mounts them", () => {
    const pod = renderOne()
    const sidecar = pod.spec.initContainers[0]
    const [, fd, csi] = pod.spec.volumes
    expect(fd).toEqual({ name: `fuse-fd-passing-${sidecar.name}`, emptyDir: {} })
    expect(csi).toEqual({
      name: `fuse-csi-ephemeral-${sidecar.name}`,
      csi: {
        driver: "meta-fuse-csi-plugin.csi.storage.pfn.io",
        readOnly: false,
        volumeAttributes: { fdPassingEmptyDirName: fd.name, fdPassingSocketName: "fuse-csi-ephemeral.sock" }
      }
    })
    expect(sidecar.volumeMounts).toEqual([{ name: fd.name, mountPath: "/fusermount3-proxy" }])
    expect(pod.spec.containers[0].volumeMounts[1]).toEqual({
      name: csi.name,
      mountPath: "/home/jovyan/filers/fld5filersvm/home",
      mountPropagation: "HostToContainer",
      readOnly: false
    })
  })

  it("refers to the Secret for credentials by default, optional so a Secret deleted later does not block a restart", () => {
    const pod = renderOne()
    const ref = (key: string) => ({ valueFrom: { secretKeyRef: { name: "fld5filersvm-conn-secret", key, optional: true } } })
    expect(pod.spec.containers[0].env.slice(1)).toEqual([
      { name: "fld5filersvm_access", ...ref("S3_ACCESS") },
      { name: "fld5filersvm_secret", ...ref("S3_SECRET") },
      { name: "fld5filersvm_url", value: "https://fld5filersvm.example.test" },
      { name: "fld5filersvm_home", value: "4624382957487889774" }
    ])
    expect(pod.spec.initContainers[0].env[1]).toEqual({ name: "AWS_ACCESS_KEY_ID", ...ref("S3_ACCESS") })
    expect(pod.spec.initContainers[0].env.find((e: any) => e.name === "AWS_SECRET_ACCESS_KEY")).toEqual({
      name: "AWS_SECRET_ACCESS_KEY",
      ...ref("S3_SECRET")
    })
  })

  it("writes the credentials as values, every $ doubled, in plain mode", () => {
    const plan = planFor({ s: ["home"] }, {
      secrets: new Map([["s", found("FAKE$ACCESS", "FAKE$(SECRET)")]]),
      filers: filers({ s: "https://h.example.test/$x" })
    })
    const pod = renderOne({ credentialMode: "plain" }, plan)
    const values = Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value]))
    expect(values).toMatchObject({ s_access: "FAKE$$ACCESS", s_secret: "FAKE$$(SECRET)", s_url: "https://h.example.test/$$x" })
    const sidecarEnv = Object.fromEntries(pod.spec.initContainers[0].env.map((e: any) => [e.name, e.value]))
    expect(sidecarEnv).toMatchObject({ AWS_ACCESS_KEY_ID: "FAKE$$ACCESS", AWS_SECRET_ACCESS_KEY: "FAKE$$(SECRET)" })
  })

  it("sets the status annotation beside inject: injected, with no credential, in plain mode too", () => {
    const access = "FAKE-ACCESS-KEY-status-test"
    const secret = "FAKE-SECRET-KEY-status-test"
    const plan = planFor({ a: ["home", "../x"], b: ["y"] }, {
      secrets: new Map([["a", found(access, secret)], ["b", found(access, "")]])
    })
    const pod = renderOne({ credentialMode: "plain" }, plan)
    // The check works: plain mode writes the credentials into the pod.
    expect(JSON.stringify(pod)).toContain(access)
    expect(pod.metadata.annotations).toEqual({
      [injectAnnotation]: "injected",
      [statusAnnotation]: statusAnnotationValue(plan)
    })
    const value: string = pod.metadata.annotations[statusAnnotation]
    expect(value).not.toContain(access)
    expect(value).not.toContain(secret)
    expect(JSON.parse(value).skipped).toEqual([
      { svm: "a", share: "../x", reason: "unsafe_share_path" },
      { svm: "b", reason: "secret_incomplete" }
    ])
  })

  it("gives no <svm>_access/_secret/_url to an SVM whose shares were all skipped (fix)", () => {
    const pod = renderOne({}, planFor({ a: ["../x"], b: ["home"] }))
    expect(pod.spec.containers[0].env.map((e: any) => e.name).filter((n: string) => n.startsWith("a_"))).toEqual([])
  })
})
