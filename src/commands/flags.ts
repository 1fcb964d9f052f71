/** Flags more than one command takes, and how flags become settings. */
import { Flag } from "effect/cli"
import type { SettingSources } from "../settings.ts"

export const clusterFlag = Flag.String("cluster").pipe(
  Flag.withDescription("Folder of manifests (ConfigMaps, Secrets) to use as the cluster instead of Kubernetes")
)

export const injectorNamespaceFlag = Flag.String("injector-namespace").pipe(
  Flag.withDescription("Namespace of filers-list and the sidecar template (default: $POD_NAMESPACE, else das)"),
  Flag.optional
)

/** The environment with the given flag values (by their variable names) on top; unset flags change nothing. */
export const settingSources = (flags: Readonly<Record<string, string | undefined>>): SettingSources => {
  const sources: Record<string, string | undefined> = { ...process.env }
  for (const [name, value] of Object.entries(flags)) {
    if (value !== undefined) sources[name] = value
  }
  return sources
}
