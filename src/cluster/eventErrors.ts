/**
 * The errors of the Event calls (`KubeClient.createEvent`, `replaceEvent`)
 * that are not built from an HTTP status: the in-memory cluster's answers. One
 * place, so a change of the error type touches only these helpers.
 */
import { KubeConflict, type KubeError, notFound } from "./errors.ts"

/** An Event of that name exists already (create), or changed since it was read (update). */
export const eventConflict = (namespace: string, name: string, verb: "create" | "update"): KubeError =>
  new KubeConflict({ resource: "events", namespace, objectName: name, verb })

/** The Event is gone (expired: the API server keeps Events for an hour by default). */
export const eventNotFound = (namespace: string, name: string): KubeError =>
  notFound({ resource: "events", namespace, objectName: name })
