/**
 * `explain [--namespace NS] NAME [--cluster DIR] [--output text|json]`: what
 * the webhook does for a notebook, and what it cannot see (README,
 * "Troubleshooting"). Against the cluster (kubeconfig or in-cluster; the
 * namespace defaults to the kubeconfig context's, else `default`) or a folder
 * of manifests (`--cluster`; the namespace defaults to `default`). Runs the
 * webhook's pipeline without side effects. Exit 0 when explained, 1 when the
 * cluster cannot be read, 2 for bad usage.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Console, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { FileSystem } from "effect/FileSystem"
import type { Path } from "effect/Path"
import { AdmissionSettings } from "../admission/AdmissionSettings.ts"
import { admissionLayer } from "../admission/layers.ts"
import { ClusterConfig } from "../cluster/ClusterConfig.ts"
import { ClusterSettings } from "../cluster/ClusterSettings.ts"
import { KubeClient } from "../cluster/KubeClient.ts"
import { MemoryCluster } from "../cluster/MemoryCluster.ts"
import { driftOf, type Explanation, readStatusMounted, wasInjected, annotationsOf, choiceChecks } from "../domain/explain.ts"
import { explainText } from "../domain/explainText.ts"
import { statusAnnotation } from "../domain/pod.ts"
import { failWith } from "./exit.ts"
import { clusterFlag, flagsOverEnvironment } from "./flags.ts"
import { clusterChecks } from "./explainChecks.ts"
import { explainPod, findNotebookPod } from "./explainPod.ts"
import { offlineSettingFlags, stderrLogs } from "./offline.ts"

/** The explanation of notebook `name` in `namespace`, against whichever KubeClient is provided. */
export const explainNotebook = Effect.fn("explain")(function*(namespace: string, name: string, offline: boolean) {
  const config = yield* ClusterConfig
  yield* config.settled
  const pod = yield* findNotebookPod(namespace, name)
  const { explanation, problems, secrets } = yield* explainPod(pod, namespace)
  const injectorNamespace = (yield* ClusterSettings).injectorNamespace
  const checks = [
    ...(yield* clusterChecks({ namespace, injectorNamespace, secrets, offline })),
    ...choiceChecks(annotationsOf(pod), problems)
  ]
  const injected = wasInjected(pod)
  const status = injected ? readStatusMounted(pod) : undefined
  if (injected && status === undefined) {
    checks.push({
      name: "status annotation",
      ok: null,
      message: `the pod has no readable ${statusAnnotation}: what it mounted is not known, so no drift is shown`
    })
  }
  const result: Explanation = {
    ...explanation,
    checks,
    ...(status === undefined ? {} : { drift: driftOf(status, pod, explanation.mounted) })
  }
  return result
})

export const explainCommand = Command.make(
  "explain",
  {
    cluster: clusterFlag.pipe(Flag.optional),
    settings: offlineSettingFlags,
    namespace: Flag.String("namespace").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("The notebook's namespace (default: the kubeconfig context's, else default)"),
      Flag.optional
    ),
    output: Flag.Literals("output", ["text", "json"]).pipe(
      Flag.withAlias("o"),
      Flag.withDescription("text (a table, the default) or json"),
      Flag.withDefault("text" as const)
    ),
    name: Argument.String("name").pipe(Argument.withDescription("The notebook: pod NAME, NAME-0, or labelled notebook-name=NAME"))
  },
  Effect.fn(function*({ cluster, name, namespace, output, settings: given }) {
    const settings = Layer.mergeAll(ClusterSettings.layer, AdmissionSettings.layer).pipe(
      Layer.provide(flagsOverEnvironment(given))
    )
    const program: Effect.Effect<
      Explanation,
      { readonly _tag: string; readonly message: string },
      ClusterSettings | AdmissionSettings | FileSystem | Path
    > = Option.match(cluster, {
      // Imported only when a real cluster is used, as `serve` does: offline, the HTTP client need not load.
      onNone: () =>
        Effect.gen(function*() {
          const live = yield* Effect.promise(() => import("../cluster/KubeClientLive.ts"))
          const kc = yield* live.loadKubeConfig()
          const ns = Option.getOrUndefined(namespace) ?? kc.namespace ?? "default"
          return yield* explainNotebook(ns, name, false).pipe(
            Effect.provide(admissionLayer(live.layerFromKubeConfig(kc)))
          )
        }),
      onSome: (directory) =>
        explainNotebook(Option.getOrElse(namespace, () => "default"), name, true).pipe(
          Effect.provide(admissionLayer(KubeClient.layerMemory).pipe(
            Layer.provide(MemoryCluster.layerFromDirectory(directory))
          ))
        )
    })
    const explanation = yield* program.pipe(
      Effect.provide(settings),
      // The cluster could not be read (settings, kubeconfig, folder, API, no such pod): one line, exit 1.
      Effect.catch((error) =>
        failWith(error._tag === "ManifestError" ? `cluster folder: ${error.message}` : error.message, 1)
      ),
      Effect.provide(Layer.mergeAll(stderrLogs, NodeServices.layer))
    )
    yield* Console.log(output === "json" ? JSON.stringify(explanation, null, 2) : explainText(explanation))
  })
).pipe(Command.withDescription("Tell what the webhook does for a notebook, and what stands in its way"))
