/**
 * The unified diff of two payloads: the window cut before jsdiff sees the texts must not
 * change what it prints, and a pair that differs throughout falls back without a line diff.
 */
import { createTwoFilesPatch } from 'diff'
import { describe, expect, it } from 'vitest'
import { encode } from '../../src/codec/index.js'
import {
  differingSpan,
  focusWindow,
  foldLine,
  lineWindow,
  unifiedFromPayloads,
  unifiedMaxLine,
  unifiedMaxSpan,
  unifiedOutcome,
} from '../../src/render/unified.js'

const lines = (n: number, f: (i: number) => string): string =>
  `${Array.from({ length: n }, (_, i) => f(i)).join('\n')}\n`

describe('unified diff', () => {
  it('prints what jsdiff prints for the whole texts, with the line numbers of the whole texts', () => {
    const cases: [string, string][] = [
      [lines(200, (i) => `line ${i}`), lines(200, (i) => (i === 120 ? 'changed' : `line ${i}`))],
      [lines(200, (i) => `line ${i}`), lines(200, (i) => (i === 0 || i === 199 ? 'edge' : `line ${i}`))],
      [
        lines(50, (i) => `line ${i}`),
        lines(52, (i) => (i === 10 || i === 11 ? `new ${i}` : `line ${i < 10 ? i : i - 2}`)),
      ],
      [lines(50, (i) => `line ${i}`), lines(48, (i) => `line ${i < 20 ? i : i + 2}`)],
      ['a\nb\nc', 'a\nb\nd'],
      ['', 'x\n'],
      ['same\n', 'same'],
      [lines(30, (i) => `line ${i}`), lines(30, (i) => (i % 9 === 4 ? `other ${i}` : `line ${i}`))],
    ]
    for (const [a, b] of cases) {
      const r = unifiedOutcome(a, b, 'compute')
      expect('patch' in r && r.patch, JSON.stringify([a.slice(0, 40), b.slice(0, 40)])).toBe(
        createTwoFilesPatch('recorded/compute', 'local/compute', a, b, undefined, undefined, { context: 3 }),
      )
    }
  })

  it('cuts the common head and tail at line boundaries, keeping three lines of context', () => {
    const a = lines(1000, (i) => `line ${i}`)
    const b = lines(1000, (i) => (i === 500 ? 'changed' : `line ${i}`))
    const w = lineWindow(a, b, 3)
    expect(w.skipped).toBe(497)
    expect(w.a).toBe(lines(7, (i) => `line ${497 + i}`))
    expect(w.b).toBe(lines(7, (i) => (i === 3 ? 'changed' : `line ${497 + i}`)))
  })

  it('finds one changed value in a large payload and names its line', () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({ sku: `sku:${i}`, available: i % 50 }))
    const recorded = JSON.stringify(items)
    items[12_345]!.available = 87
    const r = unifiedFromPayloads(recorded, JSON.stringify(items), 'store')
    if (!('patch' in r)) throw new Error(`fell back: ${JSON.stringify(r)}`)
    expect(r.patch).toContain('-    "available": 45')
    expect(r.patch).toContain('+    "available": 87')
    // Line 1 is "[", then 4 lines per item: item 12,345's "available" is line 2 + 4 * 12,345 + 2,
    // and the hunk starts three lines of context above it.
    expect(r.patch).toMatch(/^@@ -49381,7 \+49381,7 @@$/m)
  })

  it('shows a typed-array element that changed after the first 32', () => {
    const out = (v: number): string =>
      encode({ id: 7, weights: new Float32Array(64).map((_, i) => (i === 50 ? v : i)) })
    const r = unifiedFromPayloads(out(50), out(9), 'a')
    if (!('patch' in r)) throw new Error(`fell back: ${JSON.stringify(r)}`)
    expect(r.patch).toContain('-    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63')
    expect(r.patch).toContain('+    48, 49, 9, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63')
  })

  it('falls back without a line diff when the payloads differ over more than the span limit', () => {
    const a = JSON.stringify(Array.from({ length: 80_000 }, (_, i) => `recorded ${i}`))
    const b = JSON.stringify(Array.from({ length: 80_000 }, (_, i) => `local ${i}`))
    expect(differingSpan(a, b)).toBeGreaterThan(unifiedMaxSpan)
    const r = unifiedFromPayloads(a, b, 'store')
    expect(r).toEqual({
      fallback: 'too-large',
      span: differingSpan(a, b),
      size: Math.max(a.length, b.length),
    })
  })

  it('falls back when jsdiff runs out of its time on thousands of changed lines', () => {
    const a = lines(4000, (i) => `recorded ${i} ${(i * 7919) % 104729}`)
    const b = lines(4000, (i) => `local ${(i * 104729) % 7919} ${i}`)
    expect(differingSpan(a, b)).toBeLessThan(unifiedMaxSpan)
    // A start far in the past leaves jsdiff the minimum; it cannot finish 8,000 edits in it.
    expect(unifiedOutcome(a, b, 'store', performance.now() - 1000)).toEqual({ fallback: 'timeout' })
  })
})

describe('unified diff lines', () => {
  it('folds a line longer than the limit to its head and tail, keeping the +/- mark', () => {
    const line = `+${'a'.repeat(3000)}${'z'.repeat(3000)}`
    const folded = foldLine(line)
    expect(folded.length).toBeLessThan(unifiedMaxLine + 40)
    expect(folded.startsWith('+aaa')).toBe(true)
    expect(folded.endsWith('zzz')).toBe(true)
    expect(folded).toContain(
      `(${(line.length - 2 * (unifiedMaxLine / 2 - 20)).toLocaleString('en-US')} characters)`,
    )
    expect(foldLine('-short')).toBe('-short')
  })

  it('never cuts a surrogate pair in half', () => {
    const emoji = '\u{1F600}'
    for (let pad = 0; pad < 4; pad++) {
      const folded = foldLine(`+${'x'.repeat(pad)}${emoji.repeat(2000)}`)
      expect(folded, `pad ${pad}`).not.toMatch(
        /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/,
      )
    }
  })

  it('counts the characters it folds away with an emoji as one', () => {
    const folded = foldLine(`+${'\u{1F600}'.repeat(2000)}`)
    const kept = [...folded.replace(/ … \(.*\) … /, '')].length
    expect(folded).toContain(`(${(2001 - kept).toLocaleString('en-US')} characters)`)
  })
})

describe('unified diff of a small change in a long line', () => {
  const big = 'x'.repeat(5 * 1024 * 1024)

  it('shows one changed character at the end of a 5 MB string, the shared run counted, not timed out', () => {
    const recorded = JSON.stringify({ orderId: 'o-3', tags: ['web'], blob: big, after: 1 })
    const local = JSON.stringify({ orderId: 'o-3', tags: ['web'], blob: `${big.slice(0, -1)}y`, after: 1 })
    const r = unifiedFromPayloads(recorded, local, 'parse')
    if (!('patch' in r)) throw new Error(`fell back: ${JSON.stringify(r)}`)
    const lines = r.patch.split('\n')
    expect(lines).toContain('@@ -3,5 +3,5 @@')
    const minus = lines.find((l) => l.startsWith('-  "blob"'))!
    const plus = lines.find((l) => l.startsWith('+  "blob"'))!
    expect(minus).toMatch(/^- {2}"blob": "x+ … \(5,242,7\d\d characters\) … x+",$/)
    expect(plus).toBe(minus.replace(/^-/, '+').replace(/x",$/, 'y",'))
    expect(minus.length).toBeLessThan(200)
  })

  it('keeps the line count and the text outside the shared runs, in the middle of a line too', () => {
    const a = `first\n${'a'.repeat(10_000)}X${'b'.repeat(10_000)}\nlast\n`
    const b = `first\n${'a'.repeat(10_000)}Y${'b'.repeat(10_000)}\nlast\n`
    const w = lineWindow(a, b, 3)
    const f = focusWindow(w.a, w.b, w.head, w.tail)
    expect(f.a.split('\n')).toHaveLength(a.split('\n').length)
    expect(f.a).toMatch(
      /^first\na{40} … \(9,900 characters\) … a{60}Xb{60} … \(9,900 characters\) … b{40}\nlast\n$/,
    )
    expect(f.b).toBe(f.a.replace('X', 'Y'))
    const r = unifiedOutcome(a, b, 'compute')
    expect('patch' in r && r.patch).toContain(
      '+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa … (9,900 characters) …',
    )
  })

  it('folds long lines of context both texts share before jsdiff sees them', () => {
    const context = 'c'.repeat(5000)
    const a = `${context}\nold\n${context}\n`
    const b = `${context}\nnew\n${context}\n`
    const w = lineWindow(a, b, 3)
    const f = focusWindow(w.a, w.b, w.head, w.tail)
    expect(f.a).toBe(`${foldLine(context)}\nold\n${foldLine(context)}\n`)
    expect(f.b).toBe(`${foldLine(context)}\nnew\n${foldLine(context)}\n`)
  })
})
