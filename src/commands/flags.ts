/** Flags more than one command takes, and how settings become flags. */
import { ConfigProvider, type Layer, Option } from "effect"
import { Flag } from "effect/cli"
import type { Setting } from "../config/setting.ts"

export const clusterFlag = Flag.String("cluster").pipe(
  Flag.withDescription("Folder of manifests (ConfigMaps, Secrets) to use as the cluster instead of Kubernetes")
)

/** What a setting's flag gives: its variable's name and the text, unchecked, if the flag was given. */
export type GivenFlag = readonly [env: string, value: Option.Option<string>]

/**
 * The flags of these settings (those that have one). Their text is checked
 * with the environment's, by the setting's Config, so a bad value gets the
 * same message whichever way it came.
 */
export const settingFlags = (settings: ReadonlyArray<Setting<unknown>>): ReadonlyArray<Flag.Flag<GivenFlag>> =>
  settings.flatMap(({ description, env, flag }) =>
    flag === undefined ? [] : [
      Flag.String(flag.replace(/^--/, "")).pipe(
        Flag.withDescription(`${description} [env ${env}]`),
        Flag.optional,
        Flag.map((value): GivenFlag => [env, value])
      )
    ]
  )

/**
 * The ConfigProvider the command's components read their settings from: the
 * flags given (by their variables' names) first, then the environment.
 */
export const flagsOverEnvironment = (given: ReadonlyArray<GivenFlag>): Layer.Layer<never> =>
  ConfigProvider.layerAdd(
    ConfigProvider.fromEnv({
      env: Object.fromEntries(given.flatMap(([env, value]) => Option.isSome(value) ? [[env, value.value]] : []))
    }),
    { asPrimary: true }
  )
