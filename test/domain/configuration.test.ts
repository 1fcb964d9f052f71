import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { parseFilers } from "../../src/domain/filers.ts"
import { parseSidecarTemplate } from "../../src/domain/template.ts"
import { exampleTemplate } from "../support/pipelineHarness.ts"

const templateError = (template: unknown) => {
  const result = parseSidecarTemplate("das", { "sidecarconfig.json": JSON.stringify(template) })
  return Result.isFailure(result) ? result.failure.message : "parsed"
}

const filersError = (data: Record<string, string>) => {
  const result = parseFilers("das", data)
  return Result.isFailure(result) ? result.failure.message : "parsed"
}

describe("sidecar template (ConfigMap filer-sidecar-injector-json)", () => {
  it("reads the container, both volumes, the fd-passing mount path and socket name", () => {
    const result = parseSidecarTemplate("das", { "sidecarconfig.json": JSON.stringify(exampleTemplate()) })
    expect(Result.isSuccess(result)).toBe(true)
    if (Result.isSuccess(result)) {
      expect(result.success).toMatchObject({
        fdPassingVolumeName: "fuse-fd-passing-x",
        csiVolumeName: "fuse-csi-ephemeral-x",
        fdPassingMountPath: "/fusermount3-proxy",
        fdPassingSocketName: "fuse-csi-ephemeral.sock"
      })
      // Raw: fields the injector does not know are kept for the copy.
      expect(result.success.container.securityContext).toEqual({ privileged: false })
    }
  })

  it("names the object and the key when the key is missing", () => {
    expect(parseSidecarTemplate("das", {})).toEqual(Result.fail(expect.objectContaining({
      message: `ConfigMap das/filer-sidecar-injector-json: data["sidecarconfig.json"] is missing`
    })))
  })

  it("names the object and the key when it is not JSON", () => {
    const result = parseSidecarTemplate("das", { "sidecarconfig.json": "{containers:" })
    expect(Result.isFailure(result) && result.failure.message).toBe(
      `ConfigMap das/filer-sidecar-injector-json: data["sidecarconfig.json"] is not valid JSON`
    )
  })

  it("names the field when there is no container", () => {
    expect(templateError({ ...exampleTemplate(), containers: [] })).toMatch(
      /^ConfigMap das\/filer-sidecar-injector-json: data\["sidecarconfig.json"\]\.containers/
    )
  })

  it("names the field when the container has no image", () => {
    const template = exampleTemplate()
    const { image: _, ...container } = template.containers[0]
    expect(templateError({ ...template, containers: [container] })).toMatch(/data\["sidecarconfig.json"\]\.containers\[0\]\.image/)
  })

  it("names the field when there is no emptyDir volume", () => {
    const template = exampleTemplate()
    expect(templateError({ ...template, volumes: [template.volumes[1]] })).toMatch(/\.volumes needs an emptyDir/)
  })

  it("names the field when there is no csi volume", () => {
    const template = exampleTemplate()
    expect(templateError({ ...template, volumes: [template.volumes[0]] })).toMatch(/\.volumes needs a csi volume/)
  })

  it("names the field when the csi volume has no fdPassingSocketName", () => {
    const template = exampleTemplate()
    const csi = { name: "c", csi: { driver: "d", volumeAttributes: {} } }
    expect(templateError({ ...template, volumes: [template.volumes[0], csi] })).toMatch(
      /\.volumes\[1\]\.csi\.volumeAttributes\.fdPassingSocketName is missing/
    )
  })

  it("names the field when the container does not mount the fd-passing volume", () => {
    const template = exampleTemplate()
    expect(templateError({ ...template, containers: [{ ...template.containers[0], volumeMounts: [] }] })).toMatch(
      /\.containers\[0\]\.volumeMounts needs a mount of volume "fuse-fd-passing-x"/
    )
  })

  it("names the mount when the container mounts a volume the template does not define", () => {
    const template = exampleTemplate()
    const mounts = [...template.containers[0].volumeMounts, { name: "scratch", mountPath: "/scratch" }]
    expect(templateError({ ...template, containers: [{ ...template.containers[0], volumeMounts: mounts }] })).toMatch(
      /\.containers\[0\]\.volumeMounts\[1\] mounts "scratch", which is neither the emptyDir nor the csi volume/
    )
  })
})

describe("filers list (ConfigMap filers-list)", () => {
  it("maps each vserver to its entry, the first entry winning", () => {
    const result = parseFilers("das", {
      filers: JSON.stringify([
        { vserver: "a", url: "https://a1", name: "n", uuid: "u" },
        { vserver: "a", url: "https://a2" },
        { vserver: "b" }
      ])
    })
    expect(Result.isSuccess(result) && [...result.success.entries()]).toEqual([
      ["a", { vserver: "a", url: "https://a1", name: "n", uuid: "u" }],
      ["b", { vserver: "b" }]
    ])
  })

  it("names the object and the key when the key is missing", () => {
    expect(filersError({})).toBe("ConfigMap das/filers-list: data.filers is missing")
  })

  it("names the object and the key when it is not JSON", () => {
    expect(filersError({ filers: "[" })).toBe("ConfigMap das/filers-list: data.filers is not valid JSON")
  })

  it("names the field when it is not an array", () => {
    expect(filersError({ filers: "{}" })).toMatch(/^ConfigMap das\/filers-list: data\.filers: /)
  })

  it("names the entry and field when an entry has no vserver", () => {
    expect(filersError({ filers: JSON.stringify([{ vserver: "a" }, { url: "https://b" }]) })).toMatch(
      /^ConfigMap das\/filers-list: data\.filers\[1\]\.vserver: /
    )
  })

  it("names the entry and field when a url is not a string", () => {
    expect(filersError({ filers: JSON.stringify([{ vserver: "a", url: 9000 }]) })).toMatch(/data\.filers\[0\]\.url: /)
  })
})
