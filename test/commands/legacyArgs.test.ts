/**
 * The command line before effect/cli: the Go injector's arguments in every
 * form Go's flag package accepts become today's `serve`, with a warning that
 * names it; what neither command line knows is a usage error naming the flag.
 */
import { describe, expect, it } from "vitest"
import { interpretArgs } from "../../src/commands/legacyArgs.ts"

const goDeployment = ["-service-name=filer-sidecar-injector", "-sidecar-config-file=/etc/webhook/config/sidecarconfig.json"]

const servingAs = (extra: ReadonlyArray<string> = [], file = "/etc/webhook/config/sidecarconfig.json", service = "filer-sidecar-injector") => [
  "serve",
  "--service-name",
  service,
  "--sidecar-config-file",
  file,
  "--register-webhook",
  "filer-sidecar-injector-webhook",
  ...extra
]

describe("the Go injector's arguments", () => {
  it("as its Deployment passes them: serve for that Service and file, registering its webhook configuration", () => {
    const invocation = interpretArgs(goDeployment)
    expect(invocation).toEqual({
      _tag: "Run",
      args: servingAs(),
      deprecation: "the Go injector's arguments are deprecated; this runs `filer-sidecar-injector serve " +
        "--service-name filer-sidecar-injector --sidecar-config-file /etc/webhook/config/sidecarconfig.json " +
        "--register-webhook filer-sidecar-injector-webhook`, use that instead (README: \"Migrating from the Go injector\")"
    })
  })

  const forms: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["-flag=value", ["-service-name=svc", "-sidecar-config-file=/f.json", "-port=9443"]],
    ["--flag=value", ["--service-name=svc", "--sidecar-config-file=/f.json", "--port=9443"]],
    ["-flag value", ["-service-name", "svc", "-sidecar-config-file", "/f.json", "-port", "9443"]],
    ["--flag value", ["--service-name", "svc", "--sidecar-config-file", "/f.json", "--port", "9443"]],
    ["mixed, in another order", ["--port", "9443", "-sidecar-config-file=/f.json", "--service-name=svc"]],
    ["a flag given twice (the last wins, as in Go)", ["-port=1", "-service-name=svc", "-sidecar-config-file=/f.json", "-port=9443"]],
    ["-- at the end", ["-service-name=svc", "-sidecar-config-file=/f.json", "-port=9443", "--"]]
  ]
  for (const [form, argv] of forms) {
    it(`in the form ${form}`, () => {
      const invocation = interpretArgs(argv)
      expect(invocation._tag).toBe("Run")
      if (invocation._tag !== "Run") return
      expect(invocation.args).toEqual(servingAs(["--port", "9443"], "/f.json", "svc"))
      expect(invocation.deprecation).toContain("`filer-sidecar-injector serve --service-name svc --sidecar-config-file /f.json")
    })
  }

  it("takes the Go injector's defaults for the flags not given", () => {
    const invocation = interpretArgs(["-port=9443"])
    expect(invocation._tag === "Run" && invocation.args).toEqual(
      servingAs(["--port", "9443"], "/etc/webhook/config/sidecarconfig.yaml")
    )
  })

  it("quotes a value with spaces in the command line it names, as a shell reads it back", () => {
    const invocation = interpretArgs(["-sidecar-config-file=/etc/my config/it's.json"])
    expect(invocation._tag === "Run" && invocation.args[4]).toBe("/etc/my config/it's.json")
    expect(invocation._tag === "Run" && invocation.deprecation).toContain(`--sidecar-config-file '/etc/my config/it'\\''s.json'`)
  })

  it("-help shows serve's flags", () => {
    expect(interpretArgs(["-service-name=svc", "-help"])).toEqual({ _tag: "Run", args: ["serve", "--help"] })
  })

  const mistakes: ReadonlyArray<readonly [string, ReadonlyArray<string>, RegExp]> = [
    ["an unknown flag, one dash", ["-unknown-flag=1"], /^flag provided but not defined: -unknown-flag \(/],
    ["an unknown flag among the Go ones", [...goDeployment, "--tlsCertFile=/x"], /^flag provided but not defined: --tlsCertFile/],
    ["a flag without its value", ["-service-name=svc", "-port"], /^flag needs an argument: -port$/],
    ["an argument that is no flag", [...goDeployment, "serve"], /^unexpected argument "serve"$/],
    ["an argument after --", [...goDeployment, "--", "x"], /^unexpected argument "x"$/]
  ]
  for (const [what, argv, message] of mistakes) {
    it(`refuses ${what}`, () => {
      const invocation = interpretArgs(argv)
      expect(invocation._tag).toBe("UsageError")
      expect(invocation._tag === "UsageError" && invocation.message).toMatch(message)
    })
  }
})

describe("today's command line", () => {
  it("goes to effect/cli unchanged, without a warning", () => {
    for (
      const argv of [
        [],
        ["serve", "--port", "8443", "--service-name", "x"],
        ["--help"],
        ["-h"],
        ["-v"],
        ["--unknown-flag=1"],
        ["review", "--cluster", "dir", "-"],
        ["review", "--", "-not-a-flag"]
      ]
    ) {
      expect(interpretArgs(argv)).toEqual({ _tag: "Run", args: argv })
    }
  })

  it("refuses a single-dash word, which effect/cli would split into short flags, naming it", () => {
    expect(interpretArgs(["serve", "-bogus=1"])).toEqual({
      _tag: "UsageError",
      message: "unknown flag -bogus (flags take two dashes: --bogus)"
    })
  })
})
