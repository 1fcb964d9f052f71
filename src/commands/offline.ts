/**
 * What the offline commands share: settings from the environment and flags,
 * the pipeline over a cluster folder, logs on stderr so stdout stays data.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, Logger, References } from "effect"
import { directoryAdmissionLayer } from "../admission/layers.ts"
import type { AdmissionServices } from "../admission/pipeline.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import { ManifestError } from "../cluster/manifestFiles.ts"
import { Settings, SettingsError, type SettingSources } from "../settings.ts"
import { failWith } from "./exit.ts"

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
  sources: SettingSources,
  program: Effect.Effect<A, E, AdmissionServices | MemoryCluster>
) =>
  Effect.gen(function*() {
    const config = yield* ClusterConfig
    yield* config.settled
    return yield* program
  }).pipe(
    Effect.provide(
      directoryAdmissionLayer(directory).pipe(Layer.provideMerge(Settings.layerFromSources(sources)))
    ),
    Effect.catchIf(
      (error): error is SettingsError | ManifestError => error instanceof SettingsError || error instanceof ManifestError,
      (error) => failWith(error instanceof ManifestError ? `cluster folder: ${error.message}` : error.message, 1)
    ),
    Effect.provide(Layer.mergeAll(stderrLogs, NodeServices.layer))
  )
