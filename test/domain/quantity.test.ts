import { describe, expect, it } from "vitest"
import { compareQuantities, isPositive, parseQuantity, type Quantity } from "../../src/domain/quantity.ts"

const parsed = (text: string): Quantity => {
  const quantity = parseQuantity(text)
  if (quantity === undefined) throw new Error(`${text} did not parse`)
  return quantity
}

/** The value as a plain number, for readable expectations on small values. */
const valueOf = (text: string): number => {
  const { denominator, numerator } = parsed(text)
  return Number(numerator) / Number(denominator)
}

const compare = (a: string, b: string) => Math.sign(compareQuantities(parsed(a), parsed(b)))

describe("Kubernetes quantities", () => {
  it("read plain numbers, decimals and signs", () => {
    expect(valueOf("1")).toBe(1)
    expect(valueOf("0")).toBe(0)
    expect(valueOf("0.5")).toBe(0.5)
    expect(valueOf("1.")).toBe(1)
    expect(valueOf(".25")).toBe(0.25)
    expect(valueOf("+2")).toBe(2)
    expect(valueOf("-2")).toBe(-2)
  })

  it("read the decimal suffixes n, u, m, k, M, G, T, P, E", () => {
    expect(valueOf("100m")).toBe(0.1)
    expect(valueOf("250u")).toBe(0.00025)
    expect(valueOf("5n")).toBe(5e-9)
    expect(valueOf("2k")).toBe(2000)
    expect(valueOf("3M")).toBe(3e6)
    expect(valueOf("1G")).toBe(1e9)
    expect(valueOf("1T")).toBe(1e12)
    expect(valueOf("1P")).toBe(1e15)
    expect(valueOf("1E")).toBe(1e18)
  })

  it("read the binary suffixes Ki to Ei", () => {
    expect(valueOf("1Ki")).toBe(1024)
    expect(valueOf("100Mi")).toBe(100 * 1024 ** 2)
    expect(valueOf("10Gi")).toBe(10 * 1024 ** 3)
    expect(valueOf("1.5Gi")).toBe(1.5 * 1024 ** 3)
    expect(parsed("1Ei")).toEqual({ numerator: 2n ** 60n, denominator: 1n })
    expect(valueOf("1Ti")).toBe(1024 ** 4)
    expect(valueOf("1Pi")).toBe(1024 ** 5)
  })

  it("read e-notation, either case, with a signed exponent", () => {
    expect(valueOf("1e3")).toBe(1000)
    expect(valueOf("1E3")).toBe(1000)
    expect(valueOf("5e-1")).toBe(0.5)
    expect(valueOf("2e+2")).toBe(200)
    expect(valueOf("1.5e2")).toBe(150)
  })

  it("are exact: equal values in different notations compare equal", () => {
    expect(compare("0.1", "100m")).toBe(0)
    expect(compare("1Gi", "1073741824")).toBe(0)
    expect(compare("1k", "1e3")).toBe(0)
    expect(compare("1", "1000m")).toBe(0)
    expect(compare("500m", "0.5")).toBe(0)
    expect(compare("1000000001n", "1")).toBe(1)
  })

  it("compare across suffixes", () => {
    expect(compare("500m", "2")).toBe(-1)
    expect(compare("2", "500m")).toBe(1)
    expect(compare("10Gi", "16Gi")).toBe(-1)
    expect(compare("1G", "1Gi")).toBe(-1)
    expect(compare("17Gi", "16Gi")).toBe(1)
    expect(compare("-1", "0")).toBe(-1)
  })

  it("refuse text that is not a quantity", () => {
    for (const text of [
      "",
      " 1",
      "1 ",
      "lots",
      "1 cpu",
      "10GB",
      "1.2.3",
      ".",
      "1e",
      "1e1.5",
      "1Kib",
      "1ki",
      "1K",
      "--1",
      "1m1",
      "0x10",
      "1_000"
    ]) {
      expect(parseQuantity(text), text).toBeUndefined()
    }
  })

  it("refuse an absurd exponent or length rather than build a huge number", () => {
    expect(parseQuantity("1e999999999")).toBeUndefined()
    expect(parseQuantity("1e-999999999")).toBeUndefined()
    expect(parseQuantity("1".repeat(65))).toBeUndefined()
    expect(parseQuantity("1e64")).toBeDefined()
  })

  it("tell positive from zero and negative", () => {
    expect(isPositive(parsed("1m"))).toBe(true)
    expect(isPositive(parsed("0"))).toBe(false)
    expect(isPositive(parsed("0.0Gi"))).toBe(false)
    expect(isPositive(parsed("-1"))).toBe(false)
  })
})
