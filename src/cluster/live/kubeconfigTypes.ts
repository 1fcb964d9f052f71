/**
 * What the live client needs of a Kubernetes configuration: the current
 * context's API server, how to trust it, and its user's credentials, as
 * kubeconfigFile.ts reads them from kubeconfig files or kubeconfig.ts from a
 * pod's service account. Paths are absolute; `*Data` fields hold PEM text.
 * Files are named, not read: the transport reads them, and reads them again
 * when they change (credentials.ts).
 */

export interface KubeConfig {
  /** The API server's URL, without a trailing `/`. */
  readonly server: string
  /** The context's default namespace, if it names one. */
  readonly namespace?: string | undefined
  readonly trust: ClusterTrust
  readonly user: UserCredentials
}

export interface ClusterTrust {
  /** The CA bundle to trust, in a file (a pod's `ca.crt`) or inline; neither: the system's CAs. */
  readonly caFile?: string | undefined
  readonly caData?: string | undefined
  readonly insecureSkipTlsVerify?: boolean | undefined
  /** The name to check the server's certificate against, when not the URL's host. */
  readonly tlsServerName?: string | undefined
}

export interface UserCredentials {
  readonly token?: string | undefined
  /** A bearer token in a file, read again as it changes (a pod's projected service-account token). */
  readonly tokenFile?: string | undefined
  readonly clientCertificateFile?: string | undefined
  readonly clientCertificateData?: string | undefined
  readonly clientKeyFile?: string | undefined
  readonly clientKeyData?: string | undefined
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** `as`: the user to impersonate. */
  readonly impersonate?: string | undefined
  readonly exec?: ExecPlugin | undefined
}

/** A client-go credential plugin (`users[].user.exec`): a command that prints an ExecCredential. */
export interface ExecPlugin {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>
  readonly apiVersion: string
}
