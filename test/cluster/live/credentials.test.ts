/**
 * How the live client authenticates (src/cluster/live/credentials.ts,
 * execCredential.ts): bearer tokens from the kubeconfig, from a token file the
 * kubelet rotates, from an exec plugin; a CA file rotated without a restart;
 * client certificates. Against the fake API server, or a small HTTPS server
 * that asks for a client certificate.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TLSSocket } from "node:tls"
import { ClusterSettings } from "../../../src/cluster/ClusterSettings.ts"
import { KubeClient, type KubeClientShape } from "../../../src/cluster/KubeClient.ts"
import { type KubeConfig, layerFromKubeConfig } from "../../../src/cluster/KubeClientLive.ts"
import { PrepareError } from "../../../src/cluster/live/classify.ts"
import { makeCredentials } from "../../../src/cluster/live/credentials.ts"
import { type GeneratedMaterial, generateSelfSigned } from "../../../src/server/tls/selfSigned.ts"
import { makeTestCa } from "../../support/clientCertificates.ts"
import { FakeApiServer } from "../../support/fakeApiServer.ts"

const filersList = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "filers-list", namespace: "das" },
  data: { filers: "one" }
}

const temporary = () => fs.mkdtempSync(path.join(os.tmpdir(), "credentials-test-"))

let pairs: Promise<readonly [GeneratedMaterial, GeneratedMaterial]> | undefined
/** The fake API server's certificate pair, and another CA's. */
const tlsPairs = () => (pairs ??= Effect.runPromise(Effect.all([
  generateSelfSigned({ serviceName: "fake-api", namespace: "kube-system", caKeyBits: 2048, leafKeyBits: 2048 }),
  generateSelfSigned({ serviceName: "someone-else", namespace: "kube-system", caKeyBits: 2048, leafKeyBits: 2048 })
], { concurrency: 2 })))

const startApi = (options: Parameters<typeof FakeApiServer.start>[0] = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => FakeApiServer.start({ objects: [filersList], ...options })),
    (api) => Effect.promise(() => api.close())
  )

/** Runs `use` with a live client over `kc` (files read again at every request unless `refreshMillis`). */
const withClient = <A, E>(kc: KubeConfig, use: (client: KubeClientShape) => Effect.Effect<A, E>, refreshMillis = 0) =>
  Effect.provide(
    KubeClient.use(use),
    layerFromKubeConfig(kc, { refreshMillis }).pipe(
      Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.seconds(5) }))
    )
  )

const readFilers = (client: KubeClientShape) => Effect.map(client.getConfigMap("das", "filers-list"), (cm) => cm.data.filers)

describe("credentials", () => {
  const kc = (user: KubeConfig["user"], trust: KubeConfig["trust"] = {}): KubeConfig => ({
    server: "https://api.example.test",
    trust,
    user
  })

  it.effect("a token, else basic auth; impersonation; nothing for an anonymous user", () =>
    Effect.promise(async () => {
      const headersOf = async (user: KubeConfig["user"]) => (await makeCredentials(kc(user)).current()).headers
      assert.deepStrictEqual(await headersOf({ token: "t", username: "u", password: "p" }), { authorization: "Bearer t" })
      assert.deepStrictEqual(await headersOf({ username: "u", password: "p", impersonate: "jane" }), {
        authorization: `Basic ${Buffer.from("u:p").toString("base64")}`,
        "impersonate-user": "jane"
      })
      assert.deepStrictEqual(await headersOf({}), {})
    }))

  it.effect("the TLS material keeps its identity until a file's content changes", () =>
    Effect.promise(async () => {
      const folder = temporary()
      const caFile = path.join(folder, "ca.crt")
      fs.writeFileSync(caFile, "first CA")
      const credentials = makeCredentials(kc({}, { caFile, tlsServerName: "kubernetes" }), 0)
      const first = (await credentials.current()).tls
      assert.deepStrictEqual(first, { ca: "first CA", servername: "kubernetes", rejectUnauthorized: true })
      assert.strictEqual((await credentials.current()).tls, first)
      fs.writeFileSync(caFile, "second CA")
      assert.strictEqual((await credentials.current()).tls.ca, "second CA")
    }))

  it.effect("a missing file is the configuration's fault, named by its path", () =>
    Effect.promise(async () => {
      const tokenFile = path.join(temporary(), "absent-token")
      const error = await makeCredentials(kc({ tokenFile })).current().catch((error: unknown) => error)
      assert.instanceOf(error, PrepareError)
      assert.strictEqual((error as PrepareError).message, `cannot read the token file ${tokenFile} (ENOENT)`)
    }))
})

describe("a token file (a pod's service-account token, rotated by the kubelet)", () => {
  it.live("is read again after a 401, so a rotated token is used at once", () =>
    Effect.gen(function*() {
      const api = yield* startApi({ token: "rotated-token" })
      const tokenFile = path.join(temporary(), "token")
      fs.writeFileSync(tokenFile, "expired-token\n")
      const kc: KubeConfig = { server: api.url, trust: {}, user: { tokenFile } }
      yield* withClient(kc, (client) =>
        Effect.gen(function*() {
          const refused = yield* Effect.flip(readFilers(client))
          assert.strictEqual(refused.reason, "forbidden")
          fs.writeFileSync(tokenFile, "rotated-token\n")
          assert.strictEqual(yield* readFilers(client), "one")
        }), 60_000)
    }).pipe(Effect.scoped))

  it.live("is read again once older than the refresh interval", () =>
    Effect.gen(function*() {
      const api = yield* startApi()
      const tokenFile = path.join(temporary(), "token")
      fs.writeFileSync(tokenFile, api.token)
      const kc: KubeConfig = { server: api.url, trust: {}, user: { tokenFile } }
      yield* withClient(kc, (client) =>
        Effect.gen(function*() {
          assert.strictEqual(yield* readFilers(client), "one")
          fs.writeFileSync(tokenFile, "revoked-token")
          assert.strictEqual((yield* Effect.flip(readFilers(client))).reason, "forbidden")
        }))
    }).pipe(Effect.scoped))
})

describe("a CA file", () => {
  it.live("rotated without a restart: the next connections trust the new CA", () =>
    Effect.gen(function*() {
      const [pair, other] = yield* Effect.promise(tlsPairs)
      const api = yield* startApi({ tls: pair })
      const caFile = path.join(temporary(), "ca.crt")
      fs.writeFileSync(caFile, other.caPem)
      const kc: KubeConfig = { server: api.url, trust: { caFile }, user: { token: api.token } }
      yield* withClient(kc, (client) =>
        Effect.gen(function*() {
          const refused = yield* Effect.flip(readFilers(client))
          assert.strictEqual(refused.reason, "request_failed")
          assert.match(refused.message, /CERT|certificate|SIGNATURE/i)
          fs.writeFileSync(caFile, pair.caPem)
          assert.strictEqual(yield* readFilers(client), "one")
        }))
    }).pipe(Effect.scoped), 30_000)
})

describe("an exec credential plugin", () => {
  /** A plugin (a Node script) that logs each run and prints a token, expiring at `expires`. */
  const writePlugin = (folder: string, body: string) => {
    const script = path.join(folder, "plugin.mjs")
    fs.writeFileSync(script, [
      `import * as fs from "node:fs"`,
      `fs.appendFileSync(${JSON.stringify(path.join(folder, "runs"))}, JSON.stringify({ info: process.env.KUBERNETES_EXEC_INFO, region: process.env.REGION }) + "\\n")`,
      body
    ].join("\n"))
    return script
  }
  const runs = (folder: string) =>
    fs.existsSync(path.join(folder, "runs"))
      ? fs.readFileSync(path.join(folder, "runs"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as { info: string; region: string })
      : []
  const credential = (token: string, expires?: string) =>
    `process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: ${JSON.stringify(token)}${
      expires === undefined ? "" : `, expirationTimestamp: ${JSON.stringify(expires)}`
    } } }))`
  const userWith = (script: string) => ({
    exec: { command: process.execPath, args: [script], env: [{ name: "REGION", value: "eu" }], apiVersion: "client.authentication.k8s.io/v1" }
  })

  it.live("runs once, its token kept until it expires, with KUBERNETES_EXEC_INFO and the configured env", () =>
    Effect.gen(function*() {
      const api = yield* startApi()
      const folder = temporary()
      const kc: KubeConfig = { server: api.url, trust: {}, user: userWith(writePlugin(folder, credential(api.token))) }
      yield* withClient(kc, (client) =>
        Effect.gen(function*() {
          const answers = yield* Effect.all(Array.from({ length: 5 }, () => readFilers(client)), { concurrency: 5 })
          assert.deepStrictEqual(answers, ["one", "one", "one", "one", "one"])
          yield* readFilers(client)
        }))
      assert.strictEqual(runs(folder).length, 1)
      assert.strictEqual(runs(folder)[0]!.region, "eu")
      assert.deepStrictEqual(JSON.parse(runs(folder)[0]!.info), {
        apiVersion: "client.authentication.k8s.io/v1",
        kind: "ExecCredential",
        spec: { interactive: false }
      })
    }).pipe(Effect.scoped), 30_000)

  it.live("runs again once its credential has expired, or the server refused it", () =>
    Effect.gen(function*() {
      const api = yield* startApi()
      const expired = temporary()
      const kcExpired: KubeConfig = {
        server: api.url,
        trust: {},
        user: userWith(writePlugin(expired, credential(api.token, "2020-01-01T00:00:00Z")))
      }
      yield* withClient(kcExpired, (client) => Effect.repeat(readFilers(client), { times: 2 }))
      assert.strictEqual(runs(expired).length, 3)

      const refused = temporary()
      const kcRefused: KubeConfig = { server: api.url, trust: {}, user: userWith(writePlugin(refused, credential("stale"))) }
      yield* withClient(kcRefused, (client) =>
        Effect.gen(function*() {
          assert.strictEqual((yield* Effect.flip(readFilers(client))).reason, "forbidden")
          yield* Effect.flip(readFilers(client))
        }))
      assert.strictEqual(runs(refused).length, 2)
    }).pipe(Effect.scoped), 30_000)

  it.live("a plugin that does not answer is cut by the call timeout", () =>
    Effect.gen(function*() {
      const api = yield* startApi()
      // Silent for 3 s, far past the call timeout (then it gives up, so no process outlives the test).
      const script = writePlugin(temporary(), "setTimeout(() => process.exit(1), 3000)")
      const error = yield* Effect.flip(Effect.provide(
        KubeClient.use(readFilers),
        layerFromKubeConfig({ server: api.url, trust: {}, user: userWith(script) }).pipe(
          Layer.provide(ClusterSettings.layerValues({ kubeCallTimeout: Duration.millis(300) }))
        )
      ))
      assert.strictEqual(error.reason, "transient")
      assert.include(error.message, "no answer within 300 ms")
    }).pipe(Effect.scoped), 10_000)

  it.live("a failing plugin fails the call naming the plugin, without what it printed", () =>
    Effect.gen(function*() {
      const api = yield* startApi()
      const folder = temporary()
      const script = writePlugin(folder, `process.stdout.write("fixture-s3cr3t"); process.stderr.write("fixture-s3cr3t"); process.exit(3)`)
      const error = yield* withClient(
        { server: api.url, trust: {}, user: userWith(script) },
        (client) => Effect.flip(readFilers(client))
      )
      assert.strictEqual(error.reason, "request_failed")
      assert.include(error.message, `the exec credential plugin ${path.basename(process.execPath)} exited with code 3`)
      assert.notInclude(error.message, "fixture-s3cr3t")
      assert.strictEqual(api.requests.length, 0)
    }).pipe(Effect.scoped), 30_000)
})

describe("a client certificate", () => {
  /** An HTTPS server that answers filers-list to clients presenting a certificate `clientCa` signed. */
  const startMutualTls = (serverPair: GeneratedMaterial, clientCaPem: string) =>
    Effect.acquireRelease(
      Effect.promise(async () => {
        const server = https.createServer(
          { cert: serverPair.certPem, key: serverPair.keyPem, ca: clientCaPem, requestCert: true, rejectUnauthorized: true },
          (request, response) => {
            const subject = (request.socket as TLSSocket).getPeerCertificate().subject?.CN
            response.writeHead(200, { "content-type": "application/json" })
            response.end(JSON.stringify({ ...filersList, data: { filers: `hello ${subject}` } }))
          }
        )
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
        return server
      }),
      (server) =>
        Effect.promise(() => {
          server.closeAllConnections()
          return new Promise<void>((resolve) => server.close(() => resolve()))
        })
    )

  it.live("is presented from files or from the kubeconfig's data", () =>
    Effect.gen(function*() {
      const [pair] = yield* Effect.promise(tlsPairs)
      const clientCa = yield* Effect.promise(() => makeTestCa("client-ca"))
      const jane = yield* Effect.promise(() => clientCa.issueClient("jane"))
      const server = yield* startMutualTls(pair, clientCa.certPem)
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
      const folder = temporary()
      fs.writeFileSync(path.join(folder, "jane.crt"), jane.cert)
      fs.writeFileSync(path.join(folder, "jane.key"), jane.key)
      const fromFiles: KubeConfig = {
        server: url,
        trust: { caData: pair.caPem },
        user: { clientCertificateFile: path.join(folder, "jane.crt"), clientKeyFile: path.join(folder, "jane.key") }
      }
      assert.strictEqual(yield* withClient(fromFiles, readFilers), "hello jane")
      const fromData: KubeConfig = { ...fromFiles, user: { clientCertificateData: jane.cert, clientKeyData: jane.key } }
      assert.strictEqual(yield* withClient(fromData, readFilers), "hello jane")
    }).pipe(Effect.scoped), 30_000)
})
