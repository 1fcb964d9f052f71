/**
 * The CA that callers' client certificates are verified against
 * (`--client-ca-file`): with it, the server asks every connection for a
 * certificate and `/inject` answers only those it verified (README, "Who may
 * call the webhook"). The file is checked at start and then followed like the
 * serving certificate's (poll.ts): a CA rotated in the mounted Secret is used
 * from the next handshake on, and one that cannot be used is logged while
 * the previous one stays.
 */
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import { FileSystem } from "effect/FileSystem"
import { X509Certificate } from "node:crypto"
import { createSecureContext } from "node:tls"
import { ServerSettings } from "../ServerSettings.ts"
import { TlsMaterialError } from "./material.ts"
import { fileProblem, pollFiles } from "./poll.ts"

export interface ClientCaShape {
  /** The CA certificates (PEM) client certificates must chain to; undefined when callers are not checked. */
  readonly currentUnsafe: () => string | undefined
  /** Calls `listener` with every new CA (not the current one) until the scope closes. */
  readonly onChange: (listener: (caPem: string) => void) => Effect.Effect<void, never, Scope.Scope>
}

/** What a log line says about the CA certificates of a file: who they are and until when. */
interface CaInfo {
  readonly subjects: ReadonlyArray<string>
  readonly notAfter: ReadonlyArray<string>
  readonly fingerprints256: ReadonlyArray<string>
}

const pemCertificates = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Checks that `pem` holds only CA certificates Node's TLS accepts as trust anchors. */
export const checkClientCa = (pem: string, source: string): Effect.Effect<CaInfo, TlsMaterialError> =>
  Effect.suspend(() => {
    const problem = (text: string) => Effect.fail(new TlsMaterialError({ source, problem: text }))
    const blocks = pem.match(pemCertificates) ?? []
    if (blocks.length === 0) return problem("holds no PEM certificate (BEGIN CERTIFICATE)")
    const certificates: Array<X509Certificate> = []
    for (const [index, block] of blocks.entries()) {
      try {
        certificates.push(new X509Certificate(block))
      } catch (error) {
        return problem(`certificate ${index + 1} is not valid PEM (${error instanceof Error ? error.message : "unreadable"})`)
      }
      if (!certificates[index]!.ca) {
        return problem(`certificate ${index + 1} (${certificates[index]!.subject.replace(/\n/g, ", ")}) is not a CA`)
      }
    }
    try {
      createSecureContext({ ca: pem })
    } catch {
      return problem("is refused by Node's TLS as a CA")
    }
    return Effect.succeed({
      subjects: certificates.map((certificate) => certificate.subject.replace(/\n/g, ", ")),
      notAfter: certificates.map((certificate) => new Date(certificate.validTo).toISOString()),
      fingerprints256: certificates.map((certificate) => certificate.fingerprint256)
    })
  })

/** The CA of `file`, checked, then read every `pollInterval` and replaced when its content changes. */
const fromFile = Effect.fnUntraced(function*(file: string, pollInterval: Duration.Input) {
  const fs = yield* FileSystem
  const read = fs.readFileString(file).pipe(
    Effect.mapError((error) => fileProblem(file, error)),
    Effect.map((text) => [text])
  )
  const [initial = ""] = yield* read
  const info = yield* checkClientCa(initial, file)
  let current = { pem: initial, info }
  const listeners = new Set<(caPem: string) => void>()
  yield* Effect.logInfo("verifying callers' client certificates against the CA file").pipe(
    Effect.annotateLogs({ file, ...info })
  )

  yield* pollFiles({
    read,
    initial: [initial],
    check: ([pem = ""]) => Effect.map(checkClientCa(pem, file), (next) => ({ pem, info: next })),
    publish: (next) =>
      Effect.gen(function*() {
        current = next
        for (const listener of [...listeners]) {
          yield* Effect.try(() => listener(next.pem)).pipe(
            Effect.catch(() => Effect.logWarning("a listener of client CA changes failed"))
          )
        }
        yield* Effect.logInfo("reloaded the client CA").pipe(Effect.annotateLogs({ file, ...next.info }))
      }),
    inUse: () => ({ inUse: current.info.fingerprints256 }),
    messages: {
      unreadable: "cannot read the client CA file; still using the previous CA",
      unusable: "the client CA file changed but cannot be used; still using the previous CA",
      defect: "checking the client CA file failed unexpectedly"
    },
    interval: pollInterval
  })

  const service: ClientCaShape = {
    currentUnsafe: () => current.pem,
    onChange: (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => listeners.add(listener)),
        () => Effect.sync(() => listeners.delete(listener))
      ).pipe(Effect.asVoid)
  }
  return service
})

export class ClientCa extends Context.Service<ClientCa, ClientCaShape>()("filer-sidecar-injector/server/ClientCa") {
  /** Callers are not checked: no certificate is asked for. */
  static readonly layerNone: Layer.Layer<ClientCa> = Layer.succeed(ClientCa, {
    currentUnsafe: () => undefined,
    onChange: () => Effect.void
  })

  /**
   * The CA in `file`, polled every `pollInterval` (default 2 s). Fails at
   * start with a `TlsMaterialError` naming the file when it is missing,
   * unreadable, or holds anything but CA certificates.
   */
  static readonly layerFromFile = (
    file: string,
    options: { readonly pollInterval?: Duration.Input } = {}
  ): Layer.Layer<ClientCa, TlsMaterialError, FileSystem> =>
    Layer.effect(ClientCa, fromFile(file, options.pollInterval ?? Duration.seconds(2)))

  /** From the settings: the file of `--client-ca-file`, or no check without it. */
  static readonly layer: Layer.Layer<ClientCa, TlsMaterialError, ServerSettings | FileSystem> = Layer.unwrap(
    Effect.gen(function*() {
      const { clientCaFile } = yield* ServerSettings
      return clientCaFile === undefined ? ClientCa.layerNone : ClientCa.layerFromFile(clientCaFile)
    })
  )
}
