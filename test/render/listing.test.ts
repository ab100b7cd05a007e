/** `ls` as people read it: columns that line up whatever the keys, counts said in words. */
import { describe, expect, it } from 'vitest'
import type { RecordSummary } from '../../src/bundle/types.js'
import { displayWidth, padEndColumns } from '../../src/render/format.js'
import { renderRecordList } from '../../src/render/listing.js'
import { makeTheme, plain } from '../../src/render/theme.js'

const summary = (
  id: string,
  key: string,
  stages: string[],
  captures = stages.length,
  retries = captures - stages.length,
): RecordSummary => ({
  id,
  key,
  startedAt: Date.parse('2026-01-10T12:00:00.000Z'),
  endedAt: null,
  status: 'ok',
  error: null,
  host: null,
  pid: null,
  build: null,
  stages,
  captures,
  retries,
  source: 'a.sqlite',
})

describe('displayWidth', () => {
  it('counts East Asian wide characters and emoji as two columns, combining marks as none', () => {
    expect(displayWidth('order:1')).toBe(7)
    expect(displayWidth('日本語:4')).toBe(8)
    expect(displayWidth('ｆｕｌｌ')).toBe(8)
    expect(displayWidth('한국어')).toBe(6)
    expect(displayWidth('📦 box')).toBe(6)
    expect(displayWidth('ordér')).toBe(5)
    expect(displayWidth('orde\u0301r')).toBe(5)
    expect(padEndColumns('日本', 6)).toBe('日本  ')
  })

  it('counts an emoji sequence as the two columns a terminal draws it in', () => {
    expect(displayWidth('\u{1f468}\u200d\u{1f469}\u200d\u{1f467}')).toBe(2)
    expect(displayWidth('\u{1f44d}\u{1f3fd} ok')).toBe(5)
    expect(displayWidth('\u2714\ufe0f')).toBe(2)
    expect(displayWidth('\u{1f1ef}\u{1f1f5}')).toBe(2)
    expect(displayWidth('\u2714')).toBe(1)
  })
})

describe('renderRecordList', () => {
  it('lines the columns up when keys hold wide characters', () => {
    const text = renderRecordList(
      {
        records: [
          summary('01AAAAAAAAAAAAAAAAAAAAAAAA', '日本語:4', ['parse']),
          summary('01BBBBBBBBBBBBBBBBBBBBBBBB', 'order:295', ['parse']),
          summary('01CCCCCCCCCCCCCCCCCCCCCCCC', 'ordér ünïcødé 1', ['parse']),
        ],
        total: 3,
      },
      plain,
      false,
    )
    const lines = text.split('\n')
    const statusColumn = lines.map((l) => displayWidth(l.slice(0, l.search(/ok {4}|STATUS/))))
    expect(new Set(statusColumn).size).toBe(1)
  })

  it('says one retry, and two retries', () => {
    const one = renderRecordList(
      { records: [summary('01A', 'k', ['parse', 'fx'], 3)], total: 1 },
      plain,
      false,
    )
    const two = renderRecordList(
      { records: [summary('01A', 'k', ['parse', 'fx'], 4)], total: 1 },
      plain,
      false,
    )
    expect(one).toContain('parse,fx (+1 retry)')
    expect(two).toContain('parse,fx (+2 retries)')
  })

  it('says nothing of calls once per item', () => {
    const perItem = renderRecordList(
      { records: [summary('01A', 'k', ['parse', 'fx'], 5, 0)], total: 1 },
      plain,
      false,
    )
    expect(perItem).toMatch(/parse,fx$/m)
    expect(perItem).not.toContain('retr')
  })
})

describe('renderRecordList in colour', () => {
  it('colours the retry count instead of printing its escape codes as text', () => {
    const row = summary('01KJPWGBPCP1NHCKVZ736JA1KR', 'sku:1001', ['parse', 'compute'], 3)
    const text = renderRecordList({ records: [row], total: 1 }, makeTheme(true), false)
    expect(text).not.toContain('\\x1b')
    expect(text).toContain('\x1b[33m (+1 retry)\x1b[39m')
  })

  it('quotes a blank key and stage, so the columns still say something', () => {
    const row = summary('01KJPWGBPCP1NHCKVZ736JA1KR', '', ['', 'compute\u200b'])
    const line = renderRecordList({ records: [row], total: 1 }, plain, false).split('\n')[1]!
    expect(line).toMatch(/^01KJPWGBPCP1NHCKVZ736JA1KR {2}"" +ok +\S+ \S+ {2}"",compute\\u200b$/)
  })
})
