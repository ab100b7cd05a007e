/**
 * Property-based tests (fast-check) for the codec and the diff engine: the codec round-trips
 * every value it documents, never throws anything but its own errors, and decoding hostile
 * JSON text never reaches a prototype; the diff finds nothing between equal values and
 * something between different ones, never throws, and stops at its bound.
 *
 * The example-based tests in test/codec and test/compare pin the behaviour case by case;
 * these check it over thousands of generated values. A failure prints the seed and the
 * shrunk counterexample (fast-check), so it can be replayed.
 */
import * as fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import {
  DecodeError,
  decode,
  decodeRaw,
  defaultSecretNames,
  encode,
  isDefaultSecretKey,
  PayloadError,
  RedactionFailed,
  Redactor,
  typedArrayKinds,
} from '../../src/codec/index.js'
import { diffValues } from '../../src/compare/diff.js'
import { compileRules } from '../../src/compare/rules.js'
import { compact, pretty } from '../../src/render/format.js'
import { full, reportFault, scale } from './kit.js'

const numRuns = scale(5000, 300)
const timeout = full ? 30 * 60_000 : 120_000

/** Keys the codec deliberately does not keep (decoding drops them to block prototype pollution). */
const droppedKeys = new Set(['__proto__', 'prototype'])
const key = fc.string().filter((k) => !droppedKeys.has(k))

/** Every typed array kind, also as a view into the middle of a larger buffer. */
const typedArray = fc
  .tuple(
    fc.oneof(
      fc.int8Array({ maxLength: 16 }),
      fc.uint8ClampedArray({ maxLength: 16 }),
      fc.int16Array({ maxLength: 16 }),
      fc.uint16Array({ maxLength: 16 }),
      fc.int32Array({ maxLength: 16 }),
      fc.uint32Array({ maxLength: 16 }),
      fc.float32Array({ maxLength: 16 }),
      fc.float64Array({ maxLength: 16 }),
      fc.bigInt64Array({ maxLength: 16 }),
      fc.bigUint64Array({ maxLength: 16 }),
    ),
    fc.boolean(),
  )
  .map(([a, view]) => (view && a.length > 2 ? a.subarray(1, a.length - 1) : a))

/** ArrayBuffer, SharedArrayBuffer and DataView (over part of a buffer, or all of it). */
const binary = fc.tuple(fc.uint8Array({ maxLength: 32 }), fc.nat(2)).map(([bytes, which]) => {
  if (which === 0) return bytes.slice().buffer
  if (which === 1) {
    const shared = new SharedArrayBuffer(bytes.length)
    new Uint8Array(shared).set(bytes)
    return shared
  }
  return new DataView(bytes.slice().buffer, Math.min(1, bytes.length))
})

/** Everything the codec documents as round-tripping (docs/bundle-format.md, src/codec/encode.ts). */
const recordable = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.anything({
      key,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      maxDepth: 3,
    }),
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.constantFrom(Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, undefined),
    fc.date({ noInvalidDate: true }),
    fc.bigInt(),
    typedArray,
    binary,
  ),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 5 }),
    fc.dictionary(key, tie('node'), { maxKeys: 5, noNullPrototype: true }),
    // An object that has the codec's own tag key must be escaped and come back as it was.
    fc.record(
      { $t: fc.oneof(fc.constantFrom('map', 'set', 'date', 'obj', 'undef'), fc.string()), v: tie('node') },
      { noNullPrototype: true },
    ),
    fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 4 }).map((entries) => new Map(entries)),
    fc.array(tie('node'), { maxLength: 4 }).map((items) => new Set(items)),
  ),
})).node

/** Anything at all, including what the codec does not promise to keep (typed arrays, holes, boxes). */
const anything = fc.anything({
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withObjectString: true,
})

/** Names of the properties that held in this run, for the report. */
const held: string[] = []
const properties = 9

const isOwnError = (err: unknown): boolean => err instanceof PayloadError || err instanceof RedactionFailed

describe('codec properties', () => {
  it('decode(encode(v)) deep-equals v for every documented value', { timeout }, () => {
    fc.assert(
      fc.property(recordable, (v) => {
        expect(decode(encode(v))).toStrictEqual(v)
      }),
      { numRuns },
    )
    held.push('codec round-trip')
  })

  it('a boxed primitive decodes as the primitive it holds', { timeout }, () => {
    const boxed = fc.oneof(
      fc.double().map((n) => [new Number(n), n] as const),
      fc.string().map((t) => [new String(t), t] as const),
      fc.boolean().map((b) => [new Boolean(b), b] as const),
      fc.bigInt().map((n) => [Object(n) as object, n] as const),
    )
    fc.assert(
      fc.property(boxed, ([box, primitive]) => {
        expect(decode(encode(box))).toStrictEqual(primitive)
        expect(decode(encode({ a: [box] }))).toStrictEqual({ a: [primitive] })
      }),
      { numRuns },
    )
    held.push('boxed primitives decode as their primitive')
  })

  it('encode throws only PayloadError or RedactionFailed, whatever the value and rules', { timeout }, () => {
    const redactor = new Redactor({ rules: ['$..card', '$.a[*]'], key: 'k' })
    fc.assert(
      fc.property(anything, fc.boolean(), (v, redact) => {
        let text: string
        try {
          text = encode(v, undefined, redact ? redactor : undefined)
        } catch (err) {
          expect(isOwnError(err)).toBe(true)
          return
        }
        // Whatever was written reads back.
        expect(() => decode(text)).not.toThrow()
      }),
      { numRuns },
    )
    held.push('codec throws only its own errors')
  })

  it('decoding hostile JSON text never touches a prototype and throws only DecodeError', { timeout }, () => {
    const hostileKey = fc.oneof(
      fc.constantFrom(
        '__proto__',
        'constructor',
        'prototype',
        '$t',
        'v',
        'polluted',
        'toString',
        'hasOwnProperty',
      ),
      fc.string(),
    )
    const tags = fc.constantFrom(
      'map',
      'set',
      'obj',
      'error',
      'date',
      'bigint',
      'buffer',
      'bytes',
      'typedarray',
      'arraybuffer',
      'sharedarraybuffer',
      'dataview',
      'num',
      'undef',
      'unrecorded',
      'bogus',
    )
    // Binary tags with fields near what the encoder writes: a kind or not, base64 or nearly.
    const base64ish = fc.oneof(
      fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('base64')),
      fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.stringMatching(/^[A-Za-z0-9+/=!-]{0,12}$/),
    )
    // Objects built with defineProperty so a `__proto__` key is an own key and reaches the text.
    const own = (entries: [string, unknown][]): Record<string, unknown> => {
      const o: Record<string, unknown> = {}
      for (const [k, v] of entries)
        Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true })
      return o
    }
    const json = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(
          fc.string(),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.boolean(),
          fc.constant(null),
        ),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.array(fc.tuple(hostileKey, tie('node')), { maxLength: 5 }).map(own),
        fc.tuple(tags, tie('node')).map(([t, v]) =>
          own([
            ['$t', t],
            ['v', v],
          ]),
        ),
        fc
          .tuple(
            fc.constantFrom('typedarray', 'arraybuffer', 'sharedarraybuffer', 'dataview'),
            fc.oneof(fc.constantFrom(...typedArrayKinds, 'Uint8Array', '__proto__'), hostileKey, tie('node')),
            fc.oneof(base64ish, tie('node')),
          )
          .map(([t, k, v]) =>
            own([
              ['$t', t],
              ['k', k],
              ['v', v],
            ]),
          ),
        tie('node').map((v) => own([['__proto__', own([['polluted', v]])]])),
        tie('node').map((v) => own([['constructor', own([['prototype', own([['polluted', v]])]])]])),
      ),
    })).node
    const protos = [
      Object.prototype,
      Array.prototype,
      Map.prototype,
      Set.prototype,
      Error.prototype,
      Date.prototype,
      Function.prototype,
    ]
    const before = protos.map((p) => Object.getOwnPropertyNames(p).join())
    const allowed = new Set<unknown>([
      ...protos,
      Uint8Array.prototype,
      Buffer.prototype,
      ...typedArrayKinds.map((k) => Object.getPrototypeOf(decode(`{"$t":"typedarray","k":"${k}","v":""}`))),
      ArrayBuffer.prototype,
      SharedArrayBuffer.prototype,
      DataView.prototype,
      null,
    ])
    const walk = (v: unknown, seen: Set<unknown>): void => {
      if (typeof v !== 'object' || v === null || seen.has(v)) return
      seen.add(v)
      expect(allowed.has(Object.getPrototypeOf(v))).toBe(true)
      if (v instanceof Map) {
        for (const [k, x] of v) {
          walk(k, seen)
          walk(x, seen)
        }
      } else if (v instanceof Set) for (const x of v) walk(x, seen)
      else if (!ArrayBuffer.isView(v))
        for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], seen)
    }
    fc.assert(
      fc.property(
        fc.oneof(
          json.map((v) => JSON.stringify(v)),
          fc.json(),
          fc.string(),
        ),
        (text) => {
          for (const read of [decode, decodeRaw]) {
            let out: unknown
            try {
              out = read(text)
            } catch (err) {
              expect(err).toBeInstanceOf(DecodeError)
              continue
            }
            walk(out, new Set())
            // What show prints of it, folded and in full, never throws either.
            if (read === decodeRaw) {
              compact(out)
              pretty(out)
            }
          }
          expect(({} as Record<string, unknown>).polluted).toBeUndefined()
          expect(protos.map((p) => Object.getOwnPropertyNames(p).join())).toEqual(before)
        },
      ),
      { numRuns },
    )
    held.push('hostile JSON never pollutes, decodes and renders without an internal error')
  })

  it('the JSON-text screen and the key screen never miss a key the default names redact', { timeout }, () => {
    const words = [...defaultSecretNames.anywhere, ...defaultSecretNames.atEnd, ...defaultSecretNames.word]
    // A secret word spelled as keys spell it: any case, separators between letters, words around.
    const spelled = fc
      .tuple(
        fc.constantFrom(...words),
        fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
        fc.array(fc.constantFrom('', '', '', '-', '_', ' ', '__'), { minLength: 16, maxLength: 16 }),
      )
      .map(([w, upper, seps]) =>
        [...w].map((ch, i) => (i > 0 ? seps[i]! : '') + (upper[i] ? ch.toUpperCase() : ch)).join(''),
      )
    const around = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }))
    const keyArb = fc.oneof(
      fc.tuple(around, spelled, around).map(([a, w, b]) => a + w + b),
      fc.string({ unit: 'binary', maxLength: 12 }),
    )
    let secrets = 0
    const redactor = new Redactor({})
    fc.assert(
      fc.property(keyArb, (key) => {
        if (!isDefaultSecretKey(key)) return
        secrets++
        expect(redactor.keyMayMatch(key)).toBe(true)
        expect(redactor.mayMatch(JSON.stringify({ a: 1, [key]: 'v', b: 2 }))).toBe(true)
        expect(encode({ [key]: 'CANARY' }, undefined, redactor)).not.toContain('CANARY')
      }),
      { numRuns },
    )
    expect(secrets).toBeGreaterThan(numRuns / 4)
    held.push('the secret-name screens never miss a redacted key')
  })
})

/** Equality of JSON values as the diff should see it: numbers by ===, object keys as a set. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
    )
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  )
}

/** A JSON value and a copy of it with a few random edits (or none). */
const jsonPair = fc
  .jsonValue({ maxDepth: 4 })
  .chain((a) =>
    fc
      .array(fc.tuple(fc.nat(), fc.jsonValue({ maxDepth: 2 })), { maxLength: 3 })
      .map((edits) => [a, edit(structuredClone(a), edits)] as const),
  )

function edit(v: unknown, edits: readonly (readonly [number, unknown])[]): unknown {
  let out = v
  for (const [n, replacement] of edits) {
    // Walk to the n-th node (pre-order) and replace it.
    let i = 0
    const visit = (x: unknown): unknown => {
      if (i++ === n % 50) return replacement
      if (Array.isArray(x)) return x.map(visit)
      if (typeof x === 'object' && x !== null) {
        return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, visit(y)]))
      }
      return x
    }
    out = visit(out)
  }
  return out
}

const limits = (maxChanges: number) => ({ maxChanges, deadline: Number.POSITIVE_INFINITY, now: () => 0 })

describe('diff properties', () => {
  it('finds nothing between a JSON value and a copy of it', { timeout }, () => {
    fc.assert(
      fc.property(fc.jsonValue(), (a) => {
        expect(diffValues(a, structuredClone(a))).toEqual({ changes: [], suppressed: [], truncated: null })
      }),
      { numRuns },
    )
    held.push('diff(a, copy of a) is empty')
  })

  it('finds a change exactly when two JSON values differ', { timeout }, () => {
    fc.assert(
      fc.property(fc.oneof(jsonPair, fc.tuple(fc.jsonValue(), fc.jsonValue())), ([a, b]) => {
        const d = diffValues(a, b, undefined, limits(1_000_000))
        expect(d.changes.length === 0).toBe(jsonEqual(a, b))
        expect(d.truncated).toBeNull()
      }),
      { numRuns },
    )
    held.push('diff empty iff equal')
  })

  it('with ignore and tolerance rules, hides a difference only by listing it as suppressed', {
    timeout,
  }, () => {
    const paths = fc.constantFrom('$.a', '$..b', '$.a[*]', '$..*', '$[0]', '$.x.y')
    fc.assert(
      fc.property(
        fc.oneof(jsonPair, fc.tuple(fc.jsonValue(), fc.jsonValue())),
        fc.array(paths, { maxLength: 2 }),
        fc.dictionary(paths, fc.double({ min: 0, max: 10, noNaN: true }), { maxKeys: 2 }),
        ([a, b], ignore, tolerance) => {
          const d = diffValues(a, b, compileRules({ ignore, tolerance }), limits(1_000_000))
          expect(d.changes.length + d.suppressed.length === 0).toBe(jsonEqual(a, b))
        },
      ),
      { numRuns },
    )
    held.push('rules hide only by suppressing')
  })

  it('never throws, and never reports more than maxChanges', { timeout }, () => {
    fc.assert(
      fc.property(anything, anything, fc.nat({ max: 20 }), (a, b, maxChanges) => {
        const d = diffValues(
          a,
          b,
          compileRules({ arrayKeys: { $: 'id', '$..items': 'sku' } }),
          limits(maxChanges),
        )
        expect(d.changes.length).toBeLessThanOrEqual(maxChanges)
        if (d.truncated !== null) {
          expect(d.truncated.reason).toBe('max-changes')
          expect(d.changes.length).toBe(maxChanges)
        }
      }),
      { numRuns },
    )
    held.push('diff never throws, honours maxChanges')
  })

  it('walks the deepest payload a bundle can hold without overflowing the stack', { timeout }, () => {
    // decode refuses nesting past 2000 levels, so 2000 is the most a diff ever sees.
    const nest = (depth: number, leaf: unknown): unknown => {
      let v = leaf
      for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { a: v } : [v]
      return v
    }
    const d = diffValues(nest(2000, 1), nest(2000, 2))
    expect(d.changes).toHaveLength(1)
  })
})

afterAll(() => {
  reportFault(
    'properties',
    `fast-check, ${numRuns} runs per property: ${held.length} of ${properties} properties held ` +
      `(${held.join('; ')})`,
  )
})
