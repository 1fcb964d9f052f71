/**
 * ClusterSettings: where the injector's own ConfigMaps live, and how long one
 * Kubernetes API call may take. Read by ClusterConfig and the live KubeClient.
 */
import type { Duration } from "effect"
import { configOf, millis, namespaceName, setting, SettingsService, text } from "../config/setting.ts"

export const clusterSettings = {
  injectorNamespace: setting({
    env: "POD_NAMESPACE",
    flag: "--injector-namespace",
    default: "das",
    parse: namespaceName,
    description: "namespace holding filers-list and filer-sidecar-injector-json (default das)"
  }),
  sidecarConfigFile: setting({
    env: "SIDECAR_CONFIG_FILE",
    flag: "--sidecar-config-file",
    parse: text,
    description:
      "read the sidecar template from this file (the JSON of filer-sidecar-injector-json's sidecarconfig.json), re-read when it changes, instead of that ConfigMap"
  }),
  kubeCallTimeout: setting({
    env: "KUBE_CALL_TIMEOUT_MS",
    default: "2000",
    parse: millis(10, 29_000),
    description: "time one Kubernetes API call may take (default 2000)"
  })
}

export interface ClusterSettingsShape {
  /** Where `filers-list` and `filer-sidecar-injector-json` live. */
  readonly injectorNamespace: string
  /** The sidecar template from this file (as the Go injector read it) instead of `filer-sidecar-injector-json`. */
  readonly sidecarConfigFile: string | undefined
  /** The time one Kubernetes API call may take (a watch: to open). */
  readonly kubeCallTimeout: Duration.Duration
}

/** Read by ClusterConfig (the namespace) and the live KubeClient (the call timeout). */
export class ClusterSettings extends SettingsService<ClusterSettings, ClusterSettingsShape>()(
  "filer-sidecar-injector/cluster/ClusterSettings",
  configOf(clusterSettings)
) {}
