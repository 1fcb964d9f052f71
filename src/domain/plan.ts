/**
 * plan: from what was resolved, which shares to mount (with every name they
 * need) and what to skip, each skip with its reason. Pure: the same inputs
 * give the same plan, SVMs in sorted order and shares in list order.
 */
import { Redacted, Result } from "effect"
import { selectsShare, selectsSvm, type ShareSelection } from "./selection.ts"
import type { Filers } from "./filers.ts"
import { bucketName } from "./hash.ts"
import {
  filersMountRoot,
  isDns1123Subdomain,
  isValidEnvName,
  isValidSvmName,
  secretNameFor,
  shareEnvSuffix,
  type SidecarNames,
  sidecarNames
} from "./names.ts"
import type { Pod } from "./pod.ts"
import { parseShareList, shareMountSuffix, unsafeShareReason } from "./shares.ts"

/**
 * What the credentials Secret of an SVM held, as far as planning needs it.
 * `Forbidden`: the API server answered 403 for this Secret alone, so RBAC
 * lacks its name (docs/behaviour.md, "Skips and warnings").
 */
export type SecretLookup =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Forbidden" }
  | {
    readonly _tag: "Found"
    readonly access: Redacted.Redacted<string> | undefined
    readonly secret: Redacted.Redacted<string> | undefined
  }

export const secretKeys = { access: "S3_ACCESS", secret: "S3_SECRET" } as const

/** What fixes a Secret the injector may not read: its name in the ClusterRole (src/domain/rbac.ts). */
export const rbacFix = "re-run filer-sidecar-injector rbac"

export interface PlannedShare {
  readonly share: string
  readonly mountPath: string
  readonly bucket: string
  /** `<svm>_<share as env>`, or undefined when the share gets no env var of its own. */
  readonly envName: string | undefined
  readonly names: SidecarNames
}

export interface PlannedSvm {
  readonly svm: string
  /** The url exactly as `filers-list` gives it. */
  readonly url: string
  /** The url without its `scheme://`: what goofys' BUCKET_HOST wants. */
  readonly bucketHost: string
  readonly secretName: string
  readonly access: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  /** Whether `<svm>_access`, `<svm>_secret` and `<svm>_url` are valid env names. */
  readonly svmEnv: boolean
  readonly shares: ReadonlyArray<PlannedShare>
}

/** Why an SVM or share was skipped (or mounted without its env var), as a fixed code for metrics. */
export const filerSkipCodes = [
  "invalid_svm_name",
  "invalid_share_list",
  "svm_not_in_filers_list",
  "invalid_filer_url",
  "invalid_secret_name",
  "secret_missing",
  "secret_incomplete",
  // A 403 reading the SVM's Secret: that SVM skipped, not the pod denied.
  "secret_forbidden",
  "unsafe_share_path",
  "duplicate_mount_path",
  "mounted_without_env",
  "share_limit"
] as const
export type FilerSkipCode = (typeof filerSkipCodes)[number]

export interface Skip {
  readonly svm: string
  readonly share?: string
  readonly code: FilerSkipCode
  /** The same, in words, for the warning and the logs. */
  readonly reason: string
  /**
   * `share_limit` only: the SVM's shares left out, in list order. One warning
   * says how many; the status annotation names each.
   */
  readonly shares?: ReadonlyArray<string>
}

export interface Plan {
  readonly svms: ReadonlyArray<PlannedSvm>
  /** Skipped SVMs and shares, and shares mounted without an env var: each becomes one warning. */
  readonly skips: ReadonlyArray<Skip>
}

export interface PlanInput {
  readonly pod: Pod
  /** `existing-shares` data: SVM name → JSON array of share paths. */
  readonly shares: Readonly<Record<string, string>>
  readonly filers: Filers
  /** Keyed by SVM name; an SVM absent here was not looked up. */
  readonly secrets: ReadonlyMap<string, SecretLookup>
  /** The most shares the pod gets (Settings.maxSharesPerPod); the first ones, in plan order, are kept. */
  readonly maxShares: number
  /** The shares the pod chose (src/domain/selection.ts); the others are left out silently. Absent: all. */
  readonly selection?: ShareSelection | undefined
}

/** SVM keys in the deterministic order everything is planned in (**fix**: the original used map order). */
export const sortedSvms = (shares: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  Object.keys(shares).sort()

// Rejected before any lookup: a url that would break an env var or a command line.
const unusableUrl = /[\s\u0000-\u001f\u007f]/

type SvmCheck = Result.Result<
  { readonly list: ReadonlyArray<string>; readonly url: string },
  { readonly code: FilerSkipCode; readonly reason: string } | undefined
>

/** The checks that need no Secret; `Failure(undefined)` means skip silently (an empty list). */
const checkSvm = (svm: string, rawList: string, filers: Filers): SvmCheck => {
  if (!isValidSvmName(svm)) return Result.fail({ code: "invalid_svm_name", reason: "not a valid SVM name" })
  const list = parseShareList(rawList)
  if (Result.isFailure(list)) return Result.fail({ code: "invalid_share_list", reason: list.failure })
  if (list.success.length === 0) return Result.fail(undefined)
  const filer = filers.get(svm)
  if (filer === undefined) return Result.fail({ code: "svm_not_in_filers_list", reason: "not in filers-list" })
  const url = filer.url ?? ""
  if (url === "") return Result.fail({ code: "invalid_filer_url", reason: "no url in filers-list" })
  if (unusableUrl.test(url)) {
    return Result.fail({ code: "invalid_filer_url", reason: "url in filers-list has spaces or control characters" })
  }
  if (!isDns1123Subdomain(secretNameFor(svm))) {
    return Result.fail({ code: "invalid_secret_name", reason: "its Secret name would not be valid" })
  }
  return Result.succeed({ list: list.success, url })
}

/** The SVMs whose credentials Secret is worth reading: every other one is skipped without it. */
export const svmsNeedingSecrets = (
  shares: Readonly<Record<string, string>>,
  filers: Filers,
  selection?: ShareSelection
): ReadonlyArray<string> =>
  sortedSvms(shares).filter((svm) => selectsSvm(selection, svm) && Result.isSuccess(checkSvm(svm, shares[svm], filers)))

/** `https://host:9000/path` → `host:9000/path` (**fix**: the original cut 8 characters, breaking `http://`). */
export const stripScheme = (url: string): string => url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, "")

const isEmpty = (value: Redacted.Redacted<string> | undefined): value is undefined =>
  value === undefined || Redacted.value(value) === ""

export const plan = (input: PlanInput): Plan => {
  const { pod, filers, secrets } = input
  const skips: Array<Skip> = []
  const svms: Array<PlannedSvm> = []

  const usedContainerNames = new Set<string>([
    ...pod.spec.containers.map((c) => c.name),
    ...(pod.spec.initContainers ?? []).map((c) => c.name),
    ...(pod.spec.ephemeralContainers ?? []).map((c) => c.name)
  ])
  const usedVolumeNames = new Set<string>((pod.spec.volumes ?? []).map((v) => v.name))
  const plannedNames = new Set<string>()
  const inPod = (names: SidecarNames) =>
    usedContainerNames.has(names.container) || usedVolumeNames.has(names.fdPassingVolume) ||
    usedVolumeNames.has(names.csiVolume)
  // Names already in the pod are taken, unless they are this very share's
  // sidecar and volumes from an earlier injection (render replaces those).
  const isTaken = (names: SidecarNames) =>
    plannedNames.has(names.container) || plannedNames.has(names.fdPassingVolume) ||
    plannedNames.has(names.csiVolume) || (inPod(names) && !isEarlierInjection(pod, names))
  // Env names are shared by every SVM of the notebook container: render
  // replaces by name, so a share must never take a name given out already,
  // nor an SVM's <svm>_access/_secret/_url (which would lose its credentials).
  const credentialEnvNames = new Set(
    sortedSvms(input.shares).flatMap((svm) => [`${svm}_access`, `${svm}_secret`, `${svm}_url`])
  )
  const envNames = new Set<string>()
  let sharesPlanned = 0

  for (const svm of sortedSvms(input.shares)) {
    // Not chosen by the pod: not mounted, and not checked or warned about.
    if (!selectsSvm(input.selection, svm)) continue
    const checked = checkSvm(svm, input.shares[svm], filers)
    if (Result.isFailure(checked)) {
      if (checked.failure !== undefined) skips.push({ svm, ...checked.failure })
      continue
    }
    const secretName = secretNameFor(svm)
    const lookup = secrets.get(svm) ?? { _tag: "Missing" }
    if (lookup._tag === "Missing") {
      skips.push({ svm, code: "secret_missing", reason: `Secret ${secretName} not found` })
      continue
    }
    if (lookup._tag === "Forbidden") {
      // RBAC first: a long SVM name cuts the warning's end (120 characters), not what is wrong.
      skips.push({ svm, code: "secret_forbidden", reason: `RBAC forbids Secret ${secretName}: ${rbacFix}` })
      continue
    }
    if (isEmpty(lookup.access) || isEmpty(lookup.secret)) {
      const key = isEmpty(lookup.access) ? secretKeys.access : secretKeys.secret
      skips.push({ svm, code: "secret_incomplete", reason: `Secret ${secretName} has no ${key}` })
      continue
    }
    const svmEnv = isValidEnvName(`${svm}_access`)
    if (!svmEnv) {
      skips.push({
        svm,
        code: "mounted_without_env",
        reason: "mounted, but the SVM name is not a valid env name: no env vars"
      })
    }

    const seen = new Set<string>()
    // Mount paths of different SVMs never meet (an SVM name has no `/`): the
    // share's part of the path tells them apart, and is cheaper to hash for
    // the thousands of shares a namespace may list (README, "Limits").
    const mountSuffixes = new Set<string>()
    const planned: Array<PlannedShare> = []
    const overLimit: Array<string> = []
    for (const share of checked.success.list) {
      // **fix**: a repeated share is dropped silently, the first kept.
      if (seen.has(share) || !selectsShare(input.selection, svm, share)) continue
      seen.add(share)
      const unsafe = unsafeShareReason(share)
      if (unsafe !== undefined) {
        skips.push({ svm, share, code: "unsafe_share_path", reason: unsafe })
        continue
      }
      const mountSuffix = shareMountSuffix(share)
      if (mountSuffixes.has(mountSuffix)) {
        skips.push({ svm, share, code: "duplicate_mount_path", reason: "same mount path as an earlier share" })
        continue
      }
      // One warning per SVM for all its shares past the limit, not one each.
      if (sharesPlanned >= input.maxShares) {
        overLimit.push(share)
        continue
      }
      mountSuffixes.add(mountSuffix)
      const mountPath = `${filersMountRoot}/${svm}/${mountSuffix}`

      let envName: string | undefined
      const suffix = shareEnvSuffix(share)
      if (suffix === "") {
        skips.push({ svm, share, code: "mounted_without_env", reason: "mounted, but no env var: nothing left of the name" })
      } else if (credentialEnvNames.has(`${svm}_${suffix}`)) {
        skips.push({
          svm,
          share,
          code: "mounted_without_env",
          reason: "mounted, but no env var: same name as an SVM's credentials or url"
        })
      } else if (envNames.has(`${svm}_${suffix}`)) {
        skips.push({
          svm,
          share,
          code: "mounted_without_env",
          reason: "mounted, but no env var: same name as an earlier share"
        })
      } else if (svmEnv) {
        envName = `${svm}_${suffix}`
        envNames.add(envName)
      }

      const names = sidecarNames(svm, share, isTaken)
      plannedNames.add(names.container).add(names.fdPassingVolume).add(names.csiVolume)
      planned.push({ share, mountPath, bucket: bucketName(share), envName, names })
      sharesPlanned += 1
    }
    if (overLimit.length > 0) {
      skips.push({
        svm,
        code: "share_limit",
        reason: `${overLimit.length} of its shares not mounted: a pod gets at most ${input.maxShares}`,
        shares: overLimit
      })
    }
    if (planned.length === 0) continue
    svms.push({
      svm,
      url: checked.success.url,
      bucketHost: stripScheme(checked.success.url),
      secretName,
      access: lookup.access,
      secret: lookup.secret,
      svmEnv,
      shares: planned
    })
  }
  return { svms, skips }
}

/**
 * Whether the pod already holds this share's sidecar and volumes from an
 * earlier injection: the sidecar among initContainers and both volumes
 * present. Then the names are reused (render replaces them in place), which
 * is what makes the injector idempotent.
 */
const isEarlierInjection = (pod: Pod, names: SidecarNames): boolean => {
  const volumes = new Set((pod.spec.volumes ?? []).map((v) => v.name))
  return (pod.spec.initContainers ?? []).some((c) => c.name === names.container) &&
    volumes.has(names.fdPassingVolume) && volumes.has(names.csiVolume) &&
    !pod.spec.containers.some((c) => c.name === names.container) &&
    !(pod.spec.ephemeralContainers ?? []).some((c) => c.name === names.container)
}
