/**
 * The HTTPS server: routes.ts behind `node:https`, TLS from ServingCertificate
 * (swapped in place when it rotates, without dropping connections), callers'
 * client certificates checked against ClientCa when one is configured, and a
 * graceful shutdown: on SIGTERM readiness turns false, responses carry
 * `Connection: close` so kept-alive clients reconnect elsewhere, the server
 * keeps answering for `shutdownDelay` while the endpoints catch up, then stops
 * accepting and gives in-flight requests `shutdownGrace` to finish.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as Https from "node:https"
import type * as Http from "node:http"
import type * as Tls from "node:tls"
import { AdmissionSettings } from "../admission/AdmissionSettings.ts"
import { Readiness } from "./Readiness.ts"
import { routes } from "./routes.ts"
import { ServerSettings } from "./ServerSettings.ts"
import { ClientCa } from "./tls/ClientCa.ts"
import { ServingCertificate } from "./tls/ServingCertificate.ts"

/** The server cannot listen: the address is in use, not ours, or not an address. */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  address: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `cannot listen on ${this.address}: ${this.problem}`
  }
}

/**
 * TLS options given again with every reloaded certificate or client CA:
 * Node's `setSecureContext` builds the new context from the options it is
 * passed only, so a minimum version given to `createServer` alone is gone
 * after the first rotation (and a context without `ca` would verify client
 * certificates against Node's public roots).
 */
const secureContextOptions = { minVersion: "TLSv1.2" } as const satisfies Tls.SecureContextOptions

/**
 * A connection whose TLS handshake has not finished by then is dropped (Node's
 * default is 120 s): the API server gives up on a webhook call after 10 s at
 * most, so a stalled handshake only holds a socket.
 */
export const tlsHandshakeTimeout = Duration.seconds(5)

/**
 * Serves the webhook until interrupted, then shuts down gracefully. Needs
 * the pipeline's services and settings, ServingCertificate, ClientCa,
 * ServerSettings and Readiness.
 */
export const webhookServerLayer = Layer.unwrap(
  Effect.gen(function*() {
    const settings = yield* ServerSettings
    const { requestBudget } = yield* AdmissionSettings
    const certificate = yield* ServingCertificate
    const clientCa = yield* ClientCa
    const readiness = yield* Readiness

    // What every secure context is made of: the pair served now and the client CA now.
    let pair = certificate.currentUnsafe()
    let ca = clientCa.currentUnsafe()
    const contextOptions = (): Tls.SecureContextOptions => ({
      ...secureContextOptions,
      cert: pair.cert,
      key: pair.key,
      ...(ca === undefined ? {} : { ca })
    })
    const clientCertificates = ca !== undefined

    const server = Https.createServer({
      ...contextOptions(),
      // Asked for, not required: the kubelet's probes and Prometheus come
      // without one, and routes.ts lets only `/inject` check `socket.authorized`.
      ...(clientCertificates ? { requestCert: true, rejectUnauthorized: false } : {}),
      handshakeTimeout: Duration.toMillis(tlsHandshakeTimeout),
      // The kube-apiserver keeps idle connections for 90 s and does not resend a
      // POST that meets a connection the server just closed: so the server must
      // not be the one to close first.
      keepAliveTimeout: 120_000,
      headersTimeout: 10_000,
      requestTimeout: Duration.toMillis(requestBudget) + 10_000
    })
    // cert-manager rotates the files in place: the next handshake gets the new pair, open connections stay.
    yield* certificate.onChange((material) => {
      pair = { cert: material.certPem, key: material.keyPem }
      server.setSecureContext(contextOptions())
    })
    yield* clientCa.onChange((next) => {
      ca = next
      server.setSecureContext(contextOptions())
    })
    // Registered before the app's handler, so it runs first and the header lands in every response.
    let closing = false
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      if (closing) response.setHeader("connection", "close")
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => server.closeIdleConnections()))

    const app = HttpRouter.serve(routes(certificate.ready, { clientCertificates }), { disableLogger: true, disableListenLog: true })
    const listening = NodeHttpServer.layer(() => server as unknown as Http.Server, {
      port: settings.port,
      host: settings.host,
      gracefulShutdownTimeout: settings.shutdownGrace
    }).pipe(
      // ServeError's own message is empty: say where and why (EADDRINUSE, EACCES...).
      Layer.catchTag("ServeError", (error) =>
        Layer.effect(
          HttpServer.HttpServer,
          Effect.fail(
            new ListenError({
              address: `${settings.host}:${settings.port}`,
              problem: error.cause instanceof Error ? error.cause.message : String(error.cause)
            })
          )
        ))
    )

    // Shutting down is two steps, one after the other: `drain` (not ready,
    // `Connection: close`, keep answering for shutdownDelay), then `app`'s own
    // finalizer (stop accepting, give in-flight requests shutdownGrace). A
    // scope closes in reverse order of building, so `drain` is built on top of
    // `app`; under Layer.mergeAll both would close at once and the listener
    // would stop accepting at SIGTERM instead of after the delay.
    const drain = Layer.effectDiscard(
      Effect.gen(function*() {
        yield* HttpServer.HttpServer
        const address = server.address()
        const where = address !== null && typeof address === "object"
          ? `https://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
          : String(address)
        yield* Effect.logInfo(`webhook listening on ${where}`)
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            yield* readiness.beginShutdown
            closing = true
            yield* Effect.logInfo(
              `shutting down: not ready; answering for ${Duration.format(settings.shutdownDelay)}, ` +
                `then finishing in-flight requests within ${Duration.format(settings.shutdownGrace)}`
            )
            yield* Effect.sleep(settings.shutdownDelay)
          })
        )
      })
    )
    return drain.pipe(Layer.provideMerge(app), Layer.provideMerge(listening))
  })
)
