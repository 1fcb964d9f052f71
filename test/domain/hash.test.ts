import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { bucketName, fnv1a64 } from "../../src/domain/hash.ts"

/**
 * A second FNV-1a 64 written without BigInt: the 64-bit state as four 16-bit
 * limbs, multiplied by the prime 2^40 + 0x1b3 limb by limb.
 */
const referenceFnv1a64 = (text: string): string => {
  let h = [0x2325, 0x8422, 0x9ce4, 0xcbf2] // 0xcbf29ce484222325, least significant limb first
  for (const byte of Buffer.from(text, "utf8")) {
    h[0] ^= byte
    // h * 0x1b3
    const low = [0, 0, 0, 0]
    let carry = 0
    for (let i = 0; i < 4; i++) {
      const v = h[i] * 0x1b3 + carry
      low[i] = v & 0xffff
      carry = Math.floor(v / 0x10000)
    }
    // + h * 2^40 = h shifted by 2.5 limbs: (h << 8) placed from limb 2
    const shifted = [0, 0, (h[0] << 8) & 0xffff, ((h[1] << 8) | (h[0] >>> 8)) & 0xffff]
    carry = 0
    const sum = [0, 0, 0, 0]
    for (let i = 0; i < 4; i++) {
      const v = low[i] + shifted[i] + carry
      sum[i] = v & 0xffff
      carry = v >>> 16
    }
    h = sum
  }
  const hex = h.slice().reverse().map((limb) => limb.toString(16).padStart(4, "0")).join("")
  return BigInt(`0x${hex}`).toString(10)
}

describe("bucket names: FNV-1a 64 of the share path (kept from the original)", () => {
  it("hashes the empty string to the FNV offset basis 14695981039346656037", () => {
    expect(bucketName("")).toBe("14695981039346656037")
  })

  it('hashes "a" to 12638187200555641996', () => {
    expect(bucketName("a")).toBe("12638187200555641996")
  })

  it("hashes the UTF-8 bytes of a multi-byte string (values computed with Python)", () => {
    expect(bucketName("foobar")).toBe("9625390261332436968")
    expect(bucketName("données/équipe-🚀")).toBe("1154654506208568047")
    expect(bucketName("division/project")).toBe("9799071022584861848")
  })

  it("prints the hash as an unsigned decimal, even above 2^63", () => {
    expect(fnv1a64("a")).toBeGreaterThan(2n ** 63n)
    expect(bucketName("a")).toMatch(/^[0-9]+$/)
  })

  it("agrees with an independent limb-wise implementation on any string", () => {
    expect(referenceFnv1a64("données/équipe-🚀")).toBe("1154654506208568047")
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (text) => {
      expect(bucketName(text)).toBe(referenceFnv1a64(text))
    }), { numRuns: 300 })
  })
})
