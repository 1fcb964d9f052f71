/**
 * The shape of src/, checked: no import cycle (type imports included), no
 * file past 400 lines, and imports that go one way (commands → server →
 * admission → cluster/domain; observability wraps from above).
 *
 * Imports are read with TypeScript's own parser: `import`, `import type`,
 * `export … from` and type-level `import("…")`. A dynamic `import()` is
 * lazy, so it is not an edge.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")
const maxLines = 400

/**
 * Files being split on another branch right now. The line check skips them
 * until then; the list is emptied when the branches are merged, and the test
 * fails on an entry that no longer needs it.
 */
const splitInProgress: ReadonlyArray<string> = []

const sourceFiles = (dir: string): Array<string> =>
  fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = `${dir}/${entry.name}`
    if (entry.isDirectory()) return sourceFiles(relative)
    return entry.isFile() && entry.name.endsWith(".ts") ? [relative] : []
  }).sort()

/** The relative module specifiers a file imports statically. */
const importsOf = (file: string, text: string): Array<string> => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: Array<string> = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text)
    } else if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)
    ) {
      found.push(node.argument.literal.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found.filter((specifier) => specifier.startsWith("."))
}

const files = sourceFiles("src")
const texts = new Map(files.map((file) => [file, fs.readFileSync(path.join(root, file), "utf8")]))

/** file → the src files it imports (paths relative to the repository). */
const graph = new Map(
  files.map((file) => {
    const targets = importsOf(file, texts.get(file)!).map((specifier) =>
      path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier))
    )
    return [file, [...new Set(targets)].sort()]
  })
)

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
const cyclicComponents = (): Array<Array<string>> => {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const components: Array<Array<string>> = []
  const connect = (file: string): void => {
    index.set(file, counter)
    low.set(file, counter)
    counter++
    stack.push(file)
    onStack.add(file)
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue
      if (!index.has(next)) {
        connect(next)
        low.set(file, Math.min(low.get(file)!, low.get(next)!))
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, index.get(next)!))
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: Array<string> = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== file)
      if (component.length > 1 || graph.get(file)!.includes(file)) components.push(component.sort())
    }
  }
  for (const file of files) if (!index.has(file)) connect(file)
  return components.sort((a, b) => a[0]!.localeCompare(b[0]!))
}

/** The shortest cycle from `start` back to itself, within `component` (breadth-first). */
const shortestCycle = (start: string, component: ReadonlySet<string>): Array<string> => {
  const previous = new Map<string, string>()
  const queue = [start]
  while (queue.length > 0) {
    const file = queue.shift()!
    for (const next of graph.get(file) ?? []) {
      if (!component.has(next)) continue
      if (next === start) {
        const path: Array<string> = []
        for (let at = file; at !== start; at = previous.get(at)!) path.unshift(at)
        return [start, ...path, start]
      }
      if (!previous.has(next)) {
        previous.set(next, file)
        queue.push(next)
      }
    }
  }
  return [start]
}

/** Every cyclic component, each with one shortest cycle through each of its files (without repeats). */
const describeCycles = (components: ReadonlyArray<ReadonlyArray<string>>): string =>
  components.map((component) => {
    const members = new Set(component)
    const cycles = new Set(component.map((file) => {
      const cycle = shortestCycle(file, members)
      // The same cycle seen from another file: start it at its first file in order.
      const ring = cycle.slice(0, -1)
      const first = ring.indexOf([...ring].sort()[0]!)
      const rotated = [...ring.slice(first), ...ring.slice(0, first)]
      return [...rotated, rotated[0]].join(" → ")
    }))
    return [`files in a cycle: ${component.join(", ")}`, ...[...cycles].sort().map((cycle) => `  ${cycle}`)].join("\n")
  }).join("\n")

const folderOf = (file: string): string => file.split("/")[1]!

const importsFrom = (fromFolder: string, toFolders: ReadonlyArray<string>): Array<string> =>
  files.filter((file) => folderOf(file) === fromFolder).flatMap((file) =>
    graph.get(file)!.filter((target) => toFolders.includes(folderOf(target))).map((target) => `${file} → ${target}`)
  )

const lineCount = (text: string): number => text.split("\n").length - (text.endsWith("\n") ? 1 : 0)

describe("the import graph of src/", () => {
  it("reads the imports of every kind (a check on the parser, not on src)", () => {
    const text = [
      `import { a } from "./a.ts"`,
      `import type { B } from "../b.ts"`,
      `import { type C } from "./c.ts"`,
      `export { d } from "./d.ts"`,
      `export type { E } from "./e.ts"`,
      `export * from "./f.ts"`,
      `import "./g.ts"`,
      `type H = typeof import("./h.ts")`,
      `const lazy = () => import("./lazy.ts")`,
      `import { Effect } from "effect"`
    ].join("\n")
    expect(importsOf("x.ts", text)).toEqual(["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./e.ts", "./f.ts", "./g.ts", "./h.ts"])
  })

  it("resolves every relative import to a file under src/", () => {
    const unresolved = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => !texts.has(target)).map((target) => `${file} → ${target}`)
    )
    expect(unresolved).toEqual([])
    // A graph with no edges would pass every check below.
    expect([...graph.values()].flat().length).toBeGreaterThan(files.length)
  })

  it("has no cycle, type imports included", () => {
    const components = cyclicComponents()
    expect(components.length === 0 ? "" : `import cycles in src/:\n${describeCycles(components)}`).toBe("")
  })

  it("src/domain imports nothing from the other folders of src/", () => {
    const outside = [...graph].flatMap(([file, targets]) =>
      folderOf(file) === "domain"
        ? targets.filter((target) => folderOf(target) !== "domain").map((target) => `${file} → ${target}`)
        : []
    )
    expect(outside).toEqual([])
  })

  it("src/cluster and src/admission import nothing from src/server or src/commands", () => {
    expect([...importsFrom("cluster", ["server", "commands"]), ...importsFrom("admission", ["server", "commands"])])
      .toEqual([])
  })

  it("the pipeline imports neither the admission log line nor the metrics", () => {
    expect(graph.get("src/admission/pipeline.ts")).not.toContain("src/observability/Admission.ts")
    expect(graph.get("src/admission/pipeline.ts")).not.toContain("src/observability/Metrics.ts")
  })

  it("the modules both sides share are leaves: Outcome imports only domain, the span helpers nothing", () => {
    // Besides domain types, only the failures' names (admission/errors.ts), which import no service.
    expect(graph.get("src/admission/outcome.ts")!.filter((target) => folderOf(target) !== "domain" && target !== "src/admission/errors.ts"))
      .toEqual([])
    expect(graph.get("src/observability/Traced.ts")).toEqual([])
  })
})

describe("the size of src/ files", () => {
  it(`no file is longer than ${maxLines} lines`, () => {
    const tooLong = files
      .filter((file) => !splitInProgress.includes(file) && lineCount(texts.get(file)!) > maxLines)
      .map((file) => `${file}: ${lineCount(texts.get(file)!)} lines`)
    expect(tooLong).toEqual([])
  })

  it("every file still excused from the line check needs it", () => {
    const stale = splitInProgress.filter((file) => !texts.has(file) || lineCount(texts.get(file)!) <= maxLines)
    expect(stale, "remove these from splitInProgress").toEqual([])
  })
})
