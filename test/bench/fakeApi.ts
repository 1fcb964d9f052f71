/**
 * The fake Kubernetes API server (test/support/fakeApiServer.ts) as a process
 * of its own, so the benchmark's load generator and the webhook do not share
 * its event loop. Holds the example cluster, adds `--latency-ms` to every
 * request, writes a kubeconfig pointing at it, and prints one line when ready:
 *
 *   node test/bench/fakeApi.ts --kubeconfig FILE [--latency-ms 2] [--cluster DIR]
 *   → fake API listening on http://127.0.0.1:PORT
 *
 * Listens on 127.0.0.1 only. Stops on SIGTERM.
 */
import { parseArgs } from "node:util"
import { readManifestFolder } from "../support/pipelineHarness.ts"
import { FakeApiServer } from "../support/fakeApiServer.ts"
import { exampleClusterDir } from "./lib.ts"

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    "latency-ms": { type: "string", default: "0" },
    cluster: { type: "string", default: exampleClusterDir }
  }
})
if (values.kubeconfig === undefined) {
  process.stderr.write("usage: node test/bench/fakeApi.ts --kubeconfig FILE [--latency-ms N] [--cluster DIR]\n")
  process.exit(2)
}

const api = await FakeApiServer.start({ objects: readManifestFolder(values.cluster) })
api.setLatency(Number(values["latency-ms"]))
api.writeKubeconfig(values.kubeconfig)
process.stdout.write(`fake API listening on ${api.url}\n`)

// The server logs every request for tests to inspect; under load that log only grows.
const report = setInterval(() => api.clearRequests(), 1000)

process.on("SIGTERM", () => {
  clearInterval(report)
  void api.close().then(() => process.exit(0))
})
