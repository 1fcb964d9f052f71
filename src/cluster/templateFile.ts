/**
 * The sidecar template from a file, as the Go injector read it
 * (`-sidecar-config-file`, a ConfigMap mounted as a volume): the file holds
 * what the ConfigMap `filer-sidecar-injector-json` holds under
 * `sidecarconfig.json`, and is parsed by the same parser.
 *
 * The file is polled, not watched: the kubelet updates a mounted ConfigMap by
 * swapping a symlink, which `fs.watch` on the file does not see. Each content
 * is handed on once, in the shape of a ConfigMap version, so ClusterConfig
 * treats it exactly as it treats the ConfigMap (last good kept, invalid and
 * missing reported, ready after the first good load).
 */
import { Duration, Effect, Option, Result, Schedule, Schema, Stream } from "effect"
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import { ConfigurationError } from "../domain/configurationError.ts"
import { parseSidecarTemplate, type SidecarTemplate, sidecarTemplateKey } from "../domain/template.ts"
import type { ConfigMap } from "./objects.ts"

/** The file exists but cannot be read (permissions, a directory...). A missing file is not an error: it is `None`. */
export class TemplateFileError extends Schema.TaggedError<TemplateFileError>()("TemplateFileError", {
  path: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `cannot read file ${this.path}: ${this.problem}`
  }
}

/** Where the sidecar template comes from when it is not its ConfigMap. */
export interface TemplateSource {
  /** How logs, metrics and errors name it. */
  readonly object: string
  /** The template now (`None` while absent), then after every change; fails when it cannot be read. */
  readonly versions: Stream.Stream<Option.Option<ConfigMap>, TemplateFileError>
  readonly parse: (namespace: string, data: Readonly<Record<string, string>>) => Result.Result<SidecarTemplate, ConfigurationError>
}

const errorCode = (error: unknown) =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined

const readIfPresent = (path: string): Effect.Effect<Option.Option<string>, TemplateFileError> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) => error
  }).pipe(
    Effect.map(Option.some),
    Effect.catch((error) =>
      errorCode(error) === "ENOENT"
        ? Effect.succeed(Option.none())
        : Effect.fail(new TemplateFileError({ path, problem: errorCode(error) ?? "unreadable" }))
    )
  )

/**
 * The template file at `path`, looked at every `pollInterval` (2 s by
 * default: the kubelet takes up to a minute to update a mounted ConfigMap).
 */
export const templateFileSource = (
  path: string,
  options: { readonly pollInterval?: Duration.Input } = {}
): TemplateSource => {
  const object = `file ${path}`
  const asVersion = (text: Option.Option<string>): Option.Option<ConfigMap> =>
    Option.map(text, (content) => ({
      namespace: "",
      name: path,
      // Logged as the version loaded, as the Go injector logged the file's sha256sum.
      resourceVersion: `sha256:${createHash("sha256").update(content).digest("hex").slice(0, 16)}`,
      data: { [sidecarTemplateKey]: content }
    }))
  const fieldOfConfigMap = `data["${sidecarTemplateKey}"]`
  return {
    object,
    versions: Stream.fromEffectSchedule(readIfPresent(path), Schedule.spaced(options.pollInterval ?? Duration.seconds(2))).pipe(
      Stream.map(asVersion),
      Stream.changesWith((a, b) =>
        Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && a.value.resourceVersion === b.value.resourceVersion
      )
    ),
    // The ConfigMap's parser names the ConfigMap and its key; here they are the file and its content.
    parse: (namespace, data) =>
      Result.mapError(parseSidecarTemplate(namespace, data), (error) =>
        new ConfigurationError({ object, problem: error.problem.replaceAll(fieldOfConfigMap, "content") }))
  }
}
