/**
 * The command line as a user runs it: `node src/bin.ts review|inject|serve`
 * (test/support/cli.ts). The processes are all started up front, two at a
 * time, and the tests then check what each one did.
 */
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { cli, expectOneErrorLine, type Run } from "../support/cli.ts"
import { everySetting } from "../../src/commands/settings.ts"
import {
  answer,
  directoryPipeline,
  exampleClusterDir,
  exampleReviewFile,
  mutatedPod,
  repoRoot
} from "../support/pipelineHarness.ts"

const review = (file: string, stdin?: string) => cli(["review", "--cluster", exampleClusterDir, file], stdin)

const notebookPodFile = join(repoRoot, "manifests", "examples", "notebook-pod.yaml")
const exampleReviewText = readFileSync(exampleReviewFile, "utf8")

/** Every process the tests look at, started in beforeAll. */
const runs = {
  fromFile: () => review(exampleReviewFile),
  fromStdin: () => review("-", exampleReviewText),
  notJson: () => review("-", "{not json"),
  notReview: () => review("-", JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "x" } })),
  noRequest: () => review("-", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" })),
  noUid: () =>
    review("-", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { operation: "CREATE" } })),
  noCluster: () => cli(["review", "--cluster", join(repoRoot, "no-such-cluster"), exampleReviewFile]),
  inject: () => cli(["inject", "--cluster", exampleClusterDir, notebookPodFile]),
  injectOtherNamespace: () =>
    cli(["inject", "--cluster", exampleClusterDir, "--injector-namespace", "nowhere", notebookPodFile], undefined, {
      POD_NAMESPACE: "das"
    }),
  serveHelp: () => cli(["serve", "--help"]),
  serveBadFlag: () => cli(["serve", "--cluster", exampleClusterDir, "--port", "x"], undefined, { PORT: "8443" }),
  serveBadVariable: () => cli(["serve", "--cluster", exampleClusterDir], undefined, { MAX_BODY_BYTES: "10" }),
  servePlainFlag: () => cli(["serve", "--cluster", exampleClusterDir, "--credential-mode", "plain"]),
  servePlainVariable: () => cli(["serve", "--cluster", exampleClusterDir], undefined, { CREDENTIAL_MODE: "plain" }),
  reviewPlain: () => cli(["review", "--cluster", exampleClusterDir, exampleReviewFile], undefined, { CREDENTIAL_MODE: "plain" })
}
const results: Partial<Record<keyof typeof runs, Run>> = {}
const result = (name: keyof typeof runs): Run => results[name]!

beforeAll(async () => {
  await Promise.all(Object.entries(runs).map(async ([name, run]) => (results[name as keyof typeof runs] = await run())))
}, 180_000)

/** The pipeline's own answer to the example review. */
const exampleAnswer = () =>
  Effect.runPromise(answer(JSON.parse(exampleReviewText)).pipe(Effect.provide(directoryPipeline(exampleClusterDir))))

describe("filer-sidecar-injector review", () => {
  it("prints the pipeline's answer for the example, byte-identical across runs, from a file or from - (stdin)", async () => {
    const first = result("fromFile")
    const second = result("fromStdin")
    expect(first.code).toBe(0)
    expect(first.stderr).toBe("")
    expect(second.stdout).toBe(first.stdout)
    expect(JSON.parse(first.stdout)).toEqual(await exampleAnswer())
    // One line of JSON: exactly the bytes the webhook would send, plus a newline.
    expect(first.stdout.trimEnd().includes("\n")).toBe(false)
  })

  it("exits 2 with one line when the input is not JSON", () => {
    expectOneErrorLine(result("notJson"), 2, /^error: body is not JSON/)
  })

  it("exits 2 with one line naming kind when the input is not an AdmissionReview", () => {
    expectOneErrorLine(result("notReview"), 2, /^error: not an AdmissionReview v1: (kind|apiVersion): /)
  })

  it("exits 2 with one line naming request when there is none", () => {
    expectOneErrorLine(result("noRequest"), 2, /^error: not an AdmissionReview v1: request: /)
  })

  it("exits 2 with one line naming request.uid when it is missing", () => {
    expectOneErrorLine(result("noUid"), 2, /^error: not an AdmissionReview v1: request\.uid: /)
  })

  it("exits 1 with one line when the cluster folder does not exist", () => {
    expectOneErrorLine(result("noCluster"), 1, /^error: cluster folder: .*no-such-cluster.*cannot read/)
  })
})

describe("filer-sidecar-injector inject", () => {
  it("prints the mutated pod as YAML, warnings on stderr", async () => {
    const run = result("inject")
    expect(run.code).toBe(0)
    expect(run.stderr).toBe(`Warning: filers: SVM "fld6filersvm" skipped: Secret fld6filersvm-conn-secret not found\n`)
    // The same pod as the example review's answer applied to the example pod.
    const reviewJson = JSON.parse(exampleReviewText)
    expect(parse(run.stdout)).toEqual(mutatedPod(reviewJson, (await exampleAnswer()).response))
  })
})

describe("the settings on the command line", () => {
  it("serve --help lists every flag of a setting with its description and variable", () => {
    const run = result("serveHelp")
    expect(run.code).toBe(0)
    const flagged = everySetting.filter((setting) => setting.flag !== undefined)
    expect(flagged.length).toBeGreaterThan(5)
    for (const setting of flagged) {
      const line = run.stdout.split("\n").find((candidate) => candidate.trimStart().startsWith(`${setting.flag} `))
      expect(line, setting.flag).toBeDefined()
      expect(line).toContain(`${setting.description} [env ${setting.env}]`)
    }
  })

  it("a bad flag stops serve with one line naming the flag and the variable, even with a good variable", () => {
    expectOneErrorLine(
      result("serveBadFlag"),
      1,
      /^error: SettingsError: invalid setting --port \(PORT\): expected a whole number from 0 to 65535, got "x"$/
    )
  })

  it("a bad variable stops serve the same way", () => {
    expectOneErrorLine(
      result("serveBadVariable"),
      1,
      /^error: SettingsError: invalid setting --max-body-bytes \(MAX_BODY_BYTES\): expected a whole number from 3145728 to 67108864, got "10"$/
    )
  })

  it("plain credentials stop serve without --client-ca-file, in one line naming both settings", () => {
    for (const run of [result("servePlainFlag"), result("servePlainVariable")]) {
      expectOneErrorLine(
        run,
        1,
        /^error: SettingsError: invalid setting --credential-mode \(CREDENTIAL_MODE\): plain puts S3 keys in every admission answer, so serve needs --client-ca-file \(CLIENT_CA_FILE\) too/
      )
    }
  })

  it("plain credentials leave the offline commands as they were: they answer no caller", () => {
    const run = result("reviewPlain")
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout).response.allowed).toBe(true)
  })

  it("the offline commands take --injector-namespace over POD_NAMESPACE", () => {
    // The example cluster's configuration lives in das: in another namespace there is none, so the pod is denied.
    const run = result("injectOtherNamespace")
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^error: pod denied: .*ConfigMap nowhere\/filers-list: not found$/m)
    expect(run.stderr).not.toMatch(/ das\//)
  })
})
