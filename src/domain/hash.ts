/**
 * FNV-1a 64-bit, the function the share-provisioning controller names buckets
 * with (Go's hash/fnv New64a). Keep it bit-for-bit: a different hash mounts
 * a bucket that does not exist.
 *
 * The 64-bit state is held as four 16-bit limbs in plain numbers, not as a
 * BigInt: BigInt arithmetic per byte made each hash cost ~3.5 µs, this ~0.5 µs
 * (test/bench/RESULTS.md). Every limb product stays far below 2^53.
 */
const encoder = new TextEncoder()

/** The bytes of an ASCII text, reused between calls (hashing is synchronous). */
const asciiBytes: Array<number> = []

/** FNV-1a 64 of `length` bytes; multiplying by the prime 2^40 + 0x1b3 is `h * 0x1b3 + (h << 40)`. */
const fnv1a64Bytes = (bytes: ArrayLike<number>, length: number): bigint => {
  // The offset basis 0xcbf29ce484222325, least significant limb first.
  let h0 = 0x2325
  let h1 = 0x8422
  let h2 = 0x9ce4
  let h3 = 0xcbf2
  for (let i = 0; i < length; i++) {
    h0 ^= bytes[i]!
    const t0 = h0 * 0x1b3
    // h << 40: limb 0 shifted by 8 lands in limbs 2 and 3, limb 1 in limb 3; the rest overflows.
    let t1 = h1 * 0x1b3
    let t2 = h2 * 0x1b3 + (h0 << 8)
    let t3 = h3 * 0x1b3 + (h1 << 8)
    t1 += t0 >>> 16
    t2 += t1 >>> 16
    t3 += t2 >>> 16
    h0 = t0 & 0xffff
    h1 = t1 & 0xffff
    h2 = t2 & 0xffff
    h3 = t3 & 0xffff
  }
  return (BigInt(h3 * 0x10000 + h2) << 32n) | BigInt(h1 * 0x10000 + h0)
}

/** FNV-1a 64 of the UTF-8 bytes of `text`, as an unsigned 64-bit integer. */
export const fnv1a64 = (text: string): bigint => {
  // ASCII (share paths, nearly always) is its own UTF-8: no encoder call, no allocation.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80) {
      const bytes = encoder.encode(text)
      return fnv1a64Bytes(bytes, bytes.length)
    }
    asciiBytes[i] = code
  }
  return fnv1a64Bytes(asciiBytes, text.length)
}

/** The bucket holding a share: FNV-1a 64 of the share path, in unsigned decimal. */
export const bucketName = (share: string): string => fnv1a64(share).toString(10)
