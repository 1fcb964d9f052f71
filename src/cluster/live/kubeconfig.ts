/**
 * Finding and loading the Kubernetes configuration: the in-cluster service
 * account in a pod, else the kubeconfig files (KUBECONFIG, `~/.kube/config`),
 * read by kubeconfigFile.ts. What is loaded names the credentials; the
 * transport reads and uses them (credentials.ts).
 *
 * This does not load `@kubernetes/client-node`: its index (and its config
 * module, which imports the generated API) costs ~40 MiB of resident memory
 * in the webhook, for a kubeconfig reader and a few authenticators
 * (test/bench/RESULTS.md, "Memory").
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { KubeconfigInvalid, parseKubeconfigs } from "./kubeconfigFile.ts"
import type { KubeConfig } from "./kubeconfigTypes.ts"
import { describeThrown } from "./thrown.ts"

export type { KubeConfig }

/** No Kubernetes configuration could be found or loaded. */
export class KubeConfigError extends Schema.TaggedError<KubeConfigError>()("KubeConfigError", {
  reason: Schema.String
}) {
  override get message() {
    return `no usable Kubernetes configuration: ${this.reason}`
  }
}

/** Where the service account's credentials are mounted in a pod. */
export const serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

export interface LoadKubeConfigOptions {
  /** The environment to read (KUBERNETES_SERVICE_HOST and _PORT, KUBECONFIG, HOME). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Prefixed to the service-account paths (tests point it at a temporary folder). Default "". */
  readonly serviceAccountPrefix?: string
}

/**
 * The service account's configuration, as client-go's `rest.InClusterConfig`:
 * the API server's Service address, its `ca.crt`, and its token file, which
 * the kubelet rotates (read again as it changes).
 */
const inCluster = (host: string, port: string, directory: string): KubeConfig => {
  const namespaceFile = path.join(directory, "namespace")
  const namespace = fs.existsSync(namespaceFile) ? fs.readFileSync(namespaceFile, "utf8").trim() : ""
  return {
    server: `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}`,
    namespace: namespace === "" ? undefined : namespace,
    trust: { caFile: path.join(directory, "ca.crt") },
    user: { tokenFile: path.join(directory, "token") }
  }
}

/**
 * The configuration to use: in a pod (KUBERNETES_SERVICE_HOST set and the
 * service-account token mounted) the service account; otherwise the files of
 * KUBECONFIG, or `~/.kube/config`. Finding nothing is a `KubeConfigError`
 * (no fall-back to `http://localhost:8080`).
 */
export const loadKubeConfig = (options: LoadKubeConfigOptions = {}): Effect.Effect<KubeConfig, KubeConfigError> =>
  Effect.suspend(() => {
    const env = options.env ?? process.env
    const directory = `${options.serviceAccountPrefix ?? ""}${serviceAccountDirectory}`
    const tokenFile = path.join(directory, "token")
    const host = env.KUBERNETES_SERVICE_HOST
    const kubeconfigFiles = (env.KUBECONFIG ?? "").split(path.delimiter).filter((file) => file !== "")
    const home = env.HOME !== undefined && env.HOME !== "" ? env.HOME : os.homedir()
    const homeConfig = path.join(home, ".kube", "config")

    const load = (describe: string, files: ReadonlyArray<string>) =>
      Effect.try({
        try: () => parseKubeconfigs(files.map((file) => ({ file, text: fs.readFileSync(file, "utf8") }))),
        catch: (error) =>
          new KubeConfigError({
            reason: `cannot load ${describe}: ${error instanceof KubeconfigInvalid ? error.message : describeThrown(error)}`
          })
      })

    if (host !== undefined && host !== "" && fs.existsSync(tokenFile)) {
      const port = env.KUBERNETES_SERVICE_PORT
      return Effect.succeed(inCluster(host, port === undefined || port === "" ? "443" : port, directory))
    }
    if (kubeconfigFiles.length > 0) {
      const existing = kubeconfigFiles.filter((file) => fs.existsSync(file))
      if (existing.length === 0) {
        return Effect.fail(
          new KubeConfigError({ reason: `KUBECONFIG names no existing file (${kubeconfigFiles.join(path.delimiter)})` })
        )
      }
      return load(`KUBECONFIG (${kubeconfigFiles.join(path.delimiter)})`, existing)
    }
    if (fs.existsSync(homeConfig)) return load(homeConfig, [homeConfig])
    return Effect.fail(
      new KubeConfigError({
        reason: "not running in a pod (KUBERNETES_SERVICE_HOST is unset or no service-account token at " +
          `${tokenFile}), KUBECONFIG is unset and ${homeConfig} does not exist`
      })
    )
  })
