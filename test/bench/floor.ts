/**
 * The floor of the benchmark: a bare `node:https` server that does the least
 * an admission webhook can do. It reads the body, parses the AdmissionReview,
 * and answers a fixed patch with the request's uid. No framework, no
 * validation, no cluster: what the webhook costs above this is ours.
 *
 *   node test/bench/floor.ts --port N --cert FILE --key FILE --patch BASE64-FILE [--kubeconfig FILE]
 *
 * With `--kubeconfig` (the fake API server's, test/bench/fakeApi.ts) it also
 * makes the webhook's reads before answering, and nothing else: the
 * namespace's `existing-shares`, then, concurrently, the Secret of each of its
 * SVMs that `filers-list` names (read once at start). That is the floor of a
 * webhook that looks its answer up in the cluster on this machine: the same
 * round trips, without authentication plugins, framework, retries, decoding
 * or rendering.
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
    patch: { type: "string" },
    kubeconfig: { type: "string" },
    "injector-namespace": { type: "string", default: "das" }
  }
})
if (values.port === undefined || values.cert === undefined || values.key === undefined || values.patch === undefined) {
  process.stderr.write("usage: node test/bench/floor.ts --port N --cert FILE --key FILE --patch FILE [--kubeconfig FILE] [--injector-namespace das]\n")
  process.exit(2)
}
const patch = fs.readFileSync(values.patch, "utf8").trim()

interface Kubeconfig {
  readonly clusters: ReadonlyArray<{ readonly cluster: { readonly server: string; readonly "certificate-authority"?: string } }>
  readonly users: ReadonlyArray<{ readonly user: { readonly token: string } }>
}

/**
 * The webhook's reads for a pod in a namespace, results dropped: its
 * `existing-shares`, then the Secrets of the SVMs that `filers-list` (read
 * once, here) names. Its modules load only here: the plain floor stays bare,
 * in CPU and in RSS.
 */
const lookUpWith = async (kubeconfigFile: string, injectorNamespace: string) => {
  const { Agent, request } = await import("undici")
  const { parse: parseYaml } = await import("yaml")
  const { secretNameFor } = await import("../../src/domain/names.ts")
  const config = parseYaml(fs.readFileSync(kubeconfigFile, "utf8")) as Kubeconfig
  const { server, "certificate-authority": caFile } = config.clusters[0]!.cluster
  // Kept-alive connections, at most 8, as the webhook's client (src/cluster/live/connections.ts): undici's
  // default Agent opens one per concurrent read, and under load that was 275–332 TLS handshakes in a
  // 20-second run (test/bench/RESULTS.md). An HTTPS API server (fakeApi.ts --tls): its CA, read once.
  const dispatcher = new Agent({
    connections: 8,
    ...(caFile === undefined ? {} : { connect: { ca: fs.readFileSync(caFile, "utf8") } })
  })
  const headers = { authorization: `Bearer ${config.users[0]!.user.token}`, accept: "application/json" }
  /** One object's JSON; undefined when not found. */
  const get = async (objectPath: string): Promise<{ data?: Record<string, string> } | undefined> => {
    const response = await request(`${server}/api/v1/namespaces/${objectPath}`, { headers, dispatcher })
    const text = await response.body.text()
    if (response.statusCode === 404) return undefined
    if (response.statusCode !== 200) throw new Error(`GET ${objectPath}: ${response.statusCode}`)
    return JSON.parse(text) as { data?: Record<string, string> }
  }
  const list = await get(`${injectorNamespace}/configmaps/filers-list`)
  const filers = new Set((JSON.parse(list?.data?.filers ?? "[]") as ReadonlyArray<{ vserver: string }>).map((filer) => filer.vserver))
  return async (namespace: string) => {
    const shares = await get(`${namespace}/configmaps/existing-shares`)
    const svms = Object.keys(shares?.data ?? {}).filter((svm) => filers.has(svm))
    await Promise.all(svms.map((svm) => get(`${namespace}/secrets/${secretNameFor(svm)}`)))
  }
}

const lookUp = values.kubeconfig === undefined ? undefined : await lookUpWith(values.kubeconfig, values["injector-namespace"])

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
    let namespace = ""
    try {
      const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request?: { uid?: unknown; namespace?: unknown } }
      uid = typeof review.request?.uid === "string" ? review.request.uid : ""
      namespace = typeof review.request?.namespace === "string" ? review.request.namespace : ""
    } catch {
      response.writeHead(400, { "content-type": "application/json" })
      response.end(`{"error":"body is not JSON"}`)
      return
    }
    const answer = () => {
      const body = JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: { uid, allowed: true, patchType: "JSONPatch", patch }
      })
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
      response.end(body)
    }
    if (lookUp === undefined) return answer()
    lookUp(namespace).then(answer, (error: unknown) => {
      response.writeHead(500, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }))
    })
  })
})

server.listen(Number(values.port), "127.0.0.1", () => {
  process.stdout.write(`floor listening on https://127.0.0.1:${values.port}\n`)
})
process.on("SIGTERM", () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
