/**
 * ServerSettings: where the webhook listens, its TLS files (or the
 * self-signed mode and the webhook it registers), who may call `/inject`,
 * the largest body it reads, how much it takes on at once and how it shuts
 * down.
 */
import type { Config, Duration } from "effect"
import { configOf, crossCheck, millis, objectName, setting, SettingsService, text, wholeNumber } from "../config/setting.ts"

export const serverSettings = {
  port: setting({
    env: "PORT",
    flag: "--port",
    default: "8443",
    parse: wholeNumber(0, 65_535),
    description: "HTTPS port (default 8443)"
  }),
  host: setting({
    env: "HOST",
    flag: "--host",
    default: "0.0.0.0",
    parse: text,
    description: "address to listen on (default 0.0.0.0, all interfaces)"
  }),
  tlsCertFile: setting({
    env: "TLS_CERT_FILE",
    flag: "--tls-cert",
    parse: text,
    description: "serving certificate (PEM); reloaded when it changes. Without it a self-signed one is generated"
  }),
  tlsKeyFile: setting({
    env: "TLS_KEY_FILE",
    flag: "--tls-key",
    parse: text,
    description: "private key of the serving certificate (PEM)"
  }),
  registerWebhook: setting({
    env: "REGISTER_WEBHOOK",
    flag: "--register-webhook",
    parse: objectName("a MutatingWebhookConfiguration name"),
    description: "self-signed mode: MutatingWebhookConfiguration whose caBundle to fill in"
  }),
  clientCaFile: setting({
    env: "CLIENT_CA_FILE",
    flag: "--client-ca-file",
    parse: text,
    description:
      "CA (PEM) of the API server's client certificate: /inject then answers only callers presenting one it signed (401 otherwise); reloaded when it changes. Required with CREDENTIAL_MODE=plain"
  }),
  maxBodyBytes: setting({
    env: "MAX_BODY_BYTES",
    flag: "--max-body-bytes",
    default: String(7 * 1024 * 1024),
    parse: wholeNumber(3 * 1024 * 1024, 64 * 1024 * 1024),
    description: "largest request body accepted, in bytes (default 7340032, 7 MiB)"
  }),
  // A review is held as bytes, as text and as parsed objects 11 to 19 times
  // its size: one 7 MiB review takes 80 to 135 MiB of heap, so with the
  // image's 256 MiB cap one such review at a time is what a replica can hold
  // beside the small ones (README, "Limits"; test/bench/largeBodies.ts).
  maxInFlight: setting({
    env: "MAX_IN_FLIGHT",
    default: "64",
    parse: wholeNumber(1, 10_000),
    description: "admission requests answered at once; more get 429 with Retry-After (default 64)"
  }),
  maxBufferedBodyBytes: setting({
    env: "MAX_BUFFERED_BODY_BYTES",
    default: String(8 * 1024 * 1024),
    parse: wholeNumber(3 * 1024 * 1024, 1024 * 1024 * 1024),
    description:
      "request body bytes the admissions in flight may hold together (each counts its Content-Length, or MAX_BODY_BYTES without one); more get 429 with Retry-After (default 8388608, 8 MiB: one 7 MiB body and the small ones)"
  }),
  shutdownDelay: setting({
    env: "SHUTDOWN_DELAY_MS",
    default: "2000",
    parse: millis(0, 60_000),
    description: "after SIGTERM, time to keep serving while not ready, so endpoints catch up (default 2000)"
  }),
  shutdownGrace: setting({
    env: "SHUTDOWN_GRACE_MS",
    default: "5000",
    parse: millis(0, 60_000),
    description: "then, time in-flight requests get before connections are cut (default 5000)"
  })
}

export interface ServerSettingsShape {
  readonly port: number
  readonly host: string
  readonly tlsCertFile: string | undefined
  readonly tlsKeyFile: string | undefined
  /** MutatingWebhookConfiguration whose caBundle the self-signed mode fills in. */
  readonly registerWebhook: string | undefined
  /** The CA file client certificates are verified against; when set, `/inject` answers only verified callers. */
  readonly clientCaFile: string | undefined
  /** Bodies above this get HTTP 413. */
  readonly maxBodyBytes: number
  /** Admissions answered at once; more get HTTP 429. */
  readonly maxInFlight: number
  /** Body bytes the admissions in flight may hold together; more get HTTP 429. */
  readonly maxBufferedBodyBytes: number
  /** After SIGTERM, how long to keep serving (readiness already false) so the Service's endpoints catch up. */
  readonly shutdownDelay: Duration.Duration
  /** Then, how long in-flight requests may run before connections are cut. */
  readonly shutdownGrace: Duration.Duration
}

const config: Config.Config<ServerSettingsShape> = configOf(serverSettings).pipe(
  crossCheck((settings: ServerSettingsShape) => {
    if ((settings.tlsCertFile === undefined) !== (settings.tlsKeyFile === undefined)) {
      return [
        settings.tlsCertFile === undefined ? serverSettings.tlsCertFile : serverSettings.tlsKeyFile,
        "--tls-cert and --tls-key go together: give both, or neither for a self-signed certificate"
      ]
    }
    if (settings.registerWebhook !== undefined && settings.tlsCertFile !== undefined) {
      return [
        serverSettings.registerWebhook,
        "only the self-signed mode registers the webhook; with --tls-cert the CA comes from your issuer (cert-manager's inject-ca-from)"
      ]
    }
    if (settings.maxBufferedBodyBytes < settings.maxBodyBytes) {
      return [
        serverSettings.maxBufferedBodyBytes,
        `must be at least MAX_BODY_BYTES (${settings.maxBodyBytes}), else the largest body allowed is never accepted`
      ]
    }
    return undefined
  })
)

/** Read by the server, its routes and `serve` (TLS, the webhook's registration). */
export class ServerSettings extends SettingsService<ServerSettings, ServerSettingsShape>()(
  "filer-sidecar-injector/server/ServerSettings",
  config
) {}
