/**
 * Sampling is decided from the record key alone, so every process that sees the same
 * key makes the same decision and sampled records are complete across services.
 */

/** FNV-1a over the key's UTF-16 code units, as an unsigned 32-bit integer. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** Returns a predicate that keeps a `rate` fraction (0..1) of keys. */
export function keySampler(rate: number): (key: string) => boolean {
  if (!(rate < 1)) return () => true
  if (!(rate > 0)) return () => false
  const threshold = Math.floor(rate * 0x100000000)
  return (key) => hashKey(key) < threshold
}
