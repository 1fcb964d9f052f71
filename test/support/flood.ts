/**
 * Hostile namespaces (README, "Limits"): an `existing-shares` a user filled
 * to cost the injector as much as it can, each beside the namespace that
 * mounts the same shares and skips nothing, so that what the skips add to
 * the answer can be measured. Used by test/admission/flood.test.ts and
 * test/bench/flood.ts.
 */
import type { RawObject } from "../../src/cluster/objects.ts"
import { clusterObjects, type UserSvm } from "./pipelineHarness.ts"

export interface Flood {
  readonly name: string
  /** The cluster with the hostile namespace. */
  readonly objects: ReadonlyArray<RawObject>
  /** The same cluster, the namespace listing only what gets mounted. */
  readonly mountedOnly: ReadonlyArray<RawObject>
  /** SVMs and shares skipped, as the status annotation counts them. */
  readonly skipped: number
}

/** A share name that costs the most bytes wherever it is quoted: backslashes and quotes (JSON doubles both). */
const heavyName = (index: number) => `${'\\"'.repeat(500)}${index}`

/** The longest SVM name whose Secret `<svm>-conn-secret` still has a valid name. */
const longSvm = `fld5${"f".repeat(253 - "-conn-secret".length - 4)}`

/** One SVM that mounts (the first two of its shares), as every flood has it. */
const mounting: UserSvm = { svm: "fld5filersvm", shares: ["division/project", "home"] }

/**
 * `count` SVM keys (default 10,000) that are not in filers-list, with names
 * as long as a ConfigMap key may be (253 characters), each skipped, beside
 * one SVM that mounts.
 */
export const svmKeyFlood = (count = 10_000): Flood => {
  const svmName = (index: number) => `${"s".repeat(240)}-${String(index).padStart(12, "0")}`
  const hostile: Array<UserSvm> = Array.from({ length: count }, (_, index) => ({
    svm: svmName(index),
    shares: ["a"],
    url: null,
    credentials: null
  }))
  return {
    name: `${count} SVM keys`,
    objects: clusterObjects([mounting, ...hostile]),
    mountedOnly: clusterObjects([mounting]),
    skipped: count
  }
}

/**
 * One SVM listing `count` shares (default 100,000): the first ones heavy
 * unsafe names (backslashes and quotes, 1,000+ characters), then every kind
 * of skip in turn (unsafe, repeated, same mount path), and enough good shares
 * to pass the share limit many times over. The SVM's name is as long as one
 * can be (its Secret's name at most 253 characters), so that every entry
 * naming it costs the most.
 */
export const shareFlood = (count = 100_000, maxShares = 100): Flood => {
  const shares: Array<string> = []
  for (let index = 0; index < 60; index++) shares.push(heavyName(index))
  let good = 0
  for (let turn = 0; shares.length < count; turn++) {
    switch (turn % 4) {
      case 0:
        shares.push(`p/${good++}`)
        break
      case 1:
        shares.push(`p/${good - 1}/`) // the mount path of the share before
        break
      case 2:
        shares.push(`p/${good - 1}`) // repeated: dropped silently
        break
      default:
        shares.push(`../escape-${turn}`)
    }
  }
  const goodShares = Array.from({ length: good }, (_, index) => `p/${index}`)
  const unsafe = shares.filter((share) => share.startsWith("../") || share.startsWith('\\"')).length
  const samePath = shares.filter((share) => share.endsWith("/")).length
  return {
    name: `${count} shares`,
    objects: clusterObjects([{ svm: longSvm, shares }]),
    mountedOnly: clusterObjects([{ svm: longSvm, shares: goodShares.slice(0, maxShares) }]),
    skipped: unsafe + samePath + Math.max(0, good - maxShares)
  }
}
