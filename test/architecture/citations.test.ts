/**
 * Comments cite this repository's own docs, and what they cite exists: a
 * section of docs/behaviour.md named in `src/` or `test/` is one of its
 * headings, so renaming a heading fails here instead of leaving stale
 * pointers behind.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")

const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = `${dir}/${entry.name}`
    if (entry.isDirectory()) return filesUnder(relative)
    return entry.isFile() && /\.(ts|md)$/.test(entry.name) ? [relative] : []
  })

const files = [...filesUnder("src"), ...filesUnder("test")].filter((file) => file !== "test/architecture/citations.test.ts")
const texts = new Map(files.map((file) => [file, fs.readFileSync(path.join(root, file), "utf8")]))

const headings = new Set(
  fs.readFileSync(path.join(root, "docs/behaviour.md"), "utf8").split("\n")
    .filter((line) => /^#{2,4} /.test(line))
    .map((line) => line.replace(/^#+ /, "").trim())
)

// `docs/behaviour.md, "Names"` or `docs/behaviour.md ("The response")`.
const citation = /docs\/behaviour\.md,? \(?"([^"]+)"/g

describe("citations in src/ and test/", () => {
  it("name no document outside the repository", () => {
    const outside = files.filter((file) => /\b(SPEC|DESIGN)\.md\b|\bSPEC rule\b/.test(texts.get(file)!))
    expect(outside).toEqual([])
  })

  it("name only sections docs/behaviour.md has", () => {
    const cited = files.flatMap((file) => [...texts.get(file)!.matchAll(citation)].map((match) => ({ file, section: match[1]! })))
    expect(cited.length).toBeGreaterThan(0)
    expect(cited.filter(({ section }) => !headings.has(section))).toEqual([])
  })
})
