/**
 * The framework's floor: the webhook's HTTP stack (effect's HttpRouter over
 * `node:https`, as src/server/server.ts builds it) answering the fixed patch
 * that floor.ts answers: read the body as text, JSON.parse it, echo the uid.
 * Between floor.ts and the webhook, it tells what the framework costs and
 * what the pipeline costs.
 *
 *   node test/bench/frameworkFloor.ts --port N --cert FILE --key FILE --patch BASE64-FILE
 *
 * Listens on 127.0.0.1 only. `GET /readyz` answers 200.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as fs from "node:fs"
import type * as Http from "node:http"
import * as Https from "node:https"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    patch: { type: "string" }
  }
})
if (values.port === undefined || values.cert === undefined || values.key === undefined || values.patch === undefined) {
  process.stderr.write("usage: node test/bench/frameworkFloor.ts --port N --cert FILE --key FILE --patch FILE\n")
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

const routes = Layer.mergeAll(
  HttpRouter.add("*", "/inject", inject),
  HttpRouter.add("*", "/readyz", Effect.succeed(HttpServerResponse.text("ok\n")))
)

const server = Https.createServer({
  cert: fs.readFileSync(values.cert, "utf8"),
  key: fs.readFileSync(values.key, "utf8"),
  minVersion: "TLSv1.2",
  keepAliveTimeout: 30_000
})

const app = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provide(NodeHttpServer.layer(() => server as unknown as Http.Server, { port: Number(values.port), host: "127.0.0.1" }))
)

NodeRuntime.runMain(Layer.launch(app))
