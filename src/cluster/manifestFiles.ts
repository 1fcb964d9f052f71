/**
 * Reading Kubernetes objects from manifest files, as `kubectl apply -f DIR`
 * would find them: every `.yaml`, `.yml` and `.json` file below a folder,
 * multi-document YAML, and `kind: List` flattened into its items.
 */
import { Effect, Predicate, Schema } from "effect"
import { FileSystem } from "effect/FileSystem"
import { Path } from "effect/Path"
import { parseAllDocuments } from "yaml"
import type { RawObject } from "./objects.ts"

export class ManifestError extends Schema.TaggedError<ManifestError>()("ManifestError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

const manifestExtension = /\.(ya?ml|json)$/i

/**
 * The objects in one manifest text. JSON is YAML, so one parser reads both.
 * Empty documents are skipped; a document that is not an object is an error
 * naming its position, since a silently dropped object is hard to debug.
 */
export const parseManifests = (text: string, path: string): Effect.Effect<ReadonlyArray<RawObject>, ManifestError> =>
  Effect.suspend(() => {
    const objects: Array<RawObject> = []
    const documents = parseAllDocuments(text, { prettyErrors: false })
    // parseAllDocuments returns an EmptyStream (not an array) for a blank text.
    if (!Array.isArray(documents)) return Effect.succeed(objects)
    for (const [index, document] of documents.entries()) {
      const where = documents.length > 1 ? `document ${index + 1}` : "document"
      const firstError = document.errors[0]
      if (firstError !== undefined) {
        return Effect.fail(new ManifestError({ path, reason: `${where} is not valid YAML/JSON: ${firstError.message}` }))
      }
      const value: unknown = document.toJS({ maxAliasCount: 100 })
      if (value === null || value === undefined) continue
      if (!Predicate.isObject(value) || Array.isArray(value)) {
        return Effect.fail(new ManifestError({ path, reason: `${where} is not a Kubernetes object` }))
      }
      const object = value as RawObject
      if (object.kind === "List" && Array.isArray(object.items)) {
        for (const item of object.items) {
          if (Predicate.isObject(item) && !Array.isArray(item)) objects.push(item as RawObject)
        }
      } else {
        objects.push(object)
      }
    }
    return Effect.succeed(objects)
  })

/** Every object in every manifest file below `directory`, files in sorted order so loading is deterministic. */
export const loadManifestDirectory = Effect.fn("loadManifestDirectory")(function*(directory: string) {
  const fs = yield* FileSystem
  const path = yield* Path
  const entries = yield* fs.readDirectory(directory, { recursive: true }).pipe(
    Effect.mapError((error) =>
      new ManifestError({ path: directory, reason: `cannot read the cluster folder (${error.reason._tag})` })
    )
  )
  const objects: Array<RawObject> = []
  for (const entry of entries.filter((name) => manifestExtension.test(name)).sort()) {
    const file = path.join(directory, entry)
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((error) => new ManifestError({ path: file, reason: `cannot read (${error.reason._tag})` }))
    )
    objects.push(...(yield* parseManifests(text, file)))
  }
  return objects as ReadonlyArray<RawObject>
})
