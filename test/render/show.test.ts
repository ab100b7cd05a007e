/** The recorded scene as `show` prints it: what each stage did to the payload, in the user's terms. */
import { describe, expect, it } from 'vitest'
import type { RecordChain } from '../../src/bundle/types.js'
import { encode, unfinishedMarker } from '../../src/codec/index.js'
import type { Change } from '../../src/compare/diff.js'
import { buildScene } from '../../src/compare/scene.js'
import { renderShow, suppressedLine, wordDiffLine } from '../../src/render/show.js'
import { plain } from '../../src/render/theme.js'

function chainOf(steps: readonly { stage: string; input: unknown; output: unknown }[]): RecordChain {
  return {
    record: {
      id: 'rec-1',
      key: 'k',
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
      recordId: 'rec-1',
      seq: i,
      stage: s.stage,
      attempt: 1,
      input: encode(s.input),
      output: encode(s.output),
      error: null,
      startedAt: i,
      durationMs: 1,
      build: null,
      host: null,
      pid: null,
      effects: [],
    })),
    expectations: [],
    source: 'mem.sqlite',
  }
}

const show = (chain: RecordChain, expand = false): string =>
  renderShow(buildScene(chain), plain, { expand, width: 120 })

describe('renderShow: typed values', () => {
  const order = { orderId: 'o-6', tags: ['web'], at: new Date('2026-01-01T00:00:00.000Z') }
  const parsed = {
    ...order,
    tags: new Set(['web', 'vip']),
    at: new Date('2026-01-02T00:00:00.000Z'),
    cents: 5102n,
  }

  it('a stage that returns undefined changed the payload to undefined; no `$t` added, no keys dropped', () => {
    const text = show(chainOf([{ stage: 'audit', input: parsed, output: undefined }]))
    expect(text).toContain('    out undefined\n    ~ $ {"orderId":"o-6",')
    expect(text).toMatch(/~ \$ \{"orderId".* → undefined$/m)
    expect(text).not.toContain('$t')
    expect(text).not.toContain('dropped')
  })

  it('paths name places in the data: a Date changed, a Set gained an item, an array became a Set', () => {
    const text = show(
      chainOf([
        { stage: 'parse', input: order, output: { ...order, tags: new Set(['web']) } },
        { stage: 'tag', input: { ...order, tags: new Set(['web']) }, output: parsed },
      ]),
    )
    expect(text).toContain('~ $.tags ["web"] → Set["web"]')
    expect(text).toContain('~ $.at Date(2026-01-01T00:00:00.000Z) → Date(2026-01-02T00:00:00.000Z)')
    expect(text).toContain('+ added tags[1], cents')
    expect(text).not.toMatch(/\.v\b|\$t/)
  })

  it('--expand prints payloads with tags shown as what they stand for', () => {
    const text = show(chainOf([{ stage: 'parse', input: order, output: parsed }]), true)
    expect(text).toContain('"cents": 5102n')
    expect(text).toContain('"tags": Set [')
    expect(text).not.toContain('$t')
  })
})

describe('renderShow: a chain of one or two stages', () => {
  it('says one stage, and that a single stage has no seam to check', () => {
    const text = show(chainOf([{ stage: 'notify', input: { id: 1 }, output: { sent: true } }]))
    expect(text.split('\n')[1]).toMatch(/^1 stage \(notify\) · /)
    expect(text.trimEnd().split('\n').at(-1)).toBe('seams: none (one stage)')
  })

  it('says why no seam was checked when the stage before the one hand-off failed, and marks an output that never came', () => {
    // Promise.all over two stages: the first threw, the record ended, the second was still running.
    const chain = chainOf([
      { stage: 'fraud', input: 1, output: null },
      { stage: 'reserve', input: 1, output: null },
    ])
    chain.record.status = 'error'
    chain.captures[0]!.output = null
    chain.captures[0]!.error = JSON.stringify({ name: 'Error', message: 'fraud says no' })
    chain.captures[1]!.output = unfinishedMarker('stage reserve was still running when its record ended')
    const text = show(chain)
    expect(text.split('\n')[1]).toMatch(/^2 stages \(fraud → reserve\) · /)
    expect(text).toMatch(/^ 2 reserve unfinished /m)
    expect(text).toMatch(/^ 1 fraud error /m)
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      'seams: none to check (the stage before each hand-off failed)',
    )
  })

  it('names the one hand-off of two stages', () => {
    const same = show(
      chainOf([
        { stage: 'a', input: 1, output: { n: 2 } },
        { stage: 'b', input: { n: 2 }, output: 3 },
      ]),
    )
    expect(same.split('\n')[1]).toMatch(/^2 stages \(a → b\) · /)
    expect(same.trimEnd().split('\n').at(-1)).toBe('seams: the one hand-off matches')
    const changed = show(
      chainOf([
        { stage: 'a', input: 1, output: { n: 2 } },
        { stage: 'b', input: { n: 5 }, output: 3 },
      ]),
    )
    expect(changed.trimEnd().split('\n').at(-1)).toBe('seams: the one hand-off changed in transit')
  })
})

describe('suppressedLine', () => {
  it('does not say a redacted value became undefined: its local value is not shown', () => {
    const line = suppressedLine(
      { path: '$.password', reason: 'redacted', recorded: '[redacted]' },
      plain,
      120,
    )
    expect(line).toBe('· $.password (redacted) "[redacted]" → not shown')
  })

  it('shows both values of an ignored change, undefined included', () => {
    const line = suppressedLine(
      { path: '$.at', reason: 'ignored', recorded: 1, local: undefined },
      plain,
      120,
    )
    expect(line).toBe('· $.at (ignored) 1 → undefined')
  })
})

describe('wordDiffLine', () => {
  const changed = (recorded: unknown, local: unknown): Change => ({
    path: '$.msg',
    kind: 'changed',
    recorded,
    local,
  })

  it('shows every changed word of a long string, not only the window around the first', () => {
    const a =
      'Order 1001 for Alice was shipped from warehouse North on Monday via DHL express with 3 items totalling 42.50 EUR and the code SUMMER applied'
    const b = a.replace('North', 'South').replace('42.50', '45.50').replace('SUMMER', 'WINTER')
    const line = wordDiffLine(changed(a, b), plain, 100)
    expect(line).toContain('[-North-]{+South+}')
    expect(line).toContain('[-42-]{+45+}.50')
    expect(line).toContain('[-SUMMER-]{+WINTER+} applied')
    expect(line).toMatch(/^words: …/)
  })

  it('shows a short sentence changed in two places, and nothing the change line already shows', () => {
    expect(
      wordDiffLine(
        changed('the quick brown fox jumps over the lazy dog', 'the quick red fox jumped over the lazy dog'),
        plain,
        120,
      ),
    ).toBe('words: the quick [-brown-]{+red+} fox [-jumps-]{+jumped+} over …')
    expect(wordDiffLine(changed('hello world', 'hello there'), plain, 120)).toBeUndefined()
    expect(wordDiffLine(changed('abc', 'abd'), plain, 120)).toBeUndefined()
    expect(wordDiffLine(changed(1, 2), plain, 120)).toBeUndefined()
  })

  it('stays on one line within its budget, counting the edits it leaves out', () => {
    const a = Array.from({ length: 600 }, (_, i) => `w${i}`).join(' ')
    const b = Array.from({ length: 600 }, (_, i) => (i % 30 === 0 ? `x${i}` : `w${i}`)).join(' ')
    const line = wordDiffLine(changed(a, b), plain, 100)!
    expect(line).not.toContain('\n')
    expect(line.length).toBeLessThan(260)
    expect(line).toMatch(/^words: \[-w0-\]\{\+x0\+\} w1 …w28 w29 \[-w30-\]\{\+x30\+\} w31 …/)
    expect(line).toMatch(/\} … \(\d+ more edits\)$/)
    // Two texts that differ throughout are left to the change line.
    const c = Array.from({ length: 600 }, (_, i) => `z${i}`).join(' ')
    expect(wordDiffLine(changed(a, c), plain, 100)).toBeUndefined()
  })
})
