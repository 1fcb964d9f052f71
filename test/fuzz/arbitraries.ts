/**
 * Hostile input for the injector, as fast-check arbitraries: strings with
 * control characters, unicode, path traversal, shell and kubelet syntax,
 * prototype-pollution keys and enormous lengths; JSON of every wrong type,
 * huge arrays and deep nesting; notebook pods that are nearly right; and the
 * cluster states a careless or malicious namespace owner could leave behind
 * (existing-shares, credentials Secrets), over a filers-list of odd SVMs.
 *
 * Everything is plain JSON data built so that `JSON.stringify` writes what a
 * client would send, `__proto__` keys included (set with defineProperty, as
 * JSON.parse does, never through the prototype setter).
 */
import fc from "fast-check"
import type { RawObject } from "../../src/cluster/objects.ts"
import { secretNameFor, sidecarNames } from "../../src/domain/names.ts"
import { configMap, exampleTemplate, secret, sidecarTemplate } from "../support/pipelineHarness.ts"

export type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

export const injectorNamespace = "das"
export const injectAnnotation = "filer-injector-webhook.das-zone.statcan/inject"

/** An own, enumerable property, even for `__proto__`. */
export const setKey = (object: JsonObject, key: string, value: Json): void => {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true })
}

const objectOf = (entries: ReadonlyArray<readonly [string, Json]>): JsonObject => {
  const object: JsonObject = {}
  for (const [key, value] of entries) setKey(object, key, value)
  return object
}

// ---------------------------------------------------------------------------
// Strings

export const pollutionKeys = ["__proto__", "constructor", "prototype", "hasOwnProperty", "toString", "valueOf", "__defineGetter__"]

const specialStrings = [
  "", " ", "  ", ...pollutionKeys,
  ".", "..", "../", "../..", "../../etc/passwd", "/etc/passwd", "a/../b", "a/./b", "./a", "a//b", "a/", "/", "//", "\\", "a\\..\\b",
  "C:\\x", "~", "~root", "%2e%2e%2f", "..%2f", "$(HOME)", "$$(HOME)", "$$", "$", "${HOME}", "`id`", "$(rm -rf /)", "';rm -rf /;'",
  "\"", "'", "\u0000", "a\u0000b", "\n", "a\nb", "\r\n", "\t", "\u0007", "\u001b[31m", "\u007f", "\u0085", "\u009f", "\u00a0",
  "\u2028", "\u2029", "\u202e", "\u200b", "\ufeff", "\ud800", "\udfff", "a\ud800b", "é", "e\u0301", "日本語", "🙂", "👨‍👩‍👧",
  "NB_PREFIX", "notebook-name", injectAnnotation, "injected", "OFF", "False", "n", "yes",
  "fld5filersvm", "fld9filersvm", "home", "division/project", "research/team-a", "null", "undefined", "true", "0", "-1", "1e309", "[]",
  "{}", "[\"home\"]", "<script>", "%s%s%n", "A".repeat(64), "a".repeat(253), "a".repeat(254)
]

const segment = fc.oneof(
  fc.constantFrom("..", ".", "", "a", "home", "x y", "é", "\u0000", "~", "$x", "-", "_", "Share", "日本"),
  fc.stringMatching(/^[a-z0-9_.-]{1,10}$/)
)

/** Path-like text: segments joined by `/`, sometimes absolute. */
export const pathLike = fc.tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 6 })).map(([absolute, parts]) =>
  `${absolute ? "/" : ""}${parts.join("/")}`
)

const repeated = fc.tuple(fc.integer({ min: 64, max: 4000 }), fc.constantFrom("a", "/", "é", "$", "-", "..", "🙂", "\u0000"))
  .map(([n, unit]) => unit.repeat(n))

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...specialStrings) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
  { weight: 2, arbitrary: pathLike },
  { weight: 1, arbitrary: repeated }
)

/** Rarely, a string of 100 to 400 thousand characters. */
export const enormousString = fc.tuple(fc.integer({ min: 100_000, max: 400_000 }), fc.constantFrom("x", "é", "/", "\u0001"))
  .map(([n, unit]) => unit.repeat(n))

// Built once: fc.stringMatching compiles its pattern on every call.
const shortLabel = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}[a-z0-9]$/)
const envLikeName = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,12}$/)

/** Names that are DNS-1123 labels, or nearly. */
const dnsish = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/), hostileString)

// ---------------------------------------------------------------------------
// JSON of the wrong kind

const nested = (depth: number, kind: "array" | "object"): Json => {
  let value: Json = "bottom"
  for (let i = 0; i < depth; i++) value = kind === "array" ? [value] : { n: value }
  return value
}

const objectFrom = (value: fc.Arbitrary<Json>) =>
  fc.array(fc.tuple(fc.oneof({ weight: 3, arbitrary: hostileString }, { weight: 1, arbitrary: fc.constantFrom(...pollutionKeys) }), value), {
    maxLength: 4
  }).map(objectOf)

/** Any JSON, biased to odd values. */
export const hostileJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.constantFrom(0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE),
    fc.integer(),
    hostileString,
    fc.array(tie("value"), { maxLength: 4 }),
    objectFrom(tie("value"))
  )
})).value

/** A replacement for any node: wrong types, huge arrays, deep nesting, enormous text. */
export const mangledValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 10, arbitrary: hostileJson },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => ({ name: `x${i}` }))) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => Array.from({ length: n }, () => "x")) },
  {
    weight: 1,
    // Deeper documents are sent as text (the HTTPS test): fast-check's own printing recurses.
    arbitrary: fc.tuple(fc.integer({ min: 100, max: 1000 }), fc.constantFrom("array" as const, "object" as const))
      .map(([depth, kind]) => nested(depth, kind))
  },
  { weight: 1, arbitrary: enormousString }
)

// ---------------------------------------------------------------------------
// Mangling a document at random places

type Mutation =
  | { readonly op: "replace"; readonly at: number; readonly value: Json }
  | { readonly op: "delete"; readonly at: number }
  | { readonly op: "addKey"; readonly at: number; readonly key: string; readonly value: Json }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("replace" as const), at: fc.nat(), value: mangledValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("addKey" as const),
      at: fc.nat(),
      key: fc.oneof(fc.constantFrom(...pollutionKeys), hostileString),
      value: hostileJson
    })
  }
)

/** Every node of a document, as parent and key (the root has no parent). */
const nodesOf = (root: Json) => {
  const nodes: Array<{ parent: JsonObject | Array<Json>; key: string | number }> = []
  const walk = (value: Json, depth: number) => {
    if (depth > 12 || nodes.length > 400) return
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        nodes.push({ parent: value, key: index })
        walk(item, depth + 1)
      })
    } else if (value !== null && typeof value === "object") {
      for (const key of Object.keys(value)) {
        nodes.push({ parent: value, key })
        walk(value[key]!, depth + 1)
      }
    }
  }
  walk(root, 0)
  return nodes
}

/** `document` with `mutations` applied (on a deep copy). */
export const mangle = (document: Json, mutations: ReadonlyArray<Mutation>): Json => {
  const copy = structuredCloneJson(document)
  for (const m of mutations) {
    const nodes = nodesOf(copy)
    if (nodes.length === 0) return copy
    const { key, parent } = nodes[m.at % nodes.length]!
    if (Array.isArray(parent)) {
      const index = key as number
      if (m.op === "replace") parent[index] = m.value
      else if (m.op === "delete") parent.splice(index, 1)
      else parent.push(objectOf([[m.key, m.value]]))
    } else {
      const name = key as string
      if (m.op === "replace") setKey(parent, name, m.value)
      else if (m.op === "delete") delete parent[name]
      else {
        const target = parent[name]
        if (target !== null && typeof target === "object" && !Array.isArray(target)) setKey(target, m.key, m.value)
        else setKey(parent, m.key, m.value)
      }
    }
  }
  return copy
}

/** A deep copy that keeps `__proto__` as an own key. */
const structuredCloneJson = (value: Json): Json => {
  if (Array.isArray(value)) return value.map(structuredCloneJson)
  if (value !== null && typeof value === "object") {
    return objectOf(Object.keys(value).map((key) => [key, structuredCloneJson(value[key]!)] as const))
  }
  return value
}

export const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 })

// ---------------------------------------------------------------------------
// The injector's configuration (filers-list), shared by a group of cases

export interface Group {
  /** SVM names in filers-list (and so worth a Secret). */
  readonly svms: ReadonlyArray<string>
  readonly objects: ReadonlyArray<RawObject>
  /** Whether filers-list is valid: when not, every admission with shares is denied. */
  readonly validConfig: boolean
}

const svmName = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9]{2,12}$/) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}[a-z0-9]$/) },
  { weight: 1, arbitrary: fc.constantFrom("fld5filersvm", "fld5filersvx", "fld5", "a_b", "a-b", "x.y", "constructor", "toString") },
  { weight: 1, arbitrary: hostileString }
)

const url = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9]{1,10}$/).map((host) => `https://${host}.filers.example.internal`) },
  { weight: 2, arbitrary: fc.constantFrom("http://h:9000", "http://h:9000/path/x", "HTTPS://H", "s3://bucket", "h:1", "//h", "https://") },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "https://a b", "https://h\n", "https://h/$(X)", "https://h/$$", "https://é.example") },
  { weight: 1, arbitrary: hostileString.map((text) => `https://${text}`) }
)

const filerEntry = (svm: string) =>
  fc.record({ vserver: fc.constant(svm), url, name: fc.option(hostileString, { nil: undefined }) }).map((entry) =>
    JSON.parse(JSON.stringify(entry)) as Json
  )

export const groupArb: fc.Arbitrary<Group> = fc.uniqueArray(svmName, { minLength: 1, maxLength: 5 }).chain((svms) =>
  fc.tuple(
    fc.tuple(...svms.map(filerEntry)),
    // Now and then a filers-list that does not parse: the whole group is then denied.
    fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.oneof(hostileString, hostileJson.map((j) => JSON.stringify(j))) })
  ).map(([entries, broken]) => {
    const filers = broken ?? JSON.stringify(entries)
    return {
      svms,
      objects: [
        configMap(injectorNamespace, "filers-list", { filers }),
        sidecarTemplate(exampleTemplate())
      ],
      validConfig: broken === undefined
    }
  })
)

// ---------------------------------------------------------------------------
// One case: a user namespace's objects and the review of a pod created there

/** Credentials the fuzzed Secrets hold; none may ever appear in an answer. */
export const fixtureCredentials = [
  { S3_ACCESS: "FUZZ-ACCESS-0-do-not-use", S3_SECRET: "FUZZ-SECRET-0-do-not-use" },
  { S3_ACCESS: "FUZZ-ACCESS-1-$(HOME)-do-not-use", S3_SECRET: "FUZZ-SECRET-1-\"quoted\"-do-not-use" }
]

export const credentialTexts: ReadonlyArray<string> = fixtureCredentials.flatMap((c) => [c.S3_ACCESS, c.S3_SECRET]).flatMap((
  text
) => [text, Buffer.from(text).toString("base64"), JSON.stringify(text).slice(1, -1)])

const share = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("home", "division/project", "research/team-a", "a", "a/b/c", "Home", "x-y_z.w") },
  { weight: 3, arbitrary: pathLike },
  { weight: 3, arbitrary: hostileString }
)

const shareListValue = fc.oneof(
  { weight: 80, arbitrary: fc.array(share, { maxLength: 6 }).map((shares) => JSON.stringify(shares)) },
  { weight: 10, arbitrary: fc.constantFrom("home", "[\"home\"", "[1, 2]", "{\"a\": 1}", "null", "\"home\"", "[[\"home\"]]", "") },
  { weight: 10, arbitrary: hostileJson.map((j) => JSON.stringify(j) ?? "null") },
  // Rarely a long list. (Thousands of shares cost seconds, quadratically: test/bench/RESULTS.md.)
  { weight: 1, arbitrary: fc.integer({ min: 30, max: 150 }).map((n) => JSON.stringify(Array.from({ length: n }, (_, i) => `s${i}`))) }
)

type SecretState = "found" | "other" | "missing" | "noAccess" | "emptySecret" | "garbage"

const secretState: fc.Arbitrary<SecretState> = fc.oneof(
  { weight: 6, arbitrary: fc.constant("found" as const) },
  { weight: 1, arbitrary: fc.constantFrom("other" as const, "missing" as const, "noAccess" as const, "emptySecret" as const, "garbage" as const) }
)

const secretObject = (namespace: string, svm: string, state: SecretState): ReadonlyArray<RawObject> => {
  const name = secretNameFor(svm)
  switch (state) {
    case "found":
      return [secret(namespace, name, fixtureCredentials[0]!)]
    case "other":
      return [secret(namespace, name, fixtureCredentials[1]!)]
    case "missing":
      return []
    case "noAccess":
      return [secret(namespace, name, { S3_SECRET: fixtureCredentials[0]!.S3_SECRET })]
    case "emptySecret":
      return [secret(namespace, name, { S3_ACCESS: fixtureCredentials[0]!.S3_ACCESS, S3_SECRET: "" })]
    case "garbage":
      return [{ apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, data: { S3_ACCESS: "%%%not base64", S3_SECRET: 5 } }]
  }
}

export interface Case {
  /** The objects of the case's namespace (existing-shares, Secrets). */
  readonly objects: ReadonlyArray<RawObject>
  /** The AdmissionReview, as data to JSON.stringify. */
  readonly review: Json
  /** Whether the review was mangled after being built right. */
  readonly mangled: boolean
}

/** Names the injector would pick for (svm, share), to plant in pods as collisions. */
const plannedNames = (svm: string, share: string): ReadonlyArray<string> => {
  const names = sidecarNames(svm, share, () => false)
  return [names.container, names.fdPassingVolume, names.csiVolume]
}

const envVar = (svms: ReadonlyArray<string>) =>
  fc.record({
    name: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...svms.flatMap((svm) => [`${svm}_access`, `${svm}_url`, `${svm}_home`])) },
      { weight: 2, arbitrary: envLikeName },
      { weight: 1, arbitrary: hostileString }
    ),
    value: fc.option(hostileString, { nil: undefined })
  }).map((env) => JSON.parse(JSON.stringify(env)) as Json)

const container = (names: fc.Arbitrary<string>, svms: ReadonlyArray<string>, notebook: boolean) =>
  fc.record({
    name: names,
    image: fc.constant("jupyter/scipy:1"),
    env: fc.tuple(fc.array(envVar(svms), { maxLength: 4 }), fc.nat({ max: 4 })).map(([envs, at]) => {
      const list = [...envs]
      if (notebook) list.splice(Math.min(at, list.length), 0, { name: "NB_PREFIX", value: "/notebook/x/y" })
      return list
    }),
    volumeMounts: fc.array(
      fc.record({
        name: names,
        mountPath: fc.oneof(pathLike, fc.constantFrom(...svms.map((svm) => `/home/jovyan/filers/${svm}/home`)))
      }),
      { maxLength: 3 }
    ),
    futureField: fc.option(hostileJson, { nil: undefined })
  }).map((c) => JSON.parse(JSON.stringify(c)) as Json)

const uidArb = fc.oneof(fc.uuid(), hostileString.filter((s) => s !== ""))

const annotationValue = fc.oneof(
  fc.constantFrom("false", "OFF", "No", "n", "not", "Injected", "true", "yes", "", "inject"),
  hostileString
)

/**
 * A case over `group`: existing-shares in `namespace` keyed by pool SVMs and
 * hostile keys, their Secrets, and a notebook pod whose names now and then
 * collide with the ones the injector would pick. Built without `chain`, so
 * its arbitraries are made once per group, not once per case.
 */
export const caseArb = (group: Group, namespace: string): fc.Arbitrary<Case> => {
  const svmKey = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...group.svms) }, { weight: 1, arbitrary: svmName })
  // A small pool of names, so containers, volumes and mounts collide with each other and with the injector's.
  const planted = group.svms.flatMap((svm) => ["home", "division/project", "a"].flatMap((s) => plannedNames(svm, s)))
  const nameArb = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("analysis", "workspace", "sidecar", "dup", ...planted) },
    { weight: 2, arbitrary: shortLabel },
    { weight: 1, arbitrary: dnsish }
  )
  const volumeArb = fc.oneof(
    fc.record({ name: nameArb, emptyDir: fc.constant({}) }),
    fc.record({ name: nameArb, persistentVolumeClaim: fc.record({ claimName: dnsish }) }),
    fc.record({ name: nameArb, csi: fc.record({ driver: fc.constantFrom("x.example", "") }) })
  )
  return fc.record({
    svms: fc.uniqueArray(fc.record({ svm: svmKey, list: shareListValue, secret: secretState }), {
      maxLength: 5,
      selector: (entry) => entry.svm
    }),
    hasShares: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    notebookFirst: fc.boolean(),
    containers: fc.tuple(
      container(nameArb, group.svms, true),
      fc.array(container(nameArb, ["x"], false), { maxLength: 2 })
    ),
    initContainers: fc.option(fc.array(container(nameArb, ["x"], false), { maxLength: 2 }), { nil: undefined }),
    volumes: fc.option(fc.array(volumeArb, { maxLength: 4 }), { nil: undefined }),
    label: fc.oneof({ weight: 6, arbitrary: fc.constant("analysis") }, { weight: 1, arbitrary: fc.constant(undefined) }, {
      weight: 1,
      arbitrary: hostileString
    }),
    extraLabels: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
    annotation: fc.option(annotationValue, { nil: undefined, freq: 4 }),
    podNamespace: fc.oneof({ weight: 4, arbitrary: fc.constant(namespace) }, { weight: 1, arbitrary: fc.constant(undefined) }),
    requestNamespace: fc.oneof({ weight: 8, arbitrary: fc.constant(namespace) }, {
      weight: 1,
      arbitrary: fc.option(hostileString, { nil: undefined })
    }),
    operation: fc.oneof({ weight: 8, arbitrary: fc.constant("CREATE") }, {
      weight: 1,
      arbitrary: fc.constantFrom("UPDATE", "DELETE", "CONNECT", "create", "")
    }),
    uid: uidArb,
    mangleWith: fc.option(mutations, { nil: undefined, freq: 2 })
  }).map((p): Case => {
    const objects: Array<RawObject> = [
      // objectOf: an SVM key may be __proto__.
      ...(p.hasShares
        ? [{ ...configMap(namespace, "existing-shares", {}), data: objectOf(p.svms.map(({ list, svm }) => [svm, list])) }]
        : []),
      ...p.svms.flatMap(({ secret, svm }) => secretObject(namespace, svm, secret))
    ]
    const [notebook, others] = p.containers
    const containers = p.notebookFirst ? [notebook, ...others] : [...others, notebook]
    const labels: JsonObject = {}
    for (const [k, v] of Object.entries(p.extraLabels)) setKey(labels, k, v)
    if (p.label !== undefined) labels["notebook-name"] = p.label
    const metadata: JsonObject = { generateName: "analysis-", labels }
    if (p.podNamespace !== undefined) metadata.namespace = p.podNamespace
    if (p.annotation !== undefined) metadata.annotations = { [injectAnnotation]: p.annotation }
    const spec: JsonObject = { containers }
    if (p.initContainers !== undefined) spec.initContainers = p.initContainers
    if (p.volumes !== undefined) spec.volumes = p.volumes as Json
    const request: JsonObject = {
      uid: p.uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: p.operation,
      object: { apiVersion: "v1", kind: "Pod", metadata, spec },
      oldObject: null,
      dryRun: false
    }
    if (p.requestNamespace !== undefined) request.namespace = p.requestNamespace
    const review: Json = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request }
    return {
      objects,
      review: p.mangleWith === undefined ? review : mangle(review, p.mangleWith),
      mangled: p.mangleWith !== undefined
    }
  })
}

// ---------------------------------------------------------------------------
// Bodies that are not an AdmissionReview at all

export const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ unit: "binary", maxLength: 64 }),
  hostileJson.map((j) => JSON.stringify(j) ?? ""),
  fc.constantFrom(
    "",
    "null",
    "[]",
    "{}",
    "\ufeff{}",
    "{\"apiVersion\": \"admission.k8s.io/v1\"}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"\"}}",
    "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\"}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\"}} trailing",
    "{\"request\": 1, \"request\": {\"uid\": \"u\"}}",
    "{\"__proto__\": {\"polluted\": true}, \"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionReview\"}",
    "[".repeat(100_000),
    "{\"a\":".repeat(50_000)
  )
)
