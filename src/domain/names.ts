/**
 * Every name the injector derives: Secrets, env vars, containers, volumes,
 * mount paths. The env names and mount paths are **kept** from the original
 * (users' notebooks read them); container and volume names are new, because
 * the original's truncations could collide (docs/behaviour.md, "Names").
 */
import { fnv1a64 } from "./hash.ts"

/** Where each share appears in the notebook container (kept from the original). */
export const filersMountRoot = "/home/jovyan/filers"

/** The credentials Secret of an SVM: `_` is not allowed in object names (kept from the original). */
export const secretNameFor = (svm: string): string => `${svm.replaceAll("_", "-")}-conn-secret`

/**
 * A share as an env-name suffix (kept): `/` → `-`, everything but
 * `[A-Za-z0-9-]` dropped, `-` trimmed and collapsed, then `-` → `_`.
 */
export const shareEnvSuffix = (share: string): string =>
  share
    .replaceAll("/", "-")
    .replace(/[^A-Za-z0-9-]/g, "")
    .replace(/^-+|-+$/g, "")
    .replace(/-+/g, "-")
    .replaceAll("-", "_")

/** Env var names the API server accepts (the strict rule, valid on every Kubernetes version). */
export const isValidEnvName = (name: string): boolean => /^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(name)

/** A ConfigMap key, which is what an SVM name is in `existing-shares`; also safe as one path segment. */
export const isValidSvmName = (svm: string): boolean =>
  svm.length <= 253 && /^[-._a-zA-Z0-9]+$/.test(svm) && svm !== "." && svm !== ".."

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
export const isDns1123Subdomain = (name: string): boolean => name.length <= 253 && dns1123Subdomain.test(name)

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
export const isDns1123Label = (name: string): boolean => name.length <= 63 && dns1123Label.test(name)

/** Text reduced to DNS-1123 label characters, at most `max` long, no `-` at either end; may be empty. */
const labelPart = (text: string, max: number): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+/, "")
    .slice(0, max)
    .replace(/-+$/, "")

export interface SidecarNames {
  readonly container: string
  readonly fdPassingVolume: string
  readonly csiVolume: string
}

const fdPassingPrefix = "fuse-fd-passing-"
const csiPrefix = "fuse-csi-ephemeral-"
const hashLength = 10
// The longest prefix decides the room left in 63 characters for `<svm>-<share>-<hash>`.
const coreLength = 63 - csiPrefix.length

/**
 * Names for the sidecar and volumes of one share: readable prefixes from the
 * SVM and share, then a hash of both, so two shares never share a name even
 * when their prefixes do. `isTaken` says whether a name is already used in
 * the pod (by the user or an earlier share); on the rare hash collision the
 * hash is salted with a counter until the names are free. The same inputs
 * and pod always give the same names.
 */
export const sidecarNames = (svm: string, share: string, isTaken: (names: SidecarNames) => boolean): SidecarNames => {
  const readable = [labelPart(svm, 14), labelPart(share, coreLength - hashLength - 14 - 2)]
    .filter((part) => part !== "")
    .join("-")
  for (let salt = 0;; salt++) {
    const hash = fnv1a64(salt === 0 ? `${svm}\u0000${share}` : `${svm}\u0000${share}\u0000${salt}`)
      .toString(16)
      .padStart(16, "0")
      .slice(0, hashLength)
    const core = readable === "" ? hash : `${readable}-${hash}`
    const names = { container: core, fdPassingVolume: `${fdPassingPrefix}${core}`, csiVolume: `${csiPrefix}${core}` }
    if (!isTaken(names)) return names
  }
}
