/**
 * Registering the MutatingWebhookConfiguration, as the original did at start
 * in its self-signed mode: create it when missing, otherwise point the
 * caBundle of every webhook in it at our CA.
 *
 * Several replicas may do this at once. Every write is guarded (create fails
 * when it exists, replace when the resourceVersion moved), and a replica that
 * loses re-reads and tries again, so the object ends with one caBundle.
 */
import { Duration, Effect, Predicate, Stream } from "effect"
import { X509Certificate } from "node:crypto"
import { hasReason, type KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import type { RawObject } from "../cluster/objects.ts"
import { type RetryBudget, retryKube, startupBudget } from "../cluster/retry.ts"

/** The webhook's name in the configuration, as the original's. */
export const injectorWebhookName = "filer-sidecar-injector.das-zone.statcan"

/** The MutatingWebhookConfiguration the original registered. */
export const defaultWebhookConfigurationName = "filer-sidecar-injector-webhook"

export interface WebhookService {
  readonly name: string
  readonly namespace: string
  /** The Service's port, 443 by default (it forwards to the container's 8443). */
  readonly port?: number
  /** "/inject" by default. */
  readonly path?: string
}

export type RegistrationOutcome = "created" | "updated" | "unchanged"


/**
 * A registration that loses a race to another writer re-reads and tries
 * again, after a short jittered wait so that replicas racing each other do
 * not collide in step again.
 */
const conflictBudget: RetryBudget = {
  attempts: 5,
  baseDelay: Duration.millis(50),
  maxDelay: Duration.seconds(1),
  while: hasReason("conflict")
}

/** The caBundle field: the PEM text, base64 encoded. */
export const caBundleOf = (caPem: string): string => Buffer.from(caPem).toString("base64")

/**
 * The webhook the original registered: CREATE of pods in labelled namespaces,
 * for notebook pods only. As the shipped manifest has it
 * (manifests/base/mutatingwebhookconfiguration.yaml, a test keeps them equal):
 * the injector's own namespace and kube-system are never matched, whatever
 * labels they carry, so the injector cannot stand in the way of its own pods.
 */
export const injectorWebhook = (caPem: string, service: WebhookService): RawObject => ({
  name: injectorWebhookName,
  admissionReviewVersions: ["v1"],
  clientConfig: {
    service: {
      name: service.name,
      namespace: service.namespace,
      path: service.path ?? "/inject",
      port: service.port ?? 443
    },
    caBundle: caBundleOf(caPem)
  },
  rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
  matchPolicy: "Equivalent",
  namespaceSelector: {
    matchLabels: { "filer-sidecar-injection": "enabled" },
    matchExpressions: [
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [...new Set([service.namespace, "kube-system"])] }
    ]
  },
  objectSelector: { matchExpressions: [{ key: "notebook-name", operator: "Exists" }] },
  sideEffects: "NoneOnDryRun",
  failurePolicy: "Fail",
  timeoutSeconds: 10,
  reinvocationPolicy: "Never"
})

/** The whole MutatingWebhookConfiguration, as created when missing. */
export const webhookConfiguration = (name: string, caPem: string, service: WebhookService): RawObject => ({
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
  metadata: {
    name,
    labels: { "app.kubernetes.io/name": "filer-sidecar-injector", "app.kubernetes.io/managed-by": "filer-sidecar-injector" }
  },
  webhooks: [injectorWebhook(caPem, service)]
})

const webhooksOf = (object: RawObject): ReadonlyArray<RawObject> =>
  Array.isArray(object.webhooks) ? object.webhooks.filter(Predicate.isObject) as ReadonlyArray<RawObject> : []

const caBundleIn = (webhook: RawObject): unknown =>
  Predicate.isObject(webhook.clientConfig) ? (webhook.clientConfig as RawObject).caBundle : undefined

/**
 * The object with every webhook's `clientConfig.caBundle` set to `caBundle`,
 * everything else (metadata.resourceVersion included, which guards the
 * replace) kept. An object without webhooks gets ours.
 */
const withCaBundle = (object: RawObject, caBundle: string, caPem: string, service: WebhookService): RawObject => {
  const webhooks = webhooksOf(object)
  return {
    ...object,
    webhooks: webhooks.length === 0
      ? [injectorWebhook(caPem, service)]
      : webhooks.map((webhook) => ({
        ...webhook,
        clientConfig: {
          ...(Predicate.isObject(webhook.clientConfig) ? webhook.clientConfig as RawObject : {}),
          caBundle
        }
      }))
  }
}

/** The CA's fingerprint for the log: the PEM itself is not logged. */
const fingerprintOrProblem = (caPem: string): string => {
  try {
    return new X509Certificate(caPem).fingerprint256
  } catch {
    return "(not a PEM certificate)"
  }
}

/**
 * Makes the MutatingWebhookConfiguration `name` trust `caPem`: creates it
 * with the original's definition when missing; otherwise sets the caBundle of
 * every webhook in it (a no-op when already so). Retries when another writer
 * got there first; fails with the last `conflict` if it keeps losing.
 */
export const registerWebhook = Effect.fn("registerWebhook")(function*(
  name: string,
  caPem: string,
  service: WebhookService
): Effect.fn.Return<RegistrationOutcome, KubeError, KubeClient> {
  const kube = yield* KubeClient
  const caBundle = caBundleOf(caPem)

  const attempt = Effect.gen(function*() {
    const existing = yield* retryKube(kube.getWebhookConfiguration(name), startupBudget).pipe(
      Effect.catchIf(hasReason("not_found"), () => Effect.succeed(undefined))
    )
    if (existing === undefined) {
      yield* retryKube(kube.createWebhookConfiguration(webhookConfiguration(name, caPem, service)), startupBudget)
      return "created" as const
    }
    const webhooks = webhooksOf(existing)
    if (webhooks.length > 0 && webhooks.every((webhook) => caBundleIn(webhook) === caBundle)) {
      return "unchanged" as const
    }
    yield* retryKube(kube.replaceWebhookConfiguration(withCaBundle(existing, caBundle, caPem, service)), startupBudget)
    return "updated" as const
  })

  const outcome = yield* retryKube(attempt, conflictBudget)
  yield* Effect.logInfo(
    outcome === "created"
      ? "registered the MutatingWebhookConfiguration"
      : outcome === "updated"
      ? "updated the caBundle of the MutatingWebhookConfiguration"
      : "the MutatingWebhookConfiguration already trusts our CA"
  ).pipe(Effect.annotateLogs({
    webhookConfiguration: name,
    outcome,
    service: `${service.namespace}/${service.name}`,
    caFingerprint256: fingerprintOrProblem(caPem)
  }))
  return outcome
})

/**
 * After the registration at start (of `registered`), registers every later CA
 * of `caPems` that differs from the last one: a self-signed CA renewed while
 * the server runs (ServingCertificate.layerSelfSignedShared) must reach the
 * caBundle too. A failure is logged and serving goes on; the next CA tries
 * again. Runs until `caPems` ends.
 */
export const keepWebhookRegistered = (
  name: string,
  registered: string,
  caPems: Stream.Stream<string | undefined>,
  service: WebhookService
): Effect.Effect<void, never, KubeClient> => {
  let last = registered
  return caPems.pipe(
    Stream.runForEach((caPem) => {
      if (caPem === undefined || caPem === last) return Effect.void
      last = caPem
      return registerWebhook(name, caPem, service).pipe(
        Effect.catch((error) => Effect.logError(`cannot register the renewed CA in the webhook: ${error.message}`))
      )
    })
  )
}
