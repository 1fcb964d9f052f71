/**
 * The deployment manifests, as `kubectl kustomize` renders them: every
 * kustomization builds, and each overlay (what an operator applies) gives the
 * injector exactly the rights it needs, a webhook that can only see notebook
 * pods and answers before the API server gives up, and a hardened Deployment.
 *
 * RBAC is checked by evaluating it: the requests the server makes must be
 * allowed, and the ones it must never be able to make must be denied.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import { AdmissionSettings } from "../../src/admission/AdmissionSettings.ts"
import { everySetting } from "../../src/commands/settings.ts"
import { settingsTable, withSettingsTable } from "../../src/config/table.ts"
import { ServerSettings } from "../../src/server/ServerSettings.ts"

import {
  build,
  type Certificate,
  type Issuer,
  type K8sObject,
  kubectlAvailable,
  type Labels,
  type LabelSelector,
  manifests,
  named,
  namespaceLabels,
  ofKind,
  readManifests,
  root,
  selects,
  theOne
} from "./rendered.ts"

const webhookConfigurationName = "filer-sidecar-injector-webhook"
const webhookName = "filer-sidecar-injector.das-zone.statcan"
/** The self-signed overlay's CA Secret, shipped empty and filled by the server (`--service-name` + `-tls`). */
const caSecretName = "filer-sidecar-injector-tls"

// ---------------------------------------------------------------------------
// The shapes read here (only the fields the checks use).

interface PolicyRule {
  readonly apiGroups?: ReadonlyArray<string>
  readonly resources?: ReadonlyArray<string>
  readonly resourceNames?: ReadonlyArray<string>
  readonly verbs: ReadonlyArray<string>
  readonly nonResourceURLs?: ReadonlyArray<string>
}

interface RoleObject extends K8sObject {
  readonly rules?: ReadonlyArray<PolicyRule>
}

interface BindingObject extends K8sObject {
  readonly roleRef: { readonly kind: "Role" | "ClusterRole"; readonly name: string }
  readonly subjects?: ReadonlyArray<{ readonly kind: string; readonly name: string; readonly namespace?: string }>
}

interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: number | string; readonly scheme?: string }
}

interface SecurityContext {
  readonly runAsNonRoot?: boolean
  readonly runAsUser?: number
  readonly fsGroup?: number
  readonly readOnlyRootFilesystem?: boolean
  readonly allowPrivilegeEscalation?: boolean
  readonly privileged?: boolean
  readonly capabilities?: { readonly drop?: ReadonlyArray<string>; readonly add?: ReadonlyArray<string> }
  readonly seccompProfile?: { readonly type: string }
}

interface Container {
  readonly name: string
  readonly image: string
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
  readonly env?: ReadonlyArray<{
    readonly name: string
    readonly value?: string
    readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } }
  }>
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }>
  readonly livenessProbe?: Probe
  readonly readinessProbe?: Probe
  readonly lifecycle?: { readonly preStop?: { readonly exec?: { readonly command: ReadonlyArray<string> } } }
  readonly resources?: {
    readonly requests?: Readonly<Record<string, string>>
    readonly limits?: Readonly<Record<string, string>>
  }
  readonly securityContext?: SecurityContext
  readonly volumeMounts?: ReadonlyArray<
    { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean; readonly subPath?: string }
  >
}

interface PodSpec {
  readonly serviceAccountName?: string
  readonly priorityClassName?: string
  readonly automountServiceAccountToken?: boolean
  readonly terminationGracePeriodSeconds?: number
  readonly securityContext?: SecurityContext
  readonly containers: ReadonlyArray<Container>
  readonly topologySpreadConstraints?: ReadonlyArray<{
    readonly topologyKey: string
    readonly maxSkew: number
    readonly whenUnsatisfiable?: string
    readonly labelSelector?: LabelSelector
  }>
  readonly affinity?: {
    readonly podAntiAffinity?: {
      readonly requiredDuringSchedulingIgnoredDuringExecution?: ReadonlyArray<
        { readonly topologyKey: string; readonly labelSelector?: LabelSelector }
      >
      readonly preferredDuringSchedulingIgnoredDuringExecution?: ReadonlyArray<{
        readonly podAffinityTerm: { readonly topologyKey: string; readonly labelSelector?: LabelSelector }
      }>
    }
  }
  readonly volumes?: ReadonlyArray<
    { readonly name: string; readonly secret?: { readonly secretName: string; readonly defaultMode?: number } }
  >
}

interface Deployment extends K8sObject {
  readonly spec: {
    readonly replicas: number
    readonly selector: LabelSelector
    readonly template: { readonly metadata: { readonly labels: Labels }; readonly spec: PodSpec }
  }
}

interface Service extends K8sObject {
  readonly spec: {
    readonly selector: Labels
    readonly ports: ReadonlyArray<{ readonly port: number; readonly targetPort: number | string }>
  }
}

interface PodDisruptionBudget extends K8sObject {
  readonly spec: { readonly minAvailable?: number | string; readonly selector: LabelSelector }
}

interface Webhook {
  readonly name: string
  readonly admissionReviewVersions: ReadonlyArray<string>
  readonly clientConfig: {
    readonly caBundle?: string
    readonly url?: string
    readonly service?: { readonly name: string; readonly namespace: string; readonly path?: string; readonly port?: number }
  }
  readonly rules: ReadonlyArray<{
    readonly operations: ReadonlyArray<string>
    readonly apiGroups: ReadonlyArray<string>
    readonly apiVersions: ReadonlyArray<string>
    readonly resources: ReadonlyArray<string>
    readonly scope?: string
  }>
  readonly namespaceSelector?: LabelSelector
  readonly objectSelector?: LabelSelector
  readonly sideEffects: string
  readonly failurePolicy?: string
  readonly timeoutSeconds?: number
  readonly reinvocationPolicy?: string
  readonly matchPolicy?: string
}

interface MutatingWebhookConfiguration extends K8sObject {
  readonly webhooks: ReadonlyArray<Webhook>
}

/**
 * The base's sidecar template has its securityContext (README, "The sidecar
 * template") before the example cluster, whose golden files change with it
 * on another branch. Emptied when the example gets it too.
 */
const securityContextOnlyInBase: ReadonlyArray<string> = ["filer-sidecar-injector-json"]

/** The template's data with its containers' securityContext left out. */
const withoutSecurityContext = (data?: Record<string, string>) => {
  const template = JSON.parse(data?.["sidecarconfig.json"] ?? "{}") as { containers?: Array<Record<string, unknown>> }
  const containers = (template.containers ?? []).map(({ securityContext: _, ...container }) => container)
  return { ...template, containers }
}

interface ConfigMap extends K8sObject {
  readonly data?: Readonly<Record<string, string>>
}

interface PriorityClass extends K8sObject {
  readonly value: number
  readonly globalDefault?: boolean
  readonly preemptionPolicy?: string
}

// ---------------------------------------------------------------------------
// Building and reading the output.

/** Every directory under manifests/ that holds a kustomization. */
const kustomizations = readdirSync(manifests, { recursive: true, encoding: "utf8" })
  .filter((file) => /(^|\/)(kustomization\.ya?ml|Kustomization)$/.test(file))
  .map((file) => dirname(join(manifests, file)))
  .sort()

const overlays = readdirSync(join(manifests, "overlays"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()

/**
 * An operator's overlay with the network-policy component included and its
 * address range set, as the README shows it: checked like the shipped overlays.
 */
const networkPolicyOverlay = join(root, "test", "manifests", "fixtures", "network-policy")

/** An operator's overlay with the client-auth component included, as the README shows it. */
const clientAuthOverlay = join(root, "test", "manifests", "fixtures", "client-auth")

/** Every overlay the per-overlay checks run on: the shipped ones, then those. */
const checkedOverlays: ReadonlyArray<readonly [string, string]> = [
  ...overlays.map((name) => [name, join(manifests, "overlays", name)] as const),
  ...[networkPolicyOverlay, clientAuthOverlay].map((overlay) => [relative(root, overlay), overlay] as const)
]

/** The value of a command-line flag, given as `--flag value` or `--flag=value`. */
const flagValues = (args: ReadonlyArray<string>, flag: string): ReadonlyArray<string> =>
  args.flatMap((arg, index) => {
    if (arg === flag) return args[index + 1] === undefined ? [""] : [args[index + 1]!]
    return arg.startsWith(`${flag}=`) ? [arg.slice(flag.length + 1)] : []
  })

// ---------------------------------------------------------------------------
// RBAC, evaluated as the authorizer does.

interface Request {
  readonly verb: string
  readonly apiGroup: string
  readonly resource: string
  /** Absent for cluster-scoped resources. */
  readonly namespace?: string
  /** Absent for create and for list/watch without a metadata.name field selector. */
  readonly name?: string
}

const ruleAllows = (rule: PolicyRule, request: Request) =>
  (rule.apiGroups ?? []).some((group) => group === request.apiGroup || group === "*") &&
  (rule.resources ?? []).some((resource) => resource === request.resource || resource === "*") &&
  rule.verbs.some((verb) => verb === request.verb || verb === "*") &&
  (rule.resourceNames === undefined || rule.resourceNames.length === 0 ||
    (request.name !== undefined && rule.resourceNames.includes(request.name)))

type Account = { readonly name: string; readonly namespace: string }

/** Every rule of every Role and ClusterRole bound to `account`, with the binding and the role it comes from. */
const rulesBoundTo = (objects: ReadonlyArray<K8sObject>, account: Account) =>
  [...ofKind<BindingObject>(objects, "RoleBinding"), ...ofKind<BindingObject>(objects, "ClusterRoleBinding")]
    .filter((binding) =>
      (binding.subjects ?? []).some((subject) =>
        subject.kind === "ServiceAccount" && subject.name === account.name && subject.namespace === account.namespace
      )
    )
    .flatMap((binding) => {
      const role = binding.roleRef.kind === "ClusterRole"
        ? named<RoleObject>(objects, "ClusterRole", binding.roleRef.name)
        : named<RoleObject>(objects, "Role", binding.roleRef.name, binding.metadata.namespace)
      return role === undefined ? [] : (role.rules ?? []).map((rule) => ({ binding, role, rule }))
    })

const allowed = (objects: ReadonlyArray<K8sObject>, account: Account, request: Request) =>
  rulesBoundTo(objects, account).some(({ binding, rule }) =>
    // A RoleBinding grants only in its own namespace, whatever it refers to.
    (binding.kind === "ClusterRoleBinding" || binding.metadata.namespace === request.namespace) &&
    ruleAllows(rule, request)
  )

const onSecrets = (rule: PolicyRule) =>
  (rule.apiGroups ?? []).some((group) => group === "" || group === "*") &&
  (rule.resources ?? []).some((resource) => resource === "secrets" || resource === "*")

// ---------------------------------------------------------------------------

/** Accessors over one overlay's rendered objects (the overlay at `directory`), built on first use. */
const overlayView = (directory: string) => {
  const objects = () => build(directory)
  const deployment = () => theOne<Deployment>(objects(), "Deployment")
  const podSpec = () => deployment().spec.template.spec
  const podLabels = () => deployment().spec.template.metadata.labels
  const injector = () => {
    const containers = podSpec().containers
    expect(containers).toHaveLength(1)
    return containers[0]!
  }
  const args = () => [...(injector().command ?? []), ...(injector().args ?? [])]
  const ownNamespace = () => deployment().metadata.namespace!
  const account = () => ({ name: podSpec().serviceAccountName ?? "default", namespace: ownNamespace() })
  const webhookConfiguration = () => {
    const configuration = theOne<MutatingWebhookConfiguration>(objects(), "MutatingWebhookConfiguration")
    expect(configuration.metadata.name).toBe(webhookConfigurationName)
    return configuration
  }
  const webhook = () => {
    const webhooks = webhookConfiguration().webhooks
    expect(webhooks.map((candidate) => candidate.name)).toEqual([webhookName])
    return webhooks[0]!
  }
  const can = (request: Request) => allowed(objects(), account(), request)
  const containerPort = (port: number | string) =>
    typeof port === "number" ? port : injector().ports?.find((candidate) => candidate.name === port)?.containerPort
  return {
    objects,
    deployment,
    podSpec,
    podLabels,
    injector,
    args,
    ownNamespace,
    account,
    webhookConfiguration,
    webhook,
    can,
    containerPort
  }
}

describe.skipIf(!kubectlAvailable)("kustomize manifests", () => {
  it("finds the base and at least the cert-manager and self-signed overlays", () => {
    const found = kustomizations.map((directory) => relative(manifests, directory))
    expect(found).toContain("base")
    expect(found).toEqual(expect.arrayContaining(["overlays/cert-manager", "overlays/self-signed"]))
    expect(overlays.length).toBeGreaterThanOrEqual(2)
  })

  it.each(kustomizations.map((directory) => [relative(root, directory), directory]))("%s builds", (_, directory) => {
    const objects = build(directory)
    expect(objects.length).toBeGreaterThan(0)
    for (const object of objects) {
      expect(object.apiVersion, JSON.stringify(object.metadata)).toBeTruthy()
      expect(object.metadata.name, object.kind).toBeTruthy()
    }
  })

  it("keeps the base's example ConfigMaps equal to manifests/examples/cluster/injector-config.yaml", () => {
    const examplesFile = join(manifests, "examples/cluster/injector-config.yaml")
    const examples = ofKind<ConfigMap>(readManifests(readFileSync(examplesFile, "utf8"), examplesFile), "ConfigMap")
    const base = build(join(manifests, "base"))
    expect(examples.map((example) => example.metadata.name).sort()).toEqual(["filer-sidecar-injector-json", "filers-list"])
    for (const example of examples) {
      const shipped = named<ConfigMap>(base, "ConfigMap", example.metadata.name, example.metadata.namespace)
      const pending = securityContextOnlyInBase.includes(example.metadata.name)
      const compared = pending ? withoutSecurityContext : (data?: Record<string, string>) => data
      expect(compared(shipped?.data), example.metadata.name).toEqual(compared(example.data))
      // Once the example has it too, the entry must go.
      if (pending) expect(shipped?.data, "remove it from securityContextOnlyInBase").not.toEqual(example.data)
    }
  })

  describe.each(checkedOverlays)("overlay %s", (_, directory) => {
    const {
      account,
      args,
      can,
      containerPort,
      deployment,
      injector,
      objects,
      ownNamespace,
      podLabels,
      podSpec,
      webhook,
      webhookConfiguration
    } = overlayView(directory)

    it("puts every namespaced object in the injector's namespace, which the output creates", () => {
      expect(ownNamespace()).toBe("das")
      for (const object of objects()) {
        const clusterScoped = ["Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "PriorityClass"]
        if (!clusterScoped.includes(object.kind)) {
          expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(ownNamespace())
        }
      }
      expect(named(objects(), "Namespace", ownNamespace())).toBeDefined()
    })

    describe("RBAC", () => {
      it("uses no wildcards and no escalation verbs", () => {
        for (const role of [...ofKind<RoleObject>(objects(), "Role"), ...ofKind<RoleObject>(objects(), "ClusterRole")]) {
          for (const rule of role.rules ?? []) {
            const fields = [rule.apiGroups, rule.resources, rule.resourceNames, rule.verbs, rule.nonResourceURLs]
            for (const field of fields) expect(field ?? [], `${role.kind}/${role.metadata.name}`).not.toContain("*")
            expect(rule.nonResourceURLs, `${role.kind}/${role.metadata.name}`).toBeUndefined()
            for (const verb of ["escalate", "bind", "impersonate", "delete", "deletecollection", "patch"]) {
              expect(rule.verbs, `${role.kind}/${role.metadata.name}`).not.toContain(verb)
            }
          }
        }
      })

      it("never lets anyone list or watch Secrets, and grants only get on Secrets cluster-wide", () => {
        for (const role of [...ofKind<RoleObject>(objects(), "Role"), ...ofKind<RoleObject>(objects(), "ClusterRole")]) {
          for (const rule of role.rules ?? []) {
            if (!(rule.resources ?? []).includes("secrets")) continue
            expect(rule.verbs, `${role.kind}/${role.metadata.name}`).not.toContain("list")
            expect(rule.verbs, `${role.kind}/${role.metadata.name}`).not.toContain("watch")
            if (role.kind === "ClusterRole") expect(rule.verbs, `ClusterRole/${role.metadata.name}`).toEqual(["get"])
          }
        }
        for (const namespace of [ownNamespace(), "jane-doe"]) {
          for (const verb of ["list", "watch", "update", "patch", "delete"]) {
            expect(can({ verb, apiGroup: "", resource: "secrets", namespace }), `${verb} secrets in ${namespace}`).toBe(false)
          }
        }
        expect(can({ verb: "create", apiGroup: "", resource: "secrets", namespace: "jane-doe" })).toBe(false)
      })

      it("lets its ServiceAccount get and update Secrets by name only, never create, list or watch them, and use no wildcard", () => {
        const rules = rulesBoundTo(objects(), account())
        expect(rules.length).toBeGreaterThan(0)
        for (const { role, rule } of rules) {
          const where = `${role.kind}/${role.metadata.name}`
          for (const field of [rule.apiGroups, rule.resources, rule.verbs]) expect(field ?? [], where).not.toContain("*")
          if (!onSecrets(rule)) continue
          for (const verb of ["create", "list", "watch"]) {
            expect(rule.verbs, `${where} lets the injector ${verb} Secrets`).not.toContain(verb)
          }
          for (const verb of ["get", "update"]) {
            if (!rule.verbs.includes(verb)) continue
            expect(rule.resourceNames ?? [], `${where} lets the injector ${verb} Secrets without resourceNames`).not.toEqual([])
          }
        }
        // So a Secret the webhook has no business with stays out of reach, in a user namespace and in its own.
        for (const namespace of ["jane-doe", ownNamespace()]) {
          expect(can({ verb: "get", apiGroup: "", resource: "secrets", namespace, name: "database-password" }), namespace)
            .toBe(false)
        }
      })

      it("binds only the roles it ships, to the injector's service account", () => {
        expect(named(objects(), "ServiceAccount", account().name, ownNamespace())).toBeDefined()
        const bindings = [
          ...ofKind<BindingObject>(objects(), "RoleBinding"),
          ...ofKind<BindingObject>(objects(), "ClusterRoleBinding")
        ]
        expect(bindings.length).toBeGreaterThan(0)
        for (const binding of bindings) {
          const role = binding.roleRef.kind === "ClusterRole"
            ? named(objects(), "ClusterRole", binding.roleRef.name)
            : named(objects(), "Role", binding.roleRef.name, binding.metadata.namespace)
          expect(role, `${binding.kind}/${binding.metadata.name} refers to a role in the output`).toBeDefined()
          expect(binding.subjects).toEqual([{ kind: "ServiceAccount", ...account() }])
        }
      })

      it("allows what the server reads: its two ConfigMaps (watched by name), existing-shares (cached) and conn Secrets", () => {
        for (const name of ["filers-list", "filer-sidecar-injector-json"]) {
          for (const verb of ["get", "list", "watch"]) {
            expect(can({ verb, apiGroup: "", resource: "configmaps", namespace: ownNamespace(), name }), `${verb} ${name}`)
              .toBe(true)
          }
        }
        expect(can({ verb: "get", apiGroup: "", resource: "configmaps", namespace: "jane-doe", name: "existing-shares" }))
          .toBe(true)
        // The cache: one list and watch of every namespace, with the field selector metadata.name=existing-shares.
        for (const verb of ["list", "watch"]) {
          expect(can({ verb, apiGroup: "", resource: "configmaps", name: "existing-shares" }), `${verb} existing-shares`)
            .toBe(true)
        }
        expect(
          can({ verb: "get", apiGroup: "", resource: "secrets", namespace: "jane-doe", name: "fld5filersvm-conn-secret" })
        ).toBe(true)
      })

      it("denies ConfigMap access beyond those names, and list or watch without a name", () => {
        expect(can({ verb: "list", apiGroup: "", resource: "configmaps", namespace: ownNamespace() })).toBe(false)
        expect(can({ verb: "watch", apiGroup: "", resource: "configmaps", namespace: "jane-doe" })).toBe(false)
        for (const verb of ["list", "watch"]) {
          expect(can({ verb, apiGroup: "", resource: "configmaps" }), `${verb} every ConfigMap`).toBe(false)
          expect(can({ verb, apiGroup: "", resource: "configmaps", name: "kube-root-ca.crt" })).toBe(false)
        }
        expect(can({ verb: "get", apiGroup: "", resource: "configmaps", namespace: "jane-doe", name: "kube-root-ca.crt" }))
          .toBe(false)
        for (const verb of ["create", "update"]) {
          expect(can({ verb, apiGroup: "", resource: "configmaps", namespace: ownNamespace(), name: "filers-list" }))
            .toBe(false)
        }
      })

      it("never lets the injector create webhook configurations or touch any other one", () => {
        const resource = { apiGroup: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations" }
        expect(can({ verb: "create", ...resource })).toBe(false)
        expect(can({ verb: "list", ...resource })).toBe(false)
        for (const verb of ["get", "update"]) expect(can({ verb, ...resource, name: "some-other-webhook" })).toBe(false)
        expect(can({ verb: "update", apiGroup: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: webhookConfigurationName }))
          .toBe(false)
      })
    })

    describe("MutatingWebhookConfiguration", () => {
      it("asks for v1 reviews of pod CREATEs only, on /inject of the Service", () => {
        const hook = webhook()
        expect(hook.admissionReviewVersions).toEqual(["v1"])
        expect(hook.rules).toEqual([
          { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }
        ])
        expect(hook.matchPolicy).toBe("Equivalent")
        expect(hook.reinvocationPolicy).toBe("Never")
        expect(hook.clientConfig.url).toBeUndefined()
        expect(hook.clientConfig.service?.path).toBe("/inject")
        expect(hook.clientConfig.service?.namespace).toBe(ownNamespace())
      })

      it("has no side effects on dry runs (Events otherwise) and an explicit failurePolicy Fail", () => {
        expect(webhook().sideEffects).toBe("NoneOnDryRun")
        expect(webhook().failurePolicy).toBe("Fail")
      })

      it("times out after the server's request budget, and at most 10 s", () => {
        const timeoutMillis = (webhook().timeoutSeconds ?? 10) * 1000
        expect(webhook().timeoutSeconds).toBeDefined()
        expect(timeoutMillis).toBeLessThanOrEqual(10_000)
        expect(timeoutMillis).toBeGreaterThan(Duration.toMillis(AdmissionSettings.defaults.requestBudget))
        const configured = [
          ...flagValues(args(), "--request-budget-ms"),
          ...(injector().env ?? []).filter((env) => env.name === "REQUEST_BUDGET_MS").map((env) => env.value ?? "")
        ]
        for (const value of configured) {
          expect(Number(value), `request budget ${JSON.stringify(value)}`).toBeGreaterThan(0)
          expect(timeoutMillis, `request budget ${value} ms`).toBeGreaterThan(Number(value))
        }
      })

      it("selects notebook pods in opted-in namespaces", () => {
        const hook = webhook()
        const notebookFile = join(manifests, "examples/notebook-pod.yaml")
        const [notebook] = readManifests(readFileSync(notebookFile, "utf8"), notebookFile)
        const optedIn = namespaceLabels("jane-doe", { "filer-sidecar-injection": "enabled" })
        expect(selects(hook.namespaceSelector, optedIn)).toBe(true)
        expect(selects(hook.objectSelector, notebook?.metadata.labels ?? {})).toBe(true)
        expect(selects(hook.namespaceSelector, namespaceLabels("jane-doe"))).toBe(false)
        expect(selects(hook.objectSelector, { statefulset: "analysis" })).toBe(false)
      })

      it("can never send the injector's own pods, or kube-system's, to the injector", () => {
        const hook = webhook()
        // Even if someone labels these namespaces for injection.
        for (const namespace of [ownNamespace(), "kube-system"]) {
          const labels = namespaceLabels(namespace, { "filer-sidecar-injection": "enabled" })
          expect(selects(hook.namespaceSelector, labels), namespace).toBe(false)
        }
        const own = named(objects(), "Namespace", ownNamespace())
        expect(selects(hook.namespaceSelector, namespaceLabels(ownNamespace(), own?.metadata.labels))).toBe(false)
        // And even in an opted-in namespace, its pods lack notebook-name.
        expect(podLabels()["notebook-name"]).toBeUndefined()
        expect(selects(hook.objectSelector, podLabels())).toBe(false)
      })

      it("points at a Service that forwards 443 to the injector's HTTPS port", () => {
        const reference = webhook().clientConfig.service!
        const service = named<Service>(objects(), "Service", reference.name, reference.namespace)
        expect(service, `Service ${reference.namespace}/${reference.name}`).toBeDefined()
        const port = service!.spec.ports.find((candidate) => candidate.port === (reference.port ?? 443))
        expect(reference.port ?? 443).toBe(443)
        expect(port).toBeDefined()
        expect(containerPort(port!.targetPort)).toBe(8443)
        expect(selects({ matchLabels: service!.spec.selector }, podLabels())).toBe(true)
      })
    })

    describe("Deployment", () => {
      it("runs at least two replicas, spread over nodes", () => {
        expect(deployment().spec.replicas).toBeGreaterThanOrEqual(2)
        expect(selects(deployment().spec.selector, podLabels())).toBe(true)
        const spread = (podSpec().topologySpreadConstraints ?? []).filter((constraint) =>
          constraint.topologyKey === "kubernetes.io/hostname" && selects(constraint.labelSelector, podLabels())
        )
        const antiAffinity = podSpec().affinity?.podAntiAffinity
        const apart = [
          ...(antiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
          ...(antiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((term) => term.podAffinityTerm)
        ].filter((term) => term.topologyKey === "kubernetes.io/hostname" && selects(term.labelSelector, podLabels()))
        expect(spread.length + apart.length).toBeGreaterThan(0)
      })

      it("spreads over zones too, without refusing to schedule where there is one zone", () => {
        const zones = (podSpec().topologySpreadConstraints ?? []).filter((constraint) =>
          constraint.topologyKey === "topology.kubernetes.io/zone" && selects(constraint.labelSelector, podLabels())
        )
        expect(zones).toHaveLength(1)
        expect(zones[0]!.whenUnsatisfiable).toBe("ScheduleAnyway")
        expect(zones[0]!.maxSkew).toBe(1)
      })

      it("runs at a PriorityClass of its own, high but below the system classes, and no one else's default", () => {
        const name = podSpec().priorityClassName
        expect(name).toBe("filer-sidecar-injector-critical")
        const priority = named<PriorityClass>(objects(), "PriorityClass", name!)
        expect(priority, `PriorityClass ${name} in the output`).toBeDefined()
        // The highest a PriorityClass other than the built-in system-* ones may have.
        expect(priority!.value).toBeLessThanOrEqual(1_000_000_000)
        expect(priority!.value).toBeGreaterThanOrEqual(100_000_000)
        expect(priority!.globalDefault ?? false).toBe(false)
        expect(priority!.preemptionPolicy).toBe("PreemptLowerPriority")
      })

      it("runs the pinned injector image", () => {
        expect(injector().image).toMatch(/^ghcr\.io\/statcan\/filer-sidecar-injector(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/)
        expect(injector().image).not.toMatch(/:latest$/)
      })

      it("runs as a numeric non-root user, read-only, without privileges", () => {
        const pod = podSpec().securityContext ?? {}
        const container = injector().securityContext ?? {}
        const effective = { ...pod, ...container }
        expect(effective.runAsNonRoot).toBe(true)
        expect(effective.runAsUser).toBeGreaterThan(0)
        expect(Number.isInteger(effective.runAsUser)).toBe(true)
        expect(container.readOnlyRootFilesystem).toBe(true)
        expect(container.allowPrivilegeEscalation).toBe(false)
        expect(container.privileged ?? false).toBe(false)
        expect(container.capabilities?.drop).toContain("ALL")
        expect(container.capabilities?.add ?? []).toEqual([])
        expect(effective.seccompProfile?.type).toBe("RuntimeDefault")
      })

      it("checks liveness on /healthz and readiness on /readyz over HTTPS on 8443", () => {
        const expectations = [[injector().livenessProbe, "/healthz"], [injector().readinessProbe, "/readyz"]] as const
        for (const [probe, path] of expectations) {
          expect(probe?.httpGet?.path).toBe(path)
          expect(probe?.httpGet?.scheme).toBe("HTTPS")
          expect(containerPort(probe!.httpGet!.port)).toBe(8443)
        }
        expect(flagValues(args(), "--port").every((port) => Number(port) === 8443)).toBe(true)
        expect(ServerSettings.defaults.port).toBe(8443)
      })

      it("passes its namespace through the downward API and mounts its service account token", () => {
        const env = injector().env?.find((candidate) => candidate.name === "POD_NAMESPACE")
        expect(env?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.namespace")
        expect(podSpec().automountServiceAccountToken).toBe(true)
        const serviceAccount = named<K8sObject & { automountServiceAccountToken?: boolean }>(
          objects(),
          "ServiceAccount",
          account().name,
          ownNamespace()
        )
        expect(serviceAccount?.automountServiceAccountToken).not.toBe(false)
      })

      it("sets CPU and memory requests and limits", () => {
        const resources = injector().resources
        for (const kind of ["requests", "limits"] as const) {
          expect(resources?.[kind]?.cpu, kind).toBeTruthy()
          expect(resources?.[kind]?.memory, kind).toBeTruthy()
        }
      })

      it("gives in-flight reviews their shutdown grace before the kubelet kills the pod", () => {
        const preStop = injector().lifecycle?.preStop?.exec?.command ?? []
        const preStopSeconds = preStop[0] === "sleep" ? Number(preStop[1]) : 0
        const graceSeconds = Duration.toSeconds(ServerSettings.defaults.shutdownGrace)
        expect(podSpec().terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds + graceSeconds)
        expect(podSpec().terminationGracePeriodSeconds).toBeLessThanOrEqual(preStopSeconds + graceSeconds + 30)
      })

      it("uses only flags and environment variables the server documents", () => {
        const flags = new Set(everySetting.flatMap((setting) => setting.flag === undefined ? [] : [setting.flag]))
        const [subcommand, ...rest] = injector().args ?? []
        expect(subcommand).toBe("serve")
        for (const arg of rest.filter((candidate) => candidate.startsWith("--"))) {
          expect(flags, arg).toContain(arg.split("=")[0])
        }
        const variables = new Set(everySetting.map((setting) => setting.env))
        for (const env of injector().env ?? []) expect(variables, env.name).toContain(env.name)
      })
    })

    it("keeps one injector available during voluntary disruptions", () => {
      const budget = theOne<PodDisruptionBudget>(objects(), "PodDisruptionBudget")
      expect(budget.spec.minAvailable).toBe(1)
      expect(selects(budget.spec.selector, podLabels())).toBe(true)
      expect(deployment().spec.replicas).toBeGreaterThan(1)
    })

    it("ships the injector's configuration ConfigMaps", () => {
      expect(named<ConfigMap>(objects(), "ConfigMap", "filers-list", ownNamespace())?.data?.filers).toBeTruthy()
      expect(
        named<ConfigMap>(objects(), "ConfigMap", "filer-sidecar-injector-json", ownNamespace())?.data?.["sidecarconfig.json"]
      ).toBeTruthy()
    })

    it("is either the cert-manager or the self-signed mode, not both", () => {
      const injected = webhookConfiguration().metadata.annotations?.["cert-manager.io/inject-ca-from"] !== undefined
      const registering = flagValues(args(), "--register-webhook").length > 0
      const tlsFiles = flagValues(args(), "--tls-cert").length > 0
      expect([injected && tlsFiles && !registering, registering && !injected && !tlsFiles]).toContain(true)
      expect(webhook().clientConfig.caBundle).toBeUndefined()
    })
  })

  describe("overlay cert-manager", () => {
    const { args, deployment, injector, objects, webhookConfiguration } = overlayView(join(manifests, "overlays", "cert-manager"))
    const servingCertificate = () => {
      const reference = webhookConfiguration().metadata.annotations?.["cert-manager.io/inject-ca-from"] ?? ""
      const [namespace, name] = reference.split("/")
      const certificate = named<Certificate>(objects(), "Certificate", name ?? "", namespace)
      expect(certificate, `inject-ca-from ${JSON.stringify(reference)} names a Certificate in the output`).toBeDefined()
      return certificate!
    }

    it("injects the CA of a Certificate valid for the webhook Service's DNS name", () => {
      const service = webhookConfiguration().webhooks[0]!.clientConfig.service!
      expect(servingCertificate().spec.dnsNames).toContain(`${service.name}.${service.namespace}.svc`)
      expect(servingCertificate().spec.isCA ?? false).toBe(false)
    })

    it("issues that Certificate through Issuers in the output, ending at a CA", () => {
      let certificate = servingCertificate()
      for (let depth = 0; depth < 3; depth++) {
        const issuerRef = certificate.spec.issuerRef
        expect(issuerRef.kind ?? "Issuer").toBe("Issuer")
        const issuer = named<Issuer>(objects(), "Issuer", issuerRef.name, certificate.metadata.namespace)
        expect(issuer, `Issuer ${issuerRef.name}`).toBeDefined()
        if (issuer!.spec.selfSigned !== undefined) return
        const caSecret = issuer!.spec.ca?.secretName
        const ca = ofKind<Certificate>(objects(), "Certificate").find((candidate) => candidate.spec.secretName === caSecret)
        expect(ca, `the CA Certificate writing Secret ${caSecret}`).toBeDefined()
        expect(ca!.spec.isCA).toBe(true)
        certificate = ca!
      }
      expect.fail("the issuer chain does not end at a self-signed Issuer")
    })

    it("mounts the certificate's Secret read-only as a directory and serves its files", () => {
      const secretName = servingCertificate().spec.secretName
      const volume = deployment().spec.template.spec.volumes?.find((candidate) => candidate.secret?.secretName === secretName)
      expect(volume, `a volume of Secret ${secretName}`).toBeDefined()
      const mount = injector().volumeMounts?.find((candidate) => candidate.name === volume!.name)
      expect(mount?.readOnly).toBe(true)
      // A subPath mount never sees the renewed certificate.
      expect(mount?.subPath).toBeUndefined()
      expect(flagValues(args(), "--tls-cert")).toEqual([`${mount!.mountPath}/tls.crt`])
      expect(flagValues(args(), "--tls-key")).toEqual([`${mount!.mountPath}/tls.key`])
      expect(flagValues(args(), "--register-webhook")).toEqual([])
    })

    it("makes the key readable by the pod's user and no one else", () => {
      const spec = deployment().spec.template.spec
      const volume = spec.volumes?.find((candidate) => candidate.secret?.secretName === servingCertificate().spec.secretName)
      const mode = volume?.secret?.defaultMode ?? 0o644
      expect(mode & 0o007, "no access for others").toBe(0)
      // The files belong to root and the fsGroup, which the kubelet adds to the process's groups.
      expect(mode & 0o040, "readable by the group").not.toBe(0)
      expect(spec.securityContext?.fsGroup).toBeGreaterThan(0)
    })
  })

  describe("overlay self-signed", () => {
    const { account, args, can, objects, webhookConfiguration } = overlayView(join(manifests, "overlays", "self-signed"))
    const webhookResource = { apiGroup: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations" }

    it("registers the webhook configuration that the overlay ships", () => {
      const configuration = webhookConfiguration()
      expect(flagValues(args(), "--register-webhook")).toEqual([configuration.metadata.name])
      expect(flagValues(args(), "--tls-cert")).toEqual([])
      expect(configuration.metadata.annotations?.["cert-manager.io/inject-ca-from"]).toBeUndefined()
    })

    it("may read and replace that one configuration, and not create it", () => {
      for (const verb of ["get", "update"]) {
        expect(can({ verb, ...webhookResource, name: webhookConfigurationName }), verb).toBe(true)
      }
      expect(can({ verb: "create", ...webhookResource })).toBe(false)
      expect(can({ verb: "delete", ...webhookResource, name: webhookConfigurationName })).toBe(false)
      const rules = [...ofKind<RoleObject>(objects(), "ClusterRole"), ...ofKind<RoleObject>(objects(), "Role")]
        .flatMap((role) => role.rules ?? [])
        .filter((rule) => (rule.resources ?? []).includes("mutatingwebhookconfigurations"))
      for (const rule of rules) expect(rule.resourceNames).toEqual([webhookConfigurationName])
    })

    it("ships the CA Secret empty, Opaque and labelled, for the server to fill in place", () => {
      const secret = named<K8sObject & { readonly type?: string; readonly data?: unknown; readonly stringData?: unknown }>(
        objects(),
        "Secret",
        caSecretName,
        account().namespace
      )!
      expect(secret).toBeDefined()
      // kubernetes.io/tls would require tls.crt and tls.key; and apply must never overwrite what the server wrote.
      expect(secret.type).toBe("Opaque")
      expect(secret.data).toBeUndefined()
      expect(secret.stringData).toBeUndefined()
      // README "Uninstall" and the rollback select the server's Secret by this label.
      expect(secret.metadata.labels).toMatchObject({ "app.kubernetes.io/component": "webhook-serving-certificate" })
    })

    it("may get and update that one Secret in its own namespace, and create none", () => {
      const own = account().namespace
      for (const verb of ["get", "update"]) {
        expect(can({ verb, apiGroup: "", resource: "secrets", namespace: own, name: caSecretName }), verb).toBe(true)
        expect(can({ verb, apiGroup: "", resource: "secrets", namespace: "jane-doe", name: caSecretName }), verb).toBe(false)
        expect(can({ verb, apiGroup: "", resource: "secrets", namespace: own, name: `${caSecretName}-2` }), verb).toBe(false)
      }
      for (const namespace of [own, "jane-doe"]) {
        expect(can({ verb: "create", apiGroup: "", resource: "secrets", namespace }), namespace).toBe(false)
      }
      expect(can({ verb: "delete", apiGroup: "", resource: "secrets", namespace: own, name: caSecretName })).toBe(false)
    })
  })
})

describe("README.md", () => {
  const readme = join(manifests, "..", "README.md")

  it("documents every setting with its environment variable and flag", () => {
    const rows = readFileSync(readme, "utf8").split("\n").filter((line) => line.startsWith("|"))
    for (const setting of everySetting) {
      const row = rows.find((line) => line.includes(`\`${setting.env}\``))
      expect(row, `a table row for ${setting.env}`).toBeDefined()
      if (setting.flag !== undefined) expect(row, setting.env).toContain(`\`${setting.flag}\``)
    }
  })

  it("holds the settings table made from the settings' definitions (npm run docs:settings writes it)", () => {
    const text = readFileSync(readme, "utf8")
    expect(text).toContain(settingsTable(everySetting))
    // Nothing else between the markers: no row left over from a setting that is gone.
    expect(withSettingsTable(text, everySetting), "run npm run docs:settings").toBe(text)
  })
})
