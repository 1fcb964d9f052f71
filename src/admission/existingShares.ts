/**
 * The namespace's `existing-shares` for an admission: from SharesCache when
 * it holds the namespace and is in sync, else read live (docs/behaviour.md,
 * "What is read, and when"). The `resolve.shares` span says which
 * (`source`: `cache` or `live`).
 */
import { Effect, Option } from "effect"
import type { ConfigMap } from "../cluster/objects.ts"
import type { SharesCacheShape } from "../cluster/SharesCache.ts"
import { spanned } from "../observability/Traced.ts"

/**
 * The cache is asked when this is called, so yield it at once. A hit makes
 * no call and starts nothing; `readLive` (the retried GET, `None` when the
 * ConfigMap does not exist) is built only on a miss.
 */
export const existingShares = <E, R>(
  cache: SharesCacheShape,
  namespace: string,
  readLive: () => Effect.Effect<Option.Option<ConfigMap>, E, R>
): Effect.Effect<Option.Option<ConfigMap>, E, R> => {
  const cached = cache.cached(namespace)
  return cached === undefined
    ? spanned("resolve.shares", () => ({ namespace, source: "live" }))(readLive())
    : spanned("resolve.shares", () => ({ namespace, source: "cache" }))(Effect.succeed(Option.some(cached)))
}
