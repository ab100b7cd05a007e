/** Typed JSON as people read it: tags as what they stand for, long strings around their difference. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  brief,
  briefPair,
  changedPair,
  commonHead,
  commonTail,
  compact,
  pretty,
  visibleLine,
  visibleName,
} from '../../src/codec/display.js'
import { decodeRaw, encode } from '../../src/codec/index.js'

/** A value as the CLI reads it from a bundle: encoded by the recorder, parsed without decoding tags. */
const stored = (v: unknown): unknown => decodeRaw(encode(v))

const order = {
  receivedAt: new Date('2026-12-02T00:07:44.640Z'),
  tags: new Set(['web', 'vip']),
  unit: new Map([
    ['SKU-42', 8.49],
    ['SKU-43', 8.5],
  ]),
  subtotalCents: 5102n,
  blob: undefined,
  failure: new TypeError('boom'),
  own: { $t: 'mine', n: 1 },
}

describe('compact and pretty show tags as what they stand for', () => {
  it('one line: Date, Set, Map, BigInt, undefined, an Error and an object with its own $t key', () => {
    expect(compact(stored(order), 1000)).toBe(
      '{"receivedAt":Date(2026-12-02T00:07:44.640Z),"tags":Set["web","vip"],"unit":Map{"SKU-42"=>8.49,"SKU-43"=>8.5},' +
        '"subtotalCents":5102n,"blob":undefined,"failure":[TypeError: boom],"own":{"$t":"mine","n":1}}',
    )
  })

  it('several lines, indented like JSON, with no tag left in them', () => {
    expect(pretty(stored(order))).toBe(
      [
        '{',
        '  "receivedAt": Date(2026-12-02T00:07:44.640Z),',
        '  "tags": Set [',
        '    "web",',
        '    "vip"',
        '  ],',
        '  "unit": Map {',
        '    "SKU-42" => 8.49,',
        '    "SKU-43" => 8.5',
        '  },',
        '  "subtotalCents": 5102n,',
        '  "blob": undefined,',
        '  "failure": [TypeError: boom],',
        '  "own": {',
        '    "$t": "mine",',
        '    "n": 1',
        '  }',
        '}',
      ].join('\n'),
    )
    expect(pretty(stored({ s: new Set(), m: new Map() }))).toBe('{\n  "s": Set [],\n  "m": Map {}\n}')
  })

  it('several lines: binary values as their bytes in hex, sixteen to a line', () => {
    expect(pretty(stored({ sig: Buffer.from('secret-v1'), none: new ArrayBuffer(0) }))).toBe(
      [
        '{',
        '  "sig": Buffer(9 bytes) <',
        '    73 65 63 72 65 74 2d 76 31',
        '  >,',
        '  "none": ArrayBuffer(0 bytes) <>',
        '}',
      ].join('\n'),
    )
    const lines = pretty(stored(new Uint8Array(40).fill(1))).split('\n')
    expect(lines).toEqual([
      'Uint8Array(40 bytes) <',
      `  ${Array(16).fill('01').join(' ')}`,
      `  ${Array(16).fill('01').join(' ')}`,
      `  ${Array(8).fill('01').join(' ')}`,
      '>',
    ])
  })

  it('several lines: typed arrays with every element, sixteen to a line', () => {
    expect(pretty(stored({ w: new Float32Array([0.1, -0]), n: new BigInt64Array(0) }))).toBe(
      ['{', '  "w": Float32Array(2) [', '    0.1, -0', '  ],', '  "n": BigInt64Array(0) []', '}'].join('\n'),
    )
    const lines = pretty(stored(new Int8Array(40).map((_, i) => i))).split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[0]).toBe('Int8Array(40) [')
    expect(lines[2]).toBe('  16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,')
    expect(lines[3]).toBe('  32, 33, 34, 35, 36, 37, 38, 39')
  })

  it('pretty prints plain JSON exactly as JSON.stringify does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(pretty(v)).toBe(
          JSON.stringify(v, null, 2).replace(
            /[\u007f-\u009f\u2028\u2029]/g,
            (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
          ),
        )
      }),
      { numRuns: 300 },
    )
  })

  it('brief writes typed values the same way', () => {
    expect(brief(stored(5102n))).toBe('5102n')
    expect(brief(stored(undefined))).toBe('undefined')
    expect(brief(undefined)).toBe('nothing')
  })
})

describe('changedPair: two long strings that differ', () => {
  const big = 'x'.repeat(5 * 1024 * 1024)

  it('shows the characters around the first difference and where it is, not the common head', () => {
    const p = changedPair(big, `${big.slice(0, -1)}y`, 40)
    expect(p).toEqual({
      recorded: `"…${'x'.repeat(37)}"`,
      local: `"…${'x'.repeat(36)}y"`,
      at: 'at character 5,242,880 of 5,242,880',
    })
  })

  it('cuts both sides in the middle of a string, with … where they were cut', () => {
    const a = `${'a'.repeat(1000)}X${'b'.repeat(1000)}`
    const b = `${'a'.repeat(1000)}Y${'b'.repeat(1000)}`
    const p = changedPair(a, b, 30)
    expect(p.recorded).toMatch(/^"…a+Xb+…"$/)
    expect(p.local).toBe(p.recorded.replace('X', 'Y'))
    expect(p.recorded.length).toBeLessThanOrEqual(30)
    expect(p.at).toBe('at character 1,001 of 2,001')
  })

  it('counts an emoji as one character, where the difference is and in the lengths', () => {
    const a = `${'😀'.repeat(499)}😁`
    const b = '😀'.repeat(500)
    expect(changedPair(a, b, 40).at).toBe('at character 500 of 500')
    expect(changedPair(`${a}!`, b, 40).at).toBe('at character 500; 501 → 500 characters')
  })

  it('says both lengths when they differ', () => {
    expect(changedPair('z'.repeat(200), `${'z'.repeat(200)}!`, 30).at).toBe(
      'at character 201; 200 → 201 characters',
    )
  })

  it('leaves short strings and other values as compact writes them', () => {
    expect(changedPair('a', 'b', 30)).toEqual({ recorded: '"a"', local: '"b"' })
    expect(changedPair(1, { $t: 'bigint', v: '1' }, 30)).toEqual({ recorded: '1', local: '1n' })
  })

  it('stays within the budget, escapes control characters and never splits a surrogate pair', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', minLength: 0, maxLength: 300 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 5 }),
        fc.string({ unit: 'binary', minLength: 0, maxLength: 300 }),
        fc.integer({ min: 16, max: 80 }),
        (head, change, tail, max) => {
          const a = `${head}${tail}`
          const b = `${head}${change}${tail}`
          const p = changedPair(a, b, max)
          for (const text of [p.recorded, p.local]) {
            expect(text.length).toBeLessThanOrEqual(Math.max(max, 12))
            expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/)
            expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/)
            expect(text).not.toMatch(/(?<![\ud800-\udbff])[\udc00-\udfff]/)
          }
        },
      ),
      { numRuns: 300, examples: [['', '\u0000\u0000\u0000', '', 16]] },
    )
  })

  it('shows the first difference on both sides, whatever escapes come before it', () => {
    /** The characters a window shows, read back: `…` marks dropped, escapes undone. */
    const read = (text: string): { body: string; cutBefore: boolean; cutAfter: boolean } => {
      const cutBefore = text.startsWith('"…')
      const cutAfter = text.endsWith('…"')
      const inner = text.slice(cutBefore ? 2 : 1, cutAfter ? -2 : -1)
      return {
        body: JSON.parse(
          `"${inner.replace(/\\x([0-9a-f]{2})|\\./g, (e, hex) => (hex ? `\\u00${hex}` : e))}"`,
        ),
        cutBefore,
        cutAfter,
      }
    }
    /** True when `window` is a piece of `s` that holds its character `at` (or its end). */
    const holds = (s: string, window: string, at: number): boolean => {
      const w = read(window)
      for (let from = Math.max(0, at - w.body.length); from <= at; from++) {
        const end = from + w.body.length
        if (s.slice(from, end) !== w.body || from > 0 !== w.cutBefore || end < s.length !== w.cutAfter)
          continue
        if (at < end || (at === s.length && end === s.length)) return true
      }
      return false
    }
    const text = fc.string({
      unit: fc.constantFrom('x', 'y', '\n', '\t', '"', '\\', '\u202e', '\u001b', '😀', 'é'),
    })
    fc.assert(
      fc.property(text, text, text, fc.integer({ min: 16, max: 80 }), (head, change, tail, max) => {
        const a = `${head}${tail}`
        const b = `${head}${change}${tail}`
        fc.pre(a !== b)
        const p = changedPair(a, b, max)
        const at = commonHead(a, b)
        expect(p.recorded).not.toBe(p.local)
        expect(holds(a, p.recorded, at), `${p.recorded} holds character ${at} of ${JSON.stringify(a)}`).toBe(
          true,
        )
        expect(holds(b, p.local, at), `${p.local} holds character ${at} of ${JSON.stringify(b)}`).toBe(true)
      }),
      { numRuns: 2000 },
    )
    // A CSV whose quantity changes after eight escaped newlines (the review's example).
    const csv = (q: number): string =>
      `id,qty\n${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `${i},1`).join('\n')}\n8,${q}\n9,1\n`
    const p = changedPair(csv(5), csv(6), 40)
    expect(p.recorded).toContain('8,5')
    expect(p.local).toContain('8,6')
  })

  it('briefPair windows long strings and briefs anything else', () => {
    expect(briefPair(big, `${big.slice(0, -1)}y`).at).toBe('at character 5,242,880 of 5,242,880')
    expect(briefPair({ $t: 'undef' }, undefined)).toEqual({ recorded: 'undefined', local: 'nothing' })
  })
})

describe('commonHead and commonTail', () => {
  const naiveHead = (a: string, b: string): number => {
    let i = 0
    while (i < a.length && i < b.length && a[i] === b[i]) i++
    return i
  }

  it('agree with a character-by-character scan, short of a surrogate pair they would split', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 2000 }),
        fc.string({ unit: 'binary', maxLength: 3 }),
        fc.string({ unit: 'binary', maxLength: 3 }),
        fc.string({ unit: 'binary', maxLength: 2000 }),
        (head, x, y, tail) => {
          const a = head + x + tail
          const b = head + y + tail
          const h = commonHead(a, b)
          const exact = naiveHead(a, b)
          expect(h === exact || h === exact - 1).toBe(true)
          expect(a.slice(0, h)).toBe(b.slice(0, h))
          const t = commonTail(a, b, h)
          expect(h + t).toBeLessThanOrEqual(Math.min(a.length, b.length))
          expect(a.slice(a.length - t)).toBe(b.slice(b.length - t))
          const rest = [a.slice(h, a.length - t), b.slice(h, b.length - t)]
          // The middles start and end on whole characters, so they can be printed.
          for (const m of rest) expect(m).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/)
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('names as people read them', () => {
  it('escapes the zero-width space, word joiner and BOM, and keeps the joiners scripts need', () => {
    expect(visibleLine('sku:1\u200b001')).toBe('sku:1\\u200b001')
    expect(visibleLine('a\u2060b\ufeff')).toBe('a\\u2060b\\ufeff')
    // U+200D joins an emoji sequence, U+200C shapes Persian and Indic text: kept as they are.
    expect(visibleLine('👩\u200d💻 می\u200cخواهم')).toBe('👩\u200d💻 می\u200cخواهم')
  })

  it('quotes a name that would not show as itself: empty, or with space at either end', () => {
    expect(visibleName('')).toBe('""')
    expect(visibleName(' ')).toBe('" "')
    expect(visibleName('compute ')).toBe('"compute "')
    expect(visibleName('\t')).toBe('"\\x09"')
    // Only characters that take no room, or a leading quote: quoted, quotes and backslashes escaped.
    expect(visibleName('\u200d\u200c')).toBe('"\u200d\u200c"')
    expect(visibleName('""')).toBe('"\\"\\""')
    expect(visibleName('" a\\')).toBe('"\\" a\\\\"')
    expect(visibleName(' a\u0001')).toBe('" a\\x01"')
    expect(visibleName('\u200b')).toBe('\\u200b')
    expect(visibleName('step 2')).toBe('step 2')
    expect(visibleName('sku:1001')).toBe('sku:1001')
  })
})
