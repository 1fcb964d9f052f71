/**
 * The admission pipeline alone as an HTTP route: the body read as text,
 * `admit` (src/admission/pipeline.ts), the answer as JSON. None of what the
 * webhook's route adds around it (src/server/routes.ts): no log line, no
 * metrics, no Events, no bound on requests in flight, no checks of the
 * method or the content type. The floor of a webhook whose pipeline is one
 * Effect program behind effect's HttpRouter (frameworkFloor.ts --pipeline,
 * handler.ts).
 */
import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { admit, parseJson } from "../../src/admission/pipeline.ts"

export const pipelineAlone = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const input = yield* parseJson(yield* request.text)
  const { review } = yield* admit(input)
  return HttpServerResponse.text(JSON.stringify(review), { status: 200, contentType: "application/json" })
}).pipe(Effect.orDie)
