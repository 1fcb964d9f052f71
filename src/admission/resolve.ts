/**
 * resolve: the only step that does I/O. Reads the injector's configuration
 * (held in memory), the namespace's share list (from the watch-backed cache,
 * else live), then the credentials Secrets
 * concurrently, each call retried (cluster/retry.ts), the whole within the
 * admission's budget.
 */
import { Clock, Duration, Effect, Option } from "effect"
import type { ClusterConfigSnapshot } from "../cluster/ClusterConfig.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { hasReason, type KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { KubeRetry, retryKube } from "../cluster/retry.ts"
import { SharesCache } from "../cluster/SharesCache.ts"
import type { ShareSelection } from "../domain/selection.ts"
import { secretNameFor } from "../domain/names.ts"
import { existingSharesName } from "../domain/rbac.ts"
import { type SecretLookup, secretKeys, svmsNeedingSecrets } from "../domain/plan.ts"
import { annotateConfigOutcome, annotateKubeOutcome } from "../observability/Failures.ts"
import { spanned } from "../observability/Traced.ts"
import { InfrastructureFailure } from "./errors.ts"
import { existingShares } from "./existingShares.ts"

export interface Resolved {
  readonly shares: Readonly<Record<string, string>>
  readonly config: ClusterConfigSnapshot
  readonly secrets: ReadonlyMap<string, SecretLookup>
}

const isNotFound = hasReason("not_found")

/**
 * A 403 on one object: RBAC lacks its name. A 401 is not one object's
 * problem (the injector's own credentials are refused), so it stays a failure.
 */
const isForbiddenByRbac = (error: KubeError): boolean => error.reason === "forbidden" && error.status === 403

const infrastructure = (error: KubeError) => new InfrastructureFailure({ cause: error.reason, problem: error.message })

/**
 * The latest error of each read that has not succeeded (yet), oldest
 * failing read first. When the budget runs out while a retry is still
 * running, the denial names what was failing, not only the budget.
 */
class Failing {
  private readonly errors = new Map<string, KubeError>()
  record(read: string, error: KubeError): Effect.Effect<void> {
    return Effect.sync(() => {
      this.errors.set(read, error)
    })
  }
  /** Plain, not an Effect: it runs on every read, inside steps the read takes anyway. */
  forget(read: string): void {
    if (this.errors.size > 0) this.errors.delete(read)
  }
  get first(): KubeError | undefined {
    return this.errors.values().next().value
  }
}

/**
 * `None` when the namespace has no `existing-shares`: nothing to inject, and
 * nothing wrong. Answers within `budget`: reads still retrying then are cut,
 * and the failure names the last error of the oldest failing one.
 */
export const resolve = Effect.fnUntraced(function*(
  namespace: string,
  budget: Duration.Duration,
  selection?: ShareSelection
) {
  const kube = yield* KubeClient
  const sharesCache = yield* SharesCache
  const clusterConfig = yield* ClusterConfig
  const retry = { ...(yield* KubeRetry), deadline: (yield* Clock.currentTimeMillis) + Duration.toMillis(budget) }
  const failing = new Failing()

  /**
   * One read, retried; `missing` when the object does not exist, `forbidden`
   * (when given) when RBAC refuses this object: otherwise a 403 is a failure.
   */
  const read = <A, B>(
    name: string,
    call: Effect.Effect<A, KubeError>,
    found: (a: A) => B,
    answers: { readonly missing: B; readonly forbidden?: B }
  ) =>
    retryKube(Effect.tapError(call, (error) => failing.record(name, error)), retry).pipe(
      annotateKubeOutcome,
      Effect.map((answer) => {
        failing.forget(name)
        return found(answer)
      }),
      Effect.catchIf(
        (error) => isNotFound(error) || (answers.forbidden !== undefined && isForbiddenByRbac(error)),
        (error) => {
          failing.forget(name)
          return Effect.succeed(isNotFound(error) ? answers.missing : answers.forbidden as B)
        }
      ),
      Effect.mapError(infrastructure)
    )

  const lookUp = Effect.gen(function*() {
    // The configuration is held in memory (ClusterConfig watches it): read it
    // first, and keep its failure until the shares show it is needed.
    const configResult = yield* clusterConfig.current.pipe(
      annotateConfigOutcome,
      Effect.mapError((error) => new InfrastructureFailure({ cause: "configuration", problem: error.message })),
      spanned("resolve.clusterConfig"),
      Effect.result
    )
    const sharesMap = yield* existingShares(sharesCache, namespace, () =>
      read(existingSharesName, kube.getConfigMap(namespace, existingSharesName), Option.some, { missing: Option.none() }))
    // A namespace without shares needs no configuration: its pods are admitted
    // unchanged (docs/behaviour.md, "When a pod is mutated", 4) even while filers-list or the template is broken.
    if (Option.isNone(sharesMap)) return Option.none<Resolved>()
    const config = yield* Effect.fromResult(configResult)
    const shares = sharesMap.value.data

    const lookups = yield* Effect.forEach(
      // Only the SVMs the pod chose: another SVM's Secret can neither mount nor deny it.
      svmsNeedingSecrets(shares, config.filers, selection),
      (svm) =>
        read(
          secretNameFor(svm),
          kube.getSecret(namespace, secretNameFor(svm)),
          (secret): SecretLookup => ({
            _tag: "Found",
            access: secret.data[secretKeys.access],
            secret: secret.data[secretKeys.secret]
          }),
          // A 403 on one SVM's Secret skips that SVM (plan: secret_forbidden); the others still mount.
          { missing: { _tag: "Missing" }, forbidden: { _tag: "Forbidden" } }
        ).pipe(
          Effect.map((lookup) => [svm, lookup] as const),
          spanned("resolve.secret", () => ({ namespace, svm, secret: secretNameFor(svm) })),
          Effect.result
        ),
      { concurrency: 8 }
    )
    // Every read ends (each gives up by the deadline) before one failure is
    // chosen: the first in SVM order, so the same outage gives the same denial.
    const found: Array<readonly [string, SecretLookup]> = []
    for (const lookup of lookups) {
      if (lookup._tag === "Failure") return yield* Effect.fail(lookup.failure)
      found.push(lookup.success)
    }
    return Option.some<Resolved>({ shares, config, secrets: new Map(found) })
  })

  // The only timer of the admission's budget: what it reports is decided
  // when it fires, so it cannot race a retry's own report of its last error.
  return yield* Effect.timeoutOrElse(lookUp, {
    duration: budget,
    orElse: () => {
      const last = failing.first
      return Effect.fail(
        last === undefined
          ? new InfrastructureFailure({
            cause: "timeout",
            problem: `the Kubernetes API did not answer within the ${Duration.format(budget)} budget`
          })
          : infrastructure(last)
      )
    }
  })
}, spanned("resolve"))
