/**
 * Reading kubeconfig files as kubectl does (src/cluster/live/kubeconfigFile.ts,
 * kubeconfig.ts): the current context, merged files, relative paths, and
 * errors that name what is wrong without quoting a credential.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { loadKubeConfig } from "../../../src/cluster/live/kubeconfig.ts"
import { KubeconfigInvalid, parseKubeconfigs } from "../../../src/cluster/live/kubeconfigFile.ts"

const plantedToken = "fixture-token-Qx7Zk2"

const kubeconfig = (overrides: { clusters?: string; users?: string; contexts?: string; current?: string } = {}) =>
  [
    "apiVersion: v1",
    "kind: Config",
    overrides.clusters ?? [
      "clusters:",
      "- name: prod",
      "  cluster:",
      "    server: https://api.example.test:6443/",
      `    certificate-authority-data: ${Buffer.from("CA PEM").toString("base64")}`,
      "    tls-server-name: kubernetes.default"
    ].join("\n"),
    overrides.users ?? ["users:", "- name: jane", "  user:", `    token: ${plantedToken}`].join("\n"),
    overrides.contexts ??
      ["contexts:", "- name: prod", "  context:", "    cluster: prod", "    user: jane", "    namespace: das"].join("\n"),
    `current-context: ${overrides.current ?? "prod"}`,
    ""
  ].join("\n")

const parse = (text: string, file = "/home/jane/.kube/config") => parseKubeconfigs([{ file, text }])

const invalid = (text: string) => {
  try {
    parse(text)
  } catch (error) {
    if (error instanceof KubeconfigInvalid) return error.message
    throw error
  }
  throw new Error("expected the kubeconfig to be refused")
}

describe("parseKubeconfigs", () => {
  it("reads the current context's server, trust, user and namespace", () => {
    const kc = parse(kubeconfig())
    assert.strictEqual(kc.server, "https://api.example.test:6443")
    assert.strictEqual(kc.namespace, "das")
    assert.deepStrictEqual(kc.trust, {
      caFile: undefined,
      caData: "CA PEM",
      insecureSkipTlsVerify: false,
      tlsServerName: "kubernetes.default"
    })
    assert.strictEqual(kc.user.token, plantedToken)
  })

  it("resolves relative paths against the file that names them; an exec command only when it is a path", () => {
    const users = [
      "users:",
      "- name: jane",
      "  user:",
      "    client-certificate: certs/jane.crt",
      "    client-key: /etc/jane.key",
      "    tokenFile: token",
      "    exec:",
      "      apiVersion: client.authentication.k8s.io/v1beta1",
      "      command: ./bin/get-token",
      "      args: [--cluster, prod]",
      "      env: [{ name: REGION, value: eu }]"
    ].join("\n")
    const kc = parse(kubeconfig({ users }), "/home/jane/.kube/config")
    assert.strictEqual(kc.user.clientCertificateFile, "/home/jane/.kube/certs/jane.crt")
    assert.strictEqual(kc.user.clientKeyFile, "/etc/jane.key")
    assert.strictEqual(kc.user.tokenFile, "/home/jane/.kube/token")
    assert.deepStrictEqual(kc.user.exec, {
      command: "/home/jane/.kube/bin/get-token",
      args: ["--cluster", "prod"],
      env: [{ name: "REGION", value: "eu" }],
      apiVersion: "client.authentication.k8s.io/v1beta1"
    })
    const onPath = parse(kubeconfig({ users: users.replace("./bin/get-token", "aws") }))
    assert.strictEqual(onPath.user.exec?.command, "aws")
  })

  it("merges files as kubectl: the first to name an entry or the current context wins", () => {
    const first = "current-context: dev\nclusters:\n- name: prod\n  cluster:\n    server: https://first.test\n"
    const second = kubeconfig({
      contexts: "contexts:\n- name: dev\n  context:\n    cluster: prod\n    user: jane\n- name: prod\n  context:\n    cluster: prod"
    })
    const kc = parseKubeconfigs([{ file: "/a/config", text: first }, { file: "/b/config", text: second }])
    assert.strictEqual(kc.server, "https://first.test")
    assert.strictEqual(kc.user.token, plantedToken)
    assert.isUndefined(kc.namespace)
  })

  it("refuses what it cannot use, naming the field and never a value", () => {
    const cases = [
      [kubeconfig({ current: "absent" }), "no current context"],
      [kubeconfig({ clusters: "clusters:\n- name: prod\n  cluster: {}" }), "server is missing"],
      [kubeconfig({ clusters: "clusters:\n- name: prod\n  cluster:\n    server: ftp://x" }), "not an http or https URL"],
      [
        kubeconfig({ clusters: "clusters:\n- name: prod\n  cluster:\n    server: https://x\n    proxy-url: http://proxy:3128" }),
        "proxy-url is not supported"
      ],
      [
        kubeconfig({ users: `users:\n- name: jane\n  user:\n    auth-provider: { name: oidc, config: { id-token: ${plantedToken} } }` }),
        "auth-provider is not supported"
      ],
      [kubeconfig({ users: `users:\n- name: joe\n  user: { token: ${plantedToken} }` }), "user jane is not in users"],
      [kubeconfig({ users: `users:\n- name: jane\n  user:\n    token: [${plantedToken}]` }), "token is not a string"],
      [`users: [${plantedToken}`, "is not YAML"]
    ] as const
    for (const [text, expected] of cases) {
      const message = invalid(text)
      assert.include(message, expected)
      assert.notInclude(message, plantedToken)
    }
  })
})

describe("loadKubeConfig", () => {
  const temporary = () => fs.mkdtempSync(path.join(os.tmpdir(), "kubeconfig-load-"))

  it.effect("merges the files KUBECONFIG lists, skipping missing ones", () =>
    Effect.gen(function*() {
      const home = temporary()
      const first = path.join(home, "first")
      const second = path.join(home, "second")
      fs.writeFileSync(first, "current-context: prod\n")
      fs.writeFileSync(second, kubeconfig({ current: "elsewhere" }))
      const kc = yield* loadKubeConfig({
        env: { HOME: home, KUBECONFIG: [first, path.join(home, "absent"), second].join(path.delimiter) },
        serviceAccountPrefix: home
      })
      assert.strictEqual(kc.server, "https://api.example.test:6443")
    }))

  it.effect("an IPv6 service address is bracketed", () =>
    Effect.gen(function*() {
      const root = temporary()
      const directory = path.join(root, "var/run/secrets/kubernetes.io/serviceaccount")
      fs.mkdirSync(directory, { recursive: true })
      fs.writeFileSync(path.join(directory, "token"), "a-token")
      const kc = yield* loadKubeConfig({
        env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" },
        serviceAccountPrefix: root
      })
      assert.strictEqual(kc.server, "https://[fd00::1]:443")
      assert.isUndefined(kc.namespace)
    }))

  it.effect("a refused file is a KubeConfigError naming the file and the field", () =>
    Effect.gen(function*() {
      const home = temporary()
      const file = path.join(home, "config")
      fs.writeFileSync(file, kubeconfig({ users: `users:\n- name: jane\n  user:\n    auth-provider: { name: gcp }` }))
      const error = yield* Effect.flip(loadKubeConfig({ env: { HOME: home, KUBECONFIG: file }, serviceAccountPrefix: home }))
      assert.strictEqual(error._tag, "KubeConfigError")
      assert.include(error.message, file)
      assert.include(error.message, "users[jane].user.auth-provider is not supported")
    }))
})
