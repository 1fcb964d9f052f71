/**
 * A client-go credential plugin (a kubeconfig user's `exec`): the command
 * prints an ExecCredential whose `status` holds a bearer token or a client
 * certificate, valid until its `expirationTimestamp` (or for the process's
 * life without one). Cloud clusters' kubeconfigs use them (`aws eks
 * get-token`, `gke-gcloud-auth-plugin`, `kubelogin`).
 *
 * Messages name the command's file name and what went wrong, never what it
 * printed: its output is a credential, its errors may quote one.
 */
import { Predicate } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import type { ExecPlugin } from "./kubeconfigTypes.ts"

export interface ExecCredential {
  readonly token?: string | undefined
  readonly clientCertificateData?: string | undefined
  readonly clientKeyData?: string | undefined
  /** Epoch milliseconds; undefined: valid until the server refuses it. */
  readonly expiresAt?: number | undefined
}

/** A plugin that does not answer within this is killed: it may be waiting for a login no one will make. */
const pluginTimeoutMillis = 30_000

const stringField = (object: Readonly<Record<string, unknown>>, field: string) => {
  const value = object[field]
  return typeof value === "string" && value !== "" ? value : undefined
}

/** Runs the plugin once; rejects with an Error whose message is safe to show. */
export const runExecPlugin = (plugin: ExecPlugin): Promise<ExecCredential> =>
  new Promise((resolve, reject) => {
    const name = `the exec credential plugin ${path.basename(plugin.command)}`
    const env: Record<string, string | undefined> = { ...process.env }
    for (const { name, value } of plugin.env) env[name] = value
    // As client-go: what the plugin is asked for, and that no one can answer a prompt.
    env.KUBERNETES_EXEC_INFO = JSON.stringify({
      apiVersion: plugin.apiVersion,
      kind: "ExecCredential",
      spec: { interactive: false }
    })
    const child = spawn(plugin.command, [...plugin.args], { env, stdio: ["ignore", "pipe", "ignore"] })
    const chunks: Array<Buffer> = []
    let failure: string | undefined
    const timer = setTimeout(() => {
      failure = `did not answer within ${pluginTimeoutMillis / 1000} s`
      child.kill("SIGKILL")
    }, pluginTimeoutMillis)
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
    child.on("error", (error: NodeJS.ErrnoException) => {
      failure ??= `could not start (${error.code ?? error.name})`
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      if (failure !== undefined || code !== 0) {
        return reject(new Error(`${name} ${failure ?? `exited with code ${code}`}`))
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        return reject(new Error(`${name} printed something that is not JSON`))
      }
      const status = Predicate.isObject(parsed) && Predicate.isObject((parsed as { status?: unknown }).status)
        ? (parsed as { status: Readonly<Record<string, unknown>> }).status
        : undefined
      if (status === undefined) return reject(new Error(`${name} printed no ExecCredential status`))
      const credential: ExecCredential = {
        token: stringField(status, "token"),
        clientCertificateData: stringField(status, "clientCertificateData"),
        clientKeyData: stringField(status, "clientKeyData"),
        expiresAt: stringField(status, "expirationTimestamp") === undefined
          ? undefined
          : Date.parse(stringField(status, "expirationTimestamp")!)
      }
      if (credential.token === undefined && (credential.clientCertificateData === undefined || credential.clientKeyData === undefined)) {
        return reject(new Error(`${name} gave neither a token nor a client certificate and key`))
      }
      resolve(credential)
    })
  })
