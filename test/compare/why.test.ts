/** `why` as data: walking a value back through a recorded chain to its origin. */
import { describe, expect, it } from 'vitest'
import type { EffectRow, RecordChain } from '../../src/bundle/types.js'
import { encode } from '../../src/codec/index.js'
import { explain, parseStagePath, type WhyReport } from '../../src/compare/why.js'
import { UsageError } from '../../src/errors.js'

interface Effect {
  name: string
  result?: unknown
  error?: string
}

interface Step {
  stage: string
  input: unknown
  output?: unknown
  error?: string
  attempt?: number
  effects?: Effect[]
}

function chainOf(steps: readonly Step[], id = 'rec-1', key = 'sku:1001'): RecordChain {
  const err = (message: string): string => encode({ name: 'Error', message })
  return {
    record: {
      id,
      key,
      startedAt: 0,
      endedAt: 1,
      status: 'ok',
      error: null,
      host: null,
      pid: null,
      build: null,
    },
    captures: steps.map((s, i) => ({
      id: i + 1,
      recordId: id,
      seq: i,
      stage: s.stage,
      attempt: s.attempt ?? 1,
      input: encode(s.input),
      output: s.error === undefined ? encode(s.output) : null,
      error: s.error === undefined ? null : err(s.error),
      startedAt: i,
      durationMs: 1,
      build: null,
      host: null,
      pid: null,
      effects: (s.effects ?? []).map(
        (e, seq): EffectRow => ({
          seq,
          kind: 'async-effect',
          name: e.name,
          args: encode({ sku: 'sku:1001' }),
          result: e.error === undefined ? encode(e.result) : null,
          error: e.error === undefined ? null : err(e.error),
        }),
      ),
    })),
    expectations: [],
    source: 'mem.sqlite',
  }
}

/** The inventory example's bad record in miniature: compute retried, fell back, got 87. */
function inventory(): RecordChain {
  const change = { sku: 'sku:1001', delta: { onHand: 0, reserved: 3, available: -3 } }
  const computed = { sku: 'sku:1001', onHand: 10, reserved: 6, available: 87, source: 'local' }
  const timeout = 'kv-4: read of state/sku:1001 timed out after 50 ms'
  return chainOf([
    { stage: 'ingest', input: { raw: 'x' }, output: { change } },
    {
      stage: 'compute',
      input: { change },
      error: timeout,
      attempt: 1,
      effects: [{ name: 'kv.state', error: timeout }],
    },
    {
      stage: 'compute',
      input: { change },
      output: computed,
      attempt: 2,
      effects: [
        { name: 'kv.state', error: timeout },
        { name: 'local.get', result: { onHand: 100, reserved: 10, available: 90 } },
        { name: 'shard.add', result: { pending: 1 } },
      ],
    },
    { stage: 'store', input: computed, output: { ...computed, updatedAt: 5 } },
    { stage: 'query', input: { ...computed, updatedAt: 5 }, output: { available: 87, badge: 'in stock' } },
  ])
}

const kinds = (r: WhyReport, kind: string): string[] =>
  r.evidence.filter((e) => e.kind === kind).map((e) => e.text)

describe('parseStagePath', () => {
  it('reads stage, side (output by default) and path', () => {
    expect(parseStagePath('compute.output.available')).toEqual({
      stage: 'compute',
      side: 'output',
      segments: [{ kind: 'key', name: 'available' }],
      path: '$.available',
    })
    expect(parseStagePath('store.available')).toMatchObject({
      stage: 'store',
      side: 'output',
      path: '$.available',
    })
    expect(parseStagePath('compute.input.change.delta')).toMatchObject({
      stage: 'compute',
      side: 'input',
      path: '$.change.delta',
    })
    expect(parseStagePath('query.output.items[0].sku')).toMatchObject({ path: '$.items[0].sku' })
    expect(parseStagePath('store.outputs')).toMatchObject({ side: 'output', path: '$.outputs' })
    expect(parseStagePath('store')).toMatchObject({ stage: 'store', side: 'output', path: '$', segments: [] })
  })

  it.each(['', '9stage.x', 'store.output.*', 'store..available', 'store.output[', '.available'])(
    '%j is a usage error',
    (text) => {
      expect(() => parseStagePath(text)).toThrow(UsageError)
    },
  )
})

describe('explain: BigInt and number', () => {
  it('a BigInt made from a whole number of the input is evidence; BigInt sums are found', () => {
    const chain = chainOf([
      { stage: 'parse', input: 'raw', output: { qty: 3, unitCents: 1250n, feeCents: 99n } },
      {
        stage: 'price',
        input: { qty: 3, unitCents: 1250n, feeCents: 99n },
        output: { qty: 3n, totalCents: 1349n },
      },
    ])
    expect(kinds(explain(chain, parseStagePath('price.qty')), 'input')).toEqual([
      "input.qty in price's input holds the same value",
    ])
    expect(kinds(explain(chain, parseStagePath('price.totalCents')), 'arithmetic')).toEqual([
      'input.unitCents (1250n) + input.feeCents (99n) = 1349n',
    ])
  })
})

describe('explain: a stage with many effects', () => {
  it('looks for sums among the first 300 numbers its effects returned, not among every pair of 20,000', () => {
    const effects = Array.from({ length: 20_000 }, (_, i) => ({
      name: 'kv.get',
      result: { n: 1_000_000 + i },
    }))
    const chain = chainOf([{ stage: 'batch', input: { start: true }, output: { sum: 0 }, effects }])
    const sum = (a: number, b: number): string[] => {
      const c = chainOf([{ stage: 'batch', input: { start: true }, output: { sum: a + b }, effects }])
      return kinds(explain(c, parseStagePath('batch.sum')), 'arithmetic')
    }
    expect(sum(1_000_000, 1_000_001)[0]).toBe('kv.get#0.n (1000000) + kv.get#1.n (1000001) = 2000001')
    // Only results past the first 300 add up to it: not looked for.
    expect(sum(1_019_998, 1_019_999)).toEqual([])
    expect(explain(chain, parseStagePath('batch.sum')).origin).toMatchObject({ stage: 'batch' })
  })
})

describe('explain: the inventory example in miniature', () => {
  const report = explain(inventory(), parseStagePath('store.available'))

  it('walks back from store to compute, which produced the value on its second attempt', () => {
    expect(report.start).toEqual({ stage: 'store', side: 'output', path: '$.available', value: 87 })
    expect(report.origin).toEqual({ stage: 'compute', attempt: 2, how: 'produced' })
    expect(report.trail).toEqual([
      { stage: 'store', attempt: 1, value: 87, note: 'passed through unchanged' },
      { stage: 'compute', attempt: 2, value: 87, note: 'produced here' },
    ])
  })

  it('names the retry and the failure before it', () => {
    expect(kinds(report, 'retry')).toEqual([
      'compute ran 2 times; the value comes from attempt 2 after attempt 1: kv-4: read of state/sku:1001 timed out after 50 ms',
    ])
  })

  it('names the failed effect and the fallback the stage went on with', () => {
    expect(kinds(report, 'degraded')).toEqual([
      'kv.state failed (kv-4: read of state/sku:1001 timed out after 50 ms); the stage went on with local.get, shard.add: a fallback path',
    ])
  })

  it('finds the recorded numbers that add up to the value, same-named fields first', () => {
    const arithmetic = kinds(report, 'arithmetic')
    expect(arithmetic[0]).toBe('local.get#1.available (90) + input.change.delta.available (-3) = 87')
    expect(arithmetic.length).toBeLessThanOrEqual(3)
    expect(arithmetic.every((t) => t.endsWith('= 87'))).toBe(true)
  })

  it('is honest that this is evidence, not proof', () => {
    expect(report.caveat).toMatch(/coincidence/)
  })

  it('starting from the stage that produced it gives the same origin', () => {
    const r = explain(inventory(), parseStagePath('compute.output.available'))
    expect(r.origin).toEqual({ stage: 'compute', attempt: 2, how: 'produced' })
    expect(r.trail).toHaveLength(1)
  })
})

describe('explain: where values come from', () => {
  it('a value a stage changed says from what', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: { n: 1 } },
        { stage: 'b', input: { n: 1 }, output: { n: 2 } },
      ]),
      parseStagePath('b.n'),
    )
    expect(r.origin).toEqual({ stage: 'b', attempt: 1, how: 'changed' })
    expect(r.trail[0]!.note).toBe('changed here from 1')
  })

  it('a value changed between stages names the seam as origin', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: { n: 1 } },
        { stage: 'b', input: { n: 5 }, output: { n: 5 } },
        { stage: 'c', input: { n: 5 }, output: { n: 5, done: true } },
      ]),
      parseStagePath('c.output.n'),
    )
    expect(r.origin).toEqual({ stage: 'a → b', attempt: 1, how: 'in-transit' })
    expect(kinds(r, 'seam')).toEqual([
      'a produced 1 at $.n, b received 5: the data changed in transit (stale cache, lossy serialisation, another writer)',
    ])
    expect(r.trail.map((s) => s.stage)).toEqual(['c', 'b'])
  })

  it('a field added in transit is a seam too', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: {} },
        { stage: 'b', input: { channel: 'web' }, output: { channel: 'web' } },
      ]),
      parseStagePath('b.channel'),
    )
    expect(r.origin).toMatchObject({ stage: 'a → b', how: 'in-transit' })
    expect(kinds(r, 'seam')[0]).toMatch(/^a produced nothing at \$\.channel, b received "web"/)
  })

  it('a large value in a message is cut, with its length said', () => {
    const big = { rows: Array.from({ length: 2000 }, (_, i) => ({ sku: `sku:${i}`, qty: i })) }
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: { doc: big } },
        { stage: 'b', input: { doc: { ...big, extra: '😀'.repeat(100) } }, output: { ok: true } },
      ]),
      parseStagePath('b.input.doc'),
    )
    const [seam] = kinds(r, 'seam')
    expect(seam!.length).toBeLessThan(400)
    expect(seam).toMatch(
      /^a produced \{"rows":\[\{"sku":"sku:0","qty":0\}.*… \([0-9,]+ characters\) at \$\.doc, b received /,
    )
    expect(seam).toContain(`(${JSON.stringify(big).length.toLocaleString('en-US')} characters)`)
  })

  it('a value that was in the first stage input entered the pipeline that way', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: { n: 3 }, output: { n: 3 } },
        { stage: 'b', input: { n: 3 }, output: { n: 3 } },
      ]),
      parseStagePath('b.n'),
    )
    expect(r.origin).toEqual({ stage: 'a', attempt: 1, how: 'recorded-input' })
    expect(kinds(r, 'input')[0]).toMatch(/already in a's recorded input/)
  })

  it('an effect that returned exactly the value is named', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: { price: 250 }, effects: [{ name: 'kv.get', result: 250 }] },
      ]),
      parseStagePath('a.price'),
    )
    expect(kinds(r, 'effect')).toContain('effect kv.get#0 returned exactly this value')
  })

  it('an effect field and an input field holding the same value are named', () => {
    const r = explain(
      chainOf([
        {
          stage: 'a',
          input: { order: { qty: 7 } },
          output: { total: 42, copy: 7 },
          effects: [{ name: 'db.get', result: { row: { total: 42 } } }],
        },
      ]),
      parseStagePath('a.total'),
    )
    expect(kinds(r, 'effect')).toContain('effect db.get#0.row.total returned the same value')
    const copy = explain(
      chainOf([{ stage: 'a', input: { order: { qty: 7 } }, output: { copy: 7 } }]),
      parseStagePath('a.copy'),
    )
    expect(kinds(copy, 'input')).toEqual(["input.order.qty in a's input holds the same value"])
  })

  it('starting from an input goes straight to the hand-off before it', () => {
    const r = explain(
      chainOf([
        { stage: 'a', input: {}, output: { n: 1 } },
        { stage: 'b', input: { n: 1 }, output: { n: 9 } },
      ]),
      parseStagePath('b.input.n'),
    )
    expect(r.start).toMatchObject({ side: 'input', value: 1 })
    expect(r.origin).toEqual({ stage: 'a', attempt: 1, how: 'produced' })
  })
})

describe('explain: what it refuses', () => {
  it('a stage the record does not have is a usage error listing the stages it has', () => {
    expect(() => explain(inventory(), parseStagePath('nope.available'))).toThrow(
      'record rec-1 has no stage "nope" (stages: ingest, compute, store, query)',
    )
  })

  it('a path with nothing at it is a usage error', () => {
    expect(() => explain(inventory(), parseStagePath('store.output.missing'))).toThrow(
      'store.output has nothing at $.missing in record rec-1',
    )
  })
})

describe('explain: typed values (Date, Set, Map, BigInt, undefined)', () => {
  const parsed = {
    orderId: 'o-1',
    receivedAt: new Date('2026-01-01T00:00:00.000Z'),
    tags: new Set(['web', 'vip']),
    unit: new Map([['SKU-42', 8.49]]),
    cents: 5102n,
    blob: undefined,
  }

  it('an undefined output is not explained by an undefined field of the input', () => {
    const r = explain(
      chainOf([
        { stage: 'discount', input: {}, output: parsed },
        { stage: 'audit', input: parsed, output: undefined },
      ]),
      parseStagePath('audit.output'),
    )
    expect(r.start.value).toEqual({ $t: 'undef' })
    expect(r.origin).toEqual({ stage: 'audit', attempt: 1, how: 'changed' })
    expect(r.evidence).toEqual([])
    expect(r.trail[0]!.note).toMatch(
      /^changed here from \{"orderId":"o-1","receivedAt":Date\(2026-01-01T00:00:00.000Z\),/,
    )
    expect(r.trail[0]!.note).not.toContain('$t')
  })

  it('follows a path into a Set and a Map, and names fields inside them as paths in the data', () => {
    const r = explain(
      chainOf([
        { stage: 'parse', input: {}, output: parsed },
        { stage: 'price', input: parsed, output: parsed },
      ]),
      parseStagePath('price.output.unit["SKU-42"]'),
    )
    expect(r.start.value).toBe(8.49)
    expect(r.trail.map((s) => s.note)).toEqual(['passed through unchanged', 'produced here'])
    expect(
      explain(chainOf([{ stage: 'parse', input: {}, output: parsed }]), parseStagePath('parse.tags[1]')).start
        .value,
    ).toBe('vip')
  })

  it('a long string changed by one character says where', () => {
    const big = 'x'.repeat(100_000)
    const r = explain(
      chainOf([{ stage: 'parse', input: { blob: big }, output: { blob: `${big.slice(0, -1)}y` } }]),
      parseStagePath('parse.blob'),
    )
    expect(r.trail[0]!.note).toMatch(/^changed here from "…x+" \(at character 100,000 of 100,000\)$/)
  })
})
