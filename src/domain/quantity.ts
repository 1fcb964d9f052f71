/**
 * Kubernetes resource quantities (`100m`, `1`, `0.5`, `100Mi`, `10Gi`, `1e3`),
 * parsed exactly, for comparing a notebook's chosen sidecar resources with
 * the operator's bounds (README, "Per-notebook choices"). The grammar is
 * apimachinery's `resource.Quantity`:
 *
 *   quantity ::= [+-] number [suffix]
 *   number   ::= digits | digits "." [digits] | "." digits
 *   suffix   ::= Ki | Mi | Gi | Ti | Pi | Ei              (powers of 1024)
 *              | n | u | m | "" | k | M | G | T | P | E  (powers of 1000)
 *              | (e | E) [+-] digits                     (powers of 10)
 *
 * The value is a fraction of two bigints, so `0.1` and `100m` are equal and
 * `1Gi` and `1073741824` too, with no rounding.
 */

export interface Quantity {
  /** The value is `numerator / denominator`; the denominator is positive. */
  readonly numerator: bigint
  readonly denominator: bigint
}

// Longer text is no quantity anyone means; with the exponent bound below it
// keeps the bigints small whatever the annotation holds.
const maxLength = 64
const maxExponent = 64

const pattern = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+)|([numkMGTPE]))?$/

const binaryPowers: Readonly<Record<string, bigint>> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n }
const decimalExponents: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18
}

const tenTo = (exponent: number): bigint => 10n ** BigInt(exponent)

/** The exact value of `text`, or undefined when it is not a Kubernetes quantity. */
export const parseQuantity = (text: string): Quantity | undefined => {
  if (text.length > maxLength) return undefined
  const match = pattern.exec(text)
  if (match === null) return undefined
  const [, sign = "", number = "", binary, exponentText, decimal] = match
  const [whole = "", fraction = ""] = number.split(".")
  const exponent = exponentText !== undefined
    ? Number(exponentText)
    : decimal !== undefined
    ? decimalExponents[decimal] ?? 0
    : 0
  if (Math.abs(exponent) > maxExponent) return undefined
  let numerator = BigInt(`${whole}${fraction}` || "0")
  let denominator = tenTo(fraction.length)
  if (exponent >= 0) numerator *= tenTo(exponent)
  else denominator *= tenTo(-exponent)
  if (binary !== undefined) numerator <<= binaryPowers[binary] ?? 0n
  return { numerator: sign === "-" ? -numerator : numerator, denominator }
}

/** Negative when `a < b`, zero when equal, positive when `a > b`. */
export const compareQuantities = (a: Quantity, b: Quantity): number => {
  const left = a.numerator * b.denominator
  const right = b.numerator * a.denominator
  return left < right ? -1 : left > right ? 1 : 0
}

export const isPositive = (quantity: Quantity): boolean => quantity.numerator > 0n
