/**
 * What the webhook does for a notebook's pod, by the webhook's own pipeline
 * and without side effects: `admit` answers a CREATE of the pod as it is (the
 * decision), and for a pod the webhook acts on, `resolve` and `plan` on the
 * pod without its injection marks say what would be mounted now. Nothing is
 * written: no Event, no object.
 */
import { Effect, Option, Result, Schema } from "effect"
import { hasReason } from "../cluster/errors.ts"
import { AdmissionSettings } from "../admission/AdmissionSettings.ts"
import type { Outcome } from "../admission/outcome.ts"
import { admit, decodeReview } from "../admission/pipeline.ts"
import { resolve } from "../admission/resolve.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { checkSelection, type ChoiceProblem, parseChoices } from "../domain/choices.ts"
import { decidePod } from "../domain/decide.ts"
import {
  type ExplainDecision,
  type Explanation,
  explainPlan,
  pickNotebookPod,
  wasInjected,
  withoutInjectionMarks
} from "../domain/explain.ts"
import type { JsonObject } from "../domain/json.ts"
import { secretNameFor } from "../domain/names.ts"
import { plan } from "../domain/plan.ts"
import { notebookLabel, Pod } from "../domain/pod.ts"
import { createPodReview } from "./inject.ts"

/** No pod NAME, NAME-0 or notebook pod for NAME in the namespace. */
export class NotebookPodNotFound extends Schema.TaggedError<NotebookPodNotFound>()("NotebookPodNotFound", {
  namespace: Schema.String,
  name: Schema.String
}) {
  override get message() {
    return `no pod ${this.name} or ${this.name}-0, and no notebook pod labelled ${notebookLabel}=${this.name}, ` +
      `in namespace ${this.namespace}`
  }
}

/** Pod NAME, else NAME-0, else a notebook pod made for NAME. */
export const findNotebookPod = Effect.fn("explain.findPod")(function*(namespace: string, name: string) {
  const kube = yield* KubeClient
  const byName = (podName: string) =>
    kube.getPod(namespace, podName).pipe(
      Effect.map(Option.some),
      Effect.catchIf(hasReason("not_found"), () => Effect.succeed(Option.none<JsonObject>()))
    )
  for (const candidate of [name, `${name}-0`]) {
    const found = yield* byName(candidate)
    if (Option.isSome(found)) return found.value as JsonObject
  }
  const labelled = yield* kube.listPods(namespace, { [notebookLabel]: name })
  const pod = pickNotebookPod(labelled as ReadonlyArray<JsonObject>, name)
  if (pod === undefined) return yield* new NotebookPodNotFound({ namespace, name })
  return pod
})

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`

/** The pipeline's outcome in an operator's words. */
const decisionOf = (outcome: Outcome, injected: boolean): { decision: ExplainDecision; reason: string } => {
  switch (outcome.decision) {
    case "injected":
      return {
        decision: "inject",
        reason: `${plural(outcome.sharesMounted, "share")} of ${plural(outcome.svms, "SVM")} would be mounted` +
          (outcome.skipped.length === 0 ? "" : `, ${outcome.skipped.length} skipped`)
      }
    case "denied":
      return { decision: "deny", reason: outcome.reason }
    case "invalid-pod":
      return { decision: "deny", reason: `the pod does not decode: ${outcome.reason}` }
    case "admitted-without-filers":
      return { decision: "skip", reason: `admitted without filers: ${outcome.reason}` }
    case "skipped":
      return injected && outcome.skipCode === "opted_out"
        ? { decision: "skip", reason: "already injected: the shares below are what a restart of the notebook would mount" }
        : { decision: "skip", reason: outcome.reason }
  }
}

/** What would be mounted now, the choices' problems and the Secrets the webhook reads; undefined when it would not act. */
const planNow = Effect.fn("explain.plan")(function*(raw: JsonObject, namespace: string) {
  const clean = withoutInjectionMarks(raw)
  const { request } = yield* decodeReview(createPodReview(clean, namespace, "explain")).pipe(Effect.orDie)
  const decoded = Schema.decodeUnknownResult(Pod)(clean)
  if (Result.isFailure(decoded)) return undefined
  const pod = decoded.success
  if (decidePod(request, pod)._tag === "Skip") return undefined
  const settings = yield* AdmissionSettings
  const chosen = parseChoices(pod.metadata?.annotations, {
    defaults: settings.sidecarResources,
    maxima: settings.sidecarMaxima
  })
  const resolved = yield* resolve(namespace, settings.requestBudget, chosen.choices.shares)
  if (Option.isNone(resolved)) {
    return { mounted: [], skipped: [], problems: chosen.problems, secrets: [] }
  }
  const { config, secrets, shares } = resolved.value
  const planned = plan({
    pod,
    shares,
    filers: config.filers,
    secrets,
    maxShares: settings.maxSharesPerPod,
    selection: chosen.choices.shares
  })
  const problems: ReadonlyArray<ChoiceProblem> = [...chosen.problems, ...checkSelection(chosen.choices.shares, shares)]
  const secretSkips = new Set(["secret_missing", "secret_incomplete", "secret_forbidden"])
  const needed = [
    ...planned.svms.map((svm) => svm.secretName),
    ...planned.skips.filter((skip) => secretSkips.has(skip.code)).map((skip) => secretNameFor(skip.svm))
  ]
  return { ...explainPlan(planned), problems, secrets: [...new Set(needed)].sort() }
})

export interface PodExplanation {
  readonly explanation: Omit<Explanation, "checks" | "drift">
  readonly problems: ReadonlyArray<ChoiceProblem>
  /** The connection Secrets the webhook reads for this pod. */
  readonly secrets: ReadonlyArray<string>
}

/** The pipeline's decision for `pod`, and what it would mount now. */
export const explainPod = Effect.fn("explain.pod")(function*(pod: JsonObject, namespace: string) {
  const { outcome } = yield* admit(createPodReview(pod, namespace, "explain")).pipe(Effect.orDie)
  const { decision, reason } = decisionOf(outcome, wasInjected(pod))
  const name = typeof (pod.metadata as JsonObject | undefined)?.name === "string"
    ? String((pod.metadata as JsonObject).name)
    : outcome.pod
  // A denied pod's lookup failed already: what would be mounted cannot be known.
  const now = decision === "deny" ? undefined : yield* planNow(pod, namespace)
  const result: PodExplanation = {
    explanation: {
      namespace,
      pod: name,
      decision,
      reason,
      mounted: now?.mounted ?? [],
      skipped: now?.skipped ?? []
    },
    problems: now?.problems ?? [],
    secrets: now?.secrets ?? []
  }
  return result
})
