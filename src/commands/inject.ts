/**
 * `inject --cluster DIR FILE`: what a pod would become, like `istioctl
 * kube-inject`. Reads Pods (YAML or JSON, several documents or a List), runs
 * each through the webhook's pipeline and prints the result as YAML; other
 * objects pass through unchanged. Warnings go to stderr.
 */
import { Console, Effect, JsonPatch, Option, type Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { stringify } from "yaml"
import { admit } from "../admission/pipeline.ts"
import { parseManifests } from "../cluster/manifestFiles.ts"
import type { RawObject } from "../cluster/objects.ts"
import { admissionApiVersion } from "../domain/admission.ts"
import { failWith } from "./exit.ts"
import { clusterFlag } from "./flags.ts"
import { readInput } from "./input.ts"
import { offlineSettingFlags, withOfflineCluster } from "./offline.ts"

/** The AdmissionReview the kube-apiserver would send for creating `pod` in `namespace`. */
export const createPodReview = (pod: RawObject, namespace: string, uid: string) => ({
  apiVersion: admissionApiVersion,
  kind: "AdmissionReview",
  request: {
    uid,
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace,
    operation: "CREATE",
    object: pod
  }
})

const namespaceOf = (object: RawObject): string | undefined => {
  const metadata = object.metadata as { namespace?: unknown } | undefined
  return typeof metadata?.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : undefined
}

const injectOne = (pod: RawObject, namespace: string, index: number) =>
  Effect.gen(function*() {
    const { review } = yield* admit(createPodReview(pod, namespace, `inject-${index}`)).pipe(
      Effect.catchTag("AdmissionDecodeError", (error) => failWith(error.message, 2))
    )
    const response = review.response
    for (const warning of response.warnings ?? []) yield* Console.error(`Warning: ${warning}`)
    if (!response.allowed) {
      return yield* failWith(`pod denied: ${response.status?.message ?? "no reason given"}`, 1)
    }
    if (response.patch === undefined) return pod
    const patch = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as JsonPatch.JsonPatch
    return JsonPatch.apply(patch, pod as Schema.Json) as RawObject
  })

export const injectCommand = Command.make(
  "inject",
  {
    cluster: clusterFlag,
    settings: offlineSettingFlags,
    namespace: Flag.String("namespace").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("Namespace the pod is created in (default: its metadata.namespace, else default)"),
      Flag.optional
    ),
    file: Argument.String("file").pipe(Argument.withDescription("Pod manifest (YAML or JSON), or - for standard input"))
  },
  Effect.fn(function*({ cluster, file, namespace, settings }) {
    const objects = yield* readInput(file).pipe(
      Effect.flatMap((text) => parseManifests(text, file)),
      Effect.catchTags({
        InputError: (error) => failWith(error.message, 2),
        ManifestError: (error) => failWith(error.message, 2)
      })
    )
    if (!objects.some((object) => object.kind === "Pod")) return yield* failWith(`${file}: no Pod found`, 2)
    const mutated = yield* withOfflineCluster(
      cluster,
      settings,
      Effect.forEach(objects, (object, index) =>
        object.kind === "Pod"
          ? injectOne(object, Option.getOrUndefined(namespace) ?? namespaceOf(object) ?? "default", index)
          : Effect.succeed(object))
    )
    yield* Console.log(mutated.map((object) => stringify(object, { lineWidth: 0 })).join("---\n").trimEnd())
  })
).pipe(Command.withDescription("Print a pod as the webhook would mutate it, against a cluster folder"))
