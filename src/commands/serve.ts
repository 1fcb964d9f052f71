/**
 * `serve`: the HTTPS admission webhook. Against Kubernetes (in-cluster
 * credentials, else the kubeconfig), or with `--cluster DIR` against a
 * cluster held in memory. TLS from `--tls-cert/--tls-key` files (reloaded on
 * rotation) or self-signed at start; with `--register-webhook NAME` the CA
 * goes into that MutatingWebhookConfiguration's caBundle. Metrics on
 * `GET /metrics`; traces exported by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
 * is set (observability/Tracing.ts).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Console, Effect, Layer, Logger, Option, References, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import { HttpServer } from "effect/http"
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { admissionLayer } from "../admission/layers.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import { keepWebhookRegistered, registerWebhook } from "../server/registerWebhook.ts"
import { Readiness } from "../server/Readiness.ts"
import { webhookServerLayer } from "../server/server.ts"
import { CertificateGenerationError, ServingCertificate, TlsMaterialError } from "../server/tls.ts"
import type { KubeError } from "../cluster/errors.ts"
import type { KubeConfigError } from "../cluster/live/kubeconfig.ts"
import type { ManifestError } from "../cluster/manifestFiles.ts"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import { tracingLayerFromEnv } from "../observability/Tracing.ts"
import { Settings } from "../settings.ts"
import { failWith } from "./exit.ts"
import { injectorNamespaceFlag, settingSources } from "./flags.ts"

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const logLevels = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" } as const

/** The Service in front of the webhook: the self-signed certificate is made out to it. */
const serviceNameFlag = Flag.String("service-name").pipe(
  Flag.withDescription("Service in front of the webhook, named in the self-signed certificate"),
  Flag.withDefault("filer-sidecar-injector")
)

type TlsLayer = Layer.Layer<
  ServingCertificate,
  TlsMaterialError | CertificateGenerationError | KubeError,
  FileSystem | KubeClient
>

const tlsLayer = (serviceName: string) =>
  Layer.unwrap(
    Effect.gen(function*(): Effect.fn.Return<TlsLayer, never, Settings> {
      const settings = yield* Settings
      if (settings.tlsCertFile !== undefined && settings.tlsKeyFile !== undefined) {
        return ServingCertificate.layerFromFiles(settings.tlsCertFile, settings.tlsKeyFile)
      }
      const names = { serviceName, namespace: settings.injectorNamespace }
      // Registering the webhook means several replicas must share one CA: keep it in a Secret.
      return settings.registerWebhook === undefined
        ? ServingCertificate.layerSelfSigned(names)
        : ServingCertificate.layerSelfSignedShared({ ...names, secretName: `${serviceName}-tls` })
    })
  )

const registration = (serviceName: string) =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const settings = yield* Settings
      const configuration = settings.registerWebhook
      if (configuration === undefined) return
      const certificate = yield* ServingCertificate
      const caPem = yield* certificate.caPem
      if (caPem === undefined) return
      const service = { name: serviceName, namespace: settings.injectorNamespace }
      yield* registerWebhook(configuration, caPem, service).pipe(
        // Serving goes on: the webhook may have been registered by another replica or by hand.
        Effect.catch((error) => Effect.logError(`cannot register the webhook: ${error.message}`))
      )
      // Then every CA the certificate is renewed with, for as long as the server runs.
      yield* keepWebhookRegistered(configuration, caPem, Stream.map(certificate.changes, (material) => material.caPem), service)
        .pipe(Effect.forkScoped)
    })
  )

/** For `npm start`: one curl command that posts `reviewFile`, trusting the self-signed CA. */
const printExampleCurl = (reviewFile: string) =>
  Effect.gen(function*() {
    const settings = yield* Settings
    const certificate = yield* ServingCertificate
    const caPem = yield* certificate.caPem
    const host = settings.host === "0.0.0.0" || settings.host === "::" ? "127.0.0.1" : settings.host
    // The bound port, not the setting: with --port 0 the system picks it.
    const { address } = yield* HttpServer.HttpServer
    const port = address._tag === "UnixPathAddress" ? settings.port : address.port
    let trust = "-k"
    if (caPem !== undefined) {
      // One file per port, so two servers started side by side do not overwrite each other's CA.
      const caFile = join(tmpdir(), `filer-sidecar-injector-ca-${port}.pem`)
      writeFileSync(caFile, caPem)
      trust = `--cacert ${caFile}`
    }
    yield* Console.log(
      `curl ${trust} -H 'Content-Type: application/json' --data-binary @${reviewFile} https://${host}:${port}/inject`
    )
  })

export const serveCommand = Command.make(
  "serve",
  {
    port: optionalString("port", "HTTPS port (default 8443)"),
    host: optionalString("host", "Address to listen on (default 0.0.0.0, all interfaces)"),
    tlsCert: optionalString("tls-cert", "Serving certificate (PEM), reloaded when it changes; without it a self-signed one is generated"),
    tlsKey: optionalString("tls-key", "Private key of the serving certificate (PEM)"),
    cluster: optionalString("cluster", "Serve from a folder of manifests held in memory instead of Kubernetes"),
    injectorNamespace: injectorNamespaceFlag,
    registerWebhook: optionalString("register-webhook", "Self-signed mode: write the CA into this MutatingWebhookConfiguration"),
    requestBudgetMs: optionalString("request-budget-ms", "Time one admission may take, retries included (default 7000)"),
    maxBodyBytes: optionalString("max-body-bytes", "Largest request body accepted (default 7340032)"),
    credentialMode: optionalString("credential-mode", "secretKeyRef (default) or plain"),
    onInfrastructureFailure: optionalString("on-infrastructure-failure", "deny (default) or admit"),
    serviceName: serviceNameFlag,
    exampleCurl: optionalString("example-curl", "Print a curl command that posts this AdmissionReview file once serving")
  },
  Effect.fn(function*(flags) {
    const value = Option.getOrUndefined
    const sources = settingSources({
      PORT: value(flags.port),
      HOST: value(flags.host),
      TLS_CERT_FILE: value(flags.tlsCert),
      TLS_KEY_FILE: value(flags.tlsKey),
      POD_NAMESPACE: value(flags.injectorNamespace),
      REGISTER_WEBHOOK: value(flags.registerWebhook),
      REQUEST_BUDGET_MS: value(flags.requestBudgetMs),
      MAX_BODY_BYTES: value(flags.maxBodyBytes),
      CREDENTIAL_MODE: value(flags.credentialMode),
      ON_INFRASTRUCTURE_FAILURE: value(flags.onInfrastructureFailure)
    })
    const settings = Settings.layerFromSources(sources)
    const kube: Layer.Layer<KubeClient, KubeConfigError | ManifestError, Settings | FileSystem | Path> = Option.match(
      flags.cluster,
      {
        // Imported only when a real cluster is used: loading @kubernetes/client-node
        // takes about half a second, which `--cluster` need not wait for.
        onNone: () =>
          Layer.unwrap(Effect.map(Effect.promise(() => import("../cluster/KubeClientLive.ts")), (live) => live.layer)),
        onSome: (directory) => KubeClient.layerMemory.pipe(Layer.provide(MemoryCluster.layerFromDirectory(directory)))
      }
    )
    // admissionLayer passes the KubeClient through, observed: the shared self-signed CA and the registration use it too.
    const services = Layer.mergeAll(tlsLayer(flags.serviceName), Readiness.layer).pipe(
      Layer.provideMerge(admissionLayer(kube))
    )
    const server = Layer.mergeAll(webhookServerLayer, registration(flags.serviceName)).pipe(
      Layer.provideMerge(services)
    )
    const logs = Layer.unwrap(
      Effect.map(Settings, (s) =>
        Layer.mergeAll(
          Logger.layer([Logger.consoleJson]),
          Layer.succeed(References.MinimumLogLevel, logLevels[s.logLevel])
        ))
    )

    yield* Effect.gen(function*() {
      if (Option.isSome(flags.exampleCurl)) yield* printExampleCurl(flags.exampleCurl.value)
      return yield* Effect.never
    }).pipe(
      Effect.provide(server),
      // Outside the server: every request span goes to the tracer, and the last ones are flushed after it stops.
      Effect.provide(tracingLayerFromEnv()),
      Effect.provide(logs),
      Effect.provide(settings),
      Effect.provide(NodeServices.layer),
      Effect.catch((error) => failWith(`${error._tag}: ${error.message}`, 1))
    )
  })
).pipe(Command.withDescription("Run the HTTPS admission webhook"))

