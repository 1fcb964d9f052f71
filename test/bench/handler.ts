/**
 * The webhook's request handler in-process: the routes (src/server/routes.ts)
 * with everything the server wraps around an admission (the log line, the
 * metrics, the Event recorder, the bounds on requests in flight), called
 * through effect's web handler, without sockets or TLS. What `run.ts` sees
 * as "CPU per admission above the framework's floor" is measured here alone,
 * so that a change can be judged on a shared machine.
 *
 *   node test/bench/handler.ts [--iterations 20000] [--kinds full,noShares] > /dev/null
 *
 * The log lines go to stdout as in production (hence the redirect); the
 * figures go to stderr. Beside the webhook's routes, the framework's floor
 * (one route answering a fixed patch through the same web handler) and the
 * pipeline alone as a route (pipelineRoute.ts: no log line, metrics, Events
 * or limits): what the webhook's route adds is the difference.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { parseArgs } from "node:util"
import { memoryAdmissionLayer } from "../../src/admission/layers.ts"
import { Readiness } from "../../src/server/Readiness.ts"
import { layerBatchedJsonLines } from "../../src/observability/jsonLines.ts"
import { routes } from "../../src/server/routes.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"
import { pipelineSettings, readManifestFolder } from "../support/pipelineHarness.ts"
import { cpuMicros, exampleClusterDir, type ReviewKind, reviewKinds, reviewObject } from "./lib.ts"
import { pipelineAlone } from "./pipelineRoute.ts"

const { values: flags } = parseArgs({
  options: {
    iterations: { type: "string", default: "20000" },
    kinds: { type: "string", default: reviewKinds.join(",") }
  }
})
const iterations = Math.max(100, Math.min(1_000_000, Number(flags.iterations)))
const kinds = flags.kinds.split(",") as Array<ReviewKind>

const webhook = routes(Effect.succeed(true)).pipe(
  Layer.provideMerge(Layer.mergeAll(ServerSettings.layer, Readiness.layer)),
  Layer.provideMerge(memoryAdmissionLayer(readManifestFolder(exampleClusterDir))),
  Layer.provideMerge(pipelineSettings()),
  Layer.provideMerge(layerBatchedJsonLines()),
  Layer.provideMerge(NodeServices.layer)
)

const pipelineOnly = HttpRouter.add("*", "/inject", pipelineAlone).pipe(
  Layer.provideMerge(memoryAdmissionLayer(readManifestFolder(exampleClusterDir))),
  Layer.provideMerge(pipelineSettings()),
  Layer.provideMerge(NodeServices.layer)
)

const fixedPatch = "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2EiLCJ2YWx1ZSI6MX1d"
const framework = HttpRouter.add(
  "*",
  "/inject",
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const review = JSON.parse(yield* request.text) as { request?: { uid?: unknown } }
    const uid = typeof review.request?.uid === "string" ? review.request.uid : ""
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid, allowed: true, patchType: "JSONPatch", patch: fixedPatch }
    })
    return HttpServerResponse.text(body, { status: 200, contentType: "application/json" })
  }).pipe(Effect.orDie)
)

const post = (body: string) =>
  new Request("http://127.0.0.1/inject", {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
    body
  })

/** CPU µs per request through `handler`, after a warm-up of a tenth of the iterations, one request at a time. */
const measure = async (handler: (request: Request) => Promise<Response>, body: string) => {
  const once = async () => {
    const response = await handler(post(body))
    if (response.status !== 200) throw new Error(`answered ${response.status}: ${await response.text()}`)
    await response.text()
  }
  for (let i = 0; i < iterations / 10; i++) await once()
  const start = cpuMicros()
  for (let i = 0; i < iterations; i++) await once()
  return (cpuMicros() - start) / iterations
}

const out = (line: string) => process.stderr.write(`${line}\n`)
const us = (value: number) => `${value.toFixed(1).padStart(8)} µs`

const main = async () => {
  out(`${iterations} requests per figure, one at a time, CPU µs per request, Node ${process.version}`)
  const floor = HttpRouter.toWebHandler(framework, { disableLogger: true })
  const ours = HttpRouter.toWebHandler(webhook, { disableLogger: true })
  const pipeline = HttpRouter.toWebHandler(pipelineOnly, { disableLogger: true })
  // Wait for the configuration watch to load (the first answers would otherwise be "not loaded").
  for (let i = 0; i < 100; i++) {
    const response = await ours.handler(new Request("http://127.0.0.1/readyz"))
    if (response.status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  for (const kind of kinds) {
    const body = JSON.stringify(reviewObject(kind))
    out(
      `  ${kind.padEnd(12)} framework floor ${us(await measure(floor.handler, body))}   ` +
        `pipeline alone ${us(await measure(pipeline.handler, body))}   webhook ${us(await measure(ours.handler, body))}`
    )
  }
  await pipeline.dispose()
  await ours.dispose()
  await floor.dispose()
}

main().catch((error: unknown) => {
  out(`handler bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  process.exit(1)
})
