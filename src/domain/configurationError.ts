import { Schema } from "effect"

/**
 * The injector's own configuration (filers list, sidecar template) is missing
 * or invalid. Names the object and the field, so the operator knows what to fix.
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  object: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `${this.object}: ${this.problem}`
  }
}
