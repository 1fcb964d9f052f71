/**
 * `serve`: the HTTPS admission webhook. Against Kubernetes (in-cluster
 * credentials, else the kubeconfig), or with `--cluster DIR` against a
 * cluster held in memory. TLS from `--tls-cert/--tls-key` files (reloaded on
 * rotation) or self-signed at start; with `--register-webhook NAME` the CA
 * goes into that MutatingWebhookConfiguration's caBundle. With
 * `--client-ca-file`, `/inject` answers only callers whose client certificate
 * that CA signed; plain credentials refuse to start without it. Metrics on
 * `GET /metrics`; traces exported by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
 * is set (observability/Tracing.ts).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Console, Effect, Layer, Option, References, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import { HttpServer } from "effect/http"
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AdmissionSettings, admissionSettings } from "../admission/AdmissionSettings.ts"
import { admissionLayer } from "../admission/layers.ts"
import { ClusterSettings, clusterSettings } from "../cluster/ClusterSettings.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import { plainCredentialsProblem } from "../server/callers.ts"
import { keepWebhookRegistered, registerWebhook } from "../server/registerWebhook.ts"
import { Readiness } from "../server/Readiness.ts"
import { secretAccessReview } from "../server/secretAccess.ts"
import { ServerSettings, serverSettings } from "../server/ServerSettings.ts"
import { webhookServerLayer } from "../server/server.ts"
import { TlsMaterialError } from "../server/tls/material.ts"
import { ClientCa } from "../server/tls/ClientCa.ts"
import { CertificateGenerationError } from "../server/tls/selfSigned.ts"
import { ServingCertificate } from "../server/tls/ServingCertificate.ts"
import type { KubeError } from "../cluster/errors.ts"
import type { KubeConfigError } from "../cluster/live/kubeconfig.ts"
import type { ManifestError } from "../cluster/manifestFiles.ts"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import { load, oneOf, setting } from "../config/setting.ts"
import { FlushLogLines, layerBatchedJsonLines } from "../observability/jsonLines.ts"
import { tracingLayerFromEnv } from "../observability/Tracing.ts"
import { failWith } from "./exit.ts"
import { flagsOverEnvironment, settingFlags } from "./flags.ts"
import { DeprecatedInvocation } from "./legacyArgs.ts"

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const logLevels = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" } as const

/** Not a flag of ours: effect/cli's global --log-level (which also works) would shadow it. */
export const logLevel = setting({
  env: "LOG_LEVEL",
  default: "info",
  parse: oneOf(["debug", "info", "warn", "error"] as const),
  description: "debug, info (default), warn or error"
})

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
    Effect.gen(function*(): Effect.fn.Return<TlsLayer, never, ServerSettings | ClusterSettings> {
      const settings = yield* ServerSettings
      if (settings.tlsCertFile !== undefined && settings.tlsKeyFile !== undefined) {
        return ServingCertificate.layerFromFiles(settings.tlsCertFile, settings.tlsKeyFile)
      }
      const names = { serviceName, namespace: (yield* ClusterSettings).injectorNamespace }
      // Registering the webhook means several replicas must share one CA: keep it in a Secret.
      return settings.registerWebhook === undefined
        ? ServingCertificate.layerSelfSigned(names)
        : ServingCertificate.layerSelfSignedShared({ ...names, secretName: `${serviceName}-tls` })
    })
  )

const registration = (serviceName: string) =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const configuration = (yield* ServerSettings).registerWebhook
      if (configuration === undefined) return
      const certificate = yield* ServingCertificate
      const caPem = yield* certificate.caPem
      if (caPem === undefined) return
      const service = { name: serviceName, namespace: (yield* ClusterSettings).injectorNamespace }
      yield* registerWebhook(configuration, caPem, service).pipe(
        // Serving goes on: the webhook may have been registered by another replica or by hand.
        Effect.catch((error) => Effect.logError(`cannot register the webhook: ${error.message}`))
      )
      // Then every CA the certificate is renewed with, for as long as the server runs.
      yield* keepWebhookRegistered(configuration, caPem, Stream.map(certificate.changes, (material) => material.caPem), service)
        .pipe(Effect.forkScoped)
    })
  )

/** Settings that are each valid but must not go together in a server. */
const refuseUnsafeSettings = Effect.gen(function*() {
  const problem = plainCredentialsProblem((yield* AdmissionSettings).credentialMode, (yield* ServerSettings).clientCaFile)
  if (problem !== undefined) return yield* Effect.fail(problem)
})

/** For `npm start`: one curl command that posts `reviewFile`, trusting the self-signed CA. */
const printExampleCurl = (reviewFile: string) =>
  Effect.gen(function*() {
    const settings = yield* ServerSettings
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
    // After the log lines so far, which wait to be written in a batch (observability/jsonLines.ts).
    const flushLogLines = yield* FlushLogLines
    flushLogLines()
    yield* Console.log(
      `curl ${trust} -H 'Content-Type: application/json' --data-binary @${reviewFile} https://${host}:${port}/inject`
    )
  })

export const serveCommand = Command.make(
  "serve",
  {
    settings: settingFlags([
      ...Object.values(serverSettings),
      ...Object.values(clusterSettings),
      ...Object.values(admissionSettings)
    ]),
    cluster: optionalString("cluster", "Serve from a folder of manifests held in memory instead of Kubernetes"),
    serviceName: serviceNameFlag,
    exampleCurl: optionalString("example-curl", "Print a curl command that posts this AdmissionReview file once serving")
  },
  Effect.fn(function*(flags) {
    // Each component reads its own settings; the server's, the cluster's and the pipeline's are read first, here.
    const settings = Layer.mergeAll(ServerSettings.layer, ClusterSettings.layer, AdmissionSettings.layer)
    type KubeLayer = Layer.Layer<KubeClient, KubeConfigError | ManifestError, ClusterSettings | FileSystem | Path>
    const kube: KubeLayer = Option.match(
      flags.cluster,
      {
        // Imported only when a real cluster is used: `--cluster` need not load the
        // HTTP client (undici) nor wait for it.
        onNone: () =>
          Layer.unwrap(Effect.map(Effect.promise(() => import("../cluster/KubeClientLive.ts")), (live) => live.layer)),
        onSome: (directory) => KubeClient.layerMemory.pipe(Layer.provide(MemoryCluster.layerFromDirectory(directory)))
      }
    )
    // admissionLayer passes the KubeClient through, observed: the shared self-signed CA and the registration use it too.
    // A server answers many admissions: it holds every namespace's existing-shares, kept current by a watch.
    const services = Layer.mergeAll(tlsLayer(flags.serviceName), ClientCa.layer, Readiness.layer).pipe(
      Layer.provideMerge(admissionLayer(kube, { watchShares: true }))
    )
    // The Secrets it may not get are told in the log and /readyz, as the filers list loads (cluster folder: all allowed).
    const server = Layer.mergeAll(webhookServerLayer, registration(flags.serviceName), secretAccessReview).pipe(
      Layer.provideMerge(services)
    )
    const logs = Layer.unwrap(
      Effect.map(load(logLevel.config), (level) =>
        Layer.mergeAll(
          // JSON lines on stdout, written in batches (observability/jsonLines.ts).
          layerBatchedJsonLines(),
          Layer.succeed(References.MinimumLogLevel, logLevels[level])
        ))
    )

    const serving = Effect.gen(function*() {
      if (Option.isSome(flags.exampleCurl)) yield* printExampleCurl(flags.exampleCurl.value)
      return yield* Effect.never
    }).pipe(Effect.provide(server))
    // Logged before the server starts, so it is the first line of the log.
    const deprecation = yield* DeprecatedInvocation
    const warnDeprecated = deprecation === undefined ? Effect.void : Effect.logWarning(deprecation)

    yield* Effect.andThen(warnDeprecated, Effect.andThen(refuseUnsafeSettings, serving)).pipe(
      // Outside the server: every request span goes to the tracer, and the last ones are flushed after it stops.
      Effect.provide(tracingLayerFromEnv()),
      Effect.provide(logs),
      Effect.provide(settings),
      Effect.provide(flagsOverEnvironment(flags.settings)),
      Effect.provide(NodeServices.layer),
      Effect.catch((error) => failWith(`${error._tag}: ${error.message}`, 1))
    )
  })
).pipe(Command.withDescription("Run the HTTPS admission webhook"))
