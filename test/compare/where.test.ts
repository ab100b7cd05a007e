import { describe, expect, it } from 'vitest'
import { parseWhere } from '../../src/compare/where.js'

describe('parseWhere', () => {
  it('reads numbers, literals and quoted or bare strings', () => {
    expect(parseWhere('store.available = 87').value).toBe(87)
    expect(parseWhere('store.available < -0.5e3').value).toBe(-500)
    expect(parseWhere('store.ok = true').value).toBe(true)
    expect(parseWhere('store.v = null').value).toBe(null)
    expect(parseWhere("store.sku = 'sku 1001'").value).toBe('sku 1001')
    expect(parseWhere('store.sku contains sku:1001').value).toBe('sku:1001')
    expect(parseWhere('parse.at > 2026-06-15T08:30:00.000Z').value).toBe('2026-06-15T08:30:00.000Z')
  })

  it('refuses an unquoted value that would be compared as text by mistake', () => {
    for (const value of ['.5', '1,000', '+5', '1_000', '-', '5.', '+1e3']) {
      expect(() => parseWhere(`store.available < ${value}`)).toThrow(
        `--where: cannot read ${JSON.stringify(value)} as a number; write it as digits`,
      )
    }
    expect(() => parseWhere('store.available < 87 and store.qty > 1')).toThrow(
      '--where takes one predicate, and a value with spaces is quoted: "87 and store.qty > 1" is neither',
    )
    expect(() => parseWhere('store.city = New York')).toThrow('--where takes one predicate')
    for (const value of ["'abc", '"abc', '"', '\'abc"'])
      expect(() => parseWhere(`store.sku = ${value}`)).toThrow(
        `--where: the quote that opens ${JSON.stringify(value)} is not closed`,
      )
    expect(parseWhere('store.sku = ""').value).toBe('')
  })

  it('names a stage holding a dot or a space in double quotes', () => {
    expect(parseWhere('"orders.parse".qty = 2')).toMatchObject({
      stage: 'orders.parse',
      side: 'output',
      jsonPath: '$."qty"',
      value: 2,
    })
    expect(parseWhere('"step 2".input.a contains x')).toMatchObject({ stage: 'step 2', side: 'input' })
    expect(parseWhere('"say \\"hi\\"".v = 1').stage).toBe('say "hi"')
    expect(() => parseWhere('"orders.parse.qty = 2')).toThrow('cannot read --where')
  })
})
