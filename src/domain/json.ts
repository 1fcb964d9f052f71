/** Plain JSON values, as Kubernetes objects travel. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | JsonObject
export type JsonObject = { readonly [key: string]: Json }

export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The object's array under `key`, or an empty one when absent. */
export const arrayAt = (object: JsonObject | undefined, key: string): ReadonlyArray<Json> => {
  const value = object?.[key]
  return Array.isArray(value) ? value : []
}

/** The object under `key`, or undefined. */
export const objectAt = (object: JsonObject | undefined, key: string): JsonObject | undefined => {
  const value = object?.[key]
  return isJsonObject(value) ? value : undefined
}
