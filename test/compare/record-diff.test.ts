/** `diff` as data: two records stage by stage, and two bundles' records matched by key. */
import { describe, expect, it } from 'vitest'
import type { RecordChain } from '../../src/bundle/types.js'
import { encode } from '../../src/codec/index.js'
import { BundleDiffer, diffRecords } from '../../src/compare/record-diff.js'
import { compileRules } from '../../src/compare/rules.js'

interface Step {
  stage: string
  input: unknown
  output?: unknown
  error?: string
  attempt?: number
}

function chainOf(id: string, key: string, steps: readonly Step[], source = 'a.sqlite'): RecordChain {
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
      error: s.error === undefined ? null : encode({ name: 'Error', message: s.error }),
      startedAt: i,
      durationMs: 1,
      build: null,
      host: null,
      pid: null,
      effects: [],
    })),
    expectations: [],
    source,
  }
}

/** parse -> compute -> store for one key; `available` is what compute makes of it. */
function record(id: string, key: string, available: number, source?: string): RecordChain {
  const parsed = { sku: key, onHand: 10, reserved: 6 }
  const computed = { ...parsed, available }
  return chainOf(
    id,
    key,
    [
      { stage: 'parse', input: `${key}|10|6`, output: parsed },
      { stage: 'compute', input: parsed, output: computed },
      { stage: 'store', input: computed, output: { ...computed, stored: true } },
    ],
    source,
  )
}

const unsuppressed = { suppressed: { input: [], output: [] }, truncated: false }

describe('diffRecords', () => {
  it('two records with the same chain match stage for stage', () => {
    const d = diffRecords(record('a1', 'sku:1', 4), record('b1', 'sku:1', 4, 'b.sqlite'))
    expect(d).toEqual({
      a: { recordId: 'a1', key: 'sku:1', source: 'a.sqlite' },
      b: { recordId: 'b1', key: 'sku:1', source: 'b.sqlite' },
      firstDifference: null,
      stages: [
        { stage: 'parse', status: 'same', input: [], output: [], ...unsuppressed },
        { stage: 'compute', status: 'same', input: [], output: [], ...unsuppressed },
        { stage: 'store', status: 'same', input: [], output: [], ...unsuppressed },
      ],
    })
  })

  it('names the first stage whose output differs, and carries the difference downstream', () => {
    const d = diffRecords(record('good', 'sku:1', 4), record('bad', 'sku:1', 87))
    expect(d.firstDifference).toBe('compute')
    expect(d.stages.map((s) => s.status)).toEqual(['same', 'differs', 'differs'])
    expect(d.stages[1]!.output).toEqual([{ path: '$.available', kind: 'changed', recorded: 4, local: 87 }])
    expect(d.stages[2]!.input).toEqual([{ path: '$.available', kind: 'changed', recorded: 4, local: 87 }])
  })

  it('a stage whose input differs but output is the same is not where outputs first part', () => {
    const a = chainOf('a', 'k', [
      { stage: 'parse', input: { raw: 'x', at: 1 }, output: { n: 1 } },
      { stage: 'store', input: { n: 1 }, output: { n: 1, ok: true } },
    ])
    const b = chainOf('b', 'k', [
      { stage: 'parse', input: { raw: 'x', at: 2 }, output: { n: 1 } },
      { stage: 'store', input: { n: 1 }, output: { n: 1, ok: false } },
    ])
    const d = diffRecords(a, b)
    expect(d.stages[0]).toEqual({
      stage: 'parse',
      status: 'differs',
      input: [{ path: '$.at', kind: 'changed', recorded: 1, local: 2 }],
      output: [],
      ...unsuppressed,
    })
    expect(d.firstDifference).toBe('store')
  })

  it('a stage only one record went through is where they part', () => {
    const a = record('a', 'k', 4)
    const b = chainOf(
      'b',
      'k',
      a.captures.slice(0, 2).map((c) => ({
        stage: c.stage,
        input: JSON.parse(c.input),
        output: JSON.parse(c.output!),
      })),
    )
    const d = diffRecords(a, b)
    expect(d.stages.map((s) => s.status)).toEqual(['same', 'same', 'only-in-a'])
    expect(d.firstDifference).toBe('store')
    expect(diffRecords(b, a).stages[2]!.status).toBe('only-in-b')
  })

  it('compares final attempts, and an error against an output', () => {
    const a = chainOf('a', 'k', [
      { stage: 'compute', input: { n: 1 }, error: 'timeout', attempt: 1 },
      { stage: 'compute', input: { n: 1 }, output: { n: 2 }, attempt: 2 },
    ])
    const same = chainOf('b', 'k', [{ stage: 'compute', input: { n: 1 }, output: { n: 2 } }])
    expect(diffRecords(a, same).firstDifference).toBeNull()
    const failed = chainOf('c', 'k', [{ stage: 'compute', input: { n: 1 }, error: 'timeout' }])
    const d = diffRecords(a, failed)
    expect(d.firstDifference).toBe('compute')
    expect(d.stages[0]!.output.length).toBeGreaterThan(0)
  })

  it('applies the config diff rules', () => {
    const a = chainOf('a', 'k', [{ stage: 's', input: {}, output: { n: 1, at: 100 } }])
    const b = chainOf('b', 'k', [{ stage: 's', input: {}, output: { n: 1, at: 200 } }])
    expect(diffRecords(a, b).firstDifference).toBe('s')
    expect(diffRecords(a, b, compileRules({ ignore: ['$.at'] })).firstDifference).toBeNull()
  })

  it('lists every difference a rule hid, labelled, beside the changes', () => {
    const a = chainOf('a', 'k', [{ stage: 's', input: { at: 1 }, output: { n: 1, total: 5, price: 1 } }])
    const b = chainOf('b', 'k', [{ stage: 's', input: { at: 2 }, output: { n: 1, total: 5.001, price: 2 } }])
    const rules = compileRules({ ignore: ['$.at'], tolerance: { '$.total': 0.01 } })
    const s = diffRecords(a, b, rules).stages[0]!
    expect(s.output).toEqual([{ path: '$.price', kind: 'changed', recorded: 1, local: 2 }])
    expect(s.suppressed).toEqual({
      input: [{ path: '$.at', reason: 'ignored', recorded: 1, local: 2 }],
      output: [{ path: '$.total', reason: 'within-tolerance', recorded: 5, local: 5.001 }],
    })
    expect(s.truncated).toBe(false)
  })
})

describe('BundleDiffer', () => {
  it('tallies keys by the first stage that differs, with examples', () => {
    const differ = new BundleDiffer()
    differ.add('sku:1', record('a1', 'sku:1', 4), record('b1', 'sku:1', 4))
    differ.add('sku:2', record('a2', 'sku:2', 4), record('b2', 'sku:2', 87))
    differ.add('sku:3', record('a3', 'sku:3', 4), record('b3', 'sku:3', 5))
    const parsedOff = chainOf('b4', 'sku:4', [
      { stage: 'parse', input: 'x', output: { sku: 'sku:4', onHand: 0 } },
    ])
    differ.add('sku:4', record('a4', 'sku:4', 4), parsedOff)
    differ.addOnly('a')
    differ.addOnly('b')
    expect(differ.result()).toEqual({
      keys: 6,
      same: 1,
      differing: 3,
      onlyInA: 1,
      onlyInB: 1,
      byStage: [
        {
          stage: 'compute',
          keys: 2,
          examples: [
            { key: 'sku:2', a: 'a2', b: 'b2', change: '$.available: 4 → 87' },
            { key: 'sku:3', a: 'a3', b: 'b3', change: '$.available: 4 → 5' },
          ],
        },
        {
          stage: 'parse',
          keys: 1,
          examples: [{ key: 'sku:4', a: 'a4', b: 'b4', change: '$.onHand: 10 → 0' }],
        },
      ],
    })
  })

  it('keeps five examples per stage', () => {
    const differ = new BundleDiffer()
    for (let i = 0; i < 12; i++) differ.add(`k${i}`, record(`a${i}`, `k${i}`, 4), record(`b${i}`, `k${i}`, 9))
    const [only] = differ.result().byStage
    expect(only).toMatchObject({ stage: 'compute', keys: 12 })
    expect(only!.examples).toHaveLength(5)
  })

  it('an empty comparison is all zeros', () => {
    expect(new BundleDiffer().result()).toEqual({
      keys: 0,
      same: 0,
      differing: 0,
      onlyInA: 0,
      onlyInB: 0,
      byStage: [],
    })
  })
})

describe('typed values', () => {
  const typed = (id: string, at: number, tags: string[], blob: string): RecordChain =>
    chainOf(id, 'k', [{ stage: 'parse', input: {}, output: { at: new Date(at), tags: new Set(tags), blob } }])

  it('name paths in the data (no tag `.v`) and say long strings around their difference', () => {
    const big = 'x'.repeat(10_000)
    const d = diffRecords(
      typed('a', 0, ['web'], big),
      typed('b', 1000, ['web', 'vip'], `${big.slice(0, -1)}y`),
    )
    expect(d.stages[0]!.output.map((c) => c.path)).toEqual(['$.at', '$.tags[1]', '$.blob'])
    const differ = new BundleDiffer()
    differ.add('k', typed('a', 0, ['web'], big), typed('b', 0, ['web'], `${big.slice(0, -1)}y`))
    const change = differ.result().byStage[0]!.examples[0]!.change
    expect(change).toMatch(/^\$\.blob: "…x+" → "…x+y" \(at character 10,000 of 10,000\)$/)
    expect(change.length).toBeLessThan(220)
  })
})
