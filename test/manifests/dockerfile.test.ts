/**
 * The image, read from the Dockerfile and .dockerignore (there is no Docker
 * engine here): Node 24 throughout, production dependencies only, a numeric
 * non-root user matching the Deployment, and the entry point that package.json
 * names. Plus the one thing a review of the Dockerfile cannot see: every
 * package the sources load at run time must survive `npm ci --omit=dev`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { ServerSettings } from "../../src/server/ServerSettings.ts"
import { execForm, instructions, readStages } from "../support/dockerfile.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")

/**
 * Whether the Docker build context leaves out `path`, by .dockerignore's rules:
 * the last matching pattern wins, `!` re-includes, and a pattern that matches
 * a directory matches everything under it.
 */
const ignored = (patterns: ReadonlyArray<string>, path: string) => {
  const toRegExp = (pattern: string) =>
    new RegExp(
      "^" +
        pattern
          .replace(/^\/+|\/+$/g, "")
          .split(/(\*\*\/?|\*|\?)/)
          .map((part) =>
            part === "**" || part === "**/"
              ? ".*"
              : part === "*"
              ? "[^/]*"
              : part === "?"
              ? "[^/]"
              : part.replace(/[.+^${}()|[\]\\]/g, "\\$&")
          )
          .join("") +
        "$"
    )
  const segments = path.split("/")
  const candidates = segments.map((_, index) => segments.slice(0, index + 1).join("/"))
  let excluded = false
  for (const raw of patterns) {
    const negated = raw.startsWith("!")
    const regExp = toRegExp(negated ? raw.slice(1) : raw)
    if (candidates.some((candidate) => regExp.test(candidate))) excluded = !negated
  }
  return excluded
}

const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8")
const stages = readStages(dockerfile)
const final = stages.at(-1)!

const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly bin: Readonly<Record<string, string>>
  readonly dependencies: Readonly<Record<string, string>>
  readonly devDependencies: Readonly<Record<string, string>>
}

describe("Dockerfile", () => {
  it("builds on Node 24 in every stage", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    const stageNames = new Set(stages.flatMap((stage) => stage.name === undefined ? [] : [stage.name]))
    for (const stage of stages) {
      if (stageNames.has(stage.from)) continue
      expect(stage.from).toMatch(/^(docker\.io\/(library\/)?)?node:24([.-][\w.-]*)?(@sha256:[0-9a-f]{64})?$|^gcr\.io\/distroless\/nodejs24[\w.-]*(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/)
    }
  })

  it("installs production dependencies only, from the lock file", () => {
    const npmRuns = stages.flatMap((stage) => instructions(stage, "RUN")).filter((run) => /\bnpm\b/.test(run))
    expect(npmRuns.length).toBeGreaterThan(0)
    for (const run of npmRuns) {
      for (const command of run.split(/&&|;/).filter((part) => /\bnpm\s+(ci|install|i)\b/.test(part))) {
        expect(command, "npm ci, not npm install").toMatch(/\bnpm\s+ci\b/)
        expect(command).toMatch(/--omit[= ]dev\b/)
      }
    }
    expect(instructions(final, "RUN").filter((run) => /\bnpm\s+(ci|install|i)\b/.test(run))).toEqual([])
  })

  it("runs the final stage as a numeric non-root user, the Deployment's", () => {
    const users = instructions(final, "USER")
    expect(users.length).toBeGreaterThan(0)
    const [user, group] = users.at(-1)!.split(":")
    expect(user).toMatch(/^\d+$/)
    expect(Number(user)).toBeGreaterThan(0)
    if (group !== undefined) expect(Number(group)).toBeGreaterThan(0)
    const deployment = parse(readFileSync(join(root, "manifests/base/deployment.yaml"), "utf8")) as {
      spec: { template: { spec: { securityContext?: { runAsUser?: number } } } }
    }
    expect(deployment.spec.template.spec.securityContext?.runAsUser).toBe(Number(user))
  })

  it("starts src/bin.ts with node, the file package.json names, serving by default", () => {
    expect(execForm(instructions(final, "ENTRYPOINT").at(-1)!)).toEqual(["node", "src/bin.ts"])
    expect(execForm(instructions(final, "CMD").at(-1)!)).toEqual(["serve"])
    expect(Object.values(packageJson.bin).map((path) => path.replace(/^\.\//, ""))).toContain("src/bin.ts")
  })

  it("sets NODE_ENV=production and exposes the server's port", () => {
    expect(instructions(final, "ENV").some((env) => /^NODE_ENV[= ]"?production"?$/.test(env))).toBe(true)
    expect(instructions(final, "EXPOSE").flatMap((ports) => ports.split(/\s+/))).toContain(String(ServerSettings.defaults.port))
  })

  it("copies the dependencies from the build stage, and package.json and src from the context", () => {
    const copies = instructions(final, "COPY")
    const buildStage = stages.find((stage) => instructions(stage, "RUN").some((run) => /\bnpm\s+ci\b/.test(run)))!
    expect(copies.some((copy) => copy.startsWith(`--from=${buildStage.name} `) && /node_modules/.test(copy))).toBe(true)
    expect(copies.some((copy) => /^(--\S+\s+)*package\.json\s/.test(copy))).toBe(true)
    expect(copies.some((copy) => /^(--\S+\s+)*src\s/.test(copy))).toBe(true)
  })

  it("bakes in Node's compile cache, made by the runtime user (the cache folder is per uid)", () => {
    const env = instructions(final, "ENV").map((value) => /^NODE_COMPILE_CACHE[= ]"?([^"\s]+)"?$/.exec(value)).find(Boolean)
    expect(env, "ENV NODE_COMPILE_CACHE").toBeDefined()
    const folder = env![1]!.replace(/^\/app\//, "")
    const copy = instructions(final, "COPY").find((value) => value.startsWith("--from=") && value.split(/\s+/).at(-1)!.replace(/^\.\//, "").replace(/\/$/, "") === folder.replace(/\/$/, ""))
    expect(copy, `COPY --from=... ${folder}`).toBeDefined()
    const cacheStage = stages.find((stage) => stage.name === /^--from=(\S+)/.exec(copy!)![1])!
    expect(instructions(cacheStage, "USER").at(-1)).toBe(instructions(final, "USER").at(-1))
    const warm = instructions(cacheStage, "RUN").at(-1)!
    expect(warm).toMatch(/NODE_COMPILE_CACHE=/)
    // The server's modules, including the one loaded only for a real cluster.
    expect(warm).toMatch(/src\/main\.ts/)
    expect(warm).toMatch(/src\/cluster\/KubeClientLive\.ts/)
  })
})

describe(".dockerignore", () => {
  const patterns = readFileSync(join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))

  it("leaves node_modules, tests, git, CI, coverage, bench results and manifests out of the build context", () => {
    const outside = [
      "node_modules/effect/package.json",
      "test/manifests/dockerfile.test.ts",
      ".git/HEAD",
      ".ci/run",
      "coverage/index.html",
      "bench-results/latest.json",
      "manifests/base/kustomization.yaml"
    ]
    for (const path of outside) expect(ignored(patterns, path), path).toBe(true)
  })

  it("keeps what the Dockerfile copies", () => {
    for (const path of ["package.json", "package-lock.json", "src/bin.ts", "src/config/setting.ts", "src/server/tls/selfSigned.ts"]) {
      expect(ignored(patterns, path), path).toBe(false)
    }
  })
})

describe("the image's dependencies", () => {
  /** Every module a source file loads at run time (not `import type`, which type stripping erases). */
  const runtimeImports = (source: string): ReadonlyArray<string> => {
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
    const found: Array<string> = []
    const statements = /\b(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']/g
    for (const match of code.matchAll(statements)) if (match[1] === undefined) found.push(match[2]!)
    for (const match of code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!)
    return found
  }

  const packageName = (specifier: string) =>
    specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!

  it("are all production dependencies, so npm ci --omit=dev installs them", () => {
    const sources = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
      .filter((file) => /\.(ts|mts|js|mjs)$/.test(file))
    expect(sources.length).toBeGreaterThan(0)
    for (const file of sources) {
      const specifiers = runtimeImports(readFileSync(join(root, "src", file), "utf8"))
        .filter((specifier) => !specifier.startsWith(".") && !specifier.startsWith("node:"))
        .filter((specifier) => !builtinModules.includes(specifier))
      for (const specifier of specifiers) {
        expect(Object.keys(packageJson.dependencies), `src/${file} imports ${specifier}`).toContain(
          packageName(specifier)
        )
      }
    }
  })
})
