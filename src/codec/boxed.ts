/**
 * Boxed primitives (`new Number(3)`, `new String('x')`, `new Boolean(false)`, `Object(1n)`)
 * are recorded as the primitive they box, as JSON.stringify writes them: a replay compares
 * values, and a stage that returns `3` where production returned `new Number(3)` has not
 * diverged. (A boxed `false` is truthy, so a stage that tests one may branch differently
 * under replay; no pipeline is known to rely on that.)
 */

/** The primitive a boxed primitive holds; any other value as it is. */
export function unboxed(value: object): unknown {
  // The prototype's own valueOf, not the value's: a box may carry a valueOf of its own.
  if (value instanceof Number) return Number.prototype.valueOf.call(value)
  if (value instanceof String) return String.prototype.valueOf.call(value)
  if (value instanceof Boolean) return Boolean.prototype.valueOf.call(value)
  if (value instanceof BigInt) return BigInt.prototype.valueOf.call(value)
  if (value instanceof Symbol) return Symbol.prototype.valueOf.call(value)
  return value
}
