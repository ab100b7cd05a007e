import { describe, expect, it } from 'vitest'
import { storedQueryRedacted } from '../../src/codec/index.js'

/** The names below `$.v` a rule names in these tests: `token` and `sig`. */
const named = (below: readonly (string | number)[]): boolean =>
  below.length === 2 && below[0] === 'v' && (below[1] === 'token' || below[1] === 'sig')
const redacted = (text: unknown, secretUserinfo = false): boolean =>
  storedQueryRedacted(['v'], text, named, secretUserinfo)

describe('storedQueryRedacted', () => {
  it('reads stored text as the query string a URLSearchParams is stored as', () => {
    expect(redacted('token=x&page=2')).toBe(true)
    expect(redacted('page=2&sig=')).toBe(true)
    expect(redacted('page=2')).toBe(false)
    expect(redacted('token')).toBe(false)
    expect(redacted(42)).toBe(false)
  })

  it('reads stored text as the href a URL is stored as: its query, up to the fragment', () => {
    expect(redacted('https://h/p?token=x#frag')).toBe(true)
    expect(redacted('https://h/p?q=1&sig=abc')).toBe(true)
    expect(redacted('https://h/p?token')).toBe(true)
    expect(redacted('https://h/p?q=1')).toBe(false)
    expect(redacted('https://h/p?q=1#token=x')).toBe(false)
    expect(redacted('https://h/token?q=1')).toBe(false)
    expect(redacted('https://h/p')).toBe(false)
  })

  it('gives a rule the parameter at its name below the path, and nothing else', () => {
    const seen: (string | number)[][] = []
    storedQueryRedacted(['a', 0, 'url'], 'https://h/p?x=1&y=2#z', (below) => {
      seen.push([...below])
      return false
    })
    expect(seen).toContainEqual(['a', 0, 'url', 'x'])
    expect(seen).toContainEqual(['a', 0, 'url', 'y'])
    for (const path of seen) expect(path.slice(0, 3)).toEqual(['a', 0, 'url'])
    expect(seen.flat()).not.toContain('z')
  })

  it('with the default names on, reads a password in a URL userinfo as a secret', () => {
    expect(redacted('https://svc:pw@h/p', true)).toBe(true)
    expect(redacted('postgres://svc:p%40ss@db:5432/app', true)).toBe(true)
    expect(redacted('https://svc:pw@h/p', false)).toBe(false)
    expect(redacted('https://svc@h/p', true)).toBe(false)
    expect(redacted('https://h/p?next=a:b@c', true)).toBe(false)
    // Text that only holds a URL somewhere in it is not read as one.
    expect(redacted('see https://svc:pw@h/p', true)).toBe(false)
  })
})
