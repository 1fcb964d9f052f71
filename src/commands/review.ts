/**
 * `review --cluster DIR FILE`: answers one AdmissionReview exactly as the
 * webhook would, against a cluster held in a folder of manifests.
 */
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { admit, decodeReview, parseJson } from "../admission/pipeline.ts"
import { failWith } from "./exit.ts"
import { readInput } from "./input.ts"
import { offlineSettingFlags, withOfflineCluster } from "./offline.ts"
import { clusterFlag } from "./flags.ts"

export const reviewCommand = Command.make(
  "review",
  {
    cluster: clusterFlag,
    settings: offlineSettingFlags,
    pretty: Flag.Boolean("pretty").pipe(
      Flag.withDescription("Indent the JSON (the default prints exactly the bytes the webhook sends)"),
      Flag.withDefault(false)
    ),
    file: Argument.String("file").pipe(Argument.withDescription("AdmissionReview JSON file, or - for standard input"))
  },
  Effect.fn(function*({ cluster, file, pretty, settings }) {
    // Input that cannot be answered at all fails before the cluster is even read: exit 2.
    const json = yield* readInput(file).pipe(
      Effect.flatMap(parseJson),
      Effect.tap(decodeReview),
      Effect.catchTags({
        InputError: (error) => failWith(error.message, 2),
        AdmissionDecodeError: (error) => failWith(error.message, 2)
      })
    )
    const { review } = yield* withOfflineCluster(
      cluster,
      settings,
      admit(json).pipe(Effect.catchTag("AdmissionDecodeError", (error) => failWith(error.message, 2)))
    )
    yield* Console.log(JSON.stringify(review, null, pretty ? 2 : undefined))
  })
).pipe(Command.withDescription("Answer an AdmissionReview as the webhook would, against a cluster folder"))
