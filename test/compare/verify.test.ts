/** `verify` as data: seams and invariants over recorded chains, tallied by check. */
import { describe, expect, it } from 'vitest'
import type { RecordChain } from '../../src/bundle/types.js'
import { encode } from '../../src/codec/index.js'
import { noRules } from '../../src/compare/diff.js'
import { compileInvariants } from '../../src/compare/invariants.js'
import { compileRules } from '../../src/compare/rules.js'
import { seamViolations, Verifier } from '../../src/compare/verify.js'

interface Step {
  stage: string
  input: unknown
  output?: unknown
  error?: string
  attempt?: number
}

/** A record chain as the bundle reader returns it, payloads encoded as the recorder does. */
function chainOf(id: string, key: string, steps: readonly Step[]): RecordChain {
  return {
    record: {
      id,
      key,
      startedAt: 1000,
      endedAt: 2000,
      status: 'ok',
      error: null,
      host: 'h',
      pid: 1,
      build: 'b1',
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
      startedAt: 1000 + i,
      durationMs: 1,
      build: 'b1',
      host: 'h',
      pid: 1,
      effects: [],
    })),
    expectations: [],
    source: 'mem.sqlite',
  }
}

/** parse -> compute -> store, handing each output on unchanged unless told otherwise. */
function pipeline(id: string, key: string, available: number, handOff?: (v: object) => object): RecordChain {
  const parsed = { sku: key, onHand: 10, reserved: 6 }
  const computed = { ...parsed, available }
  return chainOf(id, key, [
    { stage: 'parse', input: `${key}|10|6`, output: parsed },
    { stage: 'compute', input: parsed, output: computed },
    { stage: 'store', input: handOff ? handOff(computed) : computed, output: { ...computed, stored: true } },
  ])
}

const invariants = compileInvariants([
  {
    name: 'available-matches-stock',
    check: 'compute.output.available == compute.output.onHand - compute.output.reserved',
  },
  { name: 'never-negative', check: 'store.output.available >= 0' },
])

describe('seamViolations', () => {
  it('finds nothing when every stage received what the one before produced', () => {
    expect(seamViolations(pipeline('r1', 'sku:1', 4))).toEqual([])
  })

  it('a value changed between two stages is a seam violation at the receiving stage', () => {
    const chain = pipeline('r1', 'sku:1', 4, (v) => ({ ...v, available: 40 }))
    expect(seamViolations(chain)).toEqual([
      {
        check: 'seam compute → store',
        kind: 'seam',
        stage: 'store',
        recordId: 'r1',
        key: 'sku:1',
        message: '$.available: compute produced 4, store received 40',
      },
    ])
  })

  it('says how many more fields changed, and names added or dropped fields', () => {
    const changed = pipeline('r1', 'sku:1', 4, (v) => ({ ...v, available: 40, onHand: 1, channel: 'web' }))
    expect(seamViolations(changed)[0]!.message).toBe(
      '$.onHand: compute produced 10, store received 1 (+2 more)',
    )
    const added = pipeline('r2', 'sku:1', 4, (v) => ({ ...v, channel: 'web' }))
    expect(seamViolations(added)[0]!.message).toBe(
      '$.channel: compute produced nothing, store received "web"',
    )
  })

  it('keeps the message to a line when the value at the seam is large', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `row ${i}`)
    const added = pipeline('r3', 'sku:1', 4, (v) => ({ ...v, rows }))
    const message = seamViolations(added)[0]!.message
    expect(message.length).toBeLessThan(300)
    expect(message).toMatch(
      /^\$\.rows: compute produced nothing, store received \["row 0","row 1",.*… \([0-9,]+ characters\)$/,
    )
  })

  it('applies the diff rules: an ignored path is not a seam violation', () => {
    const chain = pipeline('r1', 'sku:1', 4, (v) => ({ ...v, channel: 'web' }))
    expect(seamViolations(chain, compileRules({ ignore: ['$.channel'] }))).toEqual([])
    expect(seamViolations(chain, noRules)).toHaveLength(1)
  })

  it('compares the last attempt of a stage with the first input of the next one', () => {
    const parsed = { sku: 'sku:1', n: 1 }
    const chain = chainOf('r1', 'sku:1', [
      { stage: 'parse', input: 'raw', output: { stale: true }, attempt: 1 },
      { stage: 'parse', input: 'raw', output: parsed, attempt: 2 },
      { stage: 'compute', input: parsed, error: 'kv timeout', attempt: 1 },
      { stage: 'compute', input: { ...parsed, n: 2 }, output: { n: 2 }, attempt: 2 },
    ])
    // parse's final output equals compute's first input; compute's retry saw other data,
    // which is not a hand-off between stages.
    expect(seamViolations(chain)).toEqual([])
  })

  it('skips the hand-off from a stage that failed: it produced nothing to compare', () => {
    const chain = chainOf('r1', 'sku:1', [
      { stage: 'parse', input: 'raw', error: 'bad input' },
      { stage: 'fallback', input: { other: true }, output: { ok: true } },
    ])
    expect(seamViolations(chain)).toEqual([])
  })
})

describe('Verifier', () => {
  it('checks seams and invariants of one record and returns what it found', () => {
    const v = new Verifier(invariants, noRules)
    const found = v.check(pipeline('bad', 'sku:1001', 87, (x) => ({ ...x, available: 86 })))
    expect(found.map((f) => [f.kind, f.check, f.stage])).toEqual([
      ['seam', 'seam compute → store', 'store'],
      ['invariant', 'available-matches-stock', 'compute'],
    ])
    expect(found[1]!.message).toBe(
      'compute.output.available == compute.output.onHand - compute.output.reserved is false: left 87, right 4',
    )
    expect(found[1]).toMatchObject({ recordId: 'bad', key: 'sku:1001' })
  })

  it('tallies by check, most violated first, with example records', () => {
    const v = new Verifier(invariants, noRules)
    v.check(pipeline('ok1', 'sku:1', 4))
    v.check(pipeline('neg1', 'sku:2', -1))
    v.check(pipeline('neg2', 'sku:3', -2))
    v.check(pipeline('ok2', 'sku:4', 4))
    v.check(pipeline('off', 'sku:5', 5))
    const s = v.summary()
    expect(s).toMatchObject({ records: 5, violations: 5, recordsWithViolations: 3 })
    expect(s.checks.map((c) => [c.check, c.kind, c.stage, c.violations])).toEqual([
      ['available-matches-stock', 'invariant', 'compute', 3],
      ['never-negative', 'invariant', 'store', 2],
    ])
    expect(s.checks[0]!.examples.map((e) => e.recordId)).toEqual(['neg1', 'neg2', 'off'])
    expect(s.checks[1]!.examples).toEqual([
      { recordId: 'neg1', key: 'sku:2', message: 'store.output.available >= 0 is false: left -1, right 0' },
      { recordId: 'neg2', key: 'sku:3', message: 'store.output.available >= 0 is false: left -2, right 0' },
    ])
  })

  it('keeps at most five examples per check however many records break it', () => {
    const v = new Verifier(invariants, noRules)
    for (let i = 0; i < 40; i++) v.check(pipeline(`r${i}`, `sku:${i}`, -1))
    const s = v.summary()
    expect(s.records).toBe(40)
    expect(s.checks.every((c) => c.violations === 40)).toBe(true)
    expect(s.checks.every((c) => c.examples.length === 5)).toBe(true)
    expect(s.checks[0]!.examples.map((e) => e.recordId)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4'])
  })

  it('finds nothing in clean records; a record missing a stage is not a violation', () => {
    const v = new Verifier(invariants, noRules)
    v.check(pipeline('a', 'sku:1', 4))
    const short = chainOf('b', 'sku:2', [{ stage: 'parse', input: 'x', output: { sku: 'sku:2' } }])
    expect(v.check(short)).toEqual([])
    expect(v.summary()).toEqual({ records: 2, violations: 0, recordsWithViolations: 0, checks: [] })
  })

  it('a check that cannot be evaluated is reported, not passed', () => {
    const v = new Verifier(
      compileInvariants([{ name: 'typo', check: 'avg(store.output.available) > 0' }]),
      noRules,
    )
    expect(v.check(pipeline('a', 'sku:1', 4))).toEqual([
      {
        check: 'typo',
        kind: 'invariant',
        stage: 'store',
        recordId: 'a',
        key: 'sku:1',
        message: 'unknown function avg',
      },
    ])
  })

  it('a check reading two stages is attributed to the later one in the chain', () => {
    const v = new Verifier(
      compileInvariants([
        { name: 'stored-as-computed', check: 'store.output.available == compute.output.available' },
      ]),
      noRules,
    )
    const chain = chainOf('a', 'sku:1', [
      { stage: 'compute', input: {}, output: { available: 4 } },
      { stage: 'store', input: { available: 4 }, output: { available: 5 } },
    ])
    expect(v.check(chain)[0]).toMatchObject({ stage: 'store' })
  })

  it('a function invariant is attributed to no stage in particular', () => {
    const v = new Verifier(compileInvariants([{ name: 'fn', check: () => 'always wrong' }]), noRules)
    expect(v.check(pipeline('a', 'sku:1', 4))).toEqual([
      { check: 'fn', kind: 'invariant', stage: '-', recordId: 'a', key: 'sku:1', message: 'always wrong' },
    ])
  })
})

describe('seams of typed values', () => {
  it('say undefined, Dates and BigInts as they are, and why a field holding undefined went missing', () => {
    const chain = chainOf('r1', 'sku:1', [
      { stage: 'price', input: {}, output: { at: new Date(0), cents: 5n, blob: undefined } },
      { stage: 'fx', input: { at: new Date(0), cents: 5n }, output: {} },
    ])
    expect(seamViolations(chain, noRules).map((v) => v.message)).toEqual([
      '$.blob: price produced undefined, fx received nothing (a field holding undefined, dropped in transit)',
    ])
    const changed = chainOf('r2', 'sku:1', [
      { stage: 'price', input: {}, output: { at: new Date(0), tags: new Set(['a']) } },
      { stage: 'fx', input: { at: new Date(1000), tags: new Set(['a', 'b']) }, output: {} },
    ])
    expect(seamViolations(changed, noRules).map((v) => v.message)).toEqual([
      '$.at: price produced Date(1970-01-01T00:00:00.000Z), fx received Date(1970-01-01T00:00:01.000Z) (+1 more)',
    ])
  })
})
