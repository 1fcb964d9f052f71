/**
 * Reading kubeconfig files as kubectl does, into the one thing the client
 * needs: the current context's server, its trust and its user's credentials.
 *
 * Several files merge as KUBECONFIG's list does in kubectl: the first file
 * that names a cluster, user or context wins it, and the first file that sets
 * `current-context` sets it. Relative paths (certificate files, token files,
 * an exec plugin's command when it has a `/`) are relative to the file that
 * names them.
 *
 * Only the current context is checked: other entries may use what this
 * client does not support. Errors name fields and files, never a value: a
 * kubeconfig holds credentials.
 */
import { Predicate } from "effect"
import * as path from "node:path"
import { parse as parseYaml } from "yaml"
import type { ClusterTrust, ExecPlugin, KubeConfig, UserCredentials } from "./kubeconfigTypes.ts"

/** A kubeconfig file's text and where it is (for relative paths and messages). */
export interface KubeconfigText {
  readonly file: string
  readonly text: string
}

type Entry = Readonly<Record<string, unknown>>

interface Named {
  readonly body: Entry
  /** The folder of the file that named it: relative paths start there. */
  readonly folder: string
}

/** Thrown by the parser; the loader turns it into a KubeConfigError. */
export class KubeconfigInvalid extends Error {}

const isEntry = (value: unknown): value is Entry => Predicate.isObject(value) && !Array.isArray(value)

const optionalString = (entry: Entry, field: string, where: string): string | undefined => {
  const value = entry[field]
  if (value === undefined || value === null || value === "") return undefined
  if (typeof value !== "string") throw new KubeconfigInvalid(`${where}.${field} is not a string`)
  return value
}

const absolute = (folder: string, file: string | undefined) =>
  file === undefined ? undefined : path.resolve(folder, file)

/** base64 `*-data` fields hold PEM text. */
const decodedData = (entry: Entry, field: string, where: string): string | undefined => {
  const value = optionalString(entry, field, where)
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8")
}

/** The named entries of one list (`clusters`, `users`, `contexts`) into `into`, first one wins. */
const collect = (
  document: Entry,
  list: "clusters" | "users" | "contexts",
  inner: "cluster" | "user" | "context",
  folder: string,
  into: Map<string, Named>
) => {
  const entries = document[list]
  if (entries === undefined || entries === null) return
  if (!Array.isArray(entries)) throw new KubeconfigInvalid(`${list} is not a list`)
  entries.forEach((entry: unknown, index) => {
    if (!isEntry(entry) || typeof entry.name !== "string" || entry.name === "") {
      throw new KubeconfigInvalid(`${list}[${index}] has no name`)
    }
    const body = entry[inner] ?? {}
    if (!isEntry(body)) throw new KubeconfigInvalid(`${list}[${index}].${inner} is not a mapping`)
    if (!into.has(entry.name)) into.set(entry.name, { body, folder })
  })
}

const trustOf = ({ body, folder }: Named, where: string): ClusterTrust => {
  const skip = body["insecure-skip-tls-verify"]
  if (skip !== undefined && typeof skip !== "boolean") {
    throw new KubeconfigInvalid(`${where}.insecure-skip-tls-verify is not true or false`)
  }
  return {
    caFile: absolute(folder, optionalString(body, "certificate-authority", where)),
    caData: decodedData(body, "certificate-authority-data", where),
    insecureSkipTlsVerify: skip === true,
    tlsServerName: optionalString(body, "tls-server-name", where)
  }
}

const execPluginOf = (exec: unknown, folder: string, where: string): ExecPlugin | undefined => {
  if (exec === undefined || exec === null) return undefined
  if (!isEntry(exec)) throw new KubeconfigInvalid(`${where} is not a mapping`)
  const command = optionalString(exec, "command", where)
  if (command === undefined) throw new KubeconfigInvalid(`${where}.command is missing`)
  const args = exec.args ?? []
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) {
    throw new KubeconfigInvalid(`${where}.args is not a list of strings`)
  }
  const env = exec.env ?? []
  if (
    !Array.isArray(env) ||
    !env.every((variable) => isEntry(variable) && typeof variable.name === "string" && typeof variable.value === "string")
  ) {
    throw new KubeconfigInvalid(`${where}.env is not a list of name and value`)
  }
  return {
    // As kubectl: a command with a path separator is a path (relative to the file); without, it is looked up on PATH.
    command: command.includes("/") ? path.resolve(folder, command) : command,
    args: args as ReadonlyArray<string>,
    env: (env as ReadonlyArray<{ name: string; value: string }>).map(({ name, value }) => ({ name, value })),
    apiVersion: optionalString(exec, "apiVersion", where) ?? "client.authentication.k8s.io/v1"
  }
}

const credentialsOf = ({ body, folder }: Named, where: string): UserCredentials => {
  if (body["auth-provider"] !== undefined && body["auth-provider"] !== null) {
    throw new KubeconfigInvalid(
      `${where}.auth-provider is not supported (kubectl replaced auth providers by exec credential plugins)`
    )
  }
  return {
    token: optionalString(body, "token", where),
    // kubectl's field is tokenFile; client-node read token-file.
    tokenFile: absolute(folder, optionalString(body, "tokenFile", where) ?? optionalString(body, "token-file", where)),
    clientCertificateFile: absolute(folder, optionalString(body, "client-certificate", where)),
    clientCertificateData: decodedData(body, "client-certificate-data", where),
    clientKeyFile: absolute(folder, optionalString(body, "client-key", where)),
    clientKeyData: decodedData(body, "client-key-data", where),
    username: optionalString(body, "username", where),
    password: optionalString(body, "password", where),
    impersonate: optionalString(body, "as", where),
    exec: execPluginOf(body.exec, folder, `${where}.exec`)
  }
}

/** The current context of the merged files, or a KubeconfigInvalid saying what is missing or wrong. */
export const parseKubeconfigs = (texts: ReadonlyArray<KubeconfigText>): KubeConfig => {
  const clusters = new Map<string, Named>()
  const users = new Map<string, Named>()
  const contexts = new Map<string, Named>()
  let currentContext: string | undefined
  for (const { file, text } of texts) {
    let document: unknown
    try {
      document = parseYaml(text)
    } catch {
      // The parser's message quotes the text, which may hold a credential.
      throw new KubeconfigInvalid(`${file} is not YAML`)
    }
    if (document === null || document === undefined) continue
    if (!isEntry(document)) throw new KubeconfigInvalid(`${file} is not a kubeconfig (not a mapping)`)
    const folder = path.dirname(path.resolve(file))
    collect(document, "clusters", "cluster", folder, clusters)
    collect(document, "users", "user", folder, users)
    collect(document, "contexts", "context", folder, contexts)
    currentContext ??= optionalString(document, "current-context", file)
  }
  const context = currentContext === undefined ? undefined : contexts.get(currentContext)
  const clusterName = context === undefined ? undefined : optionalString(context.body, "cluster", "context")
  const cluster = clusterName === undefined ? undefined : clusters.get(clusterName)
  if (context === undefined || cluster === undefined) throw new KubeconfigInvalid("it names no current context with a cluster")
  const where = `clusters[${clusterName}].cluster`
  const server = optionalString(cluster.body, "server", where)
  if (server === undefined) throw new KubeconfigInvalid(`${where}.server is missing`)
  if (!/^https?:\/\/[^/]/.test(server) || !URL.canParse(server)) {
    throw new KubeconfigInvalid(`${where}.server is not an http or https URL`)
  }
  if (optionalString(cluster.body, "proxy-url", where) !== undefined) {
    throw new KubeconfigInvalid(`${where}.proxy-url is not supported`)
  }
  const userName = optionalString(context.body, "user", "context")
  const user = userName === undefined ? undefined : users.get(userName)
  if (userName !== undefined && user === undefined) {
    throw new KubeconfigInvalid(`the current context's user ${userName} is not in users`)
  }
  return {
    server: server.replace(/\/+$/, ""),
    namespace: optionalString(context.body, "namespace", "context"),
    trust: trustOf(cluster, where),
    user: user === undefined ? {} : credentialsOf(user, `users[${userName}].user`)
  }
}
