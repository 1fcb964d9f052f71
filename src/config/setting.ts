/**
 * A setting, declared once next to the component that reads it: its
 * environment variable, its flag (if any), its default, how its text is
 * checked and its line of the README's table ("Configuration"). From that one
 * definition come the `Config` the component reads, the command line's flag
 * (commands/flags.ts) and the table (config/table.ts).
 *
 * A bad value stops the start with a message naming the flag and the
 * variable: `invalid setting --port (PORT): expected a whole number from 0 to
 * 65535, got "x"`.
 */
import { Config, ConfigProvider, Context, Duration, Effect, Layer, Option, Record, Result, Schema } from "effect"
import { isDns1123Label, isDns1123Subdomain } from "../domain/names.ts"
import { parseQuantity } from "../domain/quantity.ts"

export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  setting: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `invalid setting ${this.setting}: ${this.problem}`
  }
}

/** Reads a setting's text: its value, or what is wrong with it. */
export type Parse<A> = (raw: string) => Result.Result<A, string>

export interface Setting<A> {
  /** The environment variable, e.g. `PORT`. */
  readonly env: string
  /** The flag, e.g. `--port`; undefined when only the environment sets it. */
  readonly flag: string | undefined
  /** The README's "meaning and default", also the flag's help. */
  readonly description: string
  /** The text read when the variable is unset or empty; undefined when the setting is optional. */
  readonly default: string | undefined
  /** The checked value, from the current ConfigProvider (the environment, with the flags on top in `serve`). */
  readonly config: Config.Config<A>
}

interface Spec<A> {
  readonly env: string
  readonly flag?: string
  readonly description: string
  readonly parse: Parse<A>
}

/** How messages name a setting: `--port (PORT)`, or `KUBE_CALL_TIMEOUT_MS` when it has no flag. */
export const settingName = (setting: Pick<Setting<unknown>, "env" | "flag">): string =>
  setting.flag === undefined ? setting.env : `${setting.flag} (${setting.env})`

/** Config's error for a bad setting; `load` takes the SettingsError back out. */
const invalid = (setting: Pick<Setting<unknown>, "env" | "flag">, problem: string): Config.ConfigError => {
  const error = new SettingsError({ setting: settingName(setting), problem })
  return new Config.ConfigError(new ConfigProvider.SourceError({ message: error.message, cause: error }))
}

export function setting<A>(spec: Spec<A> & { readonly default: string }): Setting<A>
export function setting<A>(spec: Spec<A>): Setting<A | undefined>
export function setting<A>(spec: Spec<A> & { readonly default?: string }): Setting<A | undefined> {
  const name = { env: spec.env, flag: spec.flag }
  const config = Config.option(Config.String(spec.env)).pipe(
    Config.mapEffect((given): Effect.Effect<A | undefined, Config.ConfigError> => {
      // An empty variable counts as unset (ConfigProvider.fromEnv reads it so).
      const raw = Option.getOrUndefined(given) ?? spec.default
      if (raw === undefined) return Effect.succeed(undefined)
      const parsed = spec.parse(raw)
      return Result.isSuccess(parsed) ? Effect.succeed(parsed.success) : Effect.fail(invalid(name, parsed.failure))
    })
  )
  return { env: spec.env, flag: spec.flag, description: spec.description, default: spec.default, config }
}

/** The value a setting reads. */
export type SettingValue<S> = S extends Setting<infer A> ? A : never

/** The Config of a record of settings: the record of their checked values. */
export const configOf = <const S extends Readonly<Record<string, Setting<unknown>>>>(
  settings: S
): Config.Config<{ readonly [K in keyof S]: SettingValue<S[K]> }> =>
  Config.all(Record.map(settings, (each) => each.config)) as Config.Config<unknown> as Config.Config<
    { readonly [K in keyof S]: SettingValue<S[K]> }
  >

/**
 * A check across settings, after each was read: `problem` returns the setting
 * at fault and what is wrong, or undefined.
 */
export const crossCheck = <A>(problem: (value: A) => readonly [Setting<unknown>, string] | undefined) =>
  Config.mapEffect((value: A): Effect.Effect<A, Config.ConfigError> => {
    const found = problem(value)
    return found === undefined ? Effect.succeed(value) : Effect.fail(invalid(found[0], found[1]))
  })

/** Reads `config` from the current ConfigProvider; a bad setting fails with its SettingsError. */
export const load = <A>(config: Config.Config<A>): Effect.Effect<A, SettingsError> =>
  Effect.mapError(config, (error) => {
    const cause = error.cause
    return cause._tag === "SourceError" && cause.cause instanceof SettingsError
      ? cause.cause
      : new SettingsError({ setting: "configuration", problem: error.message })
  })

/** What `config` reads when nothing is set: the defaults, for the components' plain-values layers. */
export const defaultsOf = <A>(config: Config.Config<A>): A =>
  Effect.runSync(config.parse(ConfigProvider.fromUnknown({})))

/**
 * The base class of a component's settings service, for
 * `class X extends SettingsService<X, Shape>()("id", config) {}`: `layer`
 * reads `config` (from the environment, and the flags on top in the
 * commands), `layerValues` takes plain values over its defaults (for tests).
 */
export const SettingsService = <Self, Shape extends object>() =>
<const Id extends string>(id: Id, config: Config.Config<Shape>) => {
  const Service = Context.Service<Self, Shape>()(id)
  const defaults = defaultsOf(config)
  return class extends Service {
    static readonly config = config
    /** What the settings are when nothing is set. */
    static readonly defaults: Shape = defaults
    static readonly layer: Layer.Layer<Self, SettingsError> = Layer.effect(Service, load(config))
    static readonly layerValues = (values: Partial<Shape> = {}): Layer.Layer<Self> =>
      Layer.succeed(Service, { ...defaults, ...values })
  }
}

// -----------------------------------------------------------------------------
// Parsers

const show = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)

const expected = (what: string, raw: string) => Result.fail(`expected ${what}, got ${show(raw)}`)

/** Any text. */
export const text: Parse<string> = Result.succeed

/** Text that `test` accepts, described as `what` when it does not. */
export const textWhere = (test: (raw: string) => boolean, what: string): Parse<string> => (raw) =>
  test(raw) ? Result.succeed(raw) : expected(what, raw)

export const oneOf = <const A extends string>(options: ReadonlyArray<A>): Parse<A> => (raw) =>
  (options as ReadonlyArray<string>).includes(raw)
    ? Result.succeed(raw as A)
    : expected(`one of ${options.join(", ")}`, raw)

export const wholeNumber = (min: number, max: number): Parse<number> => (raw) => {
  const value = Number(raw)
  return /^\d+$/.test(raw.trim()) && value >= min && value <= max
    ? Result.succeed(value)
    : expected(`a whole number from ${min} to ${max}`, raw)
}

/** A whole number of milliseconds. */
export const millis = (min: number, max: number): Parse<Duration.Duration> => (raw) =>
  Result.map(wholeNumber(min, max)(raw), Duration.millis)

/** A Kubernetes resource quantity, not negative, kept as written. */
export const quantity: Parse<string> = textWhere(
  (raw) => {
    const value = parseQuantity(raw)
    return value !== undefined && value.numerator >= 0n
  },
  "a Kubernetes quantity such as 100m, 1, 100Mi or 10Gi"
)

export const namespaceName: Parse<string> = textWhere(isDns1123Label, "a namespace name (a DNS-1123 label)")

/** An object name such as a MutatingWebhookConfiguration's, described as `what`. */
export const objectName = (what: string): Parse<string> =>
  textWhere(isDns1123Subdomain, `${what} (a DNS-1123 subdomain)`)
