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
  /** The HTTP request, when the call came over HTTP (test/support/fakeApiServer.ts): method and path with query. */
  readonly request?: { readonly method: string; readonly url: string }
}

/**
 * A fault as the wire shows it, so the HTTP front of a store and the memory
 * KubeClient meet the same one: an error status (with Retry-After seconds),
 * a connection reset, an answer that never comes, or extra latency.
 */
export type WireFault =
  | {
    readonly kind: "status"
    readonly status: number
    readonly retryAfterSeconds?: number | undefined
    readonly message?: string | undefined
  }
  | { readonly kind: "reset" }
  | { readonly kind: "hang" }
  | { readonly kind: "delay"; readonly millis: number }

export interface Fault {
  readonly matches: (call: CallDescription) => boolean
  /** The error the call fails with; or `wire`, the fault as the network shows it. */
  readonly error?: (call: CallDescription) => KubeError
  readonly wire?: WireFault
  /** How many calls it fails; `Infinity` until cleared. */
  remaining: number
  /** How many calls it has met. */
  hits: number
}

/** What a planned call meets: a KubeError, or a wire fault other than a delay. */
export type Failure = { readonly kind: "error"; readonly error: KubeError } | Exclude<WireFault, { kind: "delay" }>

/** One change, as a watch from a resource version replays it. */
export interface ChangeEvent {
  readonly version: number
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: Resource
  readonly object: RawObject
}

/** What a SelfSubjectAccessReview asks: may the caller `verb` the `resource` `name` in `namespace` ("" = all)? */
export interface OwnAccessQuestion {
  readonly namespace: string
  readonly verb: string
  readonly resource: string
  readonly name: string
}

export interface FaultHandle {
  readonly hits: number
  readonly clear: () => void
}

type Listener = { readonly key: string; readonly queue: Queue.Queue<Option.Option<RawObject>, import("effect/Cause").Done> }

/** A watch of every object of one name, in any namespace. */
type NamedWatcher = {
  readonly matches: (event: ChangeEvent) => boolean
  readonly queue: Queue.Queue<ChangeEvent, "expired" | import("effect/Cause").Done>
}
/**
 * Changes kept for watches that resume from a resource version; older ones
 * are forgotten as etcd compaction forgets them (a resume from before them is
 * "expired", a 410 on the wire). Without a bound, a long-running in-memory
 * server (`serve --cluster`, the benchmark) would keep every Event update it
 * ever recorded.
 */
const historyLimit = 1024

const keyOf = (resource: Resource, namespace: string, name: string) => `${resource}/${namespace}/${name}`

export class MemoryClusterStore {
  private readonly objects = new Map<string, RawObject>()
  private readonly listeners = new Set<Listener>()
  private readonly namedWatchers = new Set<NamedWatcher>()
  private readonly faults: Array<Fault> = []
  private readonly history: Array<ChangeEvent> = []
  private readonly changeListeners = new Set<(event: ChangeEvent) => void>()
  private version = 0
  private compactedVersion = 0
  private latency: Duration.Duration = Duration.zero
  // A cluster held as data has no RBAC: the injector may do anything, unless a test says otherwise.
  private ownAccessAnswer: (question: OwnAccessQuestion) => boolean = () => true

  constructor(objects: Iterable<RawObject>) {
    for (const object of objects) this.put(object)
  }

  /** Adds or replaces an object by its kind, namespace and name; watchers see the change. Other kinds are ignored. */
  put(object: RawObject): RawObject | undefined {
    const resource = typeof object.kind === "string" ? resourceOfKind[object.kind] : undefined
    if (resource === undefined) return undefined
    const { name, namespace } = metadataOf(object)
    return this.store(resource, keyOf(resource, namespace, name), object)
  }

  /** Deletes an object; watchers see it gone. Returns whether it existed. */
  remove(resource: Resource, namespace: string, name: string): boolean {
    const key = keyOf(resource, namespace, name)
    const existing = this.objects.get(key)
    if (existing === undefined) return false
    this.objects.delete(key)
    this.notify(key, Option.none(), { type: "DELETED", resource, object: this.stamp(existing) })
    return true
  }

  /** The last change's resource version. */
  get resourceVersion(): number {
    return this.version
  }

  /** The changes after `version`, or "expired" when `compact` forgot some of them. */
  changesSince(version: number): ReadonlyArray<ChangeEvent> | "expired" {
    if (version < this.compactedVersion) return "expired"
    return this.history.filter((event) => event.version > version)
  }

  /** Forgets the change history, as etcd compaction does. */
  compact(): void {
    this.history.length = 0
    this.compactedVersion = this.version
  }

  /** Calls `listener` with every change that follows, until the returned function is called. */
  onChange(listener: (event: ChangeEvent) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  get(resource: Resource, namespace: string, name: string): Option.Option<RawObject> {
    return Option.fromUndefinedOr(this.objects.get(keyOf(resource, namespace, name)))
  }

  /**
   * The objects of `resource` in `namespace` ("" for cluster-scoped ones,
   * `undefined` for every namespace) whose labels hold every `key=value` of
   * `labels`, in insertion order.
   */
  list(
    resource: Resource,
    namespace: string | undefined,
    labels: Readonly<Record<string, string>> = {}
  ): ReadonlyArray<RawObject> {
    const prefix = namespace === undefined ? `${resource}/` : keyOf(resource, namespace, "")
    return [...this.objects.entries()].flatMap(([key, object]) => {
      if (!key.startsWith(prefix)) return []
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
      return Effect.succeed(this.store(resource, key, object))
    })
  }

  /** Replaces an object if its `resourceVersion` is still the stored one, as an API server's update does. */
  replace(resource: Resource, object: RawObject): Effect.Effect<RawObject, "missing" | "conflict"> {
    return Effect.suspend(() => {
      const { name, namespace } = metadataOf(object)
      const key = keyOf(resource, namespace, name)
      const current = this.objects.get(key)
      if (current === undefined) return Effect.fail("missing" as const)
      const wanted = (object.metadata as RawObject | undefined)?.resourceVersion
      const stored = (current.metadata as RawObject).resourceVersion
      if (wanted !== undefined && wanted !== stored) return Effect.fail("conflict" as const)
      return Effect.succeed(this.store(resource, key, object))
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

  /**
   * The changes to the objects of `resource` named `name`, in any namespace,
   * after `version`, then every later one, until `endWatches`, as a watch
   * from a resource version sees them; fails with "expired" when `compact`
   * forgot some of them.
   */
  changesNamed(resource: Resource, name: string, version: number): Stream.Stream<ChangeEvent, "expired"> {
    const matches = (event: ChangeEvent) => event.resource === resource && metadataOf(event.object).name === name
    return Stream.callback<ChangeEvent, "expired">((queue) =>
      Effect.acquireRelease(
        // The missed changes and the subscription at once: no change can fall in between.
        Effect.suspend(() => {
          const missed = this.changesSince(version)
          if (missed === "expired") return Effect.fail("expired" as const)
          for (const event of missed) if (matches(event)) Queue.offerUnsafe(queue, event)
          const watcher: NamedWatcher = { matches, queue }
          this.namedWatchers.add(watcher)
          return Effect.succeed(watcher)
        }),
        (watcher) => Effect.sync(() => this.namedWatchers.delete(watcher))
      )
    )
  }

  /** Ends every open watch, as an API server does after its timeout. */
  endWatches(): void {
    // A snapshot: an ended watcher may subscribe again at once, and must not be ended again in this loop.
    const ending = [...this.listeners]
    const endingNamed = [...this.namedWatchers]
    this.listeners.clear()
    this.namedWatchers.clear()
    for (const listener of ending) Queue.endUnsafe(listener.queue)
    for (const watcher of endingNamed) Queue.endUnsafe(watcher.queue)
  }

  /** How the caller's own access reviews are answered from now on (default: everything allowed). */
  allowOwnAccess(answer: (question: OwnAccessQuestion) => boolean): void {
    this.ownAccessAnswer = answer
  }

  /** Whether the caller may do what `question` asks, as `allowOwnAccess` said. */
  mayI(question: OwnAccessQuestion): boolean {
    return this.ownAccessAnswer(question)
  }

  /** Delays every call that follows by `latency` (a slow API server). */
  setLatency(latency: Duration.Input): void {
    this.latency = Duration.fromInputUnsafe(latency)
  }

  /** Fails (or, for a `delay`, slows) the next `times` calls that match. */
  addFault(fault: Omit<Fault, "remaining" | "hits">, times = Infinity): FaultHandle {
    const entry: Fault = { ...fault, remaining: times, hits: 0 }
    this.faults.push(entry)
    const faults = this.faults
    return {
      get hits() {
        return entry.hits
      },
      clear: () => {
        const index = faults.indexOf(entry)
        if (index >= 0) faults.splice(index, 1)
      }
    }
  }

  clearFaults(): void {
    this.faults.length = 0
  }

  /**
   * What happens to a call: how long it waits (the latency plus every matching
   * delay), and the first matching failure, if any.
   */
  plan(call: CallDescription): { readonly latency: Duration.Duration; readonly failure: Failure | undefined } {
    let latency = this.latency
    let failure: Failure | undefined
    for (const fault of [...this.faults]) {
      if (fault.remaining <= 0 || !fault.matches(call)) continue
      if (fault.wire?.kind === "delay") latency = Duration.sum(latency, Duration.millis(fault.wire.millis))
      else if (failure !== undefined) continue
      else if (fault.wire !== undefined) failure = fault.wire as Failure
      else if (fault.error !== undefined) failure = { kind: "error", error: fault.error(call) }
      else continue
      fault.remaining -= 1
      fault.hits += 1
      if (fault.remaining <= 0) this.faults.splice(this.faults.indexOf(fault), 1)
    }
    return { latency, failure }
  }

  private store(resource: Resource, key: string, object: RawObject): RawObject {
    const type = this.objects.has(key) ? "MODIFIED" : "ADDED"
    const stamped = this.stamp(object)
    this.objects.set(key, stamped)
    this.notify(key, Option.some(stamped), { type, resource, object: stamped })
    return stamped
  }

  private stamp(object: RawObject): RawObject {
    this.version += 1
    const metadata = (typeof object.metadata === "object" && object.metadata !== null ? object.metadata : {}) as RawObject
    return { ...object, metadata: { ...metadata, resourceVersion: String(this.version) } }
  }

  private notify(key: string, value: Option.Option<RawObject>, change: Omit<ChangeEvent, "version">): void {
    const event: ChangeEvent = { ...change, version: this.version }
    this.history.push(event)
    if (this.history.length > historyLimit) {
      // Half at a time, so that trimming costs O(1) per change on average.
      const forgotten = this.history.splice(0, historyLimit / 2)
      this.compactedVersion = forgotten[forgotten.length - 1].version
    }
    for (const listener of [...this.changeListeners]) listener(event)
    for (const watcher of [...this.namedWatchers]) {
      if (watcher.matches(event)) Queue.offerUnsafe(watcher.queue, event)
    }
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
