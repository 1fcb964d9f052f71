/**
 * What SharesCache holds: the existing-shares of each namespace, within a
 * bound. Users write their own existing-shares, so without one the cache's
 * memory would be what they choose; a ConfigMap it cannot keep is simply
 * not held, and admissions in its namespace read it live (docs/behaviour.md,
 * "Limits").
 */
import type { ConfigMap } from "./objects.ts"

export interface SharesCacheLimits {
  /** The largest existing-shares kept, in characters of its keys and values. */
  readonly maxEntryCharacters: number
  /** The most kept in all, in the same characters. */
  readonly maxTotalCharacters: number
}

export const defaultSharesCacheLimits: SharesCacheLimits = {
  maxEntryCharacters: 64 * 1024,
  maxTotalCharacters: 32 * 1024 * 1024
}

const sizeOf = (configMap: ConfigMap): number => {
  let characters = 0
  for (const key in configMap.data) characters += key.length + configMap.data[key]!.length
  return characters
}

export class SharesEntries {
  /** Listed and a watch open: what is held is current. Only SharesCache's loop sets it. */
  inSync = false
  private readonly byNamespace = new Map<string, { readonly configMap: ConfigMap; readonly characters: number }>()
  private total = 0
  private readonly limits: SharesCacheLimits

  constructor(limits: Partial<SharesCacheLimits> = {}) {
    this.limits = { ...defaultSharesCacheLimits, ...limits }
  }

  get size(): number {
    return this.byNamespace.size
  }

  get(namespace: string): ConfigMap | undefined {
    return this.byNamespace.get(namespace)?.configMap
  }

  /**
   * Holds the namespace's new version; one too large to keep is forgotten
   * instead, never left at its older version.
   */
  set(configMap: ConfigMap): void {
    this.delete(configMap.namespace)
    const characters = sizeOf(configMap)
    if (characters > this.limits.maxEntryCharacters || this.total + characters > this.limits.maxTotalCharacters) return
    this.byNamespace.set(configMap.namespace, { configMap, characters })
    this.total += characters
  }

  delete(namespace: string): void {
    const held = this.byNamespace.get(namespace)
    if (held === undefined) return
    this.byNamespace.delete(namespace)
    this.total -= held.characters
  }

  /** Exactly these, as a list answered them. */
  replaceAll(configMaps: ReadonlyArray<ConfigMap>): void {
    this.byNamespace.clear()
    this.total = 0
    for (const configMap of configMaps) this.set(configMap)
  }
}
