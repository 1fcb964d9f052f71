/**
 * `serve` as it runs in a cluster: a child process finding the API server
 * through KUBECONFIG (here the fake API server), its configuration watched,
 * answering over HTTPS. Readiness follows the configuration; the answer is
 * byte for byte the one `review --cluster` gives for the same objects; a
 * changed filers-list is used without a restart; in the self-signed mode the
 * CA is written into the Secret the manifests ship empty and registered as
 * the webhook's caBundle.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { FakeApiServer, type JsonObject } from "../support/fakeApiServer.ts"
import {
  exampleClusterDir,
  exampleClusterObjects,
  exampleReview,
  exampleReviewFile,
  repoRoot
} from "../support/pipelineHarness.ts"
import {
  jsonLogs,
  postReview,
  request,
  type ServeProcess,
  spawnServe,
  tempDirectory,
  waitUntil,
  writeServingPair
} from "../support/serverHarness.ts"

const isInjectorConfig = (object: JsonObject) => (object.metadata as { namespace?: string }).namespace === "das"
const objectNamed = (name: string) =>
  exampleClusterObjects().find((object) => (object.metadata as { name: string }).name === name) as JsonObject

/** A kubeconfig file for the fake API server, as `kubectl` would read it. */
const writeKubeconfig = (api: FakeApiServer): string => {
  const file = path.join(tempDirectory("kubeconfig"), "config")
  api.writeKubeconfig(file)
  return file
}

/** The environment of a process outside any pod, using `kubeconfig`. */
const liveEnv = (kubeconfig: string) => ({
  KUBECONFIG: kubeconfig,
  KUBERNETES_SERVICE_HOST: "",
  SHUTDOWN_DELAY_MS: "0",
  SHUTDOWN_GRACE_MS: "1000"
})

const running: Array<ServeProcess> = []
afterEach(async () => {
  for (const serve of running.splice(0)) await serve.kill()
})

describe("serve against a live API server (KUBECONFIG → fake API server)", () => {
  let api: FakeApiServer
  beforeAll(async () => {
    api = await FakeApiServer.start({ objects: exampleClusterObjects().filter((o) => !isInjectorConfig(o as JsonObject)) as Array<JsonObject> })
  })
  afterAll(() => api?.close())

  it("not ready until its configuration exists, then answers as `review --cluster` does, and follows changes", async () => {
    const pair = await writeServingPair(tempDirectory("live-tls"))
    const [serve, printed] = await Promise.all([
      spawnServe(["--tls-cert", pair.certFile, "--tls-key", pair.keyFile], liveEnv(writeKubeconfig(api))),
      promisify(execFile)(
        process.execPath,
        [path.join(repoRoot, "src", "bin.ts"), "review", "--cluster", exampleClusterDir, exampleReviewFile],
        { cwd: repoRoot, encoding: "utf8" }
      )
    ])
    running.push(serve)
    const ca = pair.caPem

    const notReady = await request({ port: serve.port, ca, path: "/readyz" })
    expect(notReady.status).toBe(503)
    expect(notReady.body).toMatch(/cluster configuration/)
    const denied = JSON.parse((await postReview({ port: serve.port, ca, review: exampleReview() })).body)
    expect(denied.response.allowed).toBe(false)
    expect(denied.response.status.message).toMatch(/ConfigMap das\/filers-list/)

    api.put(objectNamed("filers-list"))
    api.put(objectNamed("filer-sidecar-injector-json"))
    await waitUntil(async () => (await request({ port: serve.port, ca, path: "/readyz" })).status === 200, "ready", 5000)

    const reply = await postReview({ port: serve.port, ca, review: fs.readFileSync(exampleReviewFile) })
    expect(reply.status).toBe(200)
    expect(reply.body).toBe(printed.stdout.slice(0, -1))

    const moved = structuredClone(objectNamed("filers-list"))
    const data = moved.data as Record<string, string>
    data.filers = data.filers.replace("https://fld5filersvm.filers.example.internal", "https://fld5-moved.filers.example.internal")
    api.put(moved)
    await waitUntil(async () => {
      const answer = JSON.parse((await postReview({ port: serve.port, ca, review: exampleReview() })).body)
      return Buffer.from(answer.response.patch ?? "", "base64").toString("utf8").includes("fld5-moved.filers.example.internal")
    }, "the changed filers-list to be used", 5000)

    serve.child.kill("SIGTERM")
    expect(await serve.exited).toEqual({ code: 0, signal: null })
    expect(serve.stdout.concat(serve.stderr).join("\n")).not.toMatch(/FAKE-(ACCESS|SECRET)|PRIVATE KEY/)
  })

  it("says in its log and /readyz which connection Secrets it may not get, and stays ready", async () => {
    api.put(objectNamed("filers-list"))
    api.put(objectNamed("filer-sidecar-injector-json"))
    // The ClusterRole lacks fld9's Secret, as after adding a filer without `rbac`.
    api.allowAccess((question) => question.name !== "fld9filersvm-conn-secret")
    try {
      const pair = await writeServingPair(tempDirectory("live-tls"))
      const serve = await spawnServe(["--tls-cert", pair.certFile, "--tls-key", pair.keyFile], liveEnv(writeKubeconfig(api)))
      running.push(serve)
      const readyz = () => request({ port: serve.port, ca: pair.caPem, path: "/readyz" })
      await waitUntil(async () => (await readyz()).body.includes("warning"), "the warning in /readyz", 10_000)
      const ready = await readyz()
      expect(ready.status).toBe(200)
      expect(ready.body).toBe("ok\nwarning: may not get secrets fld9filersvm-conn-secret (rbac: re-run `filer-sidecar-injector rbac`)\n")
      const warnings = () => jsonLogs(serve.stdout).filter((line) => line.message.startsWith("may not get secrets"))
      // The log lines are written in batches, at most 50 ms late (src/observability/jsonLines.ts).
      await waitUntil(() => warnings().length > 0, "the warning in the log", 2000)
      const warned = warnings()
      expect(warned.map((line) => line.level)).toEqual(["WARN"])
      expect(warned[0]!.message).toContain("fld9filersvm-conn-secret")
    } finally {
      api.allowAccess(() => true)
    }
  })

  it("self-signed with --register-webhook: the CA kept in a Secret is registered as the caBundle and signs what is served", async () => {
    const args = ["--register-webhook", "filer-sidecar-injector-webhook"]
    // One replica: two starting at once and sharing the Secret is test/server/sharedCa.test.ts's (and RSA 4096 is slow).
    // The Secret as the self-signed overlay ships it: empty, for the server to fill.
    api.put(parse(fs.readFileSync(path.join(repoRoot, "manifests/overlays/self-signed/ca-secret.yaml"), "utf8")) as JsonObject)
    const serve = await spawnServe(args, liveEnv(writeKubeconfig(api)), 30_000)
    running.push(serve)

    const secret = api.get("secrets", "das", "filer-sidecar-injector-tls")
    expect(secret).toBeDefined()
    const caPem = Buffer.from((secret!.data as Record<string, string>)["ca.crt"]!, "base64").toString("utf8")
    await waitUntil(
      () => api.get("mutatingwebhookconfigurations", "", "filer-sidecar-injector-webhook") !== undefined,
      "the webhook to be registered",
      5000
    )
    const webhook = api.get("mutatingwebhookconfigurations", "", "filer-sidecar-injector-webhook")!
    const hooks = webhook.webhooks as Array<{ clientConfig: { caBundle: string; service: { path: string } } }>
    expect(hooks.length).toBe(1)
    expect(Buffer.from(hooks[0]!.clientConfig.caBundle, "base64").toString("utf8")).toBe(caPem)
    expect(hooks[0]!.clientConfig.service.path).toBe("/inject")

    // A client trusting only the caBundle (as the kube-apiserver does) reaches the webhook.
    const reply = await postReview({ port: serve.port, ca: caPem, review: exampleReview() })
    expect(reply.status).toBe(200)
    expect(serve.stdout.join("\n")).not.toMatch(/PRIVATE KEY/)
  })
})
