import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeRaw, encode } from '../../src/codec/index.js'
import { type DiffLimits, diffValues, noRules } from '../../src/compare/diff.js'
import { compileRules } from '../../src/compare/rules.js'
import { ConfigError } from '../../src/errors.js'

const unbounded: DiffLimits = { maxChanges: 10_000, deadline: Number.POSITIVE_INFINITY, now: () => 0 }

describe('diffValues: structure', () => {
  it('finds nothing between equal values, also when they are different objects', () => {
    const v = { a: 1, b: [1, { c: 'x' }], d: null, e: true }
    expect(diffValues(v, structuredClone(v))).toEqual({ changes: [], suppressed: [], truncated: null })
  })

  it('reports added, removed and changed keys with their paths and values', () => {
    const d = diffValues({ keep: 1, gone: 'x', moved: 2 }, { keep: 1, moved: 3, fresh: [1] })
    expect(d.changes).toEqual([
      { path: '$.gone', kind: 'removed', recorded: 'x' },
      { path: '$.moved', kind: 'changed', recorded: 2, local: 3 },
      { path: '$.fresh', kind: 'added', local: [1] },
    ])
    expect(d.truncated).toBeNull()
  })

  it('omits `local` on removed and `recorded` on added changes', () => {
    const [removed] = diffValues({ a: 1 }, {}).changes
    const [added] = diffValues({}, { a: 1 }).changes
    expect(removed).not.toHaveProperty('local')
    expect(added).not.toHaveProperty('recorded')
  })

  it('walks nested arrays by position and reports extra and missing items', () => {
    const d = diffValues(
      { grid: [[1, 2], [3, 4], [5]] },
      {
        grid: [
          [1, 9],
          [3, 4, 6],
        ],
      },
    )
    expect(d.changes).toEqual([
      { path: '$.grid[0][1]', kind: 'changed', recorded: 2, local: 9 },
      { path: '$.grid[1][2]', kind: 'added', local: 6 },
      { path: '$.grid[2]', kind: 'removed', recorded: [5] },
    ])
  })

  it('reports an item inserted into or left out of a long array as one line, not a change at every later index', () => {
    const recorded = Array.from({ length: 2000 }, (_, i) => ({ id: i, v: i }))
    const local: { id: number | string; v: number }[] = [...recorded]
    local.splice(1000, 0, { id: 'new', v: -1 })
    local.splice(1500, 1)
    local.splice(1700, 1)
    expect(diffValues({ items: recorded }, { items: local }, noRules, unbounded).changes).toEqual([
      { path: '$.items[1000]', kind: 'added', local: { id: 'new', v: -1 } },
      { path: '$.items[1499]', kind: 'removed', recorded: { id: 1499, v: 1499 } },
      { path: '$.items[1700]', kind: 'removed', recorded: { id: 1700, v: 1700 } },
    ])
    // A changed item next to an insertion is still named by what changed in it.
    expect(diffValues([1, 2, { q: 3 }, 4], [1, 2, 'x', { q: 5 }, 4]).changes).toEqual([
      { path: '$[2]', kind: 'changed', recorded: { q: 3 }, local: 'x' },
      { path: '$[3]', kind: 'added', local: { q: 5 } },
    ])
    expect(diffValues(['a', 'b', 'c'], ['a', 'c']).changes).toEqual([
      { path: '$[1]', kind: 'removed', recorded: 'b' },
    ])
    // Rules see the index of the array that holds the item.
    const d = diffValues([1, 2, 3], [0, 1, 2, 3], compileRules({ ignore: ['$[0]'] }))
    expect(d.changes).toEqual([])
    expect(d.suppressed).toEqual([{ path: '$[0]', reason: 'ignored', local: 0 }])
  })

  it('compares arrays with no short alignment by position, within its bounds', () => {
    const a = Array.from({ length: 30_000 }, (_, i) => i * 2)
    const b = Array.from({ length: 29_000 }, (_, i) => i * 2 + 1)
    const d = diffValues(a, b, noRules, { ...unbounded, maxChanges: 5 })
    expect(d.changes.map((c) => c.path)).toEqual(['$[0]', '$[1]', '$[2]', '$[3]', '$[4]'])
    expect(d.truncated?.reason).toBe('max-changes')
  })

  it('reports a change of type at the node, not below it', () => {
    expect(diffValues({ a: { b: 1 } }, { a: [1] }).changes).toEqual([
      { path: '$.a', kind: 'changed', recorded: { b: 1 }, local: [1] },
    ])
    expect(diffValues({ a: null }, { a: 0 }).changes).toEqual([
      { path: '$.a', kind: 'changed', recorded: null, local: 0 },
    ])
  })

  it('quotes keys that are not identifiers in the path', () => {
    expect(diffValues({ 'odd key': 1 }, { 'odd key': 2 }).changes[0]?.path).toBe('$["odd key"]')
  })

  it('diffs a changed root', () => {
    expect(diffValues(1, 2).changes).toEqual([{ path: '$', kind: 'changed', recorded: 1, local: 2 }])
  })

  it('treats NaN as equal to NaN, and NaN against a number as a change', () => {
    expect(diffValues({ x: Number.NaN }, { x: Number.NaN }).changes).toEqual([])
    expect(diffValues({ x: Number.NaN }, { x: 1 }).changes).toEqual([
      { path: '$.x', kind: 'changed', recorded: Number.NaN, local: 1 },
    ])
  })

  it('treats the typed-JSON tag of NaN as equal to itself (how payloads reach the diff)', () => {
    const nan = { $t: 'num', v: 'NaN' }
    expect(diffValues({ x: nan }, { x: { $t: 'num', v: 'NaN' } }).changes).toEqual([])
  })
})

describe('diffValues: typed arrays', () => {
  /** A typed array as it reaches the diff: its typed-JSON tag. */
  const raw = (v: unknown): unknown => decodeRaw(encode(v))

  it('names the elements that changed, as for an array, and nothing when equal', () => {
    const recorded = raw({ embedding: new Float32Array([0.5, 1.5, 2]) })
    expect(diffValues(recorded, raw({ embedding: new Float32Array([0.5, 1.5, 2]) })).changes).toEqual([])
    expect(diffValues(recorded, raw({ embedding: new Float32Array([0.5, 2.5, 2, 4]) })).changes).toEqual([
      { path: '$.embedding[1]', kind: 'changed', recorded: 1.5, local: 2.5 },
      { path: '$.embedding[3]', kind: 'added', local: 4 },
    ])
    // A float32 element as the decimal it was written as, not 0.20000000298023224.
    expect(diffValues(raw(new Float32Array([0.2])), raw(new Float32Array([0.25]))).changes).toEqual([
      { path: '$[0]', kind: 'changed', recorded: 0.2, local: 0.25 },
    ])
  })

  it('gives elements JSON cannot hold as their tags (NaN equals NaN, -0 differs from 0)', () => {
    const d = diffValues(raw(new Float64Array([Number.NaN, 0])), raw(new Float64Array([Number.NaN, -0])))
    expect(d.changes).toEqual([{ path: '$[1]', kind: 'changed', recorded: 0, local: { $t: 'num', v: '-0' } }])
    expect(diffValues(raw(new BigInt64Array([1n])), raw(new BigInt64Array([2n]))).changes).toEqual([
      { path: '$[0]', kind: 'changed', recorded: { $t: 'bigint', v: '1' }, local: { $t: 'bigint', v: '2' } },
    ])
  })

  it('applies tolerance and ignore rules to elements', () => {
    const rules = compileRules({ tolerance: { '$.embedding[*]': 0.01 }, ignore: ['$.ids[0]'] })
    const d = diffValues(
      raw({ embedding: new Float32Array([0.5, 1]), ids: new Uint32Array([1, 2]) }),
      raw({ embedding: new Float32Array([0.505, 1]), ids: new Uint32Array([9, 2]) }),
      rules,
    )
    expect(d.changes).toEqual([])
    expect(d.suppressed.map((s) => [s.path, s.reason])).toEqual([
      ['$.embedding[0]', 'within-tolerance'],
      ['$.ids[0]', 'ignored'],
    ])
  })

  it('finds equal large typed arrays equal within the replay budget, and only the elements that differ', () => {
    // A clock that moves 1 ms each time the diff reads it, 50 ms to go: the deadline
    // replay gives, met only when the elements are not walked one by one.
    const clock = (): DiffLimits => {
      let t = 0
      return { maxChanges: 500, deadline: 50, now: () => t++ }
    }
    const pixels = raw(new Float64Array(100_000).map((_, i) => i % 100))
    const rules = compileRules({ ignore: ['$.worker'] })
    const same = diffValues(
      { worker: 'a', pixels },
      { worker: 'b', pixels: raw(new Float64Array(100_000).map((_, i) => i % 100)) },
      rules,
      clock(),
    )
    expect(same.truncated).toBeNull()
    expect(same.changes).toEqual([])
    const changed = new Float64Array(500_000)
    changed[400_000] = 1
    const d = diffValues(raw(new Float64Array(500_000)), raw(changed), noRules, clock())
    expect(d.truncated).toBeNull()
    expect(d.changes).toEqual([{ path: '$[400000]', kind: 'changed', recorded: 0, local: 1 }])
  })

  it('compares Buffer, Uint8Array, ArrayBuffer and DataView byte by byte', () => {
    const d = diffValues(
      raw({
        sig: Buffer.from('secret-v1'),
        raw: new Uint8Array([1, 2, 3]),
        ab: new Uint8Array([9, 9]).buffer,
        dv: new DataView(new Uint8Array([5]).buffer),
      }),
      raw({
        sig: Buffer.from('secret-v2'),
        raw: new Uint8Array([1, 2, 4, 5]),
        ab: new Uint8Array([9, 8]).buffer,
        dv: new DataView(new Uint8Array([6]).buffer),
      }),
    )
    expect(d.changes).toEqual([
      { path: '$.sig[8]', kind: 'changed', recorded: 0x31, local: 0x32 },
      { path: '$.raw[2]', kind: 'changed', recorded: 3, local: 4 },
      { path: '$.raw[3]', kind: 'added', local: 5 },
      { path: '$.ab[1]', kind: 'changed', recorded: 9, local: 8 },
      { path: '$.dv[0]', kind: 'changed', recorded: 5, local: 6 },
    ])
    // A Buffer and a Uint8Array of the same bytes are different values.
    const buffer = raw(Buffer.from([1]))
    const bytes = raw(new Uint8Array([1]))
    expect(diffValues(buffer, bytes).changes).toEqual([
      { path: '$', kind: 'changed', recorded: buffer, local: bytes },
    ])
  })

  it('applies tolerance to -0, stored as a tag, as to 0', () => {
    const rules = compileRules({ tolerance: { '$.w[*]': 0.001, '$.v': 0.01 } })
    const d = diffValues(
      raw({ w: new Float32Array([-0, 0.5]), v: -0 }),
      raw({ w: new Float32Array([1e-46, 0.5001]), v: 1e-9 }),
      rules,
    )
    expect(d.changes).toEqual([])
    expect(d.suppressed).toEqual([
      { path: '$.w[0]', reason: 'within-tolerance', recorded: { $t: 'num', v: '-0' }, local: 0 },
      { path: '$.w[1]', reason: 'within-tolerance', recorded: 0.5, local: 0.5001 },
      { path: '$.v', reason: 'within-tolerance', recorded: { $t: 'num', v: '-0' }, local: 1e-9 },
    ])
    // Further away than the tolerance, -0 is a change like any number.
    expect(diffValues(raw({ v: -0 }), raw({ v: 1 }), rules).changes).toHaveLength(1)
  })

  it('applies tolerance to BigInts and to Dates (in milliseconds) as to numbers', () => {
    const rules = compileRules({ tolerance: { '$.cents': 1, '$.at': 5, '$.ids[*]': 1 } })
    const at = new Date('2026-03-01T10:00:00.000Z')
    const d = diffValues(
      raw({ cents: 9_007_199_254_740_993n, at, ids: new BigInt64Array([10n]) }),
      raw({ cents: 9_007_199_254_740_994n, at: new Date(at.getTime() + 4), ids: new BigInt64Array([11n]) }),
      rules,
    )
    expect(d.changes).toEqual([])
    expect(d.suppressed.map((s) => [s.path, s.reason])).toEqual([
      ['$.cents', 'within-tolerance'],
      ['$.at', 'within-tolerance'],
      ['$.ids[0]', 'within-tolerance'],
    ])
    // Further away, or a BigInt against a number, is a change.
    const far = diffValues(
      raw({ cents: 10n, at, ids: new BigInt64Array([10n]) }),
      raw({ cents: 12n, at: new Date(at.getTime() + 6), ids: new BigInt64Array([10n]) }),
      rules,
    )
    expect(far.changes.map((c) => c.path)).toEqual(['$.cents', '$.at'])
    expect(diffValues(raw({ cents: 10n }), raw({ cents: 10 }), rules).changes).toHaveLength(1)
  })

  it('reports a typed array against another kind, a plain array or a malformed tag as one change', () => {
    const f32 = raw(new Float32Array([1]))
    for (const other of [raw(new Float64Array([1])), [1], { $t: 'typedarray', k: 'Float32Array', v: '!' }]) {
      expect(diffValues({ x: f32 }, { x: other }).changes).toEqual([
        { path: '$.x', kind: 'changed', recorded: f32, local: other },
      ])
    }
    // Two malformed tags are single values: equal, or one change.
    const bad = { $t: 'typedarray', k: 'Nope', v: 'AAAA' }
    expect(diffValues(bad, { ...bad }).changes).toEqual([])
    expect(diffValues(bad, { ...bad, v: 'AAAB' }).changes).toEqual([
      { path: '$', kind: 'changed', recorded: bad, local: { ...bad, v: 'AAAB' } },
    ])
  })
})

/** A value as the CLI reads it from a bundle: encoded by the recorder, parsed without decoding tags. */
const stored = (v: unknown): unknown => decodeRaw(encode(v))

describe("diffValues: typed JSON is walked as the user's data", () => {
  const at = (iso: string) => ({ $t: 'date', v: iso })

  it("a changed Date or BigInt is one value at its own path, not its tag's `.v`", () => {
    const d = diffValues(
      stored({ receivedAt: new Date('2026-01-01T00:00:00.000Z'), cents: 5102n }),
      stored({ receivedAt: new Date('2026-01-02T00:00:00.000Z'), cents: 5103n }),
    )
    expect(d.changes).toEqual([
      {
        path: '$.receivedAt',
        kind: 'changed',
        recorded: at('2026-01-01T00:00:00.000Z'),
        local: at('2026-01-02T00:00:00.000Z'),
      },
      {
        path: '$.cents',
        kind: 'changed',
        recorded: { $t: 'bigint', v: '5102' },
        local: { $t: 'bigint', v: '5103' },
      },
    ])
  })

  it('walks a Set by position and a Map by key', () => {
    const d = diffValues(
      stored({
        tags: new Set(['web']),
        unit: new Map([
          ['SKU-42', 8.49],
          ['SKU-43', 8.5],
        ]),
      }),
      stored({
        tags: new Set(['web', 'vip']),
        unit: new Map([
          ['SKU-42', 8.5],
          ['extra', 1],
        ]),
      }),
    )
    expect(d.changes).toEqual([
      { path: '$.tags[1]', kind: 'added', local: 'vip' },
      { path: '$.unit["SKU-42"]', kind: 'changed', recorded: 8.49, local: 8.5 },
      { path: '$.unit["SKU-43"]', kind: 'removed', recorded: 8.5 },
      { path: '$.unit.extra', kind: 'added', local: 1 },
    ])
  })

  it('names a Map entry whose number key is no index by how the key is written, in a path that parses', () => {
    const a = stored({
      m: new Map([
        [-1, 'x'],
        [0.5, 'y'],
        [2, 'z'],
      ]),
    })
    const b = stored({
      m: new Map([
        [-1, 'X'],
        [0.5, 'Y'],
        [2, 'Z'],
      ]),
    })
    expect(diffValues(a, b).changes.map((c) => c.path)).toEqual(['$.m["-1"]', '$.m["0.5"]', '$.m[2]'])
    const rules = compileRules({ ignore: ['$.m["-1"]', '$.m["0.5"]', '$.m[2]'] })
    expect(diffValues(a, b, rules).changes).toEqual([])
  })

  it('a Map whose keys are not strings or numbers is walked as [key, value] pairs', () => {
    const d = diffValues(
      stored({ m: new Map([[new Date(0), 'a']]) }),
      stored({ m: new Map([[new Date(0), 'b']]) }),
    )
    expect(d.changes).toEqual([{ path: '$.m[0][1]', kind: 'changed', recorded: 'a', local: 'b' }])
  })

  it('a Map with the same entries in another order differs as a whole (it iterates in that order)', () => {
    const a = stored(
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    )
    const b = stored(
      new Map([
        ['b', 2],
        ['a', 1],
      ]),
    )
    expect(diffValues(a, b).changes).toEqual([{ path: '$', kind: 'changed', recorded: a, local: b }])
  })

  it('a reordered Map differs as a whole also when a rule hides a change in one of its entries', () => {
    const a = stored({
      bySku: new Map([
        ['A', 1],
        ['B', 2],
      ]),
    })
    const b = stored({
      bySku: new Map([
        ['B', 2.001],
        ['A', 1],
      ]),
    })
    const d = diffValues(a, b, compileRules({ tolerance: { '$.bySku.*': 0.01 } }))
    expect(d.suppressed.map((s) => s.path)).toEqual(['$.bySku.B'])
    expect(d.changes.map((c) => [c.path, c.kind])).toEqual([['$.bySku', 'changed']])
    const ignored = diffValues(a, b, compileRules({ ignore: ['$.bySku.B'] }))
    expect(ignored.changes.map((c) => c.path)).toEqual(['$.bySku'])
    // An entry added or changed in place is not a reorder.
    const c = stored({
      bySku: new Map([
        ['A', 1],
        ['C', 3],
        ['B', 2.5],
      ]),
    })
    expect(diffValues(a, c).changes.map((x) => x.path)).toEqual(['$.bySku.B', '$.bySku.C'])
  })

  it('an output that became undefined is one change at the root, not `$t` added and every key dropped', () => {
    const d = diffValues(stored({ orderId: 'o-1', total: 3 }), stored(undefined))
    expect(d.changes).toEqual([
      { path: '$', kind: 'changed', recorded: { orderId: 'o-1', total: 3 }, local: { $t: 'undef' } },
    ])
  })

  it('an array that became a Set, and undefined against absent, are said as they are', () => {
    const d = diffValues(stored({ tags: ['web'], blob: undefined }), stored({ tags: new Set(['web']) }))
    expect(d.changes).toEqual([
      { path: '$.tags', kind: 'changed', recorded: ['web'], local: { $t: 'set', v: ['web'] } },
      { path: '$.blob', kind: 'removed', recorded: { $t: 'undef' } },
    ])
  })

  it('reads through the wrapper of an object that has its own $t key', () => {
    const d = diffValues(stored({ o: { $t: 'mine', n: 1 } }), stored({ o: { $t: 'mine', n: 2 } }))
    expect(d.changes).toEqual([{ path: '$.o.n', kind: 'changed', recorded: 1, local: 2 }])
  })

  it('reads through the wrapper of an object whose $t key held a function, which is not written', () => {
    const o = (b: number) => stored({ o: { $t: () => 1, a: 1, b } })
    expect(o(2)).toEqual({ o: { $t: 'obj', v: { a: 1, b: 2 } } })
    expect(diffValues(o(2), o(3)).changes).toEqual([
      { path: '$.o.b', kind: 'changed', recorded: 2, local: 3 },
    ])
  })

  it("compares a malformed tag from a stranger's file as one value", () => {
    const three = { $t: 'set', v: 3 }
    const four = { $t: 'set', v: 4 }
    expect(diffValues({ s: three }, { s: four }).changes).toEqual([
      { path: '$.s', kind: 'changed', recorded: three, local: four },
    ])
    const extra = { $t: 'set', v: [1], x: 1 }
    expect(diffValues({ s: extra }, { s: structuredClone(extra) }).changes).toEqual([])
    expect(diffValues({ s: extra }, { s: { ...extra, x: 2 } }).changes).toHaveLength(1)
  })

  it('rules name the same paths: ignore a Date, tolerate a Map entry, key a Set of objects', () => {
    const rules = compileRules({
      ignore: ['$.at'],
      tolerance: { '$.unit.*': 0.05 },
      arrayKeys: { '$.items': 'sku' },
    })
    const d = diffValues(
      stored({
        at: new Date(0),
        unit: new Map([['a', 1]]),
        items: new Set([
          { sku: 'a', n: 1 },
          { sku: 'b', n: 1 },
        ]),
      }),
      stored({
        at: new Date(1),
        unit: new Map([['a', 1.01]]),
        items: new Set([
          { sku: 'b', n: 1 },
          { sku: 'a', n: 2 },
        ]),
      }),
      rules,
    )
    expect(d.changes).toEqual([{ path: '$.items["sku=\\"a\\""].n', kind: 'changed', recorded: 1, local: 2 }])
    expect(d.suppressed.map((s) => [s.path, s.reason])).toEqual([
      ['$.at', 'ignored'],
      ['$.unit.a', 'within-tolerance'],
    ])
  })

  it('finds a change exactly when the recorder wrote different payloads (key order aside)', () => {
    const typed = fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, maxDepth: 3 })
    fc.assert(
      fc.property(typed, typed, (a, b) => {
        const ra = stored(a)
        const rb = stored(b)
        const d = diffValues(ra, rb, noRules, unbounded)
        expect(d.changes.length === 0).toBe(sameJson(ra, rb))
        expect(diffValues(ra, stored(a), noRules, unbounded).changes).toEqual([])
      }),
      { numRuns: 300 },
    )
  })
})

/** Equal as JSON, object keys in any order. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b))
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
    )
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  const ka = Object.keys(a)
  return (
    ka.length === Object.keys(b).length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  )
}

describe('diffValues: arrayKeys', () => {
  const rules = compileRules({ arrayKeys: { '$.items': 'sku' } })

  it('matches items by identity: a reordered array is not a change', () => {
    const recorded = {
      items: [
        { sku: 'A', qty: 1 },
        { sku: 'B', qty: 2 },
        { sku: 'C', qty: 3 },
      ],
    }
    const local = {
      items: [
        { sku: 'C', qty: 3 },
        { sku: 'A', qty: 1 },
        { sku: 'B', qty: 2 },
      ],
    }
    expect(diffValues(recorded, local, rules)).toEqual({ changes: [], suppressed: [], truncated: null })
    // Without the rule the same pair differs at every position.
    expect(diffValues(recorded, local).changes.length).toBeGreaterThan(0)
  })

  it('reports changed, added and removed items under their identity', () => {
    const d = diffValues(
      {
        items: [
          { sku: 'A', qty: 1 },
          { sku: 'B', qty: 2 },
        ],
      },
      {
        items: [
          { sku: 'C', qty: 5 },
          { sku: 'A', qty: 4 },
        ],
      },
      rules,
    )
    expect(d.changes).toEqual([
      { path: '$.items["sku=\\"A\\""].qty', kind: 'changed', recorded: 1, local: 4 },
      { path: '$.items["sku=\\"B\\""]', kind: 'removed', recorded: { sku: 'B', qty: 2 } },
      { path: '$.items["sku=\\"C\\""]', kind: 'added', local: { sku: 'C', qty: 5 } },
    ])
  })

  it("reads the identity from the user's objects, and names it as a diff line shows it", () => {
    const byId = compileRules({ arrayKeys: { '$.items': 'id' } })
    const items = (q: number) => [
      { id: 1, $t: 'promo', qty: 1 },
      { id: 2, qty: 2 },
      { id: 3, qty: q },
    ]
    const d = diffValues(stored({ items: items(3) }), stored({ items: items(4).reverse() }), byId)
    expect(d.changes).toEqual([{ path: '$.items["id=3"].qty', kind: 'changed', recorded: 3, local: 4 }])
    const big = diffValues(stored({ items: [{ id: 1n, q: 1 }] }), stored({ items: [{ id: 1n, q: 2 }] }), byId)
    expect(big.changes.map((c) => c.path)).toEqual(['$.items["id=1n"].q'])
  })

  it('matches the items that have an identity by it when some do not, and those in order', () => {
    const recorded = {
      items: [
        { sku: 'A', qty: 1 },
        { sku: 'B', qty: 2 },
        { note: 'total', qty: 3 },
        { sku: 'C', qty: 4 },
      ],
    }
    const local = {
      items: [
        { sku: 'B', qty: 2 },
        { sku: 'A', qty: 1 },
        { note: 'total', qty: 3 },
        { sku: 'C', qty: 5 },
      ],
    }
    expect(diffValues(recorded, local, rules).changes).toEqual([
      { path: '$.items["sku=\\"C\\""].qty', kind: 'changed', recorded: 4, local: 5 },
    ])
    const d = diffValues(
      { items: [{ sku: 'A' }, { note: 'x' }] },
      { items: [{ note: 'y' }, { sku: 'A' }, { note: 'z' }] },
      rules,
    )
    expect(d.changes).toEqual([
      { path: '$.items[1].note', kind: 'changed', recorded: 'x', local: 'y' },
      { path: '$.items[2]', kind: 'added', local: { note: 'z' } },
    ])
  })

  it('falls back to positions when an item has no identity or a duplicate one', () => {
    const d = diffValues(
      {
        items: [
          { sku: 'A', qty: 1 },
          { sku: 'A', qty: 2 },
        ],
      },
      {
        items: [
          { sku: 'A', qty: 2 },
          { sku: 'A', qty: 1 },
        ],
      },
      rules,
    )
    expect(d.changes.map((c) => c.path)).toEqual(['$.items[0].qty', '$.items[1].qty'])
  })

  it('only applies to the arrays its path names', () => {
    const d = diffValues(
      { other: [{ sku: 'A' }, { sku: 'B' }] },
      { other: [{ sku: 'B' }, { sku: 'A' }] },
      rules,
    )
    expect(d.changes.map((c) => c.path)).toEqual(['$.other[0].sku', '$.other[1].sku'])
  })
})

describe('diffValues: ignore', () => {
  it('suppresses differences under an ignored path with reason "ignored", each counted', () => {
    const rules = compileRules({ ignore: ['$..updatedAt'] })
    const d = diffValues(
      { updatedAt: 1, nested: { updatedAt: 2, value: 'a' }, list: [{ updatedAt: 3 }] },
      { updatedAt: 10, nested: { updatedAt: 20, value: 'b' }, list: [{ updatedAt: 30 }] },
      rules,
    )
    expect(d.changes).toEqual([{ path: '$.nested.value', kind: 'changed', recorded: 'a', local: 'b' }])
    expect(d.suppressed).toEqual([
      { path: '$.updatedAt', reason: 'ignored', recorded: 1, local: 10 },
      { path: '$.nested.updatedAt', reason: 'ignored', recorded: 2, local: 20 },
      { path: '$.list[0].updatedAt', reason: 'ignored', recorded: 3, local: 30 },
    ])
  })

  it('suppresses an ignored key that was added or removed', () => {
    const rules = compileRules({ ignore: ['$.trace'] })
    expect(diffValues({}, { trace: 'x' }, rules)).toEqual({
      changes: [],
      suppressed: [{ path: '$.trace', reason: 'ignored', local: 'x' }],
      truncated: null,
    })
    expect(diffValues({ trace: 'x' }, {}, rules).suppressed).toEqual([
      { path: '$.trace', reason: 'ignored', recorded: 'x' },
    ])
  })

  it('suppresses a whole ignored subtree as one entry', () => {
    const rules = compileRules({ ignore: ['$.meta'] })
    const d = diffValues({ meta: { a: 1, b: 2 } }, { meta: { a: 2, b: 3 } }, rules)
    expect(d.changes).toEqual([])
    expect(d.suppressed.map((s) => [s.path, s.reason])).toEqual([['$.meta', 'ignored']])
  })

  it('records nothing for an ignored path that did not change', () => {
    const rules = compileRules({ ignore: ['$.same'] })
    expect(diffValues({ same: 1 }, { same: 1 }, rules).suppressed).toEqual([])
  })
})

describe('diffValues: tolerance', () => {
  const rules = compileRules({ tolerance: { '$..price': 0.005 } })

  it('suppresses a number within tolerance as "within-tolerance"', () => {
    const d = diffValues({ item: { price: 10 } }, { item: { price: 10.004 } }, rules)
    expect(d.changes).toEqual([])
    expect(d.suppressed).toEqual([
      { path: '$.item.price', reason: 'within-tolerance', recorded: 10, local: 10.004 },
    ])
  })

  it('counts a difference exactly at the tolerance as within it', () => {
    const exact = compileRules({ tolerance: { '$.n': 0.5 } })
    expect(diffValues({ n: 1 }, { n: 1.5 }, exact).suppressed).toHaveLength(1)
  })

  it('counts a difference of exactly the tolerance as within it, also when subtracting the doubles rounds up', () => {
    const cent = compileRules({ tolerance: { '$.*': 0.01 } })
    const d = diffValues({ a: 4.35, b: 1.15, c: 19.99 }, { a: 4.36, b: 1.16, c: 20.01 }, cent)
    expect(d.changes).toEqual([{ path: '$.c', kind: 'changed', recorded: 19.99, local: 20.01 }])
    expect(d.suppressed.map((x) => [x.path, x.reason])).toEqual([
      ['$.a', 'within-tolerance'],
      ['$.b', 'within-tolerance'],
    ])
    const tenth = compileRules({ tolerance: { '$.*': 0.1 } })
    expect(diffValues({ a: 1, b: 100.1 }, { a: 1.1, b: 100.2 }, tenth).changes).toEqual([])
    expect(diffValues({ a: 1 }, { a: 1.1000001 }, tenth).changes).toHaveLength(1)
    // The allowance is the decimals' rounding, no more: at 1e15 a double's unit is 0.125,
    // and a gap of 0.75 is two units over a tolerance of 0.5.
    const half = compileRules({ tolerance: { '$.a': 0.5 } })
    expect(diffValues({ a: 1e15 }, { a: 1e15 + 0.75 }, half).changes).toHaveLength(1)
    expect(diffValues({ a: 1e15 }, { a: 1e15 + 0.5 }, half).changes).toEqual([])
    // A tolerance of 0 stays exact.
    const exact = compileRules({ tolerance: { '$.a': 0 } })
    expect(diffValues({ a: 1 }, { a: 1 + Number.EPSILON }, exact).changes).toHaveLength(1)
  })

  it('reports a number outside tolerance as a change', () => {
    const d = diffValues({ item: { price: 10 } }, { item: { price: 10.01 } }, rules)
    expect(d.changes).toEqual([{ path: '$.item.price', kind: 'changed', recorded: 10, local: 10.01 }])
    expect(d.suppressed).toEqual([])
  })

  it('does not apply to other paths or to non-numbers', () => {
    expect(diffValues({ cost: 10 }, { cost: 10.001 }, rules).changes).toHaveLength(1)
    expect(diffValues({ price: '10' }, { price: '10.001' }, rules).changes).toHaveLength(1)
  })

  it('reads a negative tolerance as its size', () => {
    const neg = compileRules({ tolerance: { '$.n': -1 } })
    expect(diffValues({ n: 1 }, { n: 1.5 }, neg).changes).toEqual([])
  })
})

describe('diffValues: redaction', () => {
  it('suppresses a recorded redaction token as "redacted", whatever the local value', () => {
    const d = diffValues(
      { phone: '[redacted]', card: '[redacted:abcdefghijklmnop]', nested: { token: '[redacted]' } },
      { phone: '+1 555 0100', card: '4111', nested: { token: { real: true } } },
    )
    expect(d.changes).toEqual([])
    expect(d.suppressed).toEqual([
      { path: '$.phone', reason: 'redacted', recorded: '[redacted]' },
      { path: '$.card', reason: 'redacted', recorded: '[redacted:abcdefghijklmnop]' },
      { path: '$.nested.token', reason: 'redacted', recorded: '[redacted]' },
    ])
  })

  it('does not take a look-alike for a token', () => {
    const d = diffValues({ a: '[redacted:short]', b: 'x[redacted]' }, { a: 'v', b: 'v' })
    expect(d.changes.map((c) => c.path)).toEqual(['$.a', '$.b'])
  })

  it('still reports a redacted field the local build dropped', () => {
    expect(diffValues({ phone: '[redacted]' }, {}).changes).toEqual([
      { path: '$.phone', kind: 'removed', recorded: '[redacted]' },
    ])
  })
})

describe('diffValues: bounds', () => {
  it('lines up arrays of one length when that takes fewer items: a window that moved on by one', () => {
    const row = (day: number): unknown => ({ day, qty: day * 2, note: `day ${day}` })
    const recorded = [1, 2, 3, 4, 5].map(row)
    const local = [2, 3, 4, 5, 6].map(row)
    const d = diffValues(recorded, local, noRules, unbounded)
    expect(d.changes).toEqual([
      { path: '$[0]', kind: 'removed', recorded: row(1) },
      { path: '$[4]', kind: 'added', local: row(6) },
    ])
    expect(d.truncated).toBeNull()
    // Inside an object, and with an item whose keys come in another order.
    const swapped = { note: 'day 3', qty: 6, day: 3 }
    expect(
      diffValues({ w: recorded }, { w: [row(2), swapped, row(4), row(5), row(6)] }, noRules, unbounded)
        .changes,
    ).toEqual([
      { path: '$.w[0]', kind: 'removed', recorded: row(1) },
      { path: '$.w[4]', kind: 'added', local: row(6) },
    ])
  })

  it('keeps scalars by position: counters that all went up, flags that all flipped', () => {
    // [1,2,3,4] -> [2,3,4,5] reads as well as four counters up by one as a window moved on.
    expect(diffValues([1, 2, 3, 4], [2, 3, 4, 5], noRules, unbounded).changes).toHaveLength(4)
    const flags = diffValues([true, false, true, false], [false, true, false, true], noRules, unbounded)
    expect(flags.changes.map((c) => [c.path, c.kind])).toEqual([
      ['$[0]', 'changed'],
      ['$[1]', 'changed'],
      ['$[2]', 'changed'],
      ['$[3]', 'changed'],
    ])
    expect(diffValues([0, 0, 5, 0, 0, 7], [0, 5, 0, 0, 7, 0], noRules, unbounded).changes).toHaveLength(4)
  })

  it('walks each item once, however deep arrays of one length nest', () => {
    // Each level holds the next one and four strings, shifted by one on the local side.
    const nest = (depth: number, side: 'a' | 'b'): unknown => {
      let v: unknown = side
      for (let d = 0; d < depth; d++)
        v = side === 'a' ? [v, 'v1', 'v2', 'v3', 'w'] : [v, 'z', 'v1', 'v2', 'v3']
      return v
    }
    // A clock that ticks once per look (every 1,024 items walked): walking each level twice
    // (2^20 items) would pass this deadline long before the end; once, it never gets there.
    let ticks = 0
    const d = diffValues(nest(20, 'a'), nest(20, 'b'), noRules, {
      maxChanges: 10_000,
      deadline: 50,
      now: () => ticks++,
    })
    expect(d.truncated).toBeNull()
    expect(d.changes).toHaveLength(20 * 4 + 1)
  })

  it('walks arrays of two items nested as deep as a bundle can hold without running out of stack', () => {
    const nest = (depth: number, leaf: unknown): unknown => {
      let v = leaf
      for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { a: v } : [v, { z: i }]
      return v
    }
    expect(diffValues(nest(2000, 1), nest(2000, 2)).changes).toHaveLength(1)
    // Equal deep items beside a change are compared and found equal, not reported.
    const d = diffValues([nest(1990, 1), nest(1990, 1), 'x'], [nest(1990, 1), nest(1990, 1), 'y'])
    expect(d.changes).toEqual([{ path: '$[2]', kind: 'changed', recorded: 'x', local: 'y' }])
  })

  it('still lines up long arrays of different lengths when the diff has no deadline', () => {
    const rows = Array.from({ length: 6000 }, (_, i) => ({ id: i, n: i % 7 }))
    const d = diffValues(rows, [{ id: -1, n: 0 }, ...rows])
    expect(d.changes).toEqual([{ path: '$[0]', kind: 'added', local: { id: -1, n: 0 } }])
  })

  it('keeps arrays of one length by position when items changed in place or swapped', () => {
    // Every item changed: lining up finds nothing in common and takes as many lines.
    const inPlace = diffValues(
      [{ q: 1 }, { q: 2 }, { q: 3 }],
      [{ q: 11 }, { q: 12 }, { q: 13 }],
      noRules,
      unbounded,
    )
    expect(inPlace.changes.map((c) => c.path)).toEqual(['$[0].q', '$[1].q', '$[2].q'])
    // Two swapped: two changes by position, as many as lined up.
    expect(diffValues(['a', 'b', 'c'], ['b', 'a', 'c'], noRules, unbounded).changes).toEqual([
      { path: '$[0]', kind: 'changed', recorded: 'a', local: 'b' },
      { path: '$[1]', kind: 'changed', recorded: 'b', local: 'a' },
    ])
    // One item changed: by position, never lined up.
    expect(diffValues([1, 2, 3], [1, 9, 3], noRules, unbounded).changes).toEqual([
      { path: '$[1]', kind: 'changed', recorded: 2, local: 9 },
    ])
  })

  it('lines up a long window that moved on even when its positional changes pass maxChanges', () => {
    const row = (i: number): unknown => ({ id: i, a: i + 1, b: i + 2, c: `r${i}` })
    const recorded = Array.from({ length: 400 }, (_, i) => row(i))
    const local = Array.from({ length: 400 }, (_, i) => row(i + 1))
    const d = diffValues(recorded, local, noRules, { ...unbounded, maxChanges: 50 })
    expect(d.truncated).toBeNull()
    expect(d.changes).toEqual([
      { path: '$[0]', kind: 'removed', recorded: row(0) },
      { path: '$[399]', kind: 'added', local: row(400) },
    ])
    // Beside it, a field changed elsewhere is still found, on the path it has.
    const withMore = diffValues({ rows: recorded, total: 1 }, { rows: local, total: 2 }, noRules, {
      ...unbounded,
      maxChanges: 50,
    })
    expect(withMore.changes.map((c) => c.path)).toEqual(['$.rows[0]', '$.rows[399]', '$.total'])
  })

  it('stops at maxChanges and says it was cut short', () => {
    const recorded = Array.from({ length: 50 }, (_, i) => i)
    const local = recorded.map((i) => i + 100)
    const d = diffValues(recorded, local, noRules, { ...unbounded, maxChanges: 5 })
    expect(d.changes).toHaveLength(5)
    expect(d.changes[4]).toEqual({ path: '$[4]', kind: 'changed', recorded: 4, local: 104 })
    expect(d.truncated).toEqual({ reason: 'max-changes', compared: expect.any(Number) })
  })

  it('does not truncate when the changes fit exactly', () => {
    const d = diffValues([1, 2], [2, 3], noRules, { ...unbounded, maxChanges: 2 })
    expect(d.changes).toHaveLength(2)
    expect(d.truncated).toBeNull()
  })

  it('stops at the deadline of an injected clock and keeps what it found', () => {
    // A fake clock that passes the deadline after a few readings; no real time involved.
    let readings = 0
    const now = (): number => (++readings > 2 ? 1_000 : 0)
    const big = Array.from({ length: 20_000 }, (_, i) => ({ id: i, v: i }))
    const other = big.map((x) => ({ ...x, v: x.v + 1 }))
    const d = diffValues(big, other, noRules, { maxChanges: 1_000_000, deadline: 500, now })
    expect(d.truncated?.reason).toBe('deadline')
    expect(d.truncated!.compared).toBeLessThan(20_000 * 3)
    expect(d.changes.length).toBeGreaterThan(0)
    expect(d.changes.length).toBeLessThan(20_000)
  })

  it('does not stop before the deadline', () => {
    const big = Array.from({ length: 5_000 }, (_, i) => i)
    const d = diffValues(
      big,
      big.map((i) => -i - 1),
      noRules,
      {
        maxChanges: 1_000_000,
        deadline: 500,
        now: () => 0,
      },
    )
    expect(d.truncated).toBeNull()
    expect(d.changes).toHaveLength(5_000)
  })
})

describe('compileRules', () => {
  it('compiles every rule kind and keeps the source text', () => {
    const r = compileRules({
      ignore: ['$..updatedAt'],
      tolerance: { '$.p': 0.1 },
      arrayKeys: { '$.items': 'sku' },
    })
    expect(r.ignore.map((p) => p.source)).toEqual(['$..updatedAt'])
    expect(r.tolerance.map((t) => [t.pattern.source, t.within])).toEqual([['$.p', 0.1]])
    expect(r.arrayKeys.map((k) => [k.pattern.source, k.field])).toEqual([['$.items', 'sku']])
  })

  it('compiles no rules to empty lists', () => {
    expect(compileRules(undefined)).toEqual({ ignore: [], tolerance: [], arrayKeys: [] })
  })

  it('throws a path error naming a bad path', () => {
    expect(() => compileRules({ ignore: ['$.a['] })).toThrow(/bad path "\$\.a\["/)
  })

  it('refuses rules of the wrong shape with one line naming the rule, never a TypeError', () => {
    const bad =
      (rules: unknown): unknown =>
      () =>
        compileRules(rules as never)
    expect(bad({ ignore: '$..updatedAt' })).toThrow(
      'diff.ignore must be a list of paths (["$..updatedAt"]), not "$..updatedAt"',
    )
    expect(bad({ ignore: ['$.a', 5] })).toThrow('diff.ignore[1] must be a path such as "$..updatedAt", not 5')
    expect(bad({ ignore: [null] })).toThrow('diff.ignore[0] must be a path such as "$..updatedAt", not null')
    expect(bad({ tolerances: { '$.a': 1 } })).toThrow(
      'diff.tolerances is not a rule; the rules are ignore, tolerance, arrayKeys',
    )
    expect(bad({ tolerance: ['$.a'] })).toThrow(/^diff\.tolerance must map paths to numbers/)
    expect(bad({ arrayKeys: { '$.items': 5 } })).toThrow(
      'diff.arrayKeys["$.items"] must be the name of the field that identifies an item ("sku"), not 5',
    )
    expect(bad({ arrayKeys: 'sku' })).toThrow(/^diff\.arrayKeys must map paths to field names/)
    expect(bad('oops')).toThrow(/^diff must be an object of rules/)
    for (const rules of [{ ignore: 'x' }, { ignore: [5] }, { arrayKeys: { $: 1 } }, 'oops']) {
      expect(bad(rules)).toThrow(ConfigError)
    }
    expect(bad({ ignore: [''] })).toThrow('diff.ignore[0] is empty; write "$" to mean the whole value')
    expect(bad({ tolerance: { ' ': 1 } })).toThrow('a diff.tolerance path is empty')
    expect(compileRules({ ignore: ['$'] }).ignore).toHaveLength(1)
    expect(compileRules(null as never)).toEqual(noRules)
  })
})
