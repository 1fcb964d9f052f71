/**
 * The sidecar template from a file (`--sidecar-config-file`, as the Go
 * injector read it) through ClusterConfig: it replaces the ConfigMap, is
 * re-read when it changes, and keeps the ConfigMap path's rules: the last
 * good version is kept over an invalid or deleted file, problems name the
 * file, and the configuration is ready only once the template has loaded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ClusterConfig, type ReloadResult } from "../../src/cluster/ClusterConfig.ts"
import { KubeClient } from "../../src/cluster/KubeClient.ts"
import { MemoryCluster } from "../../src/cluster/MemoryCluster.ts"
import { templateFileSource } from "../../src/cluster/templateFile.ts"
import { ClusterSettings, type ClusterSettingsShape } from "../../src/cluster/ClusterSettings.ts"
import { exampleTemplate, filersList, sidecarTemplate } from "../support/pipelineHarness.ts"
import { tempDirectory } from "../support/serverHarness.ts"

const templateWithImage = (image: string) => {
  const template = exampleTemplate()
  template.containers[0]!.image = image
  return template
}

/** As the kubelet updates a mounted ConfigMap: the new content appears at once, never half written. */
const writeAtomically = (file: string, text: string) => {
  fs.writeFileSync(`${file}.tmp`, text)
  fs.renameSync(`${file}.tmp`, file)
}

/** A cluster with a filers list and a template ConfigMap whose image differs from any file's. */
const cluster = () =>
  KubeClient.layerMemory.pipe(Layer.provideMerge(MemoryCluster.layer([
    filersList([{ vserver: "fld5filersvm", url: "https://fld5.example.test" }]),
    sidecarTemplate(templateWithImage("registry.example/from-configmap:1"))
  ])))

/**
 * ClusterConfig with the template from `file` (polled every 20 ms), built in
 * the test's scope; `reloads` lists every reload attempt as "object result".
 */
const watching = (file: string, settings: Partial<ClusterSettingsShape> = {}, fromSetting = false) =>
  Effect.gen(function*() {
    const reloads: Array<string> = []
    const context = yield* Layer.build(
      ClusterConfig.layerWatching({
        ...(fromSetting ? {} : { templateSource: templateFileSource(file, { pollInterval: "20 millis" }) }),
        onReload: (object: string, result: ReloadResult) => Effect.sync(() => reloads.push(`${object} ${result}`))
      }).pipe(Layer.provide(cluster()), Layer.provide(ClusterSettings.layerValues(settings)))
    )
    const config = Context.get(context, ClusterConfig)
    yield* config.settled
    return { config, reloads }
  })

const image = (config: ClusterConfig["Service"]) =>
  Effect.map(config.current, (snapshot) => snapshot.template.container.image)

/** Polls every 20 ms until `check` holds; fails the test after 5 s naming `what`. */
const eventually = <E>(what: string, check: Effect.Effect<boolean, E>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 250; attempt++) {
      if (yield* check) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting until ${what}`))
  })

const newFile = (content?: string) => {
  const file = path.join(tempDirectory("template"), "sidecarconfig.json")
  if (content !== undefined) writeAtomically(file, content)
  return file
}

describe("the sidecar template from a file", () => {
  it.live("is served instead of the ConfigMap's, and a change is used without a restart", () =>
    Effect.gen(function*() {
      const file = newFile(JSON.stringify(templateWithImage("registry.example/from-file:1")))
      const { config, reloads } = yield* watching(file)
      assert.isTrue(yield* config.ready)
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")
      assert.include(reloads, `file ${file} loaded`)

      writeAtomically(file, JSON.stringify(templateWithImage("registry.example/from-file:2")))
      yield* eventually(
        "the changed file is used",
        Effect.map(image(config), (current) => current === "registry.example/from-file:2")
      )
      // Read every 20 ms, loaded once per content.
      assert.strictEqual(reloads.filter((line) => line === `file ${file} loaded`).length, 2)
    }).pipe(Effect.scoped))

  it.live("keeps the last good template over an invalid or deleted file, naming the file", () =>
    Effect.gen(function*() {
      const file = newFile(JSON.stringify(templateWithImage("registry.example/from-file:1")))
      const { config, reloads } = yield* watching(file)

      writeAtomically(file, "{not json")
      yield* eventually("the invalid file is refused", Effect.sync(() => reloads.includes(`file ${file} invalid`)))
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")
      assert.isTrue(yield* config.ready)

      const noCsiVolume = templateWithImage("registry.example/from-file:2")
      noCsiVolume.volumes.pop()
      writeAtomically(file, JSON.stringify(noCsiVolume))
      yield* eventually("the second invalid file is refused", Effect.sync(() => reloads.filter((l) => l.endsWith("invalid")).length === 2))
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")

      fs.rmSync(file)
      yield* eventually("the deleted file is noticed", Effect.sync(() => reloads.includes(`file ${file} missing`)))
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")
    }).pipe(Effect.scoped))

  it.live("not ready while the file is missing, failing with the file's name; ready once it appears", () =>
    Effect.gen(function*() {
      const file = newFile()
      const { config } = yield* watching(file)
      assert.isFalse(yield* config.ready)
      const error = yield* Effect.flip(config.current)
      assert.strictEqual(error.message, `file ${file}: not found`)

      writeAtomically(file, JSON.stringify(templateWithImage("registry.example/from-file:1")))
      yield* eventually("the new file is loaded", config.ready)
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")
    }).pipe(Effect.scoped))

  it.live("an invalid file at start names the file and the field, not the ConfigMap", () =>
    Effect.gen(function*() {
      const template = templateWithImage("registry.example/from-file:1")
      const csiVolume = template.volumes[1] as { csi: { volumeAttributes: Partial<Record<string, string>> } }
      delete csiVolume.csi.volumeAttributes.fdPassingSocketName
      const file = newFile(JSON.stringify(template))
      const { config } = yield* watching(file)
      const error = yield* Effect.flip(config.current)
      assert.strictEqual(
        error.message,
        `file ${file}: content.volumes[1].csi.volumeAttributes.fdPassingSocketName is missing`
      )
    }).pipe(Effect.scoped))

  it.live("a file that cannot be read is a configuration that cannot be read, naming the file", () =>
    Effect.gen(function*() {
      // A directory where the file should be: reading it fails, unlike a missing file.
      const file = newFile()
      fs.mkdirSync(file)
      const { config } = yield* watching(file)
      const error = yield* Effect.flip(config.current)
      assert.match(error.message, new RegExp(`^file ${file}: cannot be read: cannot read file ${file}: EISDIR`))
    }).pipe(Effect.scoped))

  it.live("is selected by the sidecarConfigFile setting (--sidecar-config-file, SIDECAR_CONFIG_FILE)", () =>
    Effect.gen(function*() {
      const file = newFile(JSON.stringify(templateWithImage("registry.example/from-file:1")))
      const { config } = yield* watching(file, { sidecarConfigFile: file }, true)
      assert.strictEqual(yield* image(config), "registry.example/from-file:1")
    }).pipe(Effect.scoped))

  it.live("without it, the template is the ConfigMap's as before", () =>
    Effect.gen(function*() {
      const { config } = yield* watching("", {}, true)
      assert.strictEqual(yield* image(config), "registry.example/from-configmap:1")
    }).pipe(Effect.scoped))
})
