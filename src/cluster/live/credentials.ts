/**
 * What each request to the API server carries: the headers that authenticate
 * it and the TLS material of its connection (the CA to trust, a client
 * certificate), from a loaded KubeConfig.
 *
 * Files are read again when older than `refreshMillis` (a minute, as
 * client-go re-reads a token file): the kubelet rotates a pod's projected
 * service-account token, and a CA or client certificate in a file can be
 * rotated too. The TLS material keeps its identity while its content is the
 * same, so the connection pool is rebuilt only when it changes
 * (connections.ts). An exec plugin's credential is kept until it expires.
 * A 401 answer forgets what was read, so the next request reads it again.
 */
import * as fs from "node:fs"
import { PrepareError } from "./classify.ts"
import { type ExecCredential, runExecPlugin } from "./execCredential.ts"
import type { KubeConfig } from "./kubeconfigTypes.ts"
import { errorCode } from "./thrown.ts"

/** TLS options for undici's connector; one object per distinct content. */
export interface TlsMaterial {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
  readonly servername?: string
  readonly rejectUnauthorized: boolean
}

export interface Authentication {
  readonly headers: Readonly<Record<string, string>>
  readonly tls: TlsMaterial
}

export interface Credentials {
  /** What the next request carries. Rejects with a PrepareError (the configuration's fault). */
  readonly current: () => Promise<Authentication>
  /** The API server answered 401: read files and run the exec plugin again for the next request. */
  readonly rejected: () => void
}

export const defaultRefreshMillis = 60_000

export const makeCredentials = (kc: KubeConfig, refreshMillis = defaultRefreshMillis): Credentials => {
  const { trust, user } = kc
  const files = new Map<string, { readonly text: string; readonly readAt: number }>()
  /** A file's content, read again once older than refreshMillis. */
  const fresh = (file: string, what: string, now: number): string => {
    const known = files.get(file)
    if (known !== undefined && now - known.readAt < refreshMillis) return known.text
    try {
      const text = fs.readFileSync(file, "utf8")
      files.set(file, { text, readAt: now })
      return text
    } catch (error) {
      // The path, never the content.
      throw new PrepareError(`cannot read the ${what} file ${file} (${errorCode(error) ?? "unreadable"})`)
    }
  }
  const either = (data: string | undefined, file: string | undefined, what: string, now: number) =>
    data ?? (file === undefined ? undefined : fresh(file, what, now))

  let exec: { credential?: ExecCredential; running?: Promise<ExecCredential> } = {}
  const execCredential = async (now: number): Promise<ExecCredential | undefined> => {
    if (user.exec === undefined) return undefined
    const { credential } = exec
    if (credential !== undefined && (credential.expiresAt === undefined || now < credential.expiresAt)) return credential
    // Concurrent requests wait for one run; a request that gives up leaves it running for the next.
    const state = exec
    state.running ??= runExecPlugin(user.exec).then(
      (credential) => {
        if (exec === state) exec = { credential }
        return credential
      },
      (error: unknown) => {
        if (exec === state) exec = {}
        throw new PrepareError(error instanceof Error ? error.message : "the exec credential plugin failed")
      }
    )
    return state.running
  }

  let tls: TlsMaterial | undefined
  const tlsMaterial = (credential: ExecCredential | undefined, now: number): TlsMaterial => {
    const next: TlsMaterial = {
      ...optional("ca", either(trust.caData, trust.caFile, "certificate authority", now)),
      ...optional(
        "cert",
        credential?.clientCertificateData ??
          either(user.clientCertificateData, user.clientCertificateFile, "client certificate", now)
      ),
      ...optional("key", credential?.clientKeyData ?? either(user.clientKeyData, user.clientKeyFile, "client key", now)),
      ...optional("servername", trust.tlsServerName),
      rejectUnauthorized: trust.insecureSkipTlsVerify !== true
    }
    if (
      tls === undefined || tls.ca !== next.ca || tls.cert !== next.cert || tls.key !== next.key ||
      tls.servername !== next.servername || tls.rejectUnauthorized !== next.rejectUnauthorized
    ) tls = next
    return tls
  }

  const basic = user.username === undefined
    ? undefined
    : `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}`

  const current = async (): Promise<Authentication> => {
    const now = Date.now()
    const credential = await execCredential(now)
    const token = credential?.token ?? user.token ??
      (user.tokenFile === undefined ? undefined : fresh(user.tokenFile, "token", now).trim())
    const headers: Record<string, string> = {}
    if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`
    else if (basic !== undefined) headers.authorization = basic
    if (user.impersonate !== undefined) headers["impersonate-user"] = user.impersonate
    return { headers, tls: tlsMaterial(credential, now) }
  }

  return {
    current,
    rejected: () => {
      files.clear()
      exec = {}
    }
  }
}

const optional = <K extends string>(key: K, value: string | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { readonly [P in K]?: string }
