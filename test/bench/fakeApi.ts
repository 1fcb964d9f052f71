/**
 * The fake Kubernetes API server (test/support/fakeApiServer.ts) as a process
 * of its own, so the benchmark's load generator and the webhook do not share
 * its event loop. Holds the example cluster, adds `--latency-ms` to every
 * request, writes a kubeconfig pointing at it, and prints one line when ready:
 *
 *   node test/bench/fakeApi.ts --kubeconfig FILE [--latency-ms 2] [--cluster DIR] [--tls]
 *   → fake API listening on http://127.0.0.1:PORT
 *
 * `--tls` serves HTTPS, as a real API server does, with a CA of its own
 * written beside the kubeconfig (FILE.ca.crt) and named by it, as a pod's
 * service account has its ca.crt.
 *
 * On SIGUSR2 it prints how many connections it has accepted since start and
 * how many are open. Listens on 127.0.0.1 only. Stops on SIGTERM.
 */
import { Effect } from "effect"
import { parseArgs } from "node:util"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { readManifestFolder } from "../support/pipelineHarness.ts"
import { FakeApiServer } from "../support/fakeApiServer.ts"
import { exampleClusterDir } from "./lib.ts"

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    "latency-ms": { type: "string", default: "0" },
    cluster: { type: "string", default: exampleClusterDir },
    tls: { type: "boolean", default: false }
  }
})
if (values.kubeconfig === undefined) {
  process.stderr.write("usage: node test/bench/fakeApi.ts --kubeconfig FILE [--latency-ms N] [--cluster DIR] [--tls]\n")
  process.exit(2)
}

const tls = values.tls
  ? await Effect.runPromise(generateSelfSigned({ serviceName: "kubernetes", namespace: "default", caKeyBits: 2048, leafKeyBits: 2048 }))
  : undefined
const api = await FakeApiServer.start({ objects: readManifestFolder(values.cluster), ...(tls === undefined ? {} : { tls }) })
api.setLatency(Number(values["latency-ms"]))
api.writeKubeconfig(values.kubeconfig, tls === undefined ? {} : { caFile: `${values.kubeconfig}.ca.crt` })
process.stdout.write(`fake API listening on ${api.url}\n`)

// The server logs every request for tests to inspect; under load that log only grows.
const report = setInterval(() => api.clearRequests(), 1000)

// The bench asks how many connections its clients opened (each TLS one cost a handshake).
process.on("SIGUSR2", () => {
  process.stdout.write(`connections accepted ${api.connectionsAccepted}, open ${api.openConnections}\n`)
})

process.on("SIGTERM", () => {
  clearInterval(report)
  void api.close().then(() => process.exit(0))
})
