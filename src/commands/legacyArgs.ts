/**
 * The command line before effect/cli reads it: the Go injector's arguments,
 * and single-dash words that effect/cli would split into short flags.
 *
 * The Go injector's Deployment runs the image with
 * `-service-name=filer-sidecar-injector -sidecar-config-file=/etc/webhook/config/sidecarconfig.json`
 * (Go's `flag` syntax: one or two dashes, `-flag=value` or `-flag value`) and
 * no subcommand. Those arguments start `serve` as the Go injector ran: a
 * self-signed certificate for that Service, the template from that file, the
 * webhook configuration it registered (README: "Migrating from the Go
 * injector"). Pure: the caller prints and logs.
 */
import { Context } from "effect"
import { defaultWebhookConfigurationName } from "../server/registerWebhook.ts"

/** The flags of the Go injector's `cmd/main.go`, and its defaults. */
const goFlagDefaults = {
  port: undefined,
  "service-name": "filer-sidecar-injector",
  "sidecar-config-file": "/etc/webhook/config/sidecarconfig.yaml"
} as const
type GoFlag = keyof typeof goFlagDefaults

const isGoFlag = (name: string): name is GoFlag => Object.hasOwn(goFlagDefaults, name)

export type Invocation =
  /** Arguments for effect/cli; `deprecation` says what to run instead, when they were the Go injector's. */
  | { readonly _tag: "Run"; readonly args: ReadonlyArray<string>; readonly deprecation?: string }
  /** Arguments no command takes: print `message` and exit 2. */
  | { readonly _tag: "UsageError"; readonly message: string }

// `-name`, `--name`, `-name=value`, `--name=value`, as Go's flag package reads them.
const flagPattern = /^(--?)([A-Za-z][A-Za-z0-9_-]*)(?:=([\s\S]*))?$/

// One dash and a word: effect/cli would read `-bogus` as the short flags -b -o -g -u -s.
const singleDashWord = /^-([A-Za-z][A-Za-z0-9_-]+)(?:=[\s\S]*)?$/

const usageError = (message: string): Invocation => ({ _tag: "UsageError", message })

/** A value as a POSIX shell reads it back. */
const shellWord = (value: string) => /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`

/** Go's flag parsing of the whole command line, into today's `serve` flags. */
const translateGoArgs = (argv: ReadonlyArray<string>): Invocation => {
  const given: Partial<Record<GoFlag, string>> = {}
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!
    if (token === "--") {
      if (index + 1 < argv.length) return usageError(`unexpected argument ${JSON.stringify(argv[index + 1])}`)
      break
    }
    const match = flagPattern.exec(token)
    if (match === null) return usageError(`unexpected argument ${JSON.stringify(token)}`)
    const name = match[2]!
    if (name === "help" || name === "h") return { _tag: "Run", args: ["serve", "--help"] }
    if (!isGoFlag(name)) {
      return usageError(
        `flag provided but not defined: ${match[1]}${name} (the Go injector's flags are -port, -service-name, -sidecar-config-file)`
      )
    }
    let value = match[3]
    if (value === undefined) {
      value = argv[index + 1]
      if (value === undefined) return usageError(`flag needs an argument: ${match[1]}${name}`)
      index++
    }
    // As in Go, the last occurrence wins.
    given[name] = value
  }
  const serviceName = given["service-name"] ?? goFlagDefaults["service-name"]
  const configFile = given["sidecar-config-file"] ?? goFlagDefaults["sidecar-config-file"]
  const args = [
    "serve",
    "--service-name",
    serviceName,
    "--sidecar-config-file",
    configFile,
    "--register-webhook",
    defaultWebhookConfigurationName,
    ...(given.port === undefined ? [] : ["--port", given.port])
  ]
  const equivalent = ["filer-sidecar-injector", ...args].map(shellWord).join(" ")
  return {
    _tag: "Run",
    args,
    deprecation: `the Go injector's arguments are deprecated; this runs \`${equivalent}\`, use that instead ` +
      `(README: "Migrating from the Go injector")`
  }
}

/**
 * What to run for `argv` (the arguments after the program's name). Go-style
 * arguments (the first one a Go injector flag, or any single-dash word) are
 * translated; otherwise `argv` goes to effect/cli unchanged, unless a
 * single-dash word sits among them.
 */
export const interpretArgs = (argv: ReadonlyArray<string>): Invocation => {
  const first = argv[0]
  const firstFlag = first === undefined ? null : flagPattern.exec(first)
  if (firstFlag !== null && (isGoFlag(firstFlag[2]!) || firstFlag[1] === "-" && firstFlag[2]!.length > 1)) {
    return translateGoArgs(argv)
  }
  for (const token of argv) {
    if (token === "--") break
    const word = singleDashWord.exec(token)
    if (word !== null) return usageError(`unknown flag -${word[1]} (flags take two dashes: --${word[1]})`)
  }
  return { _tag: "Run", args: argv }
}

/**
 * The deprecation warning of this invocation, for `serve` to log once its
 * logger is in place (the command line is read before there is one).
 */
export const DeprecatedInvocation = Context.Reference<string | undefined>(
  "filer-sidecar-injector/commands/DeprecatedInvocation",
  { defaultValue: () => undefined }
)
