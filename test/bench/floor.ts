/**
 * The floor of the benchmark: a bare `node:https` server that does the least
 * an admission webhook can do. It reads the body, parses the AdmissionReview,
 * and answers a fixed patch with the request's uid. No framework, no
 * validation, no cluster: what the webhook costs above this is ours.
 *
 *   node test/bench/floor.ts --port N --cert FILE --key FILE --patch BASE64-FILE
 *
 * Listens on 127.0.0.1 only. `GET /readyz` answers 200.
 */
import * as fs from "node:fs"
import * as https from "node:https"
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
  process.stderr.write("usage: node test/bench/floor.ts --port N --cert FILE --key FILE --patch FILE\n")
  process.exit(2)
}
const patch = fs.readFileSync(values.patch, "utf8").trim()

const server = https.createServer({
  cert: fs.readFileSync(values.cert, "utf8"),
  key: fs.readFileSync(values.key, "utf8"),
  minVersion: "TLSv1.2",
  keepAliveTimeout: 30_000
}, (request, response) => {
  if (request.url === "/readyz") {
    response.end("ok\n")
    return
  }
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    let uid = ""
    try {
      const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request?: { uid?: unknown } }
      uid = typeof review.request?.uid === "string" ? review.request.uid : ""
    } catch {
      response.writeHead(400, { "content-type": "application/json" })
      response.end(`{"error":"body is not JSON"}`)
      return
    }
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid, allowed: true, patchType: "JSONPatch", patch }
    })
    response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    response.end(body)
  })
})

server.listen(Number(values.port), "127.0.0.1", () => {
  process.stdout.write(`floor listening on https://127.0.0.1:${values.port}\n`)
})
process.on("SIGTERM", () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
