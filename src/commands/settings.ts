/**
 * Every setting of the injector, component by component: the README's table
 * ("Configuration") is made from this list (`npm run docs:settings`), and the
 * tests hold the README and the manifests to it.
 */
import { admissionSettings } from "../admission/AdmissionSettings.ts"
import { clusterSettings } from "../cluster/ClusterSettings.ts"
import { goofysSettings } from "../cluster/GoofysRetryPolicy.ts"
import type { Setting } from "../config/setting.ts"
import { serverSettings } from "../server/ServerSettings.ts"
import { logLevel } from "./serve.ts"

export const everySetting: ReadonlyArray<Setting<unknown>> = [
  ...Object.values(clusterSettings),
  ...Object.values(admissionSettings),
  ...Object.values(goofysSettings),
  ...Object.values(serverSettings),
  logLevel
]
