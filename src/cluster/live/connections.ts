/**
 * The connections to the API server: one pool for requests, at most
 * `requestConnections` kept-alive connections whatever the burst, and one for
 * watches, each of which holds a connection for as long as it streams, so a
 * watch never takes a request's connection.
 *
 * Why bounded: an undici pool without a bound opens a connection for every
 * request it cannot place at once, and over TLS each opening costs a
 * handshake, milliseconds of CPU. Under a burst of admissions the old client
 * held 186 connections to the API server and its tail latency was six times
 * the floor's (test/bench/RESULTS.md, "The road to the API server"). With
 * pipelining 1, a pool of 8 has at most 8 requests in flight; the others wait
 * in its queue and go out as connections free up (transport.ts).
 *
 * HTTP/1.1 only (`allowH2: false`), the same protocol tests and benchmarks
 * speak; see RESULTS.md for the HTTP/2 measurements.
 *
 * The pools are built for the TLS material they were given and rebuilt when
 * it changes (a rotated CA or client certificate, credentials.ts); the old
 * ones close once their requests and watches end.
 */
import { Pool } from "undici"
import type { TlsMaterial } from "./credentials.ts"

/** At most this many connections (and requests in flight) to the API server, watches aside. */
export const requestConnections = 8

/**
 * How long an idle connection is kept: long enough that admissions a few
 * seconds apart reuse it (undici's default is 4 s). A server's Keep-Alive
 * hint, when it sends one, wins.
 */
const keepAliveMillis = 30_000

export interface Connections {
  /** The request pool for this TLS material. */
  readonly forRequests: (tls: TlsMaterial) => Pool
  /** The watch pool for this TLS material. */
  readonly forWatches: (tls: TlsMaterial) => Pool
  /** Closes every pool at once, aborting what is in flight. */
  readonly destroy: () => Promise<void>
}

/** Connections to `server`; opening one (TCP and TLS) may take `connectTimeoutMillis`. */
export const makeConnections = (server: string, connectTimeoutMillis: number): Connections => {
  const origin = new URL(server).origin
  const secure = origin.startsWith("https:")
  const build = (tls: TlsMaterial, connections: number | null) =>
    new Pool(origin, {
      connections,
      pipelining: 1,
      allowH2: false,
      keepAliveTimeout: keepAliveMillis,
      connectTimeout: connectTimeoutMillis,
      ...(secure ? { connect: { ...tls } } : {})
    })

  let current: { readonly tls: TlsMaterial; readonly requests: Pool; readonly watches: Pool } | undefined
  const retired = new Set<Pool>()
  const poolsFor = (tls: TlsMaterial) => {
    if (current !== undefined && current.tls === tls) return current
    if (current !== undefined) {
      for (const pool of [current.requests, current.watches]) {
        retired.add(pool)
        // Graceful: what runs on it ends first.
        void pool.close().catch(() => undefined).finally(() => retired.delete(pool))
      }
    }
    current = { tls, requests: build(tls, requestConnections), watches: build(tls, null) }
    return current
  }

  return {
    forRequests: (tls) => poolsFor(tls).requests,
    forWatches: (tls) => poolsFor(tls).watches,
    destroy: async () => {
      const pools = [...retired, ...(current === undefined ? [] : [current.requests, current.watches])]
      current = undefined
      await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)))
    }
  }
}
