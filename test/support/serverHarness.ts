/**
 * Running the webhook server in tests, for real: HTTPS on 127.0.0.1, in this
 * process (the layers `serve` composes, with Settings as plain values) or as
 * a child process (`node src/bin.ts serve ...`), and clients that say what
 * happened on the wire (status, headers, whether the socket was reused,
 * which certificate the server showed).
 *
 * Both ways listen on port 0: in process the port comes from the HttpServer
 * service; a child process says it in its "webhook listening on" log line.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Context, Duration, Effect, Exit, Layer, Logger, References, Scope } from "effect"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import { HttpServer } from "effect/http"
import { type ChildProcess, spawn } from "node:child_process"
import { X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import type * as tls from "node:tls"
import {
  type AdmissionLayerServices,
  directoryAdmissionLayer,
  memoryAdmissionLayer
} from "../../src/admission/layers.ts"
import { ClusterConfig } from "../../src/cluster/ClusterConfig.ts"
import type { ClusterSettings } from "../../src/cluster/ClusterSettings.ts"
import type { KubeRetry } from "../../src/cluster/retry.ts"
import type { RawObject } from "../../src/cluster/objects.ts"
import { Readiness } from "../../src/server/Readiness.ts"
import { secretAccessReview } from "../../src/server/secretAccess.ts"
import { webhookServerLayer } from "../../src/server/server.ts"
import { generateSelfSigned } from "../../src/server/tls/selfSigned.ts"
import { ClientCa } from "../../src/server/tls/ClientCa.ts"
import { ServingCertificate } from "../../src/server/tls/ServingCertificate.ts"
import { ServerSettings, type ServerSettingsShape } from "../../src/server/ServerSettings.ts"
import { exampleClusterDir, pipelineSettings, repoRoot } from "./pipelineHarness.ts"

export const mebibyte = 1024 * 1024

// ---------------------------------------------------------------------------
// Certificates

export interface ServingPairFiles {
  readonly certFile: string
  readonly keyFile: string
  /** The CA that signed the certificate: what a client must trust. */
  readonly caPem: string
  /** SHA-256 fingerprint of the serving certificate, as `getPeerCertificate().fingerprint256`. */
  readonly fingerprint256: string
}

/** A fresh CA and serving certificate for 127.0.0.1 (2048-bit keys, to be quick). */
export const generatePair = () =>
  Effect.runPromise(
    generateSelfSigned({ serviceName: "filer-sidecar-injector", namespace: "das", caKeyBits: 2048, leafKeyBits: 2048 })
  )

/** Writes a fresh pair to `directory/cert.pem` and `directory/key.pem` (replacing what is there). */
export const writeServingPair = async (directory: string): Promise<ServingPairFiles> => {
  const pair = await generatePair()
  const certFile = path.join(directory, "cert.pem")
  const keyFile = path.join(directory, "key.pem")
  // As a Secret volume rotates: a new file renamed over the old one, so a reader never sees half of it.
  for (const [file, text] of [[certFile, pair.certPem], [keyFile, pair.keyPem]] as const) {
    fs.writeFileSync(`${file}.tmp`, text, { mode: 0o600 })
    fs.renameSync(`${file}.tmp`, file)
  }
  return { certFile, keyFile, caPem: pair.caPem, fingerprint256: new X509Certificate(pair.certPem).fingerprint256 }
}

export const tempDirectory = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fsi-${prefix}-`))

/** A copy of the example cluster folder, to serve from without touching the repository. */
export const copyExampleCluster = (): string => {
  const directory = tempDirectory("cluster")
  fs.cpSync(exampleClusterDir, directory, { recursive: true })
  return directory
}

// ---------------------------------------------------------------------------
// Clients

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
  /** The request went over a socket that had carried an earlier request. */
  readonly reused: boolean
  /** SHA-256 fingerprint of the certificate the server showed on this request's connection. */
  readonly fingerprint256: string
}

export interface RequestOptions {
  readonly port: number
  /** The CA(s) to trust. */
  readonly ca: string | ReadonlyArray<string>
  readonly method?: string
  readonly path?: string
  readonly headers?: Readonly<Record<string, string | number>>
  /** Sent with a Content-Length, unless `chunked`. */
  readonly body?: string | Buffer
  /** Send the body with Transfer-Encoding: chunked, no Content-Length. */
  readonly chunked?: boolean
  readonly agent?: https.Agent
  /** The TLS server name (SNI) to send, as the kube-apiserver sends the Service's DNS name. None by default. */
  readonly servername?: string
  /** Gives up (rejects) after this long. Default 10 s. */
  readonly timeoutMillis?: number
  /** A client certificate and its key (PEM) to present, as the API server does with `--client-ca-file`. */
  readonly clientCertificate?: { readonly cert: string; readonly key: string }
}

/** Sockets that have carried a response, and sockets whose TLS handshake has finished. */
const reusedSockets = new WeakSet<object>()
const handshaken = new WeakSet<object>()

/**
 * One HTTPS request to 127.0.0.1. Resolves with the whole answer; rejects
 * with the socket's error (its `code`, e.g. ECONNREFUSED, ECONNRESET) and
 * `connected` telling whether the TLS connection was ever established.
 */
export const request = (options: RequestOptions): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body)
    const headers: Record<string, string | number> = { ...options.headers }
    if (body !== undefined && options.chunked !== true) headers["content-length"] = body.length
    let connected = false
    const req = https.request({
      host: "127.0.0.1",
      port: options.port,
      method: options.method ?? "GET",
      path: options.path ?? "/",
      headers,
      ca: typeof options.ca === "string" ? options.ca : [...options.ca],
      agent: options.agent ?? false,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...options.clientCertificate,
      timeout: options.timeoutMillis ?? 10_000
    })
    req.on("socket", (socket) => {
      if (handshaken.has(socket)) {
        connected = true
        return
      }
      socket.once("secureConnect", () => {
        handshaken.add(socket)
        connected = true
      })
    })
    req.on("timeout", () => req.destroy(Object.assign(new Error("client timeout"), { code: "CLIENT_TIMEOUT" })))
    req.on("error", (error: NodeJS.ErrnoException) => {
      reject(Object.assign(error, { connected }))
    })
    req.on("response", (response) => {
      const socket = response.socket as tls.TLSSocket
      const reused = reusedSockets.has(socket)
      reusedSockets.add(socket)
      const fingerprint256 = socket.getPeerCertificate().fingerprint256
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("error", (error) => reject(Object.assign(error, { connected: true })))
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          reused,
          fingerprint256
        })
      )
    })
    if (body !== undefined) req.end(body)
    else req.end()
  })

export interface HeldPost {
  /** Sends the rest of the body; the answer follows. */
  readonly finish: () => void
  /** The client gives up: the connection is destroyed mid-body. */
  readonly abort: () => void
  readonly reply: Promise<Reply>
}

/**
 * A POST of JSON to /inject whose body is sent in two halves: the first now,
 * the rest on `finish()`. The server has accepted the request and is still
 * receiving it meanwhile. With a Content-Length unless `chunked`.
 */
export const heldPost = (
  options: Pick<RequestOptions, "port" | "ca"> & { readonly body: Buffer; readonly chunked?: boolean }
): HeldPost => {
  const { body } = options
  const half = Math.floor(body.length / 2)
  const req = https.request({
    host: "127.0.0.1",
    port: options.port,
    method: "POST",
    path: "/inject",
    ca: typeof options.ca === "string" ? options.ca : [...options.ca],
    agent: false,
    headers: { "content-type": "application/json", ...(options.chunked === true ? {} : { "content-length": body.length }) }
  })
  const reply = new Promise<Reply>((resolve, reject) => {
    req.on("error", reject)
    req.on("response", (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          reused: false,
          fingerprint256: (response.socket as tls.TLSSocket).getPeerCertificate().fingerprint256 ?? ""
        }))
    })
  })
  // A test that aborts does not wait for the answer.
  reply.catch(() => {})
  req.write(body.subarray(0, half))
  return { finish: () => req.end(body.subarray(half)), abort: () => req.destroy(), reply }
}

/** POST a JSON body (a value, serialized here, or the exact text) to /inject. */
export const postReview = (
  options: Omit<RequestOptions, "method" | "path" | "body"> & { readonly review: unknown; readonly path?: string }
) =>
  request({
    ...options,
    method: "POST",
    path: options.path ?? "/inject",
    headers: { "content-type": "application/json", ...options.headers },
    body: typeof options.review === "string" || Buffer.isBuffer(options.review)
      ? options.review
      : JSON.stringify(options.review)
  })

/** Runs `count` tasks, at most `concurrency` at a time, in order of start; results in index order. */
export const runConcurrently = async <A>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<A>
): Promise<Array<PromiseSettledResult<A>>> => {
  const results = new Array<PromiseSettledResult<A>>(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next++
      try {
        results[index] = { status: "fulfilled", value: await task(index) }
      } catch (reason) {
        results[index] = { status: "rejected", reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return results
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Polls `condition` every 10 ms until it holds, or rejects after `timeoutMillis` naming `what`. */
export const waitUntil = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMillis = 5000) => {
  const deadline = Date.now() + timeoutMillis
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMillis} ms for ${what}`)
    await sleep(10)
  }
}

// ---------------------------------------------------------------------------
// The server in this process

export interface InProcessServer {
  readonly port: number
  /** The CA to trust (the self-signed layer's, or the one given with the files). */
  readonly caPem: string
  /** Every log line so far, logfmt. */
  readonly logs: ReadonlyArray<string>
  /** Runs an effect against the server's services (ClusterConfig, Readiness, ServingCertificate...). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, ServerServices>) => Promise<A>
  /** Closes the server's scope: the graceful shutdown, then everything else. */
  readonly close: () => Promise<void>
}

type ServerServices = ClusterConfig | Readiness | ServingCertificate | ServerSettings | HttpServer.HttpServer

export interface InProcessOptions {
  /** The cluster, in memory: these objects, or the manifests of a folder as `serve --cluster DIR` reads them. */
  readonly cluster: { readonly objects: Iterable<RawObject> } | { readonly directory: string }
  /** The server's settings over the defaults; host and port default to 127.0.0.1:0, the shutdown delay to 0. */
  readonly server?: Partial<ServerSettingsShape>
  /** Default: a self-signed certificate (2048-bit CA). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caPem: string; readonly pollInterval?: Duration.Input }
  /** Callers' client certificates checked against the CA in this file (`--client-ca-file`). Default: not checked. */
  readonly clientCa?: { readonly file: string; readonly pollInterval?: Duration.Input }
  readonly retry?: Layer.Layer<KubeRetry>
}

/**
 * Builds the server as `serve` does (webhookServerLayer and the review of
 * its own access, over the pipeline, Readiness, ServingCertificate,
 * ClientCa), over an in-memory cluster, and waits until the cluster
 * configuration has loaded.
 */
export const startInProcess = async (options: InProcessOptions): Promise<InProcessServer> => {
  const logs: Array<string> = []
  const logLayer = Layer.mergeAll(
    Logger.layer([Logger.make((entry) => logs.push(Logger.formatLogFmt.log(entry)))]),
    Layer.succeed(References.MinimumLogLevel, "All")
  )
  const settings = Layer.mergeAll(
    ServerSettings.layerValues({ host: "127.0.0.1", port: 0, shutdownDelay: Duration.zero, ...options.server }),
    pipelineSettings()
  )
  const tlsFiles = options.tls
  const certificate: Layer.Layer<ServingCertificate, unknown, FileSystem> = tlsFiles === undefined
    ? ServingCertificate.layerSelfSigned({ serviceName: "filer-sidecar-injector", namespace: "das", caKeyBits: 2048 })
    : ServingCertificate.layerFromFiles(tlsFiles.certFile, tlsFiles.keyFile, {
      pollInterval: tlsFiles.pollInterval ?? "50 millis"
    })
  const cluster = options.cluster
  const admission: Layer.Layer<AdmissionLayerServices, unknown, ClusterSettings | FileSystem | Path> = "directory" in cluster
    ? directoryAdmissionLayer(cluster.directory)
    : memoryAdmissionLayer(cluster.objects, options.retry === undefined ? {} : { retry: options.retry })
  const clientCa = options.clientCa === undefined
    ? ClientCa.layerNone
    : ClientCa.layerFromFile(options.clientCa.file, { pollInterval: options.clientCa.pollInterval ?? "50 millis" })
  const services = Layer.mergeAll(certificate, clientCa, Readiness.layer).pipe(Layer.provideMerge(admission))
  const layer = Layer.merge(webhookServerLayer, secretAccessReview).pipe(
    Layer.provideMerge(services),
    Layer.provideMerge(settings),
    Layer.provide(NodeServices.layer),
    Layer.provide(logLayer)
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope)).catch(async (error: unknown) => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  })
  const run = <A, E>(effect: Effect.Effect<A, E, ServerServices>) =>
    Effect.runPromise(effect.pipe(Effect.provide(context), Effect.provide(logLayer)))
  await run(Effect.gen(function*() {
    yield* (yield* ClusterConfig).settled
  }))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (!("port" in address)) throw new Error("the server did not listen on TCP")
  const caPem = tlsFiles?.caPem ?? (await run(Effect.gen(function*() {
    return yield* (yield* ServingCertificate).caPem
  })))
  if (caPem === undefined) throw new Error("no CA to trust")
  let closed: Promise<void> | undefined
  return {
    port: address.port,
    caPem,
    logs,
    run,
    close: () => (closed ??= Effect.runPromise(Scope.close(scope, Exit.void)))
  }
}

// ---------------------------------------------------------------------------
// The server as a child process

export interface ServeProcess {
  readonly child: ChildProcess
  readonly port: number
  /** Standard output and error so far, as lines (the JSON logs are on stdout). */
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** Ends the process if still running (SIGKILL), for cleanup. */
  readonly kill: () => Promise<void>
}

/** The log lines of a child (JSON on stdout), parsed; lines that are not JSON are skipped. */
export const jsonLogs = (lines: ReadonlyArray<string>): Array<{ message: string; level: string; timestamp: string }> =>
  lines.flatMap((line) => {
    try {
      const parsed: unknown = JSON.parse(line)
      return typeof parsed === "object" && parsed !== null && "message" in parsed ? [parsed as never] : []
    } catch {
      return []
    }
  })

const listening = /webhook listening on https:\/\/[^:]+:(\d+)/

/**
 * Spawns `node src/bin.ts serve --host 127.0.0.1 --port 0 ...args` with the
 * Node that runs the tests, and resolves once it logs the port it listens on.
 * Rejects (after killing it) if it exits first or takes over `timeoutMillis`.
 */
export const spawnServe = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  timeoutMillis = 15_000
): Promise<ServeProcess> =>
  spawnListening(
    [process.execPath, path.join(repoRoot, "src", "bin.ts"), "serve", "--host", "127.0.0.1", "--port", "0", ...args],
    env,
    timeoutMillis
  )

/**
 * Spawns `command` (program and arguments) in the repository, as spawnServe
 * does, for command lines spawnServe cannot write (the Go injector's
 * arguments, the image's entry point). Listen on port 0 through `env` (PORT).
 */
export const spawnListening = (
  command: readonly [string, ...Array<string>],
  env: Readonly<Record<string, string>> = {},
  timeoutMillis = 15_000
): Promise<ServeProcess> =>
  new Promise((resolve, reject) => {
    const [program, ...args] = command
    const child = spawn(program, args, {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal }))
    )
    let port: number | undefined
    const collect = (into: Array<string>, onLine: (line: string) => void) => {
      let pending = ""
      return (chunk: Buffer) => {
        pending += chunk.toString("utf8")
        const lines = pending.split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) {
          into.push(line)
          onLine(line)
        }
      }
    }
    const kill = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL")
        await exited
      }
    }
    const timer = setTimeout(() => {
      void kill().then(() =>
        reject(new Error(`serve did not start within ${timeoutMillis} ms; stderr: ${stderr.join(" | ")}`))
      )
    }, timeoutMillis)
    child.stdout!.on(
      "data",
      collect(stdout, (line) => {
        const match = listening.exec(line)
        if (match !== null && port === undefined) {
          port = Number(match[1])
          clearTimeout(timer)
          resolve({ child, port, stdout, stderr, exited, kill })
        }
      })
    )
    child.stderr!.on("data", collect(stderr, () => {}))
    void exited.then(({ code, signal }) => {
      if (port === undefined) {
        clearTimeout(timer)
        reject(new Error(`serve exited (${code ?? signal}) before listening; stderr: ${stderr.join(" | ")}`))
      }
    })
  })
