/**
 * The filers list (ConfigMap `filers-list`, key `filers`): which SVMs exist
 * and their S3 endpoints. Part of the injector's own configuration: when it
 * is missing or invalid nothing can be injected, so its errors name the
 * object and the field.
 */
import { Result, Schema } from "effect"
import { ConfigurationError } from "./configurationError.ts"
import { describeIssue } from "./schemaErrors.ts"

export const filersListName = "filers-list"
export const filersListKey = "filers"

const Filer = Schema.Struct({
  vserver: Schema.String,
  name: Schema.optional(Schema.String),
  uuid: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String)
})
export type Filer = typeof Filer.Type

const FilerList = Schema.Array(Filer)
const decodeFilerList = Schema.decodeUnknownResult(FilerList)

/** SVM name → its filer entry. */
export type Filers = ReadonlyMap<string, Filer>

/** Parses `data.filers`; `namespace` is only for the error message. */
export const parseFilers = (
  namespace: string,
  data: Readonly<Record<string, string>>
): Result.Result<Filers, ConfigurationError> => {
  const object = `ConfigMap ${namespace}/${filersListName}`
  const raw = data[filersListKey]
  if (raw === undefined) {
    return Result.fail(new ConfigurationError({ object, problem: `data.${filersListKey} is missing` }))
  }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return Result.fail(new ConfigurationError({ object, problem: `data.${filersListKey} is not valid JSON` }))
  }
  const decoded = decodeFilerList(json)
  if (Result.isFailure(decoded)) {
    return Result.fail(
      new ConfigurationError({ object, problem: describeIssue(decoded.failure.issue, `data.${filersListKey}`) })
    )
  }
  const filers = new Map<string, Filer>()
  // The first entry for an SVM wins, as a lookup in the original's list did.
  for (const filer of decoded.success) {
    if (!filers.has(filer.vserver)) filers.set(filer.vserver, filer)
  }
  return Result.succeed(filers)
}
