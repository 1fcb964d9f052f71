/**
 * Which connection Secrets the injector may get, asked of the API server
 * itself (SelfSubjectAccessReview, which every authenticated user may
 * create) at start and at every reload of filers-list. RBAC allows `get` on
 * Secrets by name only (src/domain/rbac.ts), so a filer added without
 * re-applying `filer-sidecar-injector rbac` leaves its Secret unreadable and
 * every pod wanting that SVM skips it (`secret_forbidden`). This says so
 * before the first such pod: one log line, the `secrets_unreadable` gauge, a
 * warning in `/readyz`'s body. The replica stays ready: admissions still
 * work, with those SVMs skipped (docs/behaviour.md,
 * "Who may call, and what it may read").
 */
import { Effect, Layer, Stream } from "effect"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import type { KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { retryKube, retrySchedule, startupBudget } from "../cluster/retry.ts"
import type { Filers } from "../domain/filers.ts"
import { connectionSecretNames } from "../domain/rbac.ts"
import { recordSecretsUnreadable } from "../observability/Metrics.ts"
import { Readiness } from "./Readiness.ts"

/** The Readiness topic of this review's warning. */
export const secretAccessTopic = "secret access"

/** The most Secrets `/readyz` names; the log line names them all. */
const maxNamesShown = 10

/** `may not get secrets a-conn-secret, b-conn-secret (rbac: ...)`, naming at most `max` of them. */
export const unreadableWarning = (names: ReadonlyArray<string>, max = Infinity): string => {
  const more = names.length > max ? ` and ${names.length - max} more` : ""
  return `may not get secrets ${names.slice(0, max).join(", ")}${more} (rbac: re-run \`filer-sidecar-injector rbac\`)`
}

/**
 * A review that cannot be made (the API server down, SelfSubjectAccessReviews
 * refused) is made again later, waiting longer each time; it never holds up
 * readiness.
 */
const againLater = retrySchedule<KubeError>({ baseDelay: "1 second", maxDelay: "5 minutes", while: () => true })

/** Reviews the Secrets of every filers list ClusterConfig loads, for as long as the layer lives. */
export const secretAccessReview: Layer.Layer<never, never, ClusterConfig | KubeClient | Readiness> = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* ClusterConfig
    const kube = yield* KubeClient
    const readiness = yield* Readiness

    /** The names among `names` the injector may not get; each question retried while transient. */
    const unreadableAmong = (names: ReadonlyArray<string>) =>
      Effect.forEach(
        names,
        (name) =>
          retryKube(kube.reviewOwnAccess({ namespace: "", verb: "get", resource: "secrets", name }), startupBudget).pipe(
            Effect.map((answer) => (answer.allowed ? [] : [name]))
          ),
        { concurrency: 4 }
      ).pipe(Effect.map((found) => found.flat()))

    const report = (count: number, unreadable: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        yield* recordSecretsUnreadable(unreadable.length)
        yield* readiness.warn(secretAccessTopic, unreadable.length === 0 ? undefined : unreadableWarning(unreadable, maxNamesShown))
        yield* unreadable.length === 0
          ? Effect.logInfo(`may get all ${count} connection Secrets of filers-list`)
          : Effect.logWarning(`${unreadableWarning(unreadable)}; until then pods skip their SVMs (secret_forbidden)`)
      })

    const review = (filers: Filers) => {
      const names = connectionSecretNames(filers)
      return unreadableAmong(names).pipe(
        Effect.tapError((error) => {
          const problem = `cannot check which connection Secrets it may get: ${error.message}`
          return Effect.andThen(Effect.logWarning(`${problem}; trying again later`), readiness.warn(secretAccessTopic, problem))
        }),
        Effect.retry(againLater),
        Effect.flatMap((unreadable) => report(names.length, unreadable))
      )
    }

    yield* config.filersLoaded.pipe(
      // A newer list makes a review still waiting to try again moot.
      Stream.switchMap((filers) => Stream.fromEffect(review(filers))),
      Stream.runDrain,
      Effect.forkScoped
    )
  })
)
