/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof`):
 * where the time goes, by function (self time) and by file or package.
 *
 *   node test/bench/profile.ts FILE.cpuprofile [--top 30]
 */
import * as fs from "node:fs"
import { parseArgs } from "node:util"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" } }
})
const file = positionals[0]
if (file === undefined) {
  process.stderr.write("usage: node test/bench/profile.ts FILE.cpuprofile [--top N]\n")
  process.exit(2)
}
const top = Number(values.top)
const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

const selfMicros = new Map<number, number>()
profile.samples.forEach((id, index) => {
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0))
})
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0)

const where = (frame: CallFrame) => {
  const url = frame.url.replace(/^file:\/\//, "")
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  if (url === "") return "(native/v8)"
  if (url.startsWith("node:")) return url
  const local = /\/(src|test)\/(.*)$/.exec(url)
  return local === null ? url : `${local[1]}/${local[2]}`
}
const label = (frame: CallFrame) =>
  `${frame.functionName || "(anonymous)"} ${where(frame)}${frame.url === "" ? "" : `:${frame.lineNumber + 1}`}`

const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros)
const byFunction = new Map<string, number>()
const byPlace = new Map<string, number>()
// Inclusive time of our own src/ functions: a sample counts once for every distinct src/ frame on its stack.
const inclusiveOurs = new Map<string, number>()
for (const [id, micros] of selfMicros) {
  const node = byId.get(id)!
  add(byFunction, label(node.callFrame), micros)
  add(byPlace, where(node.callFrame), micros)
  const seen = new Set<string>()
  for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
    const frame = byId.get(current)!.callFrame
    if (!frame.url.includes("/src/")) continue
    const key = label(frame)
    if (seen.has(key)) continue
    seen.add(key)
    add(inclusiveOurs, key, micros)
  }
}

const show = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`)
  for (const [key, micros] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((micros / total) * 100).toFixed(1).padStart(6)} %  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${key}\n`)
  }
}
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`)
show("self time by package / file", byPlace)
show("self time by function", byFunction)
show("inclusive time of src/ functions", inclusiveOurs)
