/**
 * Reading a Dockerfile without a Docker engine: its instructions by stage,
 * for the tests that check the image (test/manifests/dockerfile.test.ts) and
 * run its entry point (test/commands/goInjector.test.ts).
 */

export interface Instruction {
  readonly keyword: string
  readonly value: string
}

export interface Stage {
  readonly from: string
  readonly name: string | undefined
  readonly instructions: ReadonlyArray<Instruction>
}

/** Dockerfile instructions grouped by stage: comments dropped, continuation lines joined. */
export const readStages = (text: string): ReadonlyArray<Stage> => {
  const logical = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
  const stages: Array<{ from: string; name: string | undefined; instructions: Array<Instruction> }> = []
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/.exec(line)
    if (match === null) throw new Error(`not an instruction: ${line}`)
    const keyword = match[1]!.toUpperCase()
    const value = match[2]!.trim()
    if (keyword === "FROM") {
      const [image, as, name] = value.replace(/--platform=\S+\s+/, "").split(/\s+/)
      stages.push({ from: image!, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] })
    } else if (keyword !== "ARG" || stages.length > 0) {
      const stage = stages.at(-1)
      if (stage === undefined) throw new Error(`${keyword} before the first FROM`)
      stage.instructions.push({ keyword, value })
    }
  }
  return stages
}

export const execForm = (value: string): ReadonlyArray<string> => {
  const parsed: unknown = JSON.parse(value)
  if (!Array.isArray(parsed)) throw new Error(`not the exec (JSON) form: ${value}`)
  return parsed as ReadonlyArray<string>
}

/** The values of one stage's instructions of `keyword` (ENTRYPOINT, ENV...), in order. */
export const instructions = (stage: Stage, keyword: string) =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.value)
