import { describe, expect, it } from 'vitest'
import type { RecordUnit } from '../../src/bundle/types.js'
import { BatchBuilder, unpackUnits } from '../../src/bundle/wire.js'
import { BundleWriter } from '../../src/bundle/writer.js'
import { withDb } from '../helpers/bundle-db.js'
import { tempPath } from '../helpers/tmp.js'

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

describe('payload bytes from the hand-off stored as text', () => {
  it('writes every payload as the same TEXT it was packed from, queryable as JSON', () => {
    const path = tempPath()
    const batch = new BatchBuilder(
      (bytes) => new ArrayBuffer(Math.max(bytes, 1024)),
      () => undefined,
    )
    // A second record so that the first one's views start at an offset in the buffer.
    for (const u of [units[1]!, units[0]!]) batch.add(u, batch.measure(u))
    const { packed } = batch.finish()
    const asBytes = unpackUnits(packed!, 'bytes')
    expect(asBytes[1]!.captures[0]!.input).toBeInstanceOf(Uint8Array)
    const writer = BundleWriter.open(path, {
      manifest: {
        pipeline: 'wire',
        recorderVersion: '0.0.0-test',
        builds: [],
        redaction: { rules: [], equalityPreserving: false },
      },
    })
    writer.write(asBytes)
    writer.close()
    withDb(
      path,
      (db) => {
        const captures = db
          .prepare(
            `SELECT input, output, error, typeof(input) AS ti, typeof(output) AS tout, typeof(error) AS te,
               CASE WHEN json_valid(input) THEN json_extract(input, '$.a') END AS a FROM captures ORDER BY seq`,
          )
          .all() as Record<string, unknown>[]
        expect(captures).toEqual([
          {
            input: units[0]!.captures[0]!.input,
            output: null,
            error: units[0]!.captures[0]!.error,
            ti: 'text',
            tout: 'null',
            te: 'text',
            a: '\u0000 "quoted" 😀',
          },
          { input: '', output: '{"ok":true}', error: null, ti: 'text', tout: 'text', te: 'null', a: null },
        ])
        const effects = db
          .prepare('SELECT args, result, error, typeof(result) AS tr FROM effects ORDER BY seq')
          .all()
        expect(effects).toEqual([
          { args: null, result: '1760000000125', error: null, tr: 'text' },
          { args: '["k"]', result: null, error: '{}', tr: 'null' },
        ])
      },
      true,
    )
  })
})
