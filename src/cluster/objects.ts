/**
 * The Kubernetes objects the injector reads, in the shape it uses them, and
 * the conversions from the API's JSON.
 *
 * Both KubeClient layers hand out these values, so nothing above the client
 * knows whether the cluster is real or held in memory. Secret values are
 * `Redacted` from the moment they are read: printing one shows `<redacted>`.
 */
import { Predicate, Redacted } from "effect"

export interface ConfigMap {
  readonly namespace: string
  readonly name: string
  /** Changes whenever the object changes. */
  readonly resourceVersion: string
  readonly data: Readonly<Record<string, string>>
}

export interface Secret {
  readonly namespace: string
  readonly name: string
  /** Changes whenever the object changes; guards `replaceSecret`. */
  readonly resourceVersion: string
  /** `data` decoded from base64, merged with `stringData` (which wins, as the API server does). */
  readonly data: Readonly<Record<string, Redacted.Redacted<string>>>
  /**
   * The object as read minus its values (metadata, type), which
   * `replaceSecret` sends back unchanged so labels and annotations survive.
   * Redacted: an annotation may copy the values (kubectl's last-applied-configuration).
   */
  readonly kept: Redacted.Redacted<RawObject>
}

/** An object as the API speaks it: plain JSON. */
export type RawObject = { readonly [key: string]: unknown }

const stringRecord = (value: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (Predicate.isObject(value)) {
    for (const [key, entry] of Object.entries(value)) {
      if (Predicate.isString(entry)) out[key] = entry
    }
  }
  return out
}

/** An object's name, namespace and resourceVersion, empty when absent. */
export const metadataOf = (raw: RawObject) => {
  const metadata = Predicate.isObject(raw.metadata) ? raw.metadata as RawObject : {}
  return {
    name: Predicate.isString(metadata.name) ? metadata.name : "",
    namespace: Predicate.isString(metadata.namespace) ? metadata.namespace : "",
    resourceVersion: Predicate.isString(metadata.resourceVersion) ? metadata.resourceVersion : ""
  }
}

/** A ConfigMap from its API JSON. Values that are not strings are dropped, as the API never sends them. */
export const toConfigMap = (raw: RawObject): ConfigMap => {
  const { name, namespace, resourceVersion } = metadataOf(raw)
  return { name, namespace, resourceVersion, data: stringRecord(raw.data) }
}

/** A Secret from its API JSON, every value wrapped in `Redacted` before anything else sees it. */
export const toSecret = (raw: RawObject): Secret => {
  const { name, namespace, resourceVersion } = metadataOf(raw)
  const data: Record<string, Redacted.Redacted<string>> = {}
  for (const [key, value] of Object.entries(stringRecord(raw.data))) {
    data[key] = Redacted.make(Buffer.from(value, "base64").toString("utf8"))
  }
  for (const [key, value] of Object.entries(stringRecord(raw.stringData))) {
    data[key] = Redacted.make(value)
  }
  const { data: _data, stringData: _stringData, ...kept } = raw
  return { name, namespace, resourceVersion, data, kept: Redacted.make(kept) }
}

/** The body that replaces `secret`'s values by `values`, keeping the rest as read (its resourceVersion too). */
export const replacedSecret = (secret: Secret, values: Readonly<Record<string, string>>): RawObject => ({
  ...Redacted.value(secret.kept),
  data: Object.fromEntries(Object.entries(values).map(([key, value]) => [key, Buffer.from(value).toString("base64")]))
})
/** Every ConfigMap of one name across the namespaces, and the resource version a watch of them starts from. */
export interface ConfigMapList {
  readonly items: ReadonlyArray<ConfigMap>
  readonly resourceVersion: string
}

/** What a watch of ConfigMaps by name tells, in order. */
export type ConfigMapWatchEvent =
  /**
   * The server has accepted the watch: every change after the resource
   * version asked for follows. Always the first event; not sent by the API
   * itself (the client says when the answer's head arrived), it tells the
   * consumer from when it follows the cluster.
   */
  | { readonly type: "OPENED" }
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly configMap: ConfigMap }
  /** Nothing of interest changed up to `resourceVersion`: a later watch may start from there. */
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
