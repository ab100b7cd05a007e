import { describe, expect, it } from 'vitest'
import {
  compilePath,
  formatPath,
  getAt,
  matchPath,
  type PathPart,
  PathSyntaxError,
  parsePath,
} from '../../src/codec/index.js'

const matches = (pattern: string, path: PathPart[]): boolean => matchPath(parsePath(pattern), path)

describe('parsePath', () => {
  it('reads key names in any script, as JavaScript spells them', () => {
    expect(parsePath('$.client.téléphone')).toEqual([
      { kind: 'key', name: 'client' },
      { kind: 'key', name: 'téléphone' },
    ])
    expect(parsePath('$..κωδικός')).toEqual([{ kind: 'descend' }, { kind: 'key', name: 'κωδικός' }])
    expect(parsePath('出荷.数量')).toEqual([
      { kind: 'key', name: '出荷' },
      { kind: 'key', name: '数量' },
    ])
    expect(() => parsePath('$.✓')).toThrow(/expected a key name/)
  })

  it('parses keys, descent, wildcards, quoted keys and indexes', () => {
    expect(parsePath('$.customer.phone')).toEqual([
      { kind: 'key', name: 'customer' },
      { kind: 'key', name: 'phone' },
    ])
    expect(parsePath('$..password')).toEqual([{ kind: 'descend' }, { kind: 'key', name: 'password' }])
    expect(parsePath('$.items[*].card')).toEqual([
      { kind: 'key', name: 'items' },
      { kind: 'wild' },
      { kind: 'key', name: 'card' },
    ])
    expect(parsePath("$['odd key']")).toEqual([{ kind: 'key', name: 'odd key' }])
    expect(parsePath('$["odd key"].x')).toEqual([
      { kind: 'key', name: 'odd key' },
      { kind: 'key', name: 'x' },
    ])
    expect(parsePath("$['it\\'s']")).toEqual([{ kind: 'key', name: "it's" }])
    expect(parsePath('$["a\\tb"]')).toEqual([{ kind: 'key', name: 'a\tb' }])
    expect(parsePath('$.lines[3].qty')).toEqual([
      { kind: 'key', name: 'lines' },
      { kind: 'index', index: 3 },
      { kind: 'key', name: 'qty' },
    ])
    expect(parsePath('$.*')).toEqual([{ kind: 'wild' }])
    expect(parsePath('$..*')).toEqual([{ kind: 'descend' }, { kind: 'wild' }])
    expect(parsePath('$..[0]')).toEqual([{ kind: 'descend' }, { kind: 'index', index: 0 }])
    expect(parsePath('$[ 2 ]')).toEqual([{ kind: 'index', index: 2 }])
    expect(parsePath('$.x-request-id')).toEqual([{ kind: 'key', name: 'x-request-id' }])
  })

  it('reads a bare path as rooted, and the empty path as the root', () => {
    expect(parsePath('customer.phone')).toEqual(parsePath('$.customer.phone'))
    expect(parsePath('$')).toEqual([])
    expect(parsePath('')).toEqual([])
  })

  it('keeps a ] inside a quoted key', () => {
    expect(parsePath("$['a]b']")).toEqual([{ kind: 'key', name: 'a]b' }])
    expect(parsePath('$["x]"][1]')).toEqual([
      { kind: 'key', name: 'x]' },
      { kind: 'index', index: 1 },
    ])
  })

  const bad: [string, number, RegExp][] = [
    ['$.', 3, /expected a key name/],
    ['$.a[x]', 5, /expected \*, an index or a quoted key/],
    ['$.a[1', 4, /missing '\]'/],
    ['$a', 2, /expected '\.' or '\['/],
    ['$.a b', 4, /expected '\.' or '\['/],
    ['$..', 4, /expected a key name/],
    ['$.a[-1]', 5, /expected \*, an index or a quoted key/],
    ["$['open", 3, /missing closing '/],
    ["$['k' x]", 7, /missing '\]'/],
    // Bare paths report columns in the text as written, not in a rewritten `$.` form.
    ['a b', 2, /expected '\.' or '\['/],
    ['a.', 3, /expected a key name/],
  ]

  it.each(bad)('rejects %j at column %i', (text, column, reason) => {
    let caught: unknown
    try {
      parsePath(text)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(PathSyntaxError)
    const err = caught as PathSyntaxError
    expect(err.path).toBe(text)
    expect(err.column + 1).toBe(column)
    expect(err.message).toContain(`at column ${column}`)
    expect(err.message).toContain(JSON.stringify(text))
    expect(err.message).toMatch(reason)
  })
})

describe('matchPath', () => {
  it('matches a fixed path exactly, and nothing below or above it', () => {
    expect(matches('$.customer.phone', ['customer', 'phone'])).toBe(true)
    expect(matches('$.customer.phone', ['customer'])).toBe(false)
    expect(matches('$.customer.phone', ['customer', 'phone', 'x'])).toBe(false)
    expect(matches('$.customer.phone', ['other', 'phone'])).toBe(false)
  })

  it('matches .. at any depth, including directly under the root', () => {
    for (const path of [['password'], ['a', 'password'], ['a', 0, 'b', 'password'], [1, 2, 3, 'password']]) {
      expect(matches('$..password', path)).toBe(true)
    }
    expect(matches('$..password', ['password', 'x'])).toBe(false)
    expect(matches('$..password', ['passwords'])).toBe(false)
    expect(matches('$.a..b', ['a', 'x', 'y', 'b'])).toBe(true)
    expect(matches('$.a..b', ['z', 'b'])).toBe(false)
  })

  it('matches [*] over every index and * over every key', () => {
    expect(matches('$.items[*].card', ['items', 0, 'card'])).toBe(true)
    expect(matches('$.items[*].card', ['items', 41, 'card'])).toBe(true)
    expect(matches('$.items[*].card', ['items', 'card'])).toBe(false)
    expect(matches('$.items[*].card', ['items', 0, 'x', 'card'])).toBe(false)
    expect(matches('$.*.id', ['anything', 'id'])).toBe(true)
  })

  it('matches an index only against that array position', () => {
    expect(matches('$.a[2]', ['a', 2])).toBe(true)
    expect(matches('$.a[2]', ['a', 1])).toBe(false)
    expect(matches('$.a[2]', ['a', '2'])).toBe(false)
    expect(matches("$['odd key'].x", ['odd key', 'x'])).toBe(true)
  })
})

describe('formatPath and getAt', () => {
  it('formats concrete paths that parse back to the same keys and indexes', () => {
    const paths: PathPart[][] = [
      ['a', 'b', 0],
      ['odd key', 3, 'x'],
      ['with"quote', 'back\\slash'],
      ['a]b', '[x]'],
      ['tab\there', 'new\nline', 'nul\u0000'],
      [],
    ]
    for (const path of paths) {
      const text = formatPath(path)
      const segments = parsePath(text)
      expect(
        segments.map((s) => (s.kind === 'key' ? s.name : s.kind === 'index' ? s.index : s.kind)),
      ).toEqual(path)
    }
    expect(formatPath(['a', 0, 'odd key'])).toBe('$.a[0]["odd key"]')
  })

  it('reads values at a concrete path and gives undefined when absent', () => {
    const value = { a: { list: [{ x: 1 }, { x: 2 }] } }
    expect(getAt(value, parsePath('$.a.list[1].x'))).toBe(2)
    expect(getAt(value, parsePath('$.a.list[5].x'))).toBeUndefined()
    expect(getAt(value, parsePath('$.a.missing'))).toBeUndefined()
    // Inherited properties are not "at" a path.
    expect(getAt({}, parsePath('$.constructor'))).toBeUndefined()
  })

  it('compilePath keeps the source text', () => {
    const p = compilePath('$..password')
    expect(p.source).toBe('$..password')
    expect(p.segments).toEqual(parsePath('$..password'))
  })
})
