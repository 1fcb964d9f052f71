/**
 * What the offline commands share: settings from the environment and flags
 * (read by the same definitions as `serve`'s), the pipeline over a cluster
 * folder, logs on stderr so stdout stays data.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, Logger, References } from "effect"
import { AdmissionSettings } from "../admission/AdmissionSettings.ts"
import { directoryAdmissionLayer } from "../admission/layers.ts"
import type { AdmissionServices } from "../admission/pipeline.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { ClusterSettings, clusterSettings } from "../cluster/ClusterSettings.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import { ManifestError } from "../cluster/manifestFiles.ts"
import { SettingsError } from "../config/setting.ts"
import { failWith } from "./exit.ts"
import { flagsOverEnvironment, type GivenFlag, settingFlags } from "./flags.ts"

/** The flags of the offline commands' settings: the cluster's (`--injector-namespace`). */
export const offlineSettingFlags = settingFlags(Object.values(clusterSettings))

export const stderrLogs = Layer.mergeAll(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Warn")
)

/**
 * Runs `program` against the cluster in `directory`, once the injector's
 * configuration there has loaded (or failed to). Bad settings or an
 * unreadable folder end the command with exit code 1 and one line.
 */
export const withOfflineCluster = <A, E>(
  directory: string,
  given: ReadonlyArray<GivenFlag>,
  program: Effect.Effect<A, E, AdmissionServices | MemoryCluster>
) =>
  Effect.gen(function*() {
    const config = yield* ClusterConfig
    yield* config.settled
    return yield* program
  }).pipe(
    Effect.provide(
      directoryAdmissionLayer(directory).pipe(
        Layer.provideMerge(Layer.mergeAll(ClusterSettings.layer, AdmissionSettings.layer)),
        Layer.provide(flagsOverEnvironment(given))
      )
    ),
    Effect.catchIf(
      (error): error is SettingsError | ManifestError => error instanceof SettingsError || error instanceof ManifestError,
      (error) => failWith(error instanceof ManifestError ? `cluster folder: ${error.message}` : error.message, 1)
    ),
    Effect.provide(Layer.mergeAll(stderrLogs, NodeServices.layer))
  )
