/**
 * resolve: the only step that does I/O. Reads the namespace's share list,
 * the injector's configuration and the credentials Secrets, concurrently,
 * each call retried within the admission's deadline.
 */
import { Effect, Option } from "effect"
import type { ClusterConfigSnapshot } from "../cluster/ClusterConfig.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import type { KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { retryWithinDeadline } from "../cluster/KubeRetry.ts"
import { secretNameFor } from "../domain/names.ts"
import { type SecretLookup, secretKeys, svmsNeedingSecrets } from "../domain/plan.ts"
import { annotateConfigOutcome, annotateKubeOutcome } from "../observability/Kube.ts"
import { InfrastructureFailure } from "./errors.ts"

export const existingSharesName = "existing-shares"

export interface Resolved {
  readonly shares: Readonly<Record<string, string>>
  readonly config: ClusterConfigSnapshot
  readonly secrets: ReadonlyMap<string, SecretLookup>
}

const infrastructure = (error: KubeError) => new InfrastructureFailure({ cause: error._tag, problem: error.message })

/** `None` when the namespace has no `existing-shares`: nothing to inject, and nothing wrong. */
export const resolve = Effect.fn("resolve")(function*(namespace: string, deadline: number) {
  const kube = yield* KubeClient
  const clusterConfig = yield* ClusterConfig

  const [sharesMap, configResult] = yield* Effect.all([
    retryWithinDeadline(kube.getConfigMap(namespace, existingSharesName), deadline).pipe(
      annotateKubeOutcome,
      Effect.map(Option.some),
      Effect.catchTag("KubeNotFound", () => Effect.succeed(Option.none())),
      Effect.mapError(infrastructure),
      Effect.withSpan("resolve.shares", { attributes: { namespace } })
    ),
    clusterConfig.current.pipe(
      annotateConfigOutcome,
      Effect.mapError((error) => new InfrastructureFailure({ cause: error._tag, problem: error.message })),
      Effect.withSpan("resolve.clusterConfig"),
      Effect.result
    )
  ], { concurrency: 2 })
  // A namespace without shares needs no configuration: its pods are admitted
  // unchanged (SPEC rule 4) even while filers-list or the template is broken.
  if (Option.isNone(sharesMap)) return Option.none<Resolved>()
  const config = yield* Effect.fromResult(configResult)
  const shares = sharesMap.value.data

  const lookups = yield* Effect.forEach(
    svmsNeedingSecrets(shares, config.filers),
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
        Effect.withSpan("resolve.secret", { attributes: { namespace, svm, secret: secretNameFor(svm) } }),
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
})
