/**
 * Per-notebook choices: annotations on the pod (which Kubeflow PodDefaults
 * add, so an admin can offer them as "configurations" in the notebook form)
 * that narrow what is mounted, mount it read-only, or size the sidecars,
 * within bounds the operator sets (docs/behaviour.md, "Per-notebook choices").
 *
 * Pure: annotations in, a typed value and its problems out. A choice that is
 * malformed or out of bounds is refused with a warning and the default kept;
 * a choice never makes the webhook deny a pod.
 */
import { Result } from "effect"
import { compareQuantities, isPositive, parseQuantity, type Quantity } from "./quantity.ts"
import type { ShareSelection } from "./selection.ts"
import { parseShareList } from "./shares.ts"
import { maxWarningLength, quote } from "./quote.ts"

const annotationPrefix = "filer-injector-webhook.das-zone.statcan"

/** Each choice is the annotation `filer-injector-webhook.das-zone.statcan/<name>`; in this order everywhere. */
export const choiceNames = [
  "shares",
  "read-only",
  "sidecar-cpu-request",
  "sidecar-cpu-limit",
  "sidecar-memory-request",
  "sidecar-memory-limit"
] as const
export type ChoiceName = (typeof choiceNames)[number]

export const choiceAnnotation = (name: ChoiceName): string => `${annotationPrefix}/${name}`

/**
 * Why a choice was refused (or, `choice_not_found`, names nothing). Warnings
 * only: they are not skip codes, so they are not in the status annotation's
 * `skipped` list; its `choices.refused` names the choices refused.
 */
export const choiceProblemCodes = ["invalid_choice", "choice_out_of_bounds", "choice_not_found"] as const
export type ChoiceProblemCode = (typeof choiceProblemCodes)[number]

export interface ChoiceProblem {
  readonly choice: ChoiceName
  readonly code: ChoiceProblemCode
  /** In words, after the choice's name: what was kept and why. User text quoted and cut. */
  readonly reason: string
}

export interface ResourceQuantities {
  readonly cpu: string
  readonly memory: string
}

export interface SidecarResources {
  readonly requests: ResourceQuantities
  readonly limits: ResourceQuantities
}


/** What the annotations chose and the injector accepted. */
export interface Choices {
  /** undefined: every share (no annotation, or one that could not be read). */
  readonly shares: ShareSelection | undefined
  readonly readOnly: boolean
  /** The requests and limits chosen and accepted; the others stay the operator's. */
  readonly sidecarResources: {
    readonly requests: Partial<ResourceQuantities>
    readonly limits: Partial<ResourceQuantities>
  }
  /** The choices annotated but refused, in the order of `choiceNames`. */
  readonly refused: ReadonlyArray<ChoiceName>
}

export interface ParsedChoices {
  readonly choices: Choices
  readonly problems: ReadonlyArray<ChoiceProblem>
}

/** What the operator allows: the sidecars' resources when nothing is chosen, and the most that may be. */
export interface ChoiceBounds {
  readonly defaults: SidecarResources
  /** The most a request or limit may be, per resource (SIDECAR_MAX_CPU_LIMIT, SIDECAR_MAX_MEMORY_LIMIT). */
  readonly maxima: ResourceQuantities
}

export const noChoices: Choices = { shares: undefined, readOnly: false, sidecarResources: { requests: {}, limits: {} }, refused: [] }


// -----------------------------------------------------------------------------
// Parsing

// A PodDefault names a few shares; longer text is a mistake, and what it
// costs (the status annotation lists the entries) stays small.
export const maxSharesChoiceLength = 4096

type Checked<A> = Result.Result<A, { readonly code: ChoiceProblemCode; readonly reason: string }>

const malformed = (reason: string): Checked<never> => Result.fail({ code: "invalid_choice", reason })

/** `svm/share, svm/*`: blank entries ignored; `/` splits at the first one, since shares are paths. */
const parseSelection = (raw: string): Checked<ShareSelection> => {
  if (raw.length > maxSharesChoiceLength) {
    return malformed(`refused, every share mounted: longer than ${maxSharesChoiceLength} characters`)
  }
  const bySvm = new Map<string, "*" | Set<string>>()
  const entries = new Set<string>()
  for (const entry of raw.split(",").map((each) => each.trim()).filter((each) => each !== "")) {
    const slash = entry.indexOf("/")
    if (slash <= 0 || slash === entry.length - 1) {
      return malformed(`refused, every share mounted: ${quote(entry, 40)} is not svm/share or svm/*`)
    }
    const svm = entry.slice(0, slash)
    const share = entry.slice(slash + 1)
    entries.add(entry)
    const wanted = bySvm.get(svm)
    if (share === "*") bySvm.set(svm, "*")
    else if (wanted === undefined) bySvm.set(svm, new Set([share]))
    else if (wanted !== "*") wanted.add(share)
  }
  if (entries.size === 0) return malformed("refused, every share mounted: no svm/share or svm/* in it")
  return Result.succeed({ entries: [...entries].sort(), bySvm })
}

const parseReadOnly = (raw: string): Checked<boolean> => {
  const value = raw.toLowerCase()
  if (value === "true" || value === "false") return Result.succeed(value === "true")
  return malformed(`refused, mounted read-write: ${quote(raw, 40)} is not true or false`)
}

type Resource = keyof ResourceQuantities

/** A chosen quantity that is a positive quantity within the maximum; `kept` is the default, for the message. */
const parseResource = (raw: string, resource: Resource, kept: string, bounds: ChoiceBounds): Checked<Quantity> => {
  const refused = (code: ChoiceProblemCode, why: string) =>
    Result.fail({ code, reason: `refused, ${kept} kept: ${quote(raw, 24)} ${why}` })
  const value = parseQuantity(raw)
  if (value === undefined) return refused("invalid_choice", "is not a Kubernetes quantity")
  if (!isPositive(value)) return refused("choice_out_of_bounds", "is not more than 0")
  const maximum = bounds.maxima[resource]
  const most = parseQuantity(maximum)
  if (most !== undefined && compareQuantities(value, most) > 0) {
    return refused("choice_out_of_bounds", `is above the most allowed, ${maximum}`)
  }
  return Result.succeed(value)
}

/** Parses the pod's choice annotations; absent ones choose nothing. */
export const parseChoices = (
  annotations: Readonly<Record<string, string>> | undefined,
  bounds: ChoiceBounds
): ParsedChoices => {
  const problems: Array<ChoiceProblem> = []
  const refused = new Set<ChoiceName>()
  const read = <A>(choice: ChoiceName, parse: (raw: string) => Checked<A>): A | undefined => {
    const raw = annotations?.[choiceAnnotation(choice)]
    if (raw === undefined) return undefined
    const checked = parse(raw.trim())
    if (Result.isSuccess(checked)) return checked.success
    problems.push({ choice, ...checked.failure })
    refused.add(choice)
    return undefined
  }
  const refuse = (choice: ChoiceName, reason: string) => {
    problems.push({ choice, code: "choice_out_of_bounds", reason })
    refused.add(choice)
  }

  const shares = read("shares", parseSelection)
  const readOnly = read("read-only", parseReadOnly) ?? false
  const requests: { cpu?: string; memory?: string } = {}
  const limits: { cpu?: string; memory?: string } = {}
  for (const resource of ["cpu", "memory"] as const) {
    const requestName = `sidecar-${resource}-request` as const
    const limitName = `sidecar-${resource}-limit` as const
    const defaultRequest = bounds.defaults.requests[resource]
    const defaultLimit = bounds.defaults.limits[resource]
    const request = read(requestName, (raw) => Result.map(parseResource(raw, resource, defaultRequest, bounds), (q) => ({ raw, q })))
    const limit = read(limitName, (raw) => Result.map(parseResource(raw, resource, defaultLimit, bounds), (q) => ({ raw, q })))
    // A request above its limit makes the pod invalid: refuse the request
    // first, then the limit if the default request is still above it.
    const limitValue = limit?.q ?? parseQuantity(defaultLimit)
    const above = (value: Quantity | undefined) =>
      value !== undefined && limitValue !== undefined && compareQuantities(value, limitValue) > 0
    let keptRequest = request
    if (request !== undefined && above(request.q)) {
      refuse(
        requestName,
        `refused, ${defaultRequest} kept: ${quote(request.raw, 24)} is above the ${resource} limit, ${limit?.raw ?? defaultLimit}`
      )
      keptRequest = undefined
    }
    if (limit !== undefined && above(keptRequest?.q ?? parseQuantity(defaultRequest))) {
      refuse(
        limitName,
        `refused, ${defaultLimit} kept: ${quote(limit.raw, 24)} is below the ${resource} request, ${keptRequest?.raw ?? defaultRequest}`
      )
    } else if (limit !== undefined) {
      limits[resource] = limit.raw
    }
    if (keptRequest !== undefined) requests[resource] = keptRequest.raw
  }

  return {
    choices: {
      shares,
      readOnly,
      sidecarResources: { requests, limits },
      refused: choiceNames.filter((name) => refused.has(name))
    },
    problems: sortedByChoice(problems)
  }
}

/** Problems in the order of `choiceNames`, each choice's in the order found. */
const sortedByChoice = (problems: ReadonlyArray<ChoiceProblem>): ReadonlyArray<ChoiceProblem> =>
  choiceNames.flatMap((name) => problems.filter((problem) => problem.choice === name))

/**
 * Entries of the selection that name an SVM or a share `existing-shares`
 * does not have: each is a warning (the other entries still apply). An SVM
 * whose list cannot be read is skipped with its own warning, so its entries
 * are not checked here.
 */
export const checkSelection = (
  selection: ShareSelection | undefined,
  shares: Readonly<Record<string, string>>
): ReadonlyArray<ChoiceProblem> => {
  if (selection === undefined) return []
  const problems: Array<ChoiceProblem> = []
  const notFound = (reason: string) => problems.push({ choice: "shares", code: "choice_not_found", reason })
  for (const [svm, wanted] of [...selection.bySvm].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!Object.hasOwn(shares, svm)) {
      notFound(`names SVM ${quote(svm, 40)}, which is not in existing-shares`)
      continue
    }
    if (wanted === "*") continue
    const list = parseShareList(shares[svm])
    if (Result.isFailure(list)) continue
    const listed = new Set(list.success)
    for (const share of [...wanted].sort()) {
      if (!listed.has(share)) notFound(`names share ${quote(share, 40)} of SVM ${quote(svm, 24)}, not in existing-shares`)
    }
  }
  return problems
}

/** One warning line, at most 120 characters: `filers: choice "read-only" refused, …`. */
export const formatChoiceWarning = (problem: ChoiceProblem): string =>
  `filers: choice "${problem.choice}" ${problem.reason}`.slice(0, maxWarningLength)

// -----------------------------------------------------------------------------
// The status annotation's `choices`

export interface ChoicesStatus {
  readonly shares?: ReadonlyArray<string>
  readonly readOnly?: true
  readonly sidecarResources?: {
    readonly requests?: Partial<ResourceQuantities>
    readonly limits?: Partial<ResourceQuantities>
  }
  readonly refused?: ReadonlyArray<ChoiceName>
}

/** What was applied and refused, keys in a fixed order; undefined when the pod chose nothing. */
export const choicesStatus = (choices: Choices): ChoicesStatus | undefined => {
  const { limits, requests } = choices.sidecarResources
  const some = (quantities: Partial<ResourceQuantities>) => quantities.cpu !== undefined || quantities.memory !== undefined
  const ordered = (quantities: Partial<ResourceQuantities>) => ({
    ...(quantities.cpu === undefined ? {} : { cpu: quantities.cpu }),
    ...(quantities.memory === undefined ? {} : { memory: quantities.memory })
  })
  const status: ChoicesStatus = {
    ...(choices.shares === undefined ? {} : { shares: choices.shares.entries }),
    ...(choices.readOnly ? { readOnly: true as const } : {}),
    ...(some(requests) || some(limits)
      ? {
        sidecarResources: {
          ...(some(requests) ? { requests: ordered(requests) } : {}),
          ...(some(limits) ? { limits: ordered(limits) } : {})
        }
      }
      : {}),
    ...(choices.refused.length === 0 ? {} : { refused: choices.refused })
  }
  return Object.keys(status).length === 0 ? undefined : status
}
