/**
 * Realistic stage payloads for benchmarks: an inventory/order update as a pipeline stage
 * would see it (nested objects, strings, numbers, nested arrays), grown to a target size
 * of JSON text. Deterministic (seeded), plain JSON, no key a default redaction rule
 * matches, so the codec's fast path applies as it would for most production payloads.
 */

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const words = [
  'north',
  'south',
  'bulk',
  'fragile',
  'promo',
  'backorder',
  'cold-chain',
  'oversize',
  'gift',
  'clearance',
  'restock',
  'priority',
]
const cities = ['Lyon', 'Osaka', 'Porto', 'Denver', 'Tartu', 'Recife', 'Pune', 'Leeds']

export type Payload = Record<string, unknown>

/** An order/inventory update of about `bytes` bytes of JSON text (never less). */
export function makePayload(bytes: number, seed: number): Payload {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const sku = 1000 + Math.floor(rnd() * 9000)
  const base: Payload = {
    event: 'stock.updated',
    sku: `sku:${sku}`,
    warehouse: `wh-${pick(cities).toLowerCase()}-${Math.floor(rnd() * 20)}`,
    available: Math.floor(rnd() * 500),
    reserved: Math.floor(rnd() * 50),
    price: Math.round(rnd() * 100_000) / 100,
    currency: 'EUR',
    updatedAt: new Date(1_760_000_000_000 + Math.floor(rnd() * 1e9)).toISOString(),
    source: { db: 'inventory', table: 'stock', binlogPos: Math.floor(rnd() * 1e9), shard: 7 },
    customer: { id: `c-${Math.floor(rnd() * 1e6)}`, city: pick(cities), tier: pick(['gold', 'std']) },
    items: [] as unknown[],
    history: [] as unknown[],
  }
  const items = base.items as unknown[]
  const history = base.history as unknown[]
  let i = 0
  while (JSON.stringify(base).length < bytes) {
    if (i % 3 === 2) {
      history.push([1_760_000_000 + Math.floor(rnd() * 1e6), Math.floor(rnd() * 500), pick(words)])
    } else {
      items.push({
        sku: `sku:${1000 + Math.floor(rnd() * 9000)}`,
        qty: 1 + Math.floor(rnd() * 12),
        unitPrice: Math.round(rnd() * 10_000) / 100,
        tags: [pick(words), pick(words)],
        dims: { w: Math.floor(rnd() * 100), h: Math.floor(rnd() * 100), kg: Math.round(rnd() * 500) / 10 },
        note: `${pick(words)} ${pick(cities)} lot ${Math.floor(rnd() * 1e5)}`,
      })
    }
    i++
  }
  return base
}

/** What a stage makes of an input: the same record with computed fields, about the same size. */
export function makeOutput(input: Payload, bytes: number, seed: number): Payload {
  const out = makePayload(bytes, seed ^ 0x5bd1e995)
  out.available = (input.available as number) - (input.reserved as number)
  out.stage = 'compute'
  return out
}

/** `count` distinct (input, output) pairs of about `bytes` each. */
export function makePairs(count: number, bytes: number, seed = 1): { input: Payload; output: Payload }[] {
  const pairs: { input: Payload; output: Payload }[] = []
  for (let i = 0; i < count; i++) {
    const input = makePayload(bytes, seed * 100_003 + i)
    pairs.push({ input, output: makeOutput(input, bytes, seed * 100_003 + i) })
  }
  return pairs
}
