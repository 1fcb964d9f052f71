/**
 * The server's log: one JSON object per line on stdout, in effect's JSON
 * format (`Logger.formatJson`, the lines `Logger.consoleJson` writes), written
 * in batches instead of a write per line.
 *
 * Why: a write to stdout is a system call, and on the machines measured one
 * system call on the request path costs far more than its own few µs (the
 * code after it runs cold): the admission's log line, written at once, took
 * 40–75 µs of CPU per admission in-process where building it took 2–5 µs
 * (test/bench/RESULTS.md, "Half the CPU per admission"). Batched, a replica
 * answering 200 admissions a second makes about 20 writes a second instead
 * of 200.
 *
 * A line waits at most `flushAfterMillis` (50 ms), or less once
 * `maxBufferedChars` are waiting; an ERROR or FATAL line is written at once
 * with the lines before it. Everything waiting is written when the logger's
 * scope closes (the server's shutdown) and when the process exits, whatever
 * the reason (`process.on("exit")`): only a SIGKILL loses the last 50 ms.
 */
import { Context, Effect, Layer, Logger, type LogLevel } from "effect"

export interface LineBufferOptions {
  /** How long a line may wait to be written. Default 50 ms. */
  readonly flushAfterMillis?: number
  /** Characters waiting that make the buffer write at once. Default 64 Ki. */
  readonly maxBufferedChars?: number
}

export interface LineBuffer {
  /** Adds a line (with its newline); `now` writes it and everything before it at once. */
  readonly add: (line: string, now: boolean) => void
  /** Writes everything waiting, in one call of `write`. */
  readonly flush: () => void
}

/** Lines kept in order and handed to `write` together, at most `flushAfterMillis` after the first. */
export const makeLineBuffer = (write: (chunk: string) => void, options: LineBufferOptions = {}): LineBuffer => {
  const flushAfterMillis = options.flushAfterMillis ?? 50
  const maxBufferedChars = options.maxBufferedChars ?? 64 * 1024
  let lines: Array<string> = []
  let chars = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const flush = () => {
    if (timer !== undefined) {
      clearTimeout(timer)
      timer = undefined
    }
    if (lines.length === 0) return
    const chunk = lines.join("")
    lines = []
    chars = 0
    write(chunk)
  }
  const add = (line: string, now: boolean) => {
    lines.push(line)
    chars += line.length
    if (now || chars >= maxBufferedChars) return flush()
    if (timer === undefined) {
      timer = setTimeout(flush, flushAfterMillis)
      // A pending log line never keeps the process alive: exit writes it (below).
      timer.unref()
    }
  }
  return { add, flush }
}

const writtenAtOnce: ReadonlySet<LogLevel.LogLevel> = new Set(["Error", "Fatal"])

/**
 * Writes the log lines waiting now. For output that must come after them on
 * the same stdout (serve's example curl line); a no-op without the layer.
 */
export const FlushLogLines = Context.Reference<() => void>("filer-sidecar-injector/observability/FlushLogLines", {
  defaultValue: () => () => {}
})

/**
 * The JSON-lines logger over `write` (stdout by default) as the only logger,
 * and FlushLogLines. Closing the layer's scope writes what is waiting.
 */
export const layerBatchedJsonLines = (
  write: (chunk: string) => void = (chunk) => {
    process.stdout.write(chunk)
  },
  options: LineBufferOptions = {}
): Layer.Layer<never> =>
  Layer.unwrap(Effect.gen(function*() {
    const buffer = makeLineBuffer(write, options)
    const onExit = () => buffer.flush()
    process.on("exit", onExit)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        process.off("exit", onExit)
        buffer.flush()
      })
    )
    const logger = Logger.make((entry) => {
      buffer.add(`${Logger.formatJson.log(entry)}\n`, writtenAtOnce.has(entry.logLevel))
    })
    return Layer.mergeAll(Logger.layer([logger]), Layer.succeed(FlushLogLines, buffer.flush))
  }))
