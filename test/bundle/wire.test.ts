import { describe, expect, it } from 'vitest'
import type { RecordUnit } from '../../src/bundle/types.js'
import { packUnits, unpackUnits } from '../../src/bundle/wire.js'

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
    const packed = packUnits(units, () => buffer)
    expect(packed?.data).toBe(buffer)
    expect(unpackUnits(packed!)).toEqual(units)
  })

  it('declines a batch whose fields are not of their declared types', () => {
    const odd = structuredClone(units)
    ;(odd[0]!.record as { startedAt: unknown }).startedAt = 10n
    expect(packUnits(odd, (n) => new ArrayBuffer(n))).toBeUndefined()
  })

  it('declines before it takes a buffer, so the fallback costs none', () => {
    const odd = structuredClone(units)
    const effect = odd.flatMap((u) => u.captures).flatMap((c) => c.effects)[0]
    expect(effect).toBeDefined()
    ;(effect as { seq: unknown }).seq = '0'
    let taken = 0
    const result = packUnits(odd, (n) => {
      taken++
      return new ArrayBuffer(n)
    })
    expect(result).toBeUndefined()
    expect(taken).toBe(0)
  })
})
