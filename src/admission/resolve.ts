/**
 * resolve: the only step that does I/O. Reads the injector's configuration
 * (held in memory), the namespace's share list, then the credentials Secrets
 * concurrently, each call retried within the admission's deadline.
 */
import { Effect, Option } from "effect"
import type { ClusterConfigSnapshot } from "../cluster/ClusterConfig.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import type { KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { retryWithinDeadline } from "../cluster/KubeRetry.ts"
import type { ShareSelection } from "../domain/selection.ts"
import { secretNameFor } from "../domain/names.ts"
import { type SecretLookup, secretKeys, svmsNeedingSecrets } from "../domain/plan.ts"
import { annotateConfigOutcome, annotateKubeOutcome } from "../observability/Kube.ts"
import { spanned } from "../observability/Traced.ts"
import { InfrastructureFailure } from "./errors.ts"

export const existingSharesName = "existing-shares"

export interface Resolved {
  readonly shares: Readonly<Record<string, string>>
  readonly config: ClusterConfigSnapshot
  readonly secrets: ReadonlyMap<string, SecretLookup>
}

const infrastructure = (error: KubeError) => new InfrastructureFailure({ cause: error._tag, problem: error.message })

/** `None` when the namespace has no `existing-shares`: nothing to inject, and nothing wrong. */
export const resolve = Effect.fnUntraced(function*(namespace: string, deadline: number, selection?: ShareSelection) {
  const kube = yield* KubeClient
  const clusterConfig = yield* ClusterConfig

  // The configuration is held in memory (ClusterConfig watches it): read it
  // first, and keep its failure until the shares show it is needed.
  const configResult = yield* clusterConfig.current.pipe(
    annotateConfigOutcome,
    Effect.mapError((error) => new InfrastructureFailure({ cause: error._tag, problem: error.message })),
    spanned("resolve.clusterConfig"),
    Effect.result
  )
  const sharesMap = yield* retryWithinDeadline(kube.getConfigMap(namespace, existingSharesName), deadline).pipe(
    annotateKubeOutcome,
    Effect.map(Option.some),
    Effect.catchTag("KubeNotFound", () => Effect.succeed(Option.none())),
    Effect.mapError(infrastructure),
    spanned("resolve.shares", () => ({ namespace }))
  )
  // A namespace without shares needs no configuration: its pods are admitted
  // unchanged (docs/behaviour.md, "When a pod is mutated", 4) even while filers-list or the template is broken.
  if (Option.isNone(sharesMap)) return Option.none<Resolved>()
  const config = yield* Effect.fromResult(configResult)
  const shares = sharesMap.value.data

  const lookups = yield* Effect.forEach(
    // Only the SVMs the pod chose: another SVM's Secret can neither mount nor deny it.
    svmsNeedingSecrets(shares, config.filers, selection),
    (svm) =>
      retryWithinDeadline(kube.getSecret(namespace, secretNameFor(svm)), deadline).pipe(
        annotateKubeOutcome,
        Effect.map((secret): SecretLookup => ({
          _tag: "Found",
          access: secret.data[secretKeys.access],
          secret: secret.data[secretKeys.secret]
        })),
        Effect.catchTag("KubeNotFound", () => Effect.succeed<SecretLookup>({ _tag: "Missing" })),
        Effect.mapError(infrastructure),
        Effect.map((lookup) => [svm, lookup] as const),
        spanned("resolve.secret", () => ({ namespace, svm, secret: secretNameFor(svm) })),
        Effect.result
      ),
    { concurrency: 8 }
  )
  // Every read ends (each is bounded by the deadline) before one failure is
  // chosen: the first in SVM order, so the same outage gives the same denial.
  const found: Array<readonly [string, SecretLookup]> = []
  for (const lookup of lookups) {
    if (lookup._tag === "Failure") return yield* Effect.fail(lookup.failure)
    found.push(lookup.success)
  }
  return Option.some<Resolved>({ shares, config, secrets: new Map(found) })
}, spanned("resolve"))
