/**
 * FNV-1a 64-bit, the function the share-provisioning controller names buckets
 * with (Go's hash/fnv New64a). Keep it bit-for-bit: a different hash mounts
 * a bucket that does not exist.
 */
const offsetBasis = 0xcbf29ce484222325n
const prime = 0x100000001b3n
const mask = 0xffffffffffffffffn
const encoder = new TextEncoder()

/** FNV-1a 64 of the UTF-8 bytes of `text`, as an unsigned 64-bit integer. */
export const fnv1a64 = (text: string): bigint => {
  let hash = offsetBasis
  for (const byte of encoder.encode(text)) {
    hash = ((hash ^ BigInt(byte)) * prime) & mask
  }
  return hash
}

/** The bucket holding a share: FNV-1a 64 of the share path, in unsigned decimal. */
export const bucketName = (share: string): string => fnv1a64(share).toString(10)
