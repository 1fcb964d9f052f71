/**
 * A Kubernetes cluster held as data: the objects KubeClient.layerMemory serves.
 *
 * Loaded from objects or from a folder of manifests (see `manifestFiles.ts`).
 * Tests keep it at hand to change objects while the injector runs (watchers
 * see each change), to end every open watch, and to plan latency and faults
 * for the calls that follow.
 */
import { Context, Duration, Effect, Layer, Option, Queue, Stream } from "effect"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import type { KubeError, Resource } from "./errors.ts"
import { loadManifestDirectory, type ManifestError } from "./manifestFiles.ts"
import { metadataOf, type RawObject } from "./objects.ts"

/** The kinds the memory cluster stores; other kinds in a folder (a Deployment, say) are ignored. */
const resourceOfKind: Readonly<Record<string, Resource>> = {
  ConfigMap: "configmaps",
  Secret: "secrets",
  MutatingWebhookConfiguration: "mutatingwebhookconfigurations",
  // Read by `explain` only: the notebook's pod and its namespace's labels.
  Pod: "pods",
  Namespace: "namespaces",
  Event: "events"
}

export interface CallDescription {
  readonly resource: Resource
  readonly verb: string
  readonly namespace: string
  readonly objectName: string
}

export interface Fault {
  readonly matches: (call: CallDescription) => boolean
  readonly error: (call: CallDescription) => KubeError
  /** How many calls it fails; `Infinity` until cleared. */
  remaining: number
}

type Listener = { readonly key: string; readonly queue: Queue.Queue<Option.Option<RawObject>, import("effect/Cause").Done> }

const keyOf = (resource: Resource, namespace: string, name: string) => `${resource}/${namespace}/${name}`

export class MemoryClusterStore {
  private readonly objects = new Map<string, RawObject>()
  private readonly listeners = new Set<Listener>()
  private readonly faults: Array<Fault> = []
  private version = 0
  private latency: Duration.Duration = Duration.zero

  constructor(objects: Iterable<RawObject>) {
    for (const object of objects) this.put(object)
  }

  /** Adds or replaces an object by its kind, namespace and name; watchers see the change. Other kinds are ignored. */
  put(object: RawObject): void {
    const resource = typeof object.kind === "string" ? resourceOfKind[object.kind] : undefined
    if (resource === undefined) return
    const { name, namespace } = metadataOf(object)
    const stamped = this.stamp(object)
    this.objects.set(keyOf(resource, namespace, name), stamped)
    this.notify(keyOf(resource, namespace, name), Option.some(stamped))
  }

  remove(resource: Resource, namespace: string, name: string): void {
    const key = keyOf(resource, namespace, name)
    if (this.objects.delete(key)) this.notify(key, Option.none())
  }

  get(resource: Resource, namespace: string, name: string): Option.Option<RawObject> {
    return Option.fromUndefinedOr(this.objects.get(keyOf(resource, namespace, name)))
  }

  /** The objects of `resource` in `namespace` whose labels hold every `key=value` of `labels`, in insertion order. */
  list(resource: Resource, namespace: string, labels: Readonly<Record<string, string>>): ReadonlyArray<RawObject> {
    return [...this.objects.entries()].flatMap(([key, object]) => {
      if (!key.startsWith(keyOf(resource, namespace, ""))) return []
      const metadata = (typeof object.metadata === "object" && object.metadata !== null ? object.metadata : {}) as RawObject
      const held = (typeof metadata.labels === "object" && metadata.labels !== null ? metadata.labels : {}) as RawObject
      return Object.entries(labels).every(([label, value]) => held[label] === value) ? [object] : []
    })
  }

  /** The Events recorded in `namespace` (every namespace when absent), in the order they were created. */
  events(namespace?: string): ReadonlyArray<RawObject> {
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(namespace === undefined ? "events/" : `events/${namespace}/`))
      .map(([, object]) => object)
  }

  /** Every object held, in insertion order. */
  all(): ReadonlyArray<RawObject> {
    return [...this.objects.values()]
  }

  create(resource: Resource, object: RawObject): Effect.Effect<RawObject, "exists"> {
    return Effect.suspend(() => {
      const { name, namespace } = metadataOf(object)
      const key = keyOf(resource, namespace, name)
      if (this.objects.has(key)) return Effect.fail("exists" as const)
      const stamped = this.stamp(object)
      this.objects.set(key, stamped)
      this.notify(key, Option.some(stamped))
      return Effect.succeed(stamped)
    })
  }

  /** Replaces an object if its `resourceVersion` is still the stored one, as an API server's update does. */
  replace(resource: Resource, object: RawObject): Effect.Effect<void, "missing" | "conflict"> {
    return Effect.suspend(() => {
      const { name, namespace } = metadataOf(object)
      const key = keyOf(resource, namespace, name)
      const current = this.objects.get(key)
      if (current === undefined) return Effect.fail("missing" as const)
      const wanted = (object.metadata as RawObject | undefined)?.resourceVersion
      const stored = (current.metadata as RawObject).resourceVersion
      if (wanted !== undefined && wanted !== stored) return Effect.fail("conflict" as const)
      const stamped = this.stamp(object)
      this.objects.set(key, stamped)
      this.notify(key, Option.some(stamped))
      return Effect.void
    })
  }

  /** The object now, then after every change, until `endWatches`. */
  changes(resource: Resource, namespace: string, name: string): Stream.Stream<Option.Option<RawObject>> {
    const key = keyOf(resource, namespace, name)
    return Stream.callback<Option.Option<RawObject>>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const listener: Listener = { key, queue }
          this.listeners.add(listener)
          Queue.offerUnsafe(queue, Option.fromUndefinedOr(this.objects.get(key)))
          return listener
        }),
        (listener) => Effect.sync(() => this.listeners.delete(listener))
      )
    )
  }

  /** Ends every open watch, as an API server does after its timeout. */
  endWatches(): void {
    // A snapshot: an ended watcher may subscribe again at once, and must not be ended again in this loop.
    const ending = [...this.listeners]
    this.listeners.clear()
    for (const listener of ending) Queue.endUnsafe(listener.queue)
  }

  /** Delays every call that follows by `latency` (a slow API server). */
  setLatency(latency: Duration.Input): void {
    this.latency = Duration.fromInputUnsafe(latency)
  }

  /** Fails the next `times` calls that match. */
  addFault(fault: Omit<Fault, "remaining">, times = Infinity): void {
    this.faults.push({ ...fault, remaining: times })
  }

  clearFaults(): void {
    this.faults.length = 0
  }

  /** What happens to a call: how long it waits, and the error it meets, if any. */
  plan(call: CallDescription): { readonly latency: Duration.Duration; readonly fault: KubeError | undefined } {
    const fault = this.faults.find((candidate) => candidate.remaining > 0 && candidate.matches(call))
    if (fault !== undefined) fault.remaining -= 1
    return { latency: this.latency, fault: fault?.error(call) }
  }

  private stamp(object: RawObject): RawObject {
    this.version += 1
    const metadata = (typeof object.metadata === "object" && object.metadata !== null ? object.metadata : {}) as RawObject
    return { ...object, metadata: { ...metadata, resourceVersion: String(this.version) } }
  }

  private notify(key: string, value: Option.Option<RawObject>): void {
    for (const listener of [...this.listeners]) {
      if (listener.key === key) Queue.offerUnsafe(listener.queue, value)
    }
  }
}

export class MemoryCluster extends Context.Service<MemoryCluster, MemoryClusterStore>()(
  "filer-sidecar-injector/cluster/MemoryCluster"
) {
  /** A cluster holding these objects (ConfigMaps, Secrets, MutatingWebhookConfigurations, Pods, Namespaces). */
  static readonly layer = (objects: Iterable<RawObject>): Layer.Layer<MemoryCluster> =>
    Layer.sync(MemoryCluster, () => new MemoryClusterStore(objects))

  /** A cluster holding every object in the manifests found below `directory`. */
  static readonly layerFromDirectory = (
    directory: string
  ): Layer.Layer<MemoryCluster, ManifestError, FileSystem | Path> =>
    Layer.effect(
      MemoryCluster,
      Effect.map(loadManifestDirectory(directory), (objects) => new MemoryClusterStore(objects))
    )
}
