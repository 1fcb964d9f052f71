/**
 * What `explain` checks that the pipeline cannot see (README,
 * "Troubleshooting"): the namespace's label, the webhook configuration and
 * its caBundle, and whether the injector's ServiceAccount may read each
 * connection Secret. Reads only; `ok: null` when something cannot be checked.
 */
import { Effect } from "effect"
import { X509Certificate } from "node:crypto"
import * as tls from "node:tls"
import { hasReason, type KubeError } from "../cluster/errors.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import type { Check } from "../domain/explain.ts"
import { isJsonObject, type JsonObject } from "../domain/json.ts"
import { defaultWebhookConfigurationName, injectorWebhookName } from "../server/registerWebhook.ts"

export const namespaceLabel = "filer-sidecar-injection"
export const injectorServiceAccount = "filer-sidecar-injector"

export interface CheckContext {
  readonly namespace: string
  readonly injectorNamespace: string
  /** The connection Secrets the webhook reads for the pod. */
  readonly secrets: ReadonlyArray<string>
  /** A cluster folder: nothing to ask an authorizer or a server. */
  readonly offline: boolean
}

const unknown = (name: string, error: KubeError): Check => ({ name, ok: null, message: `cannot read: ${error.message}` })

const namespaceCheck = Effect.fn(function*(context: CheckContext) {
  const name = "namespace label"
  const wanted = `${namespaceLabel}=enabled`
  if (context.namespace === context.injectorNamespace || context.namespace === "kube-system") {
    return { name, ok: false, message: `pods in ${context.namespace} are never injected, whatever its labels` } satisfies Check
  }
  return yield* (yield* KubeClient).getNamespace(context.namespace).pipe(
    Effect.map((namespace): Check => {
      const metadata = isJsonObject(namespace.metadata) ? namespace.metadata : {}
      const labels = isJsonObject(metadata.labels) ? metadata.labels : {}
      return labels[namespaceLabel] === "enabled"
        ? { name, ok: true, message: `namespace ${context.namespace} has ${wanted}` }
        : { name, ok: false, message: `namespace ${context.namespace} lacks ${wanted}: the API server never calls the webhook for its pods` }
    }),
    Effect.catchIf(hasReason("not_found"), () =>
      Effect.succeed<Check>(
        context.offline
          ? { name, ok: null, message: `the cluster folder has no Namespace ${context.namespace}` }
          : { name, ok: false, message: `namespace ${context.namespace} not found` }
      )),
    Effect.catch((error) => Effect.succeed(unknown(name, error)))
  )
})

/** The PEM certificates of a caBundle (base64 of PEM text), or why there are none. */
const bundleCertificates = (caBundle: unknown): ReadonlyArray<X509Certificate> | string => {
  if (typeof caBundle !== "string" || caBundle === "") return "the webhook has no caBundle: the API server cannot trust it"
  const pem = Buffer.from(caBundle, "base64").toString("utf8")
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  try {
    const certificates = blocks.map((block) => new X509Certificate(block))
    return certificates.length === 0 ? "the caBundle holds no PEM certificate" : certificates
  } catch {
    return "the caBundle holds a certificate that does not parse"
  }
}

/** Where the API server calls the webhook: its url, else its Service's DNS name. */
const endpointOf = (clientConfig: JsonObject): { host: string; port: number } | undefined => {
  if (typeof clientConfig.url === "string") {
    try {
      const url = new URL(clientConfig.url)
      return { host: url.hostname, port: url.port === "" ? 443 : Number(url.port) }
    } catch {
      return undefined
    }
  }
  const service = isJsonObject(clientConfig.service) ? clientConfig.service : undefined
  if (service === undefined || typeof service.name !== "string" || typeof service.namespace !== "string") return undefined
  return { host: `${service.name}.${service.namespace}.svc`, port: typeof service.port === "number" ? service.port : 443 }
}

/** Connects to the serving endpoint, trusting only the caBundle: verified, refused, or unreachable (null). */
const probeServing = (endpoint: { host: string; port: number }, ca: string) =>
  Effect.callback<boolean | string>((resume) => {
    const socket = tls.connect({ host: endpoint.host, port: endpoint.port, servername: endpoint.host, ca, rejectUnauthorized: false })
    const done = (value: boolean | string) => {
      socket.destroy()
      resume(Effect.succeed(value))
    }
    socket.setTimeout(3000, () => done("no answer within 3 s"))
    socket.once("secureConnect", () => done(socket.authorized ? true : false))
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.name))
    return Effect.sync(() => socket.destroy())
  })

const webhookChecks = Effect.fn(function*(context: CheckContext) {
  const name = "webhook configuration"
  const bundleName = "caBundle"
  const found = yield* (yield* KubeClient).getWebhookConfiguration(defaultWebhookConfigurationName).pipe(
    Effect.map((object) => ({ object })),
    Effect.catch((error) => Effect.succeed({ error }))
  )
  if ("error" in found) {
    const missing = hasReason("not_found")(found.error)
    return [
      missing
        ? { name, ok: false, message: `MutatingWebhookConfiguration ${defaultWebhookConfigurationName} not found: no pod is ever sent to the webhook` }
        : unknown(name, found.error),
      { name: bundleName, ok: null, message: "no webhook configuration to check" }
    ] satisfies ReadonlyArray<Check>
  }
  const webhooks = Array.isArray(found.object.webhooks) ? found.object.webhooks.filter(isJsonObject) : []
  const webhook = webhooks.find((candidate) => candidate.name === injectorWebhookName)
  if (webhook === undefined) {
    return [
      { name, ok: false, message: `${defaultWebhookConfigurationName} has no webhook ${injectorWebhookName}` },
      { name: bundleName, ok: null, message: "no webhook to check" }
    ] satisfies ReadonlyArray<Check>
  }
  const exists: Check = { name, ok: true, message: `${defaultWebhookConfigurationName} has webhook ${injectorWebhookName}` }
  const clientConfig = isJsonObject(webhook.clientConfig) ? webhook.clientConfig : {}
  const certificates = bundleCertificates(clientConfig.caBundle)
  if (typeof certificates === "string") return [exists, { name: bundleName, ok: false, message: certificates }]
  const now = Date.now()
  const expired = certificates.find((certificate) => Date.parse(certificate.validTo) < now)
  if (expired !== undefined) {
    return [exists, { name: bundleName, ok: false, message: `the caBundle's certificate expired on ${expired.validTo}` }]
  }
  const held = `the caBundle holds ${certificates.length} certificate(s), valid until ${certificates[0]!.validTo}`
  const endpoint = endpointOf(clientConfig)
  if (context.offline || endpoint === undefined) {
    const why = context.offline ? "not checked offline" : "the webhook names no endpoint"
    return [exists, { name: bundleName, ok: null, message: `${held}; the serving certificate: ${why}` }]
  }
  const verified = yield* probeServing(endpoint, Buffer.from(String(clientConfig.caBundle), "base64").toString("utf8"))
  const where = `${endpoint.host}:${endpoint.port}`
  const bundle: Check = verified === true
    ? { name: bundleName, ok: true, message: `${held}; it verifies the serving certificate of ${where}` }
    : verified === false
    ? { name: bundleName, ok: false, message: `${held}, but it does not verify the serving certificate of ${where}` }
    : { name: bundleName, ok: null, message: `${held}; could not reach ${where} (${verified}) to check the serving certificate` }
  return [exists, bundle]
})

const secretCheck = Effect.fn(function*(context: CheckContext, secret: string) {
  const name = `secret ${secret}`
  const user = `system:serviceaccount:${context.injectorNamespace}:${injectorServiceAccount}`
  if (context.offline) return { name, ok: null, message: "not checked offline" } satisfies Check
  return yield* (yield* KubeClient).reviewAccess({ user, namespace: context.namespace, verb: "get", resource: "secrets", name: secret })
    .pipe(
      Effect.map((answer): Check =>
        answer.allowed
          ? { name, ok: true, message: `${user} may get it` }
          : {
            name,
            ok: false,
            message: `${user} may not get it${answer.reason === undefined ? "" : ` (${answer.reason})`}: ` +
              "apply `filer-sidecar-injector rbac` again (README, \"Adding a filer\")"
          }
      ),
      Effect.catchIf(hasReason("forbidden"), () =>
        Effect.succeed<Check>({ name, ok: null, message: "not checked: you may not create SubjectAccessReviews" })),
      Effect.catch((error) => Effect.succeed<Check>({ name, ok: null, message: `not checked: ${error.message}` }))
    )
})

/** Every check, in a fixed order: namespace, webhook configuration, caBundle, each Secret. */
export const clusterChecks = Effect.fn("explain.checks")(function*(context: CheckContext) {
  const namespace = yield* namespaceCheck(context)
  const webhook = yield* webhookChecks(context)
  const secrets = yield* Effect.forEach(context.secrets, (secret) => secretCheck(context, secret), { concurrency: 4 })
  return [namespace, ...webhook, ...secrets] as ReadonlyArray<Check>
})
