/**
 * Finding and loading the Kubernetes configuration: the in-cluster service
 * account in a pod, else the kubeconfig files (KUBECONFIG, `~/.kube/config`).
 * client-node parses them and keeps the credentials (bearer token, client
 * certificate, exec plugins); the transport asks it to sign each request.
 */
import { KubeConfig } from "@kubernetes/client-node"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describeThrown } from "./thrown.ts"

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
  /** The environment to read (KUBERNETES_SERVICE_HOST, KUBECONFIG, HOME). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * Prefixed to the service-account paths, as `KubeConfig.loadFromCluster`
   * does (tests point it at a temporary folder). Default "".
   */
  readonly serviceAccountPrefix?: string
}

/**
 * The configuration to use: in a pod (KUBERNETES_SERVICE_HOST set and the
 * service-account token mounted) the service account; otherwise the files of
 * KUBECONFIG, or `~/.kube/config`. Unlike `KubeConfig.loadFromDefault`, which
 * falls back to `http://localhost:8080` when it finds nothing, finding nothing
 * is a `KubeConfigError`.
 */
export const loadKubeConfig = (options: LoadKubeConfigOptions = {}): Effect.Effect<KubeConfig, KubeConfigError> =>
  Effect.suspend(() => {
    const env = options.env ?? process.env
    const prefix = options.serviceAccountPrefix ?? ""
    const tokenFile = `${prefix}${serviceAccountDirectory}/token`
    const host = env.KUBERNETES_SERVICE_HOST
    const inPod = host !== undefined && host !== "" && fs.existsSync(tokenFile)
    const kubeconfigFiles = (env.KUBECONFIG ?? "").split(path.delimiter).filter((file) => file !== "")
    const home = env.HOME !== undefined && env.HOME !== "" ? env.HOME : os.homedir()
    const homeConfig = path.join(home, ".kube", "config")

    const load = (describe: string, run: (kc: KubeConfig) => void) =>
      Effect.try({
        try: () => {
          const kc = new KubeConfig()
          run(kc)
          return kc
        },
        catch: (error) =>
          new KubeConfigError({ reason: `cannot load ${describe}: ${describeThrown(error)}` })
      }).pipe(
        Effect.flatMap((kc) =>
          kc.getCurrentCluster() === null
            ? Effect.fail(new KubeConfigError({ reason: `${describe} names no current context with a cluster` }))
            : Effect.succeed(kc)
        )
      )

    if (inPod) {
      return load("the in-cluster service account", (kc) => {
        // loadFromCluster reads the host and port from process.env.
        withEnv(env, () => kc.loadFromCluster(prefix))
      })
    }
    if (kubeconfigFiles.length > 0) {
      const missing = kubeconfigFiles.filter((file) => !fs.existsSync(file))
      if (missing.length === kubeconfigFiles.length) {
        return Effect.fail(
          new KubeConfigError({ reason: `KUBECONFIG names no existing file (${kubeconfigFiles.join(path.delimiter)})` })
        )
      }
      return load(`KUBECONFIG (${kubeconfigFiles.join(path.delimiter)})`, (kc) => {
        const [first, ...rest] = kubeconfigFiles.filter((file) => fs.existsSync(file))
        kc.loadFromFile(first!)
        for (const file of rest) {
          const other = new KubeConfig()
          other.loadFromFile(file)
          // As kubectl: the first file that names a current context wins.
          kc.mergeConfig(other, kc.currentContext !== undefined && kc.currentContext !== "")
        }
      })
    }
    if (fs.existsSync(homeConfig)) {
      return load(homeConfig, (kc) => kc.loadFromFile(homeConfig))
    }
    return Effect.fail(
      new KubeConfigError({
        reason: "not running in a pod (KUBERNETES_SERVICE_HOST is unset or no service-account token at " +
          `${tokenFile}), KUBECONFIG is unset and ${homeConfig} does not exist`
      })
    )
  })

const withEnv = (env: Readonly<Record<string, string | undefined>>, run: () => void) => {
  if (env === process.env) return run()
  const keys = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] as const
  const saved = keys.map((key) => process.env[key])
  keys.forEach((key) => {
    const value = env[key]
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  })
  try {
    run()
  } finally {
    keys.forEach((key, index) => {
      const value = saved[index]
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    })
  }
}
