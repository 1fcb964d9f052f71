/**
 * The framework's floor: the webhook's HTTP stack (effect's HttpRouter over
 * `node:https`, as src/server/server.ts builds it) answering the fixed patch
 * that floor.ts answers: read the body as text, JSON.parse it, echo the uid.
 * Between floor.ts and the webhook, it tells what the framework costs and
 * what the pipeline costs.
 *
 * With `--pipeline CLUSTER-DIR` it answers with the admission pipeline itself
 * (src/admission/pipeline.ts `admit`, the cluster folder in memory, the
 * default settings) and nothing the server wraps around it: no log line, no
 * metrics, no Events, no bound on requests in flight. That is the floor of
 * a webhook whose pipeline is one Effect program behind effect's HttpRouter,
 * the shape the owner asked for: what the webhook costs above it is the
 * server's observability and limits.
 *
 *   node test/bench/frameworkFloor.ts --port N --cert FILE --key FILE --patch BASE64-FILE [--pipeline CLUSTER-DIR]
 *
 * Listens on 127.0.0.1 only. `GET /readyz` answers 200 (with `--pipeline`,
 * once the configuration is loaded).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, References } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as fs from "node:fs"
import type * as Http from "node:http"
import * as Https from "node:https"
import { parseArgs } from "node:util"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import { pipelineSettings, readManifestFolder } from "../support/pipelineHarness.ts"
import { pipelineAlone } from "./pipelineRoute.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    patch: { type: "string" },
    pipeline: { type: "string" }
  }
})
if (values.port === undefined || values.cert === undefined || values.key === undefined || values.patch === undefined) {
  process.stderr.write("usage: node test/bench/frameworkFloor.ts --port N --cert FILE --key FILE --patch FILE [--pipeline CLUSTER-DIR]\n")
  process.exit(2)
}
const patch = fs.readFileSync(values.patch, "utf8").trim()

const inject = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const text = yield* request.text
  const review = JSON.parse(text) as { request?: { uid?: unknown } }
  const uid = typeof review.request?.uid === "string" ? review.request.uid : ""
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid, allowed: true, patchType: "JSONPatch", patch }
  })
  return HttpServerResponse.text(body, { status: 200, contentType: "application/json" })
}).pipe(Effect.orDie)

const readyz = HttpRouter.add("*", "/readyz", Effect.succeed(HttpServerResponse.text("ok\n")))

const pipelineRoutes = Layer.mergeAll(
  HttpRouter.add("*", "/inject", pipelineAlone),
  // Ready once the configuration is loaded, as the webhook.
  HttpRouter.add(
    "*",
    "/readyz",
    Effect.gen(function*() {
      const ready = yield* (yield* ClusterConfig).ready
      return ready ? HttpServerResponse.text("ok\n") : HttpServerResponse.text("not ready\n", { status: 503 })
    })
  )
)

/**
 * The admission's services as `serve --cluster` builds them (existing-shares from the watch-fed
 * cache): the cluster folder in memory, the default settings, nothing logged.
 */
const pipelineServices = (clusterDir: string) =>
  memoryAdmissionLayer(readManifestFolder(clusterDir), { watchShares: true }).pipe(
    Layer.provideMerge(pipelineSettings()),
    Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "None"))
  )

const server = Https.createServer({
  cert: fs.readFileSync(values.cert, "utf8"),
  key: fs.readFileSync(values.key, "utf8"),
  minVersion: "TLSv1.2",
  keepAliveTimeout: 30_000
})

const listening = NodeHttpServer.layer(() => server as unknown as Http.Server, { port: Number(values.port), host: "127.0.0.1" })
const serveOptions = { disableLogger: true, disableListenLog: true } as const

const app = values.pipeline === undefined
  ? HttpRouter.serve(Layer.mergeAll(HttpRouter.add("*", "/inject", inject), readyz), serveOptions).pipe(
    Layer.provide(listening)
  )
  : HttpRouter.serve(pipelineRoutes, serveOptions).pipe(
    Layer.provide(listening),
    Layer.provide(pipelineServices(values.pipeline))
  )

NodeRuntime.runMain(Layer.launch(app))
