import { describe, expect, it } from 'vitest'
import type { RecordUnit } from '../../src/bundle/types.js'
import { BatchBuilder, unpackUnits } from '../../src/bundle/wire.js'

const units: RecordUnit[] = [
  {
    record: {
      id: '01K0000000000000000000000A',
      key: 'sku:1001 ünïcødé 🎉',
      startedAt: 1_760_000_000_123,
      endedAt: 1_760_000_000_456.5,
      status: 'error',
      error: '{"name":"Error","message":"boom"}',
      host: 'host-1',
      pid: 4242,
      build: null,
    },
    captures: [
      {
        seq: 0,
        stage: 'fetch',
        attempt: 2,
        input: '{"a":"\\u0000 \\"quoted\\" 😀"}',
        output: null,
        error: '{"name":"TypeError","message":"x"}',
        startedAt: 1_760_000_000_124,
        durationMs: 0.125,
        effects: [
          { seq: 0, kind: 'now', name: 'now', args: null, result: '1760000000125', error: null },
          { seq: 1, kind: 'async-effect', name: 'kv.get', args: '["k"]', result: null, error: '{}' },
        ],
      },
      {
        seq: 1,
        stage: '',
        attempt: 1,
        input: '',
        output: '{"ok":true}',
        error: null,
        startedAt: 0,
        durationMs: 0,
        effects: [],
      },
    ],
  },
  {
    record: {
      id: 'b',
      key: 'k',
      startedAt: 1,
      endedAt: null,
      status: 'ok',
      error: null,
      host: null,
      pid: null,
      build: 'v1',
    },
    captures: [],
  },
]

describe('packed hand-off to the writer thread', () => {
  it('unpacks to exactly the records that were packed, in a reused larger buffer', () => {
    const buffer = new ArrayBuffer(64 * 1024)
    new Uint8Array(buffer).fill(0xff)
    const batch = new BatchBuilder(
      () => buffer,
      () => undefined,
    )
    for (const u of units) batch.add(u, batch.measure(u))
    const { packed } = batch.finish()
    expect(packed?.data).toBe(buffer)
    expect(unpackUnits(packed!)).toEqual(units)
  })

  it('declines a record whose fields are not of their declared types', () => {
    const odd = structuredClone(units)
    ;(odd[0]!.record as { startedAt: unknown }).startedAt = 10n
    const batch = new BatchBuilder(
      (n) => new ArrayBuffer(n),
      () => undefined,
    )
    batch.add(odd[0]!, batch.measure(odd[0]!))
    expect(batch.finish().packed).toBeUndefined()
  })

  it('declines before it takes a buffer, so the fallback costs none', () => {
    const odd = structuredClone(units)
    const effect = odd.flatMap((u) => u.captures).flatMap((c) => c.effects)[0]
    expect(effect).toBeDefined()
    ;(effect as { seq: unknown }).seq = '0'
    let taken = 0
    const batch = new BatchBuilder(
      (n) => {
        taken++
        return new ArrayBuffer(n)
      },
      () => undefined,
    )
    batch.add(odd[0]!, batch.measure(odd[0]!))
    const result = batch.finish().packed
    expect(result).toBeUndefined()
    expect(taken).toBe(0)
  })
})

describe('a batch packed record by record', () => {
  it('unpacks to the records added, across buffers grown as it fills, handing the old ones back', () => {
    const taken: number[] = []
    const returned: ArrayBuffer[] = []
    const batch = new BatchBuilder(
      (n) => {
        taken.push(n)
        return new ArrayBuffer(n)
      },
      (b) => returned.push(b),
    )
    expect(batch.isEmpty).toBe(true)
    const many = Array.from({ length: 20 }, (_, i) => structuredClone(units[i % 2]!))
    for (const u of many) batch.add(u, batch.measure(u))
    expect(batch.isEmpty).toBe(false)
    // Each buffer was exactly as large as needed, so every record after the first grew it.
    expect(taken).toHaveLength(20)
    expect(returned).toHaveLength(19)
    const { packed, units: kept } = batch.finish()
    expect(kept).toBeUndefined()
    expect(packed!.records).toBe(20)
    expect(unpackUnits(packed!)).toEqual(many)
    expect(batch.isEmpty).toBe(true)
    expect(batch.finish()).toEqual({})
  })

  it('keeps a record it cannot pack as it is, beside the packed ones', () => {
    const batch = new BatchBuilder(
      (n) => new ArrayBuffer(n * 2),
      () => undefined,
    )
    const odd = structuredClone(units[0]!)
    ;(odd.record as { startedAt: unknown }).startedAt = 10n
    const m = batch.measure(odd)
    expect(m.packable).toBe(false)
    expect(m.bytes).toBeGreaterThan(odd.captures[0]!.input.length)
    batch.add(odd, m)
    batch.add(units[1]!, batch.measure(units[1]!))
    const { packed, units: kept } = batch.finish()
    expect(unpackUnits(packed!)).toEqual([units[1]])
    expect(kept).toEqual([odd])
  })
})
