/**
 * The image run by the Go injector's Deployment: its arguments
 * (`-service-name=filer-sidecar-injector -sidecar-config-file=...`, no
 * subcommand) start the server as the Go injector ran, against the API
 * server of a kubeconfig (here the fake one) with the Go injector's objects
 * and rights: no CA Secret, and Secrets may be read but not written, so the
 * CA is kept in memory. The
 * webhook configuration the Go injector left gets the new CA, the template
 * comes from the file and follows its changes, and one warning names
 * today's command line. Then the same through the Dockerfile's ENTRYPOINT.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { FakeApiServer, type JsonObject } from "../support/fakeApiServer.ts"
import { execForm, instructions, readStages } from "../support/dockerfile.ts"
import { exampleClusterObjects, exampleReview, exampleTemplate, repoRoot } from "../support/pipelineHarness.ts"
import {
  jsonLogs,
  postReview,
  request,
  type ServeProcess,
  spawnListening,
  tempDirectory,
  waitUntil
} from "../support/serverHarness.ts"

/** The Go Deployment's arguments; only the template's path differs (the Deployment mounts it at /etc/webhook/config). */
const goArgs = (templateFile: string) => ["-service-name=filer-sidecar-injector", `-sidecar-config-file=${templateFile}`]
const goDeploymentArgs = goArgs("/etc/webhook/config/sidecarconfig.json")

const webhookConfigurationName = "filer-sidecar-injector-webhook"

/** The MutatingWebhookConfiguration as the Go injector registered it (cmd/webhookconfig.go), with its own CA. */
const goWebhookConfiguration = (): JsonObject => ({
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
  metadata: { name: webhookConfigurationName },
  webhooks: [{
    name: "filer-sidecar-injector.das-zone.statcan",
    admissionReviewVersions: ["v1", "v1beta1"],
    sideEffects: "None",
    clientConfig: {
      caBundle: Buffer.from("-----BEGIN CERTIFICATE-----\nR08tQ0E=\n-----END CERTIFICATE-----\n").toString("base64"),
      service: { name: "filer-sidecar-injector", namespace: "das", path: "/inject" }
    },
    rules: [{ operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
    namespaceSelector: { matchLabels: { "filer-sidecar-injection": "enabled" } },
    failurePolicy: "Fail"
  }]
})

type Webhook = { clientConfig: { caBundle: string }; rules: Array<{ operations: Array<string> }> }
const webhooksIn = (api: FakeApiServer) =>
  (api.get("mutatingwebhookconfigurations", "", webhookConfigurationName)?.webhooks ?? []) as Array<Webhook>
const caBundlePem = (api: FakeApiServer) => Buffer.from(webhooksIn(api)[0]!.clientConfig.caBundle, "base64").toString("utf8")

const templateWithImage = (image: string) => {
  const template = exampleTemplate()
  template.containers[0]!.image = image
  return JSON.stringify(template)
}

/** The patch of an answer to the example review, as text. */
const patchOf = async (serve: ServeProcess, ca: string) => {
  const reply = await postReview({ port: serve.port, ca, review: exampleReview() })
  const answer = JSON.parse(reply.body) as { response: { patch?: string } }
  return Buffer.from(answer.response.patch ?? "", "base64").toString("utf8")
}

const logMessages = (serve: ServeProcess) => jsonLogs(serve.stdout)
const warningsMatching = (serve: ServeProcess, pattern: RegExp) =>
  logMessages(serve).filter((line) => line.level === "WARN" && pattern.test(line.message))

const running: Array<ServeProcess> = []
afterEach(async () => {
  for (const serve of running.splice(0)) await serve.kill()
})

describe("the image under the Go injector's Deployment", () => {
  let api: FakeApiServer
  let kubeconfig: string
  beforeAll(async () => {
    api = await FakeApiServer.start({ objects: exampleClusterObjects() as Array<JsonObject> })
    // The Go injector's ClusterRole: get on Secrets, no create or update. (Its manifests have no CA Secret.)
    api.respondWith(403, { method: "POST", path: "/secrets" })
    api.respondWith(403, { method: "PUT", path: "/secrets" })
    kubeconfig = path.join(tempDirectory("go-kubeconfig"), "config")
    api.writeKubeconfig(kubeconfig)
  })
  afterAll(() => api?.close())

  /** The pod's environment: no in-cluster credentials here, the kubeconfig instead; PORT 0 as the Go args set none. */
  const env = () => ({
    KUBECONFIG: kubeconfig,
    KUBERNETES_SERVICE_HOST: "",
    POD_NAMESPACE: "das",
    HOST: "127.0.0.1",
    PORT: "0",
    SHUTDOWN_DELAY_MS: "0",
    SHUTDOWN_GRACE_MS: "1000"
  })

  it("serves: its CA registered in the Go webhook configuration, the template from the file and its changes", async () => {
    api.put(goWebhookConfiguration())
    const templateFile = path.join(tempDirectory("go-template"), "sidecarconfig.json")
    fs.writeFileSync(templateFile, templateWithImage("registry.example/from-go-file:1"))

    const serve = await spawnListening([process.execPath, path.join(repoRoot, "src", "bin.ts"), ...goArgs(templateFile)], env(), 90_000)
    running.push(serve)

    // The CA it generated replaced the Go injector's in the caBundle; the rest of the configuration is kept.
    await waitUntil(() => !caBundlePem(api).includes("R08tQ0E="), "the caBundle to be replaced", 10_000)
    const ca = caBundlePem(api)
    expect(webhooksIn(api)[0]!.rules[0]!.operations).toEqual(["CREATE", "UPDATE"])
    // A client trusting only the caBundle, as the kube-apiserver does, reaches it.
    expect((await request({ port: serve.port, ca, path: "/healthz" })).status).toBe(200)
    await waitUntil(async () => (await request({ port: serve.port, ca, path: "/readyz" })).status === 200, "ready", 10_000)

    // The template is the file's, not the ConfigMap filer-sidecar-injector-json's.
    const patch = await patchOf(serve, ca)
    expect(patch).toContain("registry.example/from-go-file:1")
    expect(patch).not.toContain("mfcp-proxy-goofys")

    fs.writeFileSync(`${templateFile}.tmp`, templateWithImage("registry.example/from-go-file:2"))
    fs.renameSync(`${templateFile}.tmp`, templateFile)
    await waitUntil(async () => (await patchOf(serve, ca)).includes("registry.example/from-go-file:2"), "the changed file", 10_000)

    // The CA stayed in memory: no Secret, and one warning saying what that means.
    expect(api.get("secrets", "das", "filer-sidecar-injector-tls")).toBeUndefined()
    expect(warningsMatching(serve, /filer-sidecar-injector-tls \(it does not exist\).*in memory.*replicas will not share a CA/).length)
      .toBe(1)
    const deprecations = warningsMatching(serve, /deprecated/)
    expect(deprecations.map((line) => line.message)).toEqual([
      "the Go injector's arguments are deprecated; this runs `filer-sidecar-injector serve --service-name " +
      `filer-sidecar-injector --sidecar-config-file ${templateFile} --register-webhook filer-sidecar-injector-webhook\`, ` +
      "use that instead (README: \"Migrating from the Go injector\")"
    ])
    expect(logMessages(serve)[0]!.message).toBe(deprecations[0]!.message)

    serve.child.kill("SIGTERM")
    expect(await serve.exited).toEqual({ code: 0, signal: null })
    expect(serve.stdout.concat(serve.stderr).join("\n")).not.toMatch(/FAKE-(ACCESS|SECRET)|PRIVATE KEY/)
  }, 120_000)

  it("through the Dockerfile's ENTRYPOINT with the Go Deployment's exact arguments", async () => {
    api.remove("mutatingwebhookconfigurations", "", webhookConfigurationName)
    const final = readStages(fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8")).at(-1)!
    const entrypoint = execForm(instructions(final, "ENTRYPOINT").at(-1)!)
    expect(entrypoint[0]).toBe("node")
    // The image's environment (NODE_ENV, NODE_OPTIONS), its compile cache moved out of /app.
    const imageEnv = Object.fromEntries(
      instructions(final, "ENV").map((value) => /^(\w+)[= ]"?(.*?)"?$/.exec(value)!).map((match) => [match[1]!, match[2]!])
    )
    const serve = await spawnListening(
      [entrypoint[0]!, ...entrypoint.slice(1), ...goDeploymentArgs],
      {
        ...imageEnv,
        NODE_COMPILE_CACHE: path.join(tempDirectory("go-compile-cache"), "cache"),
        PATH: `${path.join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
        ...env()
      },
      90_000
    )
    running.push(serve)

    // Registered (created, as the Go injector did when none existed) and serving...
    await waitUntil(() => webhooksIn(api).length === 1, "the webhook configuration to be created", 10_000)
    const ca = caBundlePem(api)
    expect((await request({ port: serve.port, ca, path: "/healthz" })).status).toBe(200)
    // ...but not ready: there is no /etc/webhook/config here, and the problem names the file.
    const readyz = await request({ port: serve.port, ca, path: "/readyz" })
    expect(readyz.status).toBe(503)
    expect(warningsMatching(serve, /deprecated/).length).toBe(1)
    expect(logMessages(serve).some((line) => line.message.includes("file /etc/webhook/config/sidecarconfig.json not found"))).toBe(
      true
    )
  }, 120_000)
})
