import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { maxDecodeDepth } from '../../src/codec/decode.js'
import {
  DecodeError,
  decode,
  decodeRaw,
  defaultLimits,
  encode,
  isUnrecorded,
  PayloadError,
  parseJson,
  Redactor,
  unrecordedMarker,
} from '../../src/codec/index.js'

const roundTrip = (value: unknown): unknown => decode(encode(value))

function nest(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf
  for (let i = 0; i < depth; i++) v = { a: v }
  return v
}

describe('encode/decode round-trip', () => {
  it('round-trips Dates, including an invalid one', () => {
    const d = new Date('2026-01-02T03:04:05.678Z')
    const back = roundTrip(d)
    expect(back).toBeInstanceOf(Date)
    expect((back as Date).toISOString()).toBe('2026-01-02T03:04:05.678Z')

    const invalid = roundTrip(new Date(Number.NaN))
    expect(invalid).toBeInstanceOf(Date)
    expect(Number.isNaN((invalid as Date).getTime())).toBe(true)
  })

  it('round-trips BigInts, big and negative', () => {
    const big = 2n ** 100n + 7n
    expect(roundTrip(big)).toBe(big)
    expect(roundTrip(-12n)).toBe(-12n)
    expect(roundTrip({ n: 0n })).toEqual({ n: 0n })
  })

  it('round-trips Buffer as Buffer and Uint8Array as Uint8Array', () => {
    const buf = Buffer.from([0, 1, 2, 250, 255])
    const back = roundTrip(buf)
    expect(Buffer.isBuffer(back)).toBe(true)
    expect([...(back as Buffer)]).toEqual([0, 1, 2, 250, 255])

    // A view into a larger buffer: only the viewed bytes are recorded.
    const whole = new Uint8Array([9, 9, 1, 2, 3, 9])
    const view = whole.subarray(2, 5)
    const bytes = roundTrip(view)
    expect(Buffer.isBuffer(bytes)).toBe(false)
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect([...(bytes as Uint8Array)]).toEqual([1, 2, 3])
  })

  it('round-trips every other typed array as its kind, little-endian, only the viewed elements', () => {
    const arrays = [
      new Int8Array([-128, 0, 127]),
      new Uint8ClampedArray([0, 3, 255]),
      new Int16Array([-32768, -1, 32767]),
      new Uint16Array([0, 65535]),
      new Int32Array([-(2 ** 31), 7]),
      new Uint32Array([2 ** 32 - 1]),
      new Float32Array([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY, 0.1]),
      new Float64Array([Math.PI, -0, Number.NaN, Number.NEGATIVE_INFINITY]),
      new BigInt64Array([-(2n ** 63n), 5n]),
      new BigUint64Array([2n ** 64n - 1n]),
      new Float64Array(0),
    ]
    for (const a of arrays) {
      const back = roundTrip(a)
      expect(back).toBeInstanceOf(a.constructor)
      expect(back).toStrictEqual(a)
    }
    expect(encode(new Float32Array([1.5, 2]))).toBe(
      '{"$t":"typedarray","k":"Float32Array","v":"AADAPwAAAEA="}',
    )
    // 0x0102 as an Int16 is stored 02 01, whatever the host's byte order.
    expect(encode(new Int16Array([0x0102]))).toBe('{"$t":"typedarray","k":"Int16Array","v":"AgE="}')

    const whole = new Float64Array([9, 1, 2, 9])
    expect(roundTrip(whole.subarray(1, 3))).toStrictEqual(new Float64Array([1, 2]))
    // A subclass, or a Symbol.toStringTag of its own, does not change what kind it is recorded as.
    class Samples extends Float32Array {}
    const samples = Object.defineProperty(new Samples([0.5]), Symbol.toStringTag, { value: 'Int8Array' })
    expect(roundTrip(samples)).toStrictEqual(new Float32Array([0.5]))
    expect(roundTrip({ [Symbol.toStringTag]: 'Float32Array', 0: 1 })).toEqual({ 0: 1 })
    // Nested, in a Map, beside other tags.
    const nested = { embedding: new Float32Array([0.25, 0.5]), m: new Map([['ids', new Uint32Array([7])]]) }
    expect(roundTrip(nested)).toStrictEqual(nested)
  })

  it('round-trips ArrayBuffer, SharedArrayBuffer and DataView with their bytes', () => {
    const ab = new Uint8Array([1, 2, 3]).buffer
    const back = roundTrip(ab)
    expect(back).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(back as ArrayBuffer)]).toEqual([1, 2, 3])
    expect(encode(ab)).toBe('{"$t":"arraybuffer","v":"AQID"}')

    const sab = new SharedArrayBuffer(2)
    new Uint8Array(sab).set([4, 5])
    const sabBack = roundTrip(sab)
    expect(sabBack).toBeInstanceOf(SharedArrayBuffer)
    expect([...new Uint8Array(sabBack as SharedArrayBuffer)]).toEqual([4, 5])

    // A DataView records the bytes it views, not the whole buffer under it.
    const dv = new DataView(new Uint8Array([9, 6, 7, 9]).buffer, 1, 2)
    const dvBack = roundTrip(dv)
    expect(dvBack).toBeInstanceOf(DataView)
    expect([(dvBack as DataView).byteLength, (dvBack as DataView).getUint16(0)]).toEqual([2, 0x0607])

    // A typed array over shared memory is recorded as the typed array.
    expect(roundTrip(new Int32Array(new SharedArrayBuffer(8)))).toStrictEqual(new Int32Array(2))
  })

  it('records a buffer handed to another thread (detached) as empty, not as unserialisable', () => {
    const ab = new ArrayBuffer(8)
    const f32 = new Float32Array(new ArrayBuffer(8))
    structuredClone([ab, f32.buffer], { transfer: [ab, f32.buffer] })
    expect(roundTrip(ab)).toStrictEqual(new ArrayBuffer(0))
    expect(roundTrip(f32)).toStrictEqual(new Float32Array(0))
  })

  it('records boxed primitives as the primitives they hold, as JSON.stringify does', () => {
    const boxed = [new Number(3), new String('x'), new Boolean(false), Object(5n), new Number(Number.NaN)]
    expect(roundTrip(boxed)).toStrictEqual([3, 'x', false, 5n, Number.NaN])
    expect(encode({ n: new Number(3), s: new String('x') })).toBe('{"n":3,"s":"x"}')
    // A box's own valueOf is not asked (it could lie or throw).
    const liar = Object.assign(new Number(1), { valueOf: () => 2 })
    expect(roundTrip(liar)).toBe(1)
    // A boxed Symbol is dropped like a Symbol.
    expect(roundTrip({ a: 1, s: Object(Symbol('s')) })).toEqual({ a: 1 })
  })

  it('round-trips Map and Set with typed keys and values', () => {
    const m = new Map<unknown, unknown>([
      ['a', 1],
      [2, new Date(0)],
      [3n, new Set([1, 'x', undefined])],
      [{ k: 1 }, Number.NaN],
    ])
    const back = roundTrip(m) as Map<unknown, unknown>
    expect(back).toBeInstanceOf(Map)
    const entries = [...back.entries()]
    expect(entries[0]).toEqual(['a', 1])
    expect(entries[1]![0]).toBe(2)
    expect((entries[1]![1] as Date).getTime()).toBe(0)
    expect(entries[2]![0]).toBe(3n)
    expect(entries[2]![1]).toEqual(new Set([1, 'x', undefined]))
    expect(entries[3]![0]).toEqual({ k: 1 })
    expect(entries[3]![1]).toBeNaN()

    const s = roundTrip(new Set(['a', 1, null])) as Set<unknown>
    expect(s).toBeInstanceOf(Set)
    expect([...s]).toEqual(['a', 1, null])
  })

  it('records a Map keyed by objects whose toString is not a function, or throws', () => {
    // Found by the codec round-trip property: a Map key became a path segment via String().
    const odd = new Map<unknown, unknown>([[{ toString: new Date(0) }, 'a']])
    expect(roundTrip(odd)).toStrictEqual(odd)

    const throwing = {
      toString(): string {
        throw new Error('no text')
      },
    }
    const m = new Map<unknown, unknown>([
      [throwing, 'b'],
      [Object.create(null) as object, 'c'],
    ])
    expect([...(roundTrip(m) as Map<unknown, unknown>).values()]).toEqual(['b', 'c'])
    // A rule naming every entry of the Map still reaches entries with such keys.
    const redactor = new Redactor({ rules: ['$.m.*'], key: 'k' })
    const back = decode(encode({ m }, undefined, redactor)) as { m: Map<unknown, unknown> }
    expect([...back.m.values()].every((v) => String(v).startsWith('[redacted:'))).toBe(true)
  })

  it('round-trips undefined at the top, in objects (key kept) and in arrays (slot kept)', () => {
    expect(roundTrip(undefined)).toBeUndefined()
    expect(encode(undefined)).toBe('{"$t":"undef"}')

    const obj = roundTrip({ a: undefined, b: 1 }) as Record<string, unknown>
    expect(Object.keys(obj)).toEqual(['a', 'b'])
    expect(obj.a).toBeUndefined()

    const arr = roundTrip([1, undefined, 3]) as unknown[]
    expect(arr).toHaveLength(3)
    expect(1 in arr).toBe(true)
    expect(arr[1]).toBeUndefined()
    expect(arr[2]).toBe(3)
  })

  it('round-trips NaN, ±Infinity and -0', () => {
    expect(roundTrip(Number.NaN)).toBeNaN()
    expect(roundTrip(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
    expect(roundTrip(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY)
    expect(Object.is(roundTrip(-0), -0)).toBe(true)
    expect(Object.is(roundTrip(0), 0)).toBe(true)
    const arr = roundTrip([-0, 0, Number.NaN]) as number[]
    expect(Object.is(arr[0], -0)).toBe(true)
    expect(Object.is(arr[1], 0)).toBe(true)
    expect(arr[2]).toBeNaN()
  })

  it('round-trips nested combinations', () => {
    const value = {
      order: {
        id: 17n,
        at: new Date('2026-05-01T00:00:00.000Z'),
        lines: [
          { sku: 'a', qty: -0, tags: new Set(['x']), blob: Buffer.from('hi') },
          { sku: 'b', qty: Number.POSITIVE_INFINITY, meta: new Map([['k', [undefined, Number.NaN]]]) },
        ],
        note: undefined,
      },
      list: [[new Map([[1, new Set([2n])]])]],
    }
    expect(roundTrip(value)).toEqual(value)
    const back = roundTrip(value) as typeof value
    expect(Object.is(back.order.lines[0]!.qty, -0)).toBe(true)
    expect(back.order.at).toBeInstanceOf(Date)
    expect(Buffer.isBuffer(back.order.lines[0]!.blob)).toBe(true)
  })

  it('escapes an object that has its own "$t" key and reads it back unchanged', () => {
    const tricky = { $t: 'date', v: 'not a date, just data' }
    const text = encode(tricky)
    expect(JSON.parse(text)).toEqual({ $t: 'obj', v: tricky })
    expect(roundTrip(tricky)).toEqual(tricky)

    const nested = { outer: { $t: 'undef' }, arr: [{ $t: 'map', v: [] }], also: { $t: 'obj', v: { x: 1 } } }
    expect(roundTrip(nested)).toEqual(nested)
  })

  it('round-trips Error values as name, message and code', () => {
    const err = Object.assign(new TypeError('bad thing'), { code: 'E_BAD' })
    const back = roundTrip(err) as Error & { code?: string }
    expect(back).toBeInstanceOf(Error)
    expect(back.name).toBe('TypeError')
    expect(back.message).toBe('bad thing')
    expect(back.code).toBe('E_BAD')
  })

  it('uses toJSON where a value defines it, like JSON.stringify', () => {
    class Money {
      constructor(readonly cents: number) {}
      toJSON(): string {
        return `${(this.cents / 100).toFixed(2)} EUR`
      }
    }
    class Plain {
      a = 1
      b = new Date(0)
    }
    const value = { url: new URL('https://shop.example/p?id=1'), price: new Money(87), inst: new Plain() }
    expect(roundTrip(value)).toEqual({
      url: 'https://shop.example/p?id=1',
      price: '0.87 EUR',
      inst: { a: 1, b: new Date(0) },
    })
    expect(encode({ toJSON: () => ({ n: 1n }) })).toBe(encode({ n: 1n }))
    expect(encode({ toJSON: () => ({ n: 1n }) })).toBe('{"n":{"$t":"bigint","v":"1"}}')
    // A toJSON that gives back its own object is written as that object's fields, as
    // JSON.stringify writes it, not refused as cyclic.
    const selfish = {
      toJSON() {
        return selfish
      },
    }
    expect(encode(selfish)).toBe(JSON.stringify(selfish))
    class Builder {
      where = { sku: 'a' }
      at = new Date(0)
      toJSON(): this {
        return this
      }
    }
    expect(roundTrip({ q: new Builder() })).toEqual({ q: { where: { sku: 'a' }, at: new Date(0) } })
    const list = Object.assign([1, 2n], { toJSON: () => list })
    expect(roundTrip(list)).toEqual([1, 2n])
    // What a toJSON gives is walked for cycles like anything else.
    const loop: { self?: unknown; toJSON(): unknown } = { toJSON: () => ({ back: loop }) }
    expect(() => encode(loop)).toThrow(PayloadError)
  })

  it('drops functions and symbols the way JSON does', () => {
    expect(roundTrip({ a: 1, f: () => 1, s: Symbol('x') })).toEqual({ a: 1 })
    expect(roundTrip(() => 1)).toBeUndefined()
  })
})

describe('built-ins whose state is not in own fields', () => {
  const headers = (): Headers =>
    new Headers([
      ['Content-Type', 'application/json'],
      ['X-Request-Id', 'r-1'],
      ['Accept', 'a'],
      ['accept', 'b'],
      ['Set-Cookie', 'a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT'],
      ['Set-Cookie', 'b=2'],
    ])

  it('records a RegExp and URLSearchParams as their text, Headers as its entries, all plain JSON', () => {
    const value = { pattern: /ab+c/gi, query: new URLSearchParams('a=1&b=x y&a=2'), headers: headers() }
    const text = encode(value)
    expect(JSON.parse(text)).toEqual({
      pattern: '/ab+c/gi',
      query: 'a=1&b=x+y&a=2',
      headers: {
        accept: 'a, b',
        'content-type': 'application/json',
        'set-cookie': ['a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2'],
        'x-request-id': 'r-1',
      },
    })
    expect(text).not.toContain('"$t"')
    expect(decode(text)).toEqual(JSON.parse(text))
    expect(roundTrip(/x/)).toBe('/x/')
    expect(roundTrip([new URLSearchParams()])).toEqual([''])
  })

  it('tells apart values of one kind that hold different things', () => {
    expect(encode({ p: /ab+c/i })).not.toBe(encode({ p: /xyz/ }))
    expect(encode({ p: /a/i })).not.toBe(encode({ p: /a/ }))
    expect(encode(new URLSearchParams('a=1'))).not.toBe(encode(new URLSearchParams('a=2')))
    expect(encode(new Headers({ a: '1' }))).not.toBe(encode(new Headers({ a: '2' })))
  })

  it("reads a RegExp's pattern and flags from the RegExp itself, not from getters a subclass or the value adds", () => {
    class Lying extends RegExp {
      override get flags(): string {
        return 'LIE'
      }
      override get source(): string {
        throw new Error('boom')
      }
    }
    const own = /x+/gi
    Object.defineProperty(own, 'global', {
      get() {
        throw new Error('no')
      },
    })
    expect(encode({ a: new Lying('a', 'g'), b: own, c: /a\/b/dgimsuy })).toBe(
      JSON.stringify({ a: '/a/g', b: '/x+/gi', c: '/a\\/b/dgimsuy' }),
    )
  })

  it('recognises a RegExp made in another realm', () => {
    const foreign = runInNewContext('/a.b/m') as RegExp
    expect(foreign instanceof RegExp).toBe(false)
    expect(roundTrip({ foreign })).toEqual({ foreign: '/a.b/m' })
  })

  it("reads them with the built-in methods, not the value's own", () => {
    const re = Object.assign(/ok/, {
      toString: () => {
        throw new Error('own toString')
      },
    })
    const h = Object.assign(new Headers({ a: '1' }), { entries: () => [['lie', 'x']] })
    const q = Object.assign(new URLSearchParams('a=1'), { toString: () => 'lie=1' })
    expect(roundTrip({ re, h, q })).toEqual({ re: '/ok/', h: { a: '1' }, q: 'a=1' })
  })

  it('records a look-alike that is not one by its own fields, and never throws to ask', () => {
    const fakeQuery = Object.assign(Object.create(URLSearchParams.prototype), { a: 1 })
    const fakeHeaders = Object.assign(Object.create(Headers.prototype), { b: 2 })
    expect(roundTrip({ fakeQuery, fakeHeaders })).toEqual({ fakeQuery: { a: 1 }, fakeHeaders: { b: 2 } })
    const proxied = new Proxy(new URLSearchParams('a=1'), {})
    expect(roundTrip({ proxied })).toEqual({ proxied: {} })
    // The global Headers gone (Node run with --no-experimental-fetch) or replaced by a host
    // with one whose `instanceof` throws: asking whether a value is one must not throw.
    class Row {
      n = 1
    }
    const Hostile = Object.defineProperty(() => {}, Symbol.hasInstance, {
      value: () => {
        throw new Error('hostile hasInstance')
      },
    })
    const headers = new Headers({ a: '1' })
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'Headers')!
    try {
      for (const replacement of [undefined, Hostile]) {
        Object.defineProperty(globalThis, 'Headers', {
          value: replacement,
          configurable: true,
          writable: true,
        })
        expect(roundTrip({ row: new Row(), re: /x/, headers })).toEqual({
          row: { n: 1 },
          re: '/x/',
          headers: {},
        })
      }
    } finally {
      Object.defineProperty(globalThis, 'Headers', saved)
    }
  })

  it('uses toJSON where one of them defines it, like JSON.stringify', () => {
    const re = Object.assign(/x/, { toJSON: () => 'own' })
    expect(roundTrip({ re })).toEqual({ re: 'own' })
  })

  it('escapes a header named "$t" and drops one named "__proto__", as for any object', () => {
    const h = new Headers([
      ['$t', 'date'],
      ['__proto__', 'x'],
      ['v', 'y'],
    ])
    const back = roundTrip({ h }) as { h: Record<string, unknown> }
    expect(back.h).toEqual({ $t: 'date', v: 'y' })
    expect(Object.getPrototypeOf(back.h)).toBe(Object.prototype)
  })

  it('redacts a secret header and a query string holding a secret parameter by the default names', () => {
    const redactor = new Redactor()
    const value = {
      headers: new Headers({ Authorization: 'Bearer s3cret', Cookie: 'sid=s3cret', 'X-Id': '7' }),
      query: new URLSearchParams('q=shoes&access_token=s3cret'),
      plainQuery: new URLSearchParams('q=shoes'),
    }
    const text = encode(value, defaultLimits, redactor)
    expect(text).not.toContain('s3cret')
    expect(decode(text)).toEqual({
      headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-id': '7' },
      query: '[redacted]',
      plainQuery: 'q=shoes',
    })
    // A Headers as the whole payload: its entries are keys all the same.
    expect(decode(encode(new Headers({ authorization: 'x' }), defaultLimits, redactor))).toEqual({
      authorization: '[redacted]',
    })
  })

  it('redacts by path rules into headers and query parameters', () => {
    const redactor = new Redactor({ rules: ['$.h["x-user"]', '$.q.email'], defaults: false })
    const value = {
      h: new Headers({ 'X-User': 'ann', 'X-Id': '7' }),
      q: new URLSearchParams('email=ann@example.com&page=2'),
      other: new URLSearchParams('page=2'),
    }
    expect(decode(encode(value, defaultLimits, redactor))).toEqual({
      h: { 'x-user': '[redacted]', 'x-id': '7' },
      q: '[redacted]',
      other: 'page=2',
    })
  })

  it('gives equality-preserving tokens by what the value holds', () => {
    const redactor = new Redactor({ rules: ['$.v'], key: 'k' })
    const token = (v: unknown): unknown =>
      (decode(encode({ v }, defaultLimits, redactor)) as { v: unknown }).v
    expect(token(/a/)).toBe(token(/a/))
    expect(token(/a/)).not.toBe(token(/b/))
    expect(token(new URLSearchParams('a=1'))).not.toBe(token(new URLSearchParams('a=2')))
    expect(token(new Headers({ a: '1' }))).not.toBe(token(new Headers({ a: '2' })))
    expect(token(new Headers({ a: '1' }))).toBe(token(new Headers({ A: '1' })))
    // A URL by its text: every URL has the same (no) own fields.
    expect(token(new URL('https://h/p?a=1'))).toBe(token(new URL('https://h/p?a=1')))
    expect(token(new URL('https://h/p?a=1'))).not.toBe(token(new URL('https://h/p?a=2')))
  })
})

describe('a URL', () => {
  it('is recorded as its href, as its toJSON gives it, when nothing in it is a secret', () => {
    const url = new URL('https://shop.example/p?id=1&page=2#top')
    expect(encode({ url }, defaultLimits, new Redactor())).toBe(JSON.stringify({ url: url.href }))
    expect(encode({ url }, defaultLimits, new Redactor({ rules: ['$.url.q'] }))).toBe(
      JSON.stringify({ url: url.href }),
    )
    expect(encode({ url })).toBe(JSON.stringify({ url }))
    expect(encode(url, defaultLimits, new Redactor())).toBe(JSON.stringify(url.href))
  })

  it('is redacted whole when a query parameter has a default secret name, or the userinfo a password', () => {
    const redactor = new Redactor()
    const value = {
      token: new URL('https://api.example/v1?token=s3cret-a&q=2'),
      access: new URL('https://api.example/v1?access_token=s3cret-b'),
      apiKey: new URL('https://api.example/v1?q=1&api_key=s3cret-c#frag'),
      bare: new URL('https://api.example/v1?password'),
      userinfo: new URL('https://svc:s3cret-d@db.example/p'),
      list: [new URL('https://api.example/v1?sessionId=s3cret-e')],
      user: new URL('https://svc@db.example/p'),
      plain: new URL('https://api.example/v1?q=2'),
    }
    const text = encode(value, defaultLimits, redactor)
    expect(text).not.toContain('s3cret')
    expect(decode(text)).toEqual({
      token: '[redacted]',
      access: '[redacted]',
      apiKey: '[redacted]',
      bare: '[redacted]',
      userinfo: '[redacted]',
      list: ['[redacted]'],
      user: 'https://svc@db.example/p',
      plain: 'https://api.example/v1?q=2',
    })
  })

  it('is redacted whole by a path rule naming one of its parameters', () => {
    const redactor = new Redactor({ rules: ['$.url.q', '$..link.sig'], defaults: false })
    const value = {
      url: new URL('https://h/search?q=ann@example.com&page=2'),
      other: new URL('https://h/search?q=x'),
      nested: { link: new URL('https://h/f?sig=abc') },
    }
    expect(decode(encode(value, defaultLimits, redactor))).toEqual({
      url: '[redacted]',
      other: 'https://h/search?q=x',
      nested: { link: '[redacted]' },
    })
  })

  it('keeps a userinfo password and secret names with the defaults off', () => {
    const redactor = new Redactor({ rules: ['$.x'], defaults: false })
    const url = new URL('https://svc:pw@h/p?token=t')
    expect(decode(encode({ url }, defaultLimits, redactor))).toEqual({ url: url.href })
  })

  it('is read as a URL whatever toJSON it has, and only its text is asked of it', () => {
    const redactor = new Redactor()
    class Sneaky extends URL {
      override toJSON(): string {
        return 'nothing to see'
      }
    }
    Object.defineProperty(Sneaky.prototype, 'href', { get: () => 'https://h/clean' })
    const own = Object.assign(new URL('https://h/p?token=s3cret'), { toJSON: () => 'clean' })
    const text = encode({ a: new Sneaky('https://h/p?token=s3cret'), b: own }, defaultLimits, redactor)
    expect(decode(text)).toEqual({ a: '[redacted]', b: '[redacted]' })
    // Without rules both are their text, as the URL holds it.
    expect(decode(encode({ a: new Sneaky('https://h/p?q=1'), b: new URL('https://h/p?q=1') }))).toEqual({
      a: 'https://h/p?q=1',
      b: 'https://h/p?q=1',
    })
  })

  it('gives equal tokens for equal URLs and different ones for different URLs', () => {
    const redactor = new Redactor({ key: 'k' })
    const token = (url: URL): unknown =>
      (decode(encode({ url }, defaultLimits, redactor)) as { url: unknown }).url
    const a = token(new URL('https://h/p?token=one'))
    expect(a).toMatch(/^\[redacted:[\w-]{16}\]$/)
    expect(token(new URL('https://h/p?token=one'))).toBe(a)
    expect(token(new URL('https://h/p?token=two'))).not.toBe(a)
    expect(token(new URL('https://u:one@h/p'))).not.toBe(token(new URL('https://u:two@h/p')))
  })
})

describe('plain JSON stays plain', () => {
  const plain: unknown[] = [
    null,
    true,
    0,
    1.5,
    -3,
    1e21,
    'text with "quotes", \\ and \n newline',
    'unicode: ☃ 日本 😀',
    [],
    {},
    [1, 'a', null, [2, [3]]],
    { a: 1, nested: { b: [true, false], c: 'x' }, empty: {}, list: [] },
    { 'odd key': 1, 'with.dot': 2, '0': 3 },
    Object.assign(Object.create(null), { a: 1 }),
  ]

  it.each(plain.map((v) => [JSON.stringify(v), v]))(
    '%s encodes byte-identically to JSON.stringify',
    (_, v) => {
      expect(encode(v)).toBe(JSON.stringify(v))
      expect(decode(encode(v))).toEqual(v)
    },
  )

  it('stores shared (non-cyclic) references twice, like JSON', () => {
    const shared = { x: 1 }
    const v = { a: shared, b: shared, c: [shared, shared] }
    expect(encode(v)).toBe(JSON.stringify(v))
  })

  it('escapes a "$t" key and drops a "__proto__" key at any depth', () => {
    const deep = parseJson('{"a":[{"b":{"$t":"date","v":1}}],"c":{"__proto__":{"x":1},"d":2}}')
    expect(JSON.parse(encode(deep))).toEqual({
      a: [{ b: { $t: 'obj', v: { $t: 'date', v: 1 } } }],
      c: { d: 2 },
    })
    expect(roundTrip(deep)).toEqual({ a: [{ b: { $t: 'date', v: 1 } }], c: { d: 2 } })
  })

  it('writes an array of any prototype as its items, and one with a toJSON as what that gives', () => {
    class Items extends Array<number> {}
    const sub = Items.from([1, 2])
    expect(encode({ sub })).toBe('{"sub":[1,2]}')
    const own = Object.assign([1, 2], { toJSON: () => ({ n: 1n }) })
    expect(encode({ own })).toBe('{"own":{"n":{"$t":"bigint","v":"1"}}}')
    class Summed extends Array<number> {
      toJSON(): number {
        return this.reduce((a, b) => a + b, 0)
      }
    }
    expect(encode({ sum: Summed.from([1, 2, 3]) })).toBe('{"sum":6}')
  })
})

describe('payloads that cannot be recorded', () => {
  /** The problem encode() names for a value it refuses; undefined when it encodes it. */
  const problemOf = (value: unknown, limits = defaultLimits): string | undefined => {
    try {
      encode(value, limits)
      return undefined
    } catch (err) {
      expect(err).toBeInstanceOf(PayloadError)
      return (err as PayloadError).problem
    }
  }

  it('throws PayloadError(cyclic) for cycles through objects, arrays, Maps and Sets', () => {
    const obj: Record<string, unknown> = { a: 1 }
    obj.self = obj
    const arr: unknown[] = [1]
    arr.push({ back: arr })
    const map = new Map<string, unknown>()
    map.set('me', map)
    const set = new Set<unknown>()
    set.add([set])
    const withDate: Record<string, unknown> = { when: new Date(0) }
    withDate.loop = { up: withDate }

    for (const v of [obj, arr, map, set, withDate]) expect(problemOf(v)).toBe('cyclic')
  })

  it('names a cycle as cyclic even where the walk would reach the size cap or the depth limit first', () => {
    // Each turn of the loop adds a kilobyte: unchecked, the cap is passed within 50 turns.
    const wide: Record<string, unknown> = { text: 'x'.repeat(1000) }
    wide.again = { more: 'y'.repeat(1000), back: wide }
    // A loop of 40 objects under a depth limit of 50.
    const ring: Record<string, unknown>[] = Array.from({ length: 40 }, (_, i) => ({ i }))
    ring.forEach((o, i) => {
      o.next = ring[(i + 1) % ring.length]
    })
    expect(problemOf(wide, { maxBytes: 50_000, maxDepth: 512 })).toBe('cyclic')
    expect(problemOf(ring[0], { maxBytes: defaultLimits.maxBytes, maxDepth: 50 })).toBe('cyclic')
  })

  it('hands a value JSON would change to the tagged walk wherever it sits: top level, array item, field', () => {
    const odd: [string, unknown][] = [
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
      ['-0', -0],
      ['undefined', undefined],
      ['bigint', 12n],
    ]
    for (const [name, v] of odd) {
      const places: unknown[] = [v, [1, 'a', v], { a: 1, b: v }, { rows: [{ x: [true, null, v] }] }]
      for (const value of places) {
        const back = roundTrip(value)
        expect(back, `${name} in ${JSON.stringify(places.indexOf(value))}`).toStrictEqual(value)
        // -0 survives only as its tag: toStrictEqual tells 0 from -0 through Object.is.
        if (name === '-0') expect(encode(value)).toContain('"-0"')
      }
    }
    // A function or symbol as a field is omitted and as an item is null, as JSON does.
    expect(encode({ a: 1, f: () => 1, s: Symbol('x') })).toBe('{"a":1}')
    expect(decode(encode([1, () => 1]))).toStrictEqual([1, undefined])
    // Plain numbers, 0 among them, stay plain.
    expect(encode({ a: [0, 1.5, -2, 1e300], b: 0 })).toBe('{"a":[0,1.5,-2,1e+300],"b":0}')
  })

  it('throws PayloadError(too-large) with the size, on both the plain and the tagged path', () => {
    const limits = { maxBytes: 100, maxDepth: 512 }
    const plain = { s: 'x'.repeat(200) }
    let caught: unknown
    try {
      encode(plain, limits)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(PayloadError)
    expect((caught as PayloadError).problem).toBe('too-large')
    expect((caught as PayloadError).size).toBe(JSON.stringify(plain).length)
    expect((caught as PayloadError).message).toContain(String(JSON.stringify(plain).length))

    const tagged = { s: 'x'.repeat(200), n: 1n }
    expect(() => encode(tagged, limits)).toThrow(PayloadError)
    try {
      encode(tagged, limits)
    } catch (err) {
      expect((err as PayloadError).size).toBeGreaterThan(200)
    }

    // Exactly at the cap is fine.
    expect(encode('x'.repeat(98), limits)).toHaveLength(100)
  })

  it('refuses an array whose length alone passes the cap, before reading its items', () => {
    // Holes are not plain JSON: before, the walk gave up on the first one and the tagged walk
    // built a copy of every item only to refuse it afterwards.
    const holes = new Array(4_000_000)
    const getter = vi.fn(() => 1)
    const spied = new Array(10_000)
    Object.defineProperty(spied, 0, { get: getter, enumerable: true })
    for (const value of [holes, spied]) {
      let caught: unknown
      try {
        encode(value, { maxBytes: 1000, maxDepth: 512 })
      } catch (err) {
        caught = err
      }
      expect((caught as PayloadError).problem).toBe('too-large')
    }
    expect(getter).not.toHaveBeenCalled()
  })

  it('stops at the cap on the tagged path too, without copying what is far over it', () => {
    const limits = { maxBytes: 1000, maxDepth: 512 }
    const iso = vi.spyOn(Date.prototype, 'toISOString')
    const base64 = vi.spyOn(Buffer.prototype, 'toString')
    const problems: unknown[] = []
    try {
      for (const value of [
        Array.from({ length: 100_000 }, (_, i) => new Date(i)),
        { file: Buffer.alloc(5_000_000) },
        new Float64Array(1_000_000),
        Array.from({ length: 100_000 }, (_, i) => BigInt(i)),
      ]) {
        try {
          encode(value, limits)
        } catch (err) {
          problems.push((err as PayloadError).problem)
          expect((err as PayloadError).size).toBeGreaterThan(1000)
        }
      }
      // Each refused within the first few dozen items, before any binary was encoded.
      expect(iso.mock.calls.length).toBeLessThan(100)
      expect(base64).not.toHaveBeenCalled()
    } finally {
      iso.mockRestore()
      base64.mockRestore()
    }
    expect(problems).toEqual(['too-large', 'too-large', 'too-large', 'too-large'])
    // Just under the cap, the tagged path still takes it whole.
    const dates = Array.from({ length: 20 }, (_, i) => new Date(i))
    expect(decode(encode(dates, limits))).toEqual(dates)
  })

  it('stops at the cap, without serialising a plain value far over it', () => {
    const limits = { maxBytes: 1000, maxDepth: 512 }
    const big = { rows: Array.from({ length: 10_000 }, (_, i) => ({ id: i, name: 'x'.repeat(50) })) }
    const whole = JSON.stringify(big).length
    const stringify = vi.spyOn(JSON, 'stringify')
    let caught: unknown
    try {
      encode(big, limits)
    } catch (err) {
      caught = err
    } finally {
      expect(stringify).not.toHaveBeenCalled()
      stringify.mockRestore()
    }
    expect(caught).toBeInstanceOf(PayloadError)
    expect((caught as PayloadError).problem).toBe('too-large')
    expect((caught as PayloadError).message).toMatch(
      /^payload is over the 1000 byte cap \(at least \d+ bytes\)$/,
    )
    // A lower bound of the size: over the cap, never over what the whole value would take.
    expect((caught as PayloadError).size).toBeGreaterThan(1000)
    expect((caught as PayloadError).size).toBeLessThan(whole)
    // Values just under the cap, of every plain kind, are still written whole.
    const under = { a: [1, -2.5, true, false, null, 'é"\\n'], b: {}, c: [], d: { e: 'x'.repeat(900) } }
    const text = JSON.stringify(under)
    expect(encode(under, { maxBytes: text.length, maxDepth: 512 })).toBe(text)
    expect(() => encode(under, { maxBytes: text.length - 1, maxDepth: 512 })).toThrow(PayloadError)
  })

  it('writes every plain value whose JSON fits the cap, and refuses every one that does not', () => {
    // Characters JSON escapes (quotes, controls, lone surrogates) and keys made of them, so
    // the walk's lower bound is tried where the text is longest against the string.
    const text = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0001', '\ud800', '\udc00', 'a', '\u2028') }),
    )
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.double({ noDefaultInfinity: true, noNaN: true }).filter((n) => !Object.is(n, -0)),
        text,
        fc.array(tie('value')),
        fc.dictionary(text, tie('value')),
      ),
    }))
    fc.assert(
      fc.property(value, fc.nat(64), (v, slack) => {
        const json = JSON.stringify(v)
        for (const cap of [json.length, json.length + slack])
          expect(encode(v, { maxBytes: cap, maxDepth: 512 })).toBe(json)
        if (json.length > 0)
          expect(() => encode(v, { maxBytes: json.length - 1, maxDepth: 512 })).toThrow(PayloadError)
      }),
      { numRuns: 500, seed: 7 },
    )
  })

  it('throws PayloadError(too-deep) past the depth limit, plain or tagged', () => {
    const limits = { maxBytes: defaultLimits.maxBytes, maxDepth: 50 }
    expect(encode(nest(49), limits)).toBe(JSON.stringify(nest(49)))
    for (const v of [nest(60), nest(60, 1n)]) expect(problemOf(v, limits)).toBe('too-deep')
    // The default limit also holds back values deep enough to threaten the stack.
    expect(() => encode(nest(100_000))).toThrow(PayloadError)
  })

  it('unrecordedMarker keeps the reason and size, and decodes as an Unrecorded value', () => {
    const marker = unrecordedMarker(new PayloadError('too-large', 'payload is 5000 bytes', 5000))
    const back = decode(marker)
    expect(isUnrecorded(back)).toBe(true)
    expect(back).toMatchObject({ $t: 'unrecorded', reason: 'too-large', size: 5000 })
    expect(isUnrecorded(decode(unrecordedMarker(new PayloadError('cyclic', 'payload is cyclic'))))).toBe(true)
    expect(isUnrecorded({ a: 1 })).toBe(false)
  })
})

describe('decoding untrusted text', () => {
  const hostile = [
    '{"__proto__":{"polluted":"yes"}}',
    '{"a":{"__proto__":{"polluted":"yes"}}}',
    '{"a":[{"b":{"__proto__":{"polluted":"yes"}}}]}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"a":{"b":{"constructor":{"prototype":{"polluted":"yes"}}}}}',
    '[{"constructor":{"prototype":{"polluted":"yes"}}}]',
    '{"\\u005f_proto__":{"polluted":"yes"}}',
    '{"\\u0063onstructor":{"prototype":{"polluted":"yes"}}}',
    '{"__proto__" :{"polluted":"yes"}}',
    '\uFEFF{"__proto__":{"polluted":"yes"}}',
    '{"$t":"obj","v":{"__proto__":{"polluted":"yes"}}}',
    '{"$t":"map","v":[["k",{"__proto__":{"polluted":"yes"}}]]}',
    '{"$t":"set","v":[{"constructor":{"prototype":{"polluted":"yes"}}}]}',
    '{"$t":"error","v":{"message":"m","__proto__":{"polluted":"yes"}}}',
  ]

  it.each(hostile)('decode(%s) pollutes no prototype', (text) => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    const value = decode(text)
    decodeRaw(text)
    parseJson(text)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before)
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined()
    // Nothing reachable in the result has a swapped prototype either.
    const stack: unknown[] = [value]
    while (stack.length > 0) {
      const v = stack.pop()
      if (v === null || typeof v !== 'object') continue
      expect((v as Record<string, unknown>).polluted).toBeUndefined()
      if (v instanceof Map) stack.push(...v.keys(), ...v.values())
      else if (v instanceof Set) stack.push(...v)
      else stack.push(...Object.values(v))
    }
  })

  it.each(hostile)('parseJson(%s) keeps no __proto__ key and no constructor.prototype', (text) => {
    const stack: unknown[] = [parseJson(text)]
    while (stack.length > 0) {
      const v = stack.pop()
      if (v === null || typeof v !== 'object') continue
      expect(Object.hasOwn(v, '__proto__')).toBe(false)
      const ctor = (v as Record<string, unknown>).constructor
      if (Object.hasOwn(v, 'constructor')) expect(Object.hasOwn(ctor as object, 'prototype')).toBe(false)
      stack.push(...Object.values(v))
    }
  })

  it('parses text with a byte order mark, and keeps the suspect words where they are only values', () => {
    expect(parseJson('\uFEFF{"a":1}')).toEqual({ a: 1 })
    expect(parseJson('{"note":"the constructor of __proto__","k":"\\u0041"}')).toEqual({
      note: 'the constructor of __proto__',
      k: 'A',
    })
    expect(decode('[1,"constructor"]')).toEqual([1, 'constructor'])
  })

  it('gives a DecodeError, not a RangeError, for hostile nesting', () => {
    const texts = [
      '['.repeat(200_000) + ']'.repeat(200_000),
      '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000),
      '{"$t":"set","v":['.repeat(50_000) + ']}'.repeat(50_000),
      '{"__proto__":{},"a":'.repeat(50_000) + '1' + '}'.repeat(50_000),
    ]
    for (const text of texts) {
      let caught: unknown
      try {
        decode(text)
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(DecodeError)
    }
    // Just under the limit still decodes.
    const ok = '['.repeat(maxDecodeDepth) + ']'.repeat(maxDecodeDepth)
    expect(Array.isArray(decode(ok))).toBe(true)
  })

  it('reads tags spelled with escapes, and long plain text nested to the limit, like the full walk', () => {
    expect(decode('{"\\u0024t":"date","v":"2026-01-01T00:00:00.000Z"}')).toEqual(new Date('2026-01-01'))
    expect(decode('{"\\u0024\\u0074":"undef"}')).toBeUndefined()
    const pad = 'x'.repeat(5000)
    const nested = (levels: number): string =>
      `{"pad":"${pad}","a":${'['.repeat(levels)}${']'.repeat(levels)}}`
    expect(decode(nested(maxDecodeDepth))).toEqual(JSON.parse(nested(maxDecodeDepth)))
    expect(() => decode(nested(maxDecodeDepth + 1))).toThrow(DecodeError)
    const wide = JSON.stringify({ pad, items: Array.from({ length: 3000 }, (_, i) => ({ i })) })
    expect(decode(wide)).toEqual(JSON.parse(wide))
  })

  it('gives a DecodeError for text that is not JSON', () => {
    expect(() => decode('{"a":')).toThrow(DecodeError)
    expect(() => decode('')).toThrow(DecodeError)
  })

  it('survives malformed tags without throwing', () => {
    expect(decode('{"$t":"bigint","v":"not a number"}')).toBeNaN()
    expect(Number.isNaN((decode('{"$t":"date","v":{}}') as Date).getTime())).toBe(true)
    expect(decode('{"$t":"map","v":"nope"}')).toEqual(new Map())
    expect(decode('{"$t":"set"}')).toEqual(new Set())
    expect(decode('{"$t":"unknown-tag","v":1}')).toEqual({ $t: 'unknown-tag', v: 1 })
  })

  it('reads a binary tag with any malformed field as the object it is, like an unknown tag', () => {
    const malformed = [
      '{"$t":"typedarray","k":"Float32Array","v":"AAA="}', // 2 bytes: not a whole float
      '{"$t":"typedarray","k":"Float64Array","v":"AAAAAAAAAAAAAAAA"}', // 12 bytes
      '{"$t":"typedarray","k":"Uint8Array","v":"AAAA"}', // has its own tag
      '{"$t":"typedarray","k":"Float16Array","v":"AAAA"}',
      '{"$t":"typedarray","k":"DataView","v":"AAAA"}',
      '{"$t":"typedarray","k":"__proto__","v":""}',
      '{"$t":"typedarray","k":"constructor","v":""}',
      '{"$t":"typedarray","k":{"toString":""},"v":""}',
      '{"$t":"typedarray","k":["Int8Array"],"v":""}',
      '{"$t":"typedarray","v":"AAAA"}',
      '{"$t":"typedarray","k":"Int8Array"}',
      '{"$t":"typedarray","k":"Int8Array","v":"AA"}', // unpadded
      '{"$t":"typedarray","k":"Int8Array","v":"A=AA"}',
      '{"$t":"typedarray","k":"Int8Array","v":"AA==AA=="}',
      '{"$t":"typedarray","k":"Int8Array","v":"AA-_"}', // base64url
      '{"$t":"typedarray","k":"Int8Array","v":" AAA"}',
      '{"$t":"typedarray","k":"Int8Array","v":{"toString":""}}',
      '{"$t":"typedarray","k":"Int8Array","v":4}',
      '{"$t":"arraybuffer","v":"@@@@"}',
      '{"$t":"arraybuffer","v":null}',
      '{"$t":"sharedarraybuffer","v":"AAA"}',
      '{"$t":"dataview","v":["AAAA"]}',
      '{"$t":"dataview"}',
    ]
    for (const text of malformed) expect(decode(text)).toStrictEqual(JSON.parse(text))
    // Base64 refused in one pass, however long (no backtracking).
    const long = `{"$t":"typedarray","k":"Int8Array","v":"${'A'.repeat(4_000_000)}!AAA"}`
    expect(decode(long)).toStrictEqual(JSON.parse(long))
    // Empty is well-formed.
    expect(decode('{"$t":"typedarray","k":"Int8Array","v":""}')).toStrictEqual(new Int8Array(0))
    expect(decode('{"$t":"arraybuffer","v":""}')).toStrictEqual(new ArrayBuffer(0))
  })
})
