/** Which stage handed each stage its input: lines, calls inside calls, side by side, per item. */
import { describe, expect, it } from 'vitest'
import { encode } from '../../src/codec/index.js'
import { handoffs } from '../../src/compare/handoff.js'

interface Call {
  stage: string
  input: unknown
  output: unknown
  /** Start and end, ms after the record started (fractions: precise starts). */
  at: [number, number]
  pid?: number
  /** Stored as is in place of the start and duration from `at` (a hand-made row). */
  startedAt?: number
  durationMs?: number
}

const base = 1_796_000_000_000

function captures(calls: readonly Call[]) {
  return calls.map((c, seq) => ({
    seq,
    stage: c.stage,
    input: encode(c.input),
    output: encode(c.output),
    startedAt: c.startedAt ?? base + c.at[0],
    durationMs: c.durationMs ?? c.at[1] - c.at[0],
    host: 'h',
    pid: c.pid ?? 1,
  }))
}

function fed(calls: readonly Call[]): Record<string, string | undefined> {
  return Object.fromEntries(handoffs(captures(calls)))
}

describe('handoffs', () => {
  it('follows a line of stages, whatever each handed on', () => {
    expect(
      fed([
        { stage: 'a', input: 1, output: 2, at: [0.1, 0.2] },
        { stage: 'b', input: 2, output: 3, at: [0.25, 0.3] },
        // What c received is not what b gave: still b's hand-off, a seam that does not line up.
        { stage: 'c', input: 99, output: 4, at: [0.35, 0.5] },
      ]),
    ).toEqual({ a: undefined, b: 'a', c: 'b' })
  })

  it('feeds the second of two stages given one output in turn from the stage that gave it', () => {
    const calls = [
      { stage: 'price', input: { id: 1 }, output: { id: 1, net: 10 }, at: [0.1, 0.2] },
      { stage: 'tax', input: { id: 1, net: 10 }, output: { tax: 2 }, at: [0.25, 0.3] },
      { stage: 'ship', input: { id: 1, net: 10 }, output: { ship: 5 }, at: [0.35, 0.4] },
      { stage: 'total', input: { ship: 5 }, output: 17, at: [0.45, 0.5] },
    ] satisfies Call[]
    const want = { price: undefined, tax: 'price', ship: 'price', total: 'ship' }
    expect(fed(calls)).toEqual(want)
    // Read as a line (whole milliseconds) too.
    expect(fed(calls.map((c, i) => ({ ...c, at: [i * 2, i * 2 + 1] as [number, number] })))).toEqual(want)
  })

  it('gives no hand-off to stages called inside another, and follows the outer one after it', () => {
    expect(
      fed([
        { stage: 'handle', input: { body: '{}' }, output: { status: 201 }, at: [0.1, 0.9] },
        { stage: 'parse', input: { body: '{}' }, output: { id: 1 }, at: [0.2, 0.3] },
        { stage: 'store', input: { id: 1, tenant: 't' }, output: { id: 1 }, at: [0.4, 0.8] },
        { stage: 'respond', input: { status: 201 }, output: 'ok', at: [0.95, 1.1] },
      ]),
    ).toEqual({ handle: undefined, parse: undefined, store: undefined, respond: 'handle' })
  })

  it('gives no hand-off to stages run side by side, nor to the stage that gathers them', () => {
    expect(
      fed([
        { stage: 'load', input: 1, output: { id: 1 }, at: [0.1, 0.2] },
        { stage: 'price', input: { id: 1 }, output: 5, at: [0.3, 0.9] },
        { stage: 'stock', input: { id: 1 }, output: 7, at: [0.31, 0.6] },
        { stage: 'merge', input: { price: 5, stock: 7 }, output: 'x', at: [1, 1.1] },
      ]),
    ).toEqual({ load: undefined, price: 'load', stock: undefined, merge: undefined })
  })

  it('takes a hand-off the times leave open when the recorded texts show it', () => {
    expect(
      fed([
        { stage: 'price', input: 1, output: 5, at: [0.3, 0.9] },
        { stage: 'stock', input: 1, output: 7, at: [0.31, 0.6] },
        { stage: 'total', input: 5, output: 5, at: [1, 1.1] },
      ]),
    ).toEqual({ price: undefined, stock: undefined, total: 'price' })
  })

  it('gives no hand-off into or out of a stage called once per item', () => {
    const lines = [{ sku: 'a' }, { sku: 'b' }]
    expect(
      fed([
        { stage: 'split', input: { lines }, output: lines, at: [0.1, 0.2] },
        { stage: 'enrich', input: lines[0], output: 1, at: [0.3, 0.4] },
        { stage: 'enrich', input: lines[1], output: 2, at: [0.5, 0.6] },
        { stage: 'total', input: [1, 2], output: 3, at: [0.7, 0.8] },
      ]),
    ).toEqual({ split: undefined, enrich: undefined, total: undefined })
  })

  it('keeps a retry (the same input again) as the stage it is', () => {
    expect(
      fed([
        { stage: 'a', input: 1, output: 2, at: [0.1, 0.2] },
        { stage: 'b', input: 2, output: null, at: [0.3, 0.4] },
        { stage: 'b', input: 2, output: 3, at: [0.5, 0.6] },
        { stage: 'c', input: 3, output: 4, at: [0.7, 0.8] },
      ]),
    ).toEqual({ a: undefined, b: 'a', c: 'b' })
  })

  it("feeds a fallback on the failed stage's own input from what fed the failed stage", () => {
    const calls = captures([
      { stage: 'prep', input: 1, output: { id: 'p' }, at: [0.1, 0.2] },
      { stage: 'primary', input: { id: 'p' }, output: null, at: [0.3, 0.4] },
      { stage: 'backup', input: { id: 'p' }, output: { via: 'b' }, at: [0.5, 0.6] },
      { stage: 'receipt', input: { via: 'b' }, output: 'ok', at: [0.7, 0.8] },
    ])
    // Production recorded no output for the stage that threw.
    const failed = calls.map((c) => (c.stage === 'primary' ? { ...c, output: null } : c))
    expect(Object.fromEntries(handoffs(failed))).toEqual({
      prep: undefined,
      primary: 'prep',
      backup: 'prep',
      receipt: 'backup',
    })
    // Nothing fed the failed stage: the fallback keeps it as its feeder, which handed nothing.
    expect(Object.fromEntries(handoffs(failed.slice(1)))).toMatchObject({ backup: 'primary' })
    // Another input than the failed stage's: not its fallback on the same value.
    const other = failed.map((c) => (c.stage === 'backup' ? { ...c, input: encode({ id: 'q' }) } : c))
    expect(Object.fromEntries(handoffs(other))).toMatchObject({ backup: 'primary' })
  })

  it('reads whole-millisecond starts (older recorders) as a line', () => {
    expect(
      fed([
        { stage: 'handle', input: 1, output: 2, at: [0, 3] },
        { stage: 'parse', input: 1, output: 5, at: [1, 2] },
        { stage: 'store', input: 5, output: 6, at: [2, 3] },
      ]),
    ).toEqual({ handle: undefined, parse: 'handle', store: 'parse' })
  })

  it('feeds the first stage a process ran in a continued record from the stage before it', () => {
    expect(
      fed([
        { stage: 'a', input: 1, output: 2, at: [0.1, 0.2], pid: 1 },
        { stage: 'b', input: 2, output: 3, at: [5.3, 5.4], pid: 2 },
        { stage: 'c', input: 3, output: 4, at: [5.5, 5.6], pid: 2 },
      ]),
    ).toEqual({ a: undefined, b: 'a', c: 'b' })
  })

  it('feeds the first stage a process ran from the outer call of the process before, not one inside it', () => {
    expect(
      fed([
        { stage: 'handle', input: { body: '{}' }, output: { status: 201 }, at: [0.1, 0.9] },
        { stage: 'parse', input: { body: '{}' }, output: { id: 1 }, at: [0.2, 0.3] },
        { stage: 'store', input: { id: 1 }, output: { id: 1, saved: true }, at: [0.4, 0.8] },
        // Another process, on its own clock.
        { stage: 'notify', input: { status: 201 }, output: 'sent', at: [0.5, 0.6], pid: 2 },
        { stage: 'audit', input: 'sent', output: 'ok', at: [0.7, 0.8], pid: 2 },
      ]),
    ).toEqual({ handle: undefined, parse: undefined, store: undefined, notify: 'handle', audit: 'notify' })
  })

  it('gives no hand-off into or out of a stage called per item with only one item', () => {
    const one = [
      { stage: 'split', input: { lines: [{ sku: 'a' }] }, output: [{ sku: 'a' }], at: [0.1, 0.2] },
      { stage: 'enrich', input: { sku: 'a' }, output: { sku: 'a', cents: 5 }, at: [0.3, 0.4] },
      { stage: 'total', input: [{ sku: 'a', cents: 5 }], output: 5, at: [0.5, 0.6] },
    ] satisfies Call[]
    expect(fed(one)).toEqual({ split: undefined, enrich: undefined, total: undefined })
    // Whole milliseconds: still no seam between a list and its one item.
    expect(fed(one.map((c, i) => ({ ...c, at: [i, i + 1] as [number, number] })))).toEqual({
      split: undefined,
      enrich: undefined,
      total: undefined,
    })
  })

  it('gives no hand-off to a stage handed a field of what the feeder gave, or gathering it', () => {
    expect(
      fed([
        { stage: 'load', input: 1, output: { order: { id: 1 }, lines: [{ sku: 'a' }] }, at: [0.1, 0.2] },
        { stage: 'line', input: { sku: 'a' }, output: { sku: 'a', ok: true }, at: [0.3, 0.4] },
        { stage: 'save', input: { saved: { sku: 'a', ok: true }, by: 'x' }, output: 1, at: [0.5, 0.6] },
      ]),
    ).toEqual({ load: undefined, line: undefined, save: undefined })
  })

  it('still hands on what lost a field in transit: a changed whole is not a part', () => {
    expect(
      fed([
        { stage: 'a', input: 'x1', output: { id: 'x1', note: 'kept' }, at: [0.1, 0.2] },
        { stage: 'b', input: { id: 'x1' }, output: { id: 'x1', seen: true }, at: [0.3, 0.4] },
        { stage: 'c', input: [{ id: 'x1', seen: true }, 'extra'], output: 1, at: [0.5, 0.6] },
      ]),
    ).toEqual({ a: undefined, b: 'a', c: undefined })
  })

  it('reads times the recorder cannot have written as a line, not as calls inside calls', () => {
    const nested: Call[] = [
      { stage: 'handle', input: 1, output: 2, at: [0.1, 0.9] },
      { stage: 'parse', input: 1, output: 5, at: [0.2, 0.3] },
      { stage: 'store', input: 5, output: 6, at: [0.4, 0.8] },
    ]
    const line = { handle: undefined, parse: 'handle', store: 'parse' }
    expect(fed(nested)).toEqual({ handle: undefined, parse: undefined, store: undefined })
    const edit = (i: number, row: Partial<Call>) => nested.map((c, j) => (j === i ? { ...c, ...row } : c))
    expect(fed(edit(1, { startedAt: Number.NaN }))).toEqual(line)
    expect(fed(edit(0, { durationMs: -5 }))).toEqual(line)
    expect(fed(edit(0, { durationMs: Number.POSITIVE_INFINITY }))).toEqual(line)
    // A later call that starts before an earlier one: not the recorder's clock.
    expect(fed(edit(2, { startedAt: base + 0.05 }))).toEqual(line)
  })
})
