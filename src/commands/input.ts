/** Reading a command's input file, `-` meaning standard input. */
import { Effect, Schema } from "effect"
import { FileSystem } from "effect/FileSystem"
import { text } from "node:stream/consumers"

export class InputError extends Schema.TaggedError<InputError>()("InputError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot read ${this.file === "-" ? "standard input" : this.file}: ${this.reason}`
  }
}

export const readInput = (file: string): Effect.Effect<string, InputError, FileSystem> =>
  file === "-"
    ? Effect.tryPromise({
      try: () => text(process.stdin),
      catch: () => new InputError({ file, reason: "read failed" })
    })
    : Effect.flatMap(FileSystem, (fs) =>
      fs.readFileString(file).pipe(
        Effect.mapError((error) => new InputError({ file, reason: error.reason._tag }))
      ))
