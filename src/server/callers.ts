/**
 * Who may call `/inject` (README, "Who may call the webhook"). With
 * `--client-ca-file` the server asks every TLS connection for a client
 * certificate without requiring one (the kubelet's probes and Prometheus
 * come without), and `/inject` answers only connections whose certificate
 * Node verified against that CA. Plain credentials put S3 keys in every
 * answer, so `serve` does not start in that mode without the check.
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { HttpServerRequest } from "effect/http"
import type { TLSSocket } from "node:tls"
import { admissionSettings, type CredentialMode } from "../admission/AdmissionSettings.ts"
import { settingName, SettingsError } from "../config/setting.ts"
import { serverSettings } from "./ServerSettings.ts"

/** Why the caller of `request` may not be answered, or undefined when its certificate was verified. */
export const unverifiedCaller = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const socket = NodeHttpServerRequest.toIncomingMessage(request).socket as Partial<TLSSocket>
  if (socket.authorized === true) return undefined
  const presented = typeof socket.getPeerCertificate === "function" &&
    Object.keys(socket.getPeerCertificate()).length > 0
  const cause = presented ? `certificate not accepted (${String(socket.authorizationError ?? "unverified")})` : "none presented"
  return `a client certificate signed by the configured CA (--client-ca-file) is required: ${cause}`
}

/** `serve`'s refusal to hand S3 keys to any caller: plain credentials need the callers checked. */
export const plainCredentialsProblem = (
  credentialMode: CredentialMode,
  clientCaFile: string | undefined
): SettingsError | undefined =>
  credentialMode === "plain" && clientCaFile === undefined
    ? new SettingsError({
      setting: settingName(admissionSettings.credentialMode),
      problem: `plain puts S3 keys in every admission answer, so serve needs ${
        settingName(serverSettings.clientCaFile)
      } too: only callers with a client certificate signed by that CA (the API server) may get them`
    })
    : undefined
