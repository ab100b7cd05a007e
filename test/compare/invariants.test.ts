/** Invariant expressions: parsed by jsep, evaluated over plain data, never with eval. */
import { describe, expect, it } from 'vitest'
import { decodeRaw, encode } from '../../src/codec/index.js'
import {
  type Chain,
  compileExpression,
  compileInvariants,
  type InvariantResult,
  runInvariants,
} from '../../src/compare/invariants.js'
import type { InvariantFn } from '../../src/config.js'
import { ConfigError, ExitCode } from '../../src/errors.js'

/** A chain shaped like the inventory example's, in the order its stages ran. */
function chain(): Chain {
  return {
    ingest: { input: { raw: 'x' }, output: { change: { delta: { available: -3 } } }, attempt: 1 },
    compute: {
      input: { change: { delta: { available: -3 } }, 'odd key': 7 },
      output: { available: 87, onHand: 10, reserved: 6, items: [2, 3, 5], tags: ['local'], note: 'ok' },
      attempt: 2,
    },
    store: { input: { available: 87 }, output: { available: 87, price: 12.345 }, attempt: 1 },
    query: { input: { available: 87 }, output: { available: 86, badge: 'in stock' }, attempt: 1 },
  }
}

function run(source: string, c: Chain = chain()): InvariantResult {
  return runInvariants([compileExpression(source, source)], c)[0]!
}

const status = (source: string, c?: Chain): string => run(source, c).status

describe('invariant expressions: what they can say', () => {
  it.each([
    'compute.output.available == 87',
    'compute.output.available === 87',
    'compute.output.available != 4',
    'compute.output.available !== 4',
    'compute.output.available > 86 && compute.output.available < 88',
    'compute.output.available >= 87 && compute.output.available <= 87',
    'compute.output.onHand - compute.output.reserved == 4',
    'compute.output.onHand + compute.output.reserved == 16',
    'compute.output.onHand * 2 / 4 == 5',
    'compute.output.available % 10 == 7',
    '-compute.input.change.delta.available == 3',
    '(compute.output.onHand - compute.output.reserved) * 2 == 8',
    'compute.output.note + "!" == "ok!"',
  ])('comparison and arithmetic: %s holds', (source) => {
    expect(status(source)).toBe('ok')
  })

  it('&&, || and ! combine checks', () => {
    expect(status('compute.output.available > 0 && store.output.available > 0')).toBe('ok')
    expect(status('compute.output.available > 0 && store.output.available < 0')).toBe('violated')
    expect(status('compute.output.available < 0 || store.output.available > 0')).toBe('ok')
    expect(status('compute.output.available < 0 || store.output.available < 0')).toBe('violated')
    expect(status('!(compute.output.available < 0)')).toBe('ok')
    expect(status('!compute.output.available')).toBe('violated')
  })

  it('the ternary picks a branch by its test', () => {
    expect(status('compute.output.note == "ok" ? compute.output.available == 87 : false')).toBe('ok')
    expect(status('compute.output.note == "no" ? true : compute.output.available == 4')).toBe('violated')
  })

  it('member access by name, by ["key"] and by [index]', () => {
    expect(status('compute.output["available"] == 87')).toBe('ok')
    expect(status('compute["output"]["available"] == 87')).toBe('ok')
    expect(status('compute.input["odd key"] == 7')).toBe('ok')
    expect(status('compute.output.items[0] == 2 && compute.output.items[2] == 5')).toBe('ok')
    expect(status('compute.output.tags[0] == "local"')).toBe('ok')
    expect(status('compute.output.items.length == 3')).toBe('ok')
    expect(status('compute.output.note.length == 2')).toBe('ok')
    expect(status('compute.input.change.delta.available == -3')).toBe('ok')
  })

  it('a missing field reads as undefined rather than failing', () => {
    expect(status('compute.output.nothing.deeper == undefined')).toBe('ok')
    expect(status('compute.output.items[9] == undefined')).toBe('ok')
    expect(status('compute.output.nothing == null')).toBe('violated')
  })

  it('allowed functions: abs, min, max, round, len, sum, exists', () => {
    expect(status('abs(compute.input.change.delta.available) == 3')).toBe('ok')
    expect(status('min(compute.output.onHand, compute.output.reserved, 99) == 6')).toBe('ok')
    expect(status('max(compute.output.onHand, compute.output.reserved) == 10')).toBe('ok')
    expect(status('round(store.output.price, 2) == 12.35')).toBe('ok')
    expect(status('round(store.output.price) == 12')).toBe('ok')
    expect(status('len(compute.output.items) == 3 && len(compute.output.note) == 2')).toBe('ok')
    expect(status('len(compute.output) == 6')).toBe('ok')
    expect(status('sum(compute.output.items) == 10')).toBe('ok')
    expect(status('exists(compute.output.available) && !exists(compute.output.gone)')).toBe('ok')
  })

  it('an unknown function is an error status naming it, not a crash and not a violation', () => {
    expect(run('eval("1") == 1')).toEqual({
      name: 'eval("1") == 1',
      status: 'error',
      message: 'unknown function eval',
      stages: [],
    })
    expect(run('require("fs")').status).toBe('error')
    expect(run('compute.output.note.toUpperCase() == "OK"')).toMatchObject({
      status: 'error',
      message: 'unknown function (expression)',
    })
  })

  it('operators it does not know are an error status', () => {
    expect(run('compute.output.available >>> 1 == 43')).toMatchObject({
      status: 'error',
      message: 'operator >>> is not supported',
    })
    expect(run('~compute.output.available == -88')).toMatchObject({
      status: 'error',
      message: 'operator ~ is not supported',
    })
  })

  it('a value must be exactly true: a truthy number is a violation', () => {
    expect(run('compute.output.available')).toMatchObject({
      status: 'violated',
      message: 'compute.output.available is 87',
    })
  })
})

describe('invariant expressions over recorded (typed JSON) payloads', () => {
  // What a chain read from a bundle holds: the codec tags what JSON cannot say.
  const recorded = (output: unknown): Chain => ({
    s: { input: null, output: decodeRaw(encode(output)), attempt: 1 },
  })
  const c = recorded({
    gone: undefined,
    items: [1, undefined],
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    negZero: -0,
    wrapped: { $t: 'user data', n: 2 },
  })

  it('a field recorded as undefined reads as undefined: exists() is false', () => {
    expect(status('!exists(s.output.gone) && s.output.gone == undefined', c)).toBe('ok')
    expect(status('exists(s.output.gone)', c)).toBe('violated')
    expect(status('!exists(s.output.items[1]) && exists(s.output.items[0])', c)).toBe('ok')
  })

  it('NaN, Infinity and -0 read as the numbers they are', () => {
    expect(status('s.output.inf > 1e308 && s.output.negZero == 0 && s.output.negZero + 1 == 1', c)).toBe('ok')
    expect(run('s.output.nan > 0', c).message).toBe('s.output.nan > 0 is false: left NaN, right 0')
  })

  it('an object that had its own $t key is read through its wrapper', () => {
    expect(status('s.output.wrapped.n == 2 && s.output.wrapped["$t"] == "user data"', c)).toBe('ok')
  })

  it('a stage that returned undefined has an undefined output', () => {
    expect(status('s.output == undefined', recorded(undefined))).toBe('ok')
  })

  // Money in cents as BigInt, times as Dates: what an order pipeline returns.
  const order = recorded({
    subtotal: 1860n,
    surcharge: 279n,
    total: 2139n,
    huge: 9007199254740993n,
    placedAt: new Date('2026-11-01T08:00:00.000Z'),
    printedAt: new Date('2026-11-01T08:00:30.000Z'),
    byCarrier: new Map([
      ['dhl', 2139n],
      ['ups', 2245n],
    ]),
    tags: new Set(['web', 'vip']),
    cents: [620n, 1240n],
  })

  it('BigInts add up, compare and equal numbers of the same value', () => {
    expect(status('s.output.total == s.output.subtotal + s.output.surcharge', order)).toBe('ok')
    expect(status('s.output.total - s.output.surcharge == s.output.subtotal', order)).toBe('ok')
    expect(status('s.output.total == 2139 && s.output.total > 2000 && s.output.total <= 2139', order)).toBe(
      'ok',
    )
    expect(status('s.output.huge == 9007199254740992 + 1', order)).toBe('violated')
    expect(status('s.output.huge - 1 == s.output.huge - s.output.surcharge + 278', order)).toBe('ok')
    expect(status('s.output.subtotal == sum(s.output.cents) && -s.output.total < 0', order)).toBe('ok')
  })

  it('min, max, floor, ceil and round keep BigInts whole past 2^53', () => {
    expect(status('max(s.output.huge, s.output.total) == s.output.huge', order)).toBe('ok')
    expect(status('min(s.output.huge, s.output.huge + 1) == s.output.huge', order)).toBe('ok')
    expect(
      status('floor(s.output.huge) == s.output.huge && ceil(s.output.huge) == s.output.huge', order),
    ).toBe('ok')
    expect(
      status('round(s.output.huge) == s.output.huge && round(s.output.huge, 2) == s.output.huge', order),
    ).toBe('ok')
    expect(status('max(s.output.total, 5) == 2139', order)).toBe('ok')
  })

  it('a broken BigInt check says its values as the other messages do', () => {
    expect(run('s.output.total == s.output.subtotal', order).message).toBe(
      's.output.total == s.output.subtotal is false: left 2139n, right 1860n',
    )
  })

  it('Dates compare by time, and subtract to milliseconds', () => {
    expect(status('s.output.placedAt < s.output.printedAt', order)).toBe('ok')
    expect(status('s.output.printedAt - s.output.placedAt == 30000', order)).toBe('ok')
    expect(
      status('s.output.placedAt == s.output.placedAt && s.output.placedAt != s.output.printedAt', order),
    ).toBe('ok')
    expect(run('s.output.printedAt < s.output.placedAt', order).message).toBe(
      's.output.printedAt < s.output.placedAt is false: left Date(2026-11-01T08:00:30.000Z), right Date(2026-11-01T08:00:00.000Z)',
    )
  })

  it("a Map's entries are named by their key, and len() counts a Map's or a Set's items", () => {
    expect(
      status('s.output.byCarrier.dhl == s.output.total && s.output.byCarrier["ups"] > 2200', order),
    ).toBe('ok')
    expect(status('len(s.output.tags) == 2 && len(s.output.byCarrier) == 2', order)).toBe('ok')
    expect(status('exists(s.output.byCarrier.fedex)', order)).toBe('violated')
  })
})

describe('invariant expressions: no way out of the data', () => {
  it('__proto__, constructor and prototype read as undefined, whatever the syntax', () => {
    for (const source of [
      'compute.__proto__ == undefined',
      'compute.output.__proto__ == undefined',
      'compute.output["__proto__"] == undefined',
      'compute.output.constructor == undefined',
      'compute.output["constructor"] == undefined',
      'compute.output.items.constructor == undefined',
      'compute.output.constructor.prototype == undefined',
      'compute.output.items["__proto__"] == undefined',
    ]) {
      expect(status(source), source).toBe('ok')
    }
    // As roots they are stage names the chain does not have: not applicable, and the
    // check itself, run anyway, still reads undefined.
    for (const source of ['__proto__ == undefined', 'constructor == undefined', 'prototype == undefined']) {
      expect(status(source), source).toBe('not-applicable')
      expect(compileExpression(source, source).check(chain()), source).toBe(true)
    }
  })

  it('inherited members are never reached: toString, hasOwnProperty, valueOf are undefined', () => {
    expect(status('compute.output.toString == undefined')).toBe('ok')
    expect(status('compute.output.hasOwnProperty == undefined')).toBe('ok')
    expect(status('compute.output.items.map == undefined')).toBe('ok')
    expect(status('compute.output.note.constructor == undefined')).toBe('ok')
  })

  it('an own __proto__ key in recorded data does not leak a prototype either', () => {
    const c = chain()
    c.compute!.output = JSON.parse('{"__proto__": {"polluted": 1}, "available": 87}')
    expect(status('compute.output.__proto__ == undefined', c)).toBe('ok')
    expect(status('compute.output.__proto__.polluted == undefined', c)).toBe('ok')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('constructor.constructor("...")() never executes anything', () => {
    const g = globalThis as { __retraceInvariantPwned?: unknown }
    delete g.__retraceInvariantPwned
    for (const source of [
      'constructor.constructor("globalThis.__retraceInvariantPwned = 1")()',
      'compute.constructor.constructor("globalThis.__retraceInvariantPwned = 2")()',
      'compute.output.items.constructor.constructor("globalThis.__retraceInvariantPwned = 3")()',
      'compute.output["constructor"]["constructor"]("globalThis.__retraceInvariantPwned = 4")()',
      'constructor.constructor("return process")().exit(9)',
    ]) {
      const r = run(source)
      expect(r.status, source).toBe('error')
      expect(r.message, source).toBe('unknown function (expression)')
    }
    expect(g.__retraceInvariantPwned).toBeUndefined()
  })

  it('an invariant cannot change the chain it reads', () => {
    const c = chain()
    const before = structuredClone(c)
    for (const source of ['compute.output.available = 1', 'compute.output.available++']) {
      expect(() => compileExpression(source, source)).toThrow(ConfigError)
    }
    run('compute.output.available == 1 ? compute.output.available : compute.output.items', c)
    expect(c).toEqual(before)
  })
})

describe('invariants: when they apply', () => {
  it('names the stages it reads, in the order the chain ran them', () => {
    expect(run('query.output.available == store.output.available')).toMatchObject({
      status: 'violated',
      stages: ['store', 'query'],
    })
    expect(compileExpression('x', 'query.output.a == store.output.a + abs(compute.input.b)').stages).toEqual([
      'query',
      'store',
      'compute',
    ])
  })

  it('is not applicable when a stage it names is absent', () => {
    const c = chain()
    delete c.query
    expect(run('query.output.available == store.output.available', c)).toEqual({
      name: 'query.output.available == store.output.available',
      status: 'not-applicable',
      stages: ['store', 'query'],
    })
  })

  it('is not applicable when a stage it names failed on its last attempt', () => {
    const c = chain()
    c.store = { input: { available: 87 }, output: undefined, error: { message: 'db down' }, attempt: 3 }
    expect(run('store.output.available >= 0', c).status).toBe('not-applicable')
    expect(run('compute.output.available >= 0', c).status).toBe('ok')
  })

  it('a stage named like an inherited member (toString) is absent, not a function', () => {
    expect(run('toString.output == undefined').status).toBe('not-applicable')
  })
})

describe('invariants: violation messages', () => {
  it('a failed comparison shows its left and right values', () => {
    expect(run('compute.output.available == compute.output.onHand - compute.output.reserved')).toEqual({
      name: 'compute.output.available == compute.output.onHand - compute.output.reserved',
      status: 'violated',
      message:
        'compute.output.available == compute.output.onHand - compute.output.reserved is false: left 87, right 4',
      stages: ['compute'],
    })
    expect(run('query.output.badge == compute.output.tags').message).toBe(
      'query.output.badge == compute.output.tags is false: left "in stock", right ["local"]',
    )
    expect(run('compute.output.gone > 0').message).toBe(
      'compute.output.gone > 0 is false: left undefined, right 0',
    )
  })

  it('long values are cut short in the message', () => {
    const c = chain()
    c.compute!.output = { blob: 'y'.repeat(500) }
    const message = run('compute.output.blob == "z"', c).message!
    expect(message.length).toBeLessThan(200)
    expect(message).toContain('…')
  })

  it('a failed && / || is reported as false, without left/right', () => {
    expect(run('compute.output.available < 0 || store.output.available < 0').message).toBe(
      'compute.output.available < 0 || store.output.available < 0 is false',
    )
  })
})

describe('invariants: TypeScript functions', () => {
  const c = chain()

  it('a function returning true holds; a string is the violation message', () => {
    const invs = compileInvariants([
      {
        name: 'stock',
        check: (ch) => (ch.compute!.output as { available: number }).available === 87 || 'bad',
      },
      {
        name: 'page',
        check: (ch) => {
          const q = (ch.query!.output as { available: number }).available
          const s = (ch.store!.output as { available: number }).available
          return q === s || `page shows ${q}, store has ${s}`
        },
      },
    ])
    expect(runInvariants(invs, c)).toEqual([
      { name: 'stock', status: 'ok', stages: [] },
      { name: 'page', status: 'violated', message: 'page shows 86, store has 87', stages: [] },
    ])
  })

  it('a function returning something else, or throwing, is not silently passed', () => {
    const invs = compileInvariants([
      { name: 'falsy', check: (() => false) as never },
      {
        name: 'throws',
        check: () => {
          throw new Error('boom')
        },
      },
    ])
    expect(runInvariants(invs, c)).toEqual([
      { name: 'falsy', status: 'violated', message: 'returned false', stages: [] },
      { name: 'throws', status: 'error', message: 'threw boom', stages: [] },
    ])
  })

  it('sees the values the stages gave, not the typed JSON that stores them', () => {
    const given = {
      subtotal: 1860n,
      surcharge: 279n,
      total: 2139n,
      printedAt: new Date('2026-11-01T08:00:30.000Z'),
      byCarrier: new Map([['dhl', 2139n]]),
      note: undefined,
    }
    type Given = typeof given
    const recorded: Chain = { label: { input: null, output: decodeRaw(encode(given)), attempt: 1 } }
    const out = (ch: Parameters<InvariantFn>[0]): Given => ch.label!.output as Given
    const invs = compileInvariants([
      { name: 'money', check: (ch) => out(ch).total === out(ch).subtotal + out(ch).surcharge || 'total' },
      { name: 'date', check: (ch) => out(ch).printedAt instanceof Date || 'not a Date' },
      { name: 'map', check: (ch) => out(ch).byCarrier.get('dhl') === out(ch).total || 'carrier' },
      {
        name: 'optional',
        check: (ch) => out(ch).note === undefined || `note is ${JSON.stringify(out(ch).note)}`,
      },
    ])
    expect(runInvariants(invs, recorded).map((r) => [r.name, r.status, r.message])).toEqual([
      ['money', 'ok', undefined],
      ['date', 'ok', undefined],
      ['map', 'ok', undefined],
      ['optional', 'ok', undefined],
    ])
  })

  it('a string entry is its own name; an unnamed object gets its position', () => {
    const invs = compileInvariants([
      'store.output.available >= 0',
      { name: '', check: 'query.output.available > 0' },
    ])
    expect(invs.map((i) => i.name)).toEqual(['store.output.available >= 0', 'invariant 2'])
    expect(runInvariants(invs, c).map((r) => r.status)).toEqual(['ok', 'ok'])
  })

  it('a check that is neither a string nor a function is a ConfigError', () => {
    expect(() => compileInvariants([{ name: 'odd', check: 42 as never }])).toThrow(
      /invariant "odd": check must be an expression string or a function/,
    )
  })

  it('no invariants at all is an empty list', () => {
    expect(compileInvariants(undefined)).toEqual([])
    expect(runInvariants([], c)).toEqual([])
  })
})

describe('invariants: bad syntax', () => {
  function syntaxError(source: string): ConfigError {
    try {
      compileInvariants([{ name: 'stock', check: source }])
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      return err as ConfigError
    }
    throw new Error(`${source} compiled`)
  }

  it('is a ConfigError (exit 3) that names the invariant and points at the column with a caret', () => {
    const err = syntaxError('store.output.available >= = 0')
    expect(err.code).toBe('E_INVARIANT_SYNTAX')
    expect(err.exit).toBe(ExitCode.config)
    expect(err.message).toBe(
      [
        'invariant "stock": Expected expression after >= at column 27',
        '  store.output.available >= = 0',
        `  ${' '.repeat(26)}^`,
      ].join('\n'),
    )
  })

  const end = (source: string): [string, number] => [source, source.length]
  const at = (source: string, char: string): [string, number] => [source, source.indexOf(char)]
  it.each([
    [...at('compute.output.available = 4', '='), 'Unexpected "="'],
    [...end('(compute.output.available == 4'), 'Unclosed ('],
    [...at('compute.output.available == 4)', ')'), 'Unexpected ")"'],
    [...end('compute.output.available +'), 'Expected expression after +'],
    [...end('compute.output["available" == 4'), 'Unclosed ['],
    [...at('x => 1', '='), 'Unexpected "="'],
  ] as const)('%s: the caret sits under index %i', (source, index, reason) => {
    const [head, shown, caret] = syntaxError(source).message.split('\n')
    expect(head).toContain(reason)
    expect(head).toMatch(new RegExp(`at column ${index + 1}$`))
    expect(shown).toBe(`  ${source}`)
    expect(caret).toBe(`  ${' '.repeat(index)}^`)
  })

  it.each([
    [
      ...at('compute.output.available store.output.available', 'store'),
      'Unexpected "s" after the expression',
    ],
    [...at('store.output.available >= 0 query', 'q'), 'Unexpected "q" after the expression'],
    [
      ...at('store.output.available >= 0; query.output.available >= 0', ';'),
      'Unexpected ";" after the expression',
    ],
    [...at('typeof store.output.available == "number"', 's'), 'Unexpected "s" after the expression'],
    [...at('new Date()', 'D'), 'Unexpected "D" after the expression'],
    ['', 0, 'Expected an expression'],
    ['   ', 3, 'Expected an expression'],
  ] as const)(
    'two expressions side by side, or none (%j), are bad syntax too, at index %i',
    (source, index, reason) => {
      const err = syntaxError(source)
      const [head, , caret] = err.message.split('\n')
      expect(head).toBe(`invariant "stock": ${reason} at column ${index + 1}`)
      expect(caret).toBe(`  ${' '.repeat(index)}^`)
    },
  )

  it('an expression given as a plain string is checked when the config is compiled', () => {
    expect(() => compileInvariants(['store.output.available >= 0', 'store.output.available >'])).toThrow(
      /^invariant "store.output.available >": Expected expression after > at column 25/,
    )
  })
})
