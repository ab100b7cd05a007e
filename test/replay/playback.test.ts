import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleSet } from '../../src/bundle/index.js'
import type { EffectRow } from '../../src/bundle/types.js'
import { encode } from '../../src/codec/index.js'
import { EffectDivergence, PlaybackContext } from '../../src/replay/playback.js'
import { record, type Workspace, workspace } from './fixture.js'

/** Effect rows as the recorder writes them (typed-JSON text in args, result and error). */
const now = (v: number): Omit<EffectRow, 'seq'> => ({
  kind: 'now',
  name: 'now',
  args: null,
  result: String(v),
  error: null,
})
const random = (v: number): Omit<EffectRow, 'seq'> => ({
  kind: 'random',
  name: 'random',
  args: null,
  result: String(v),
  error: null,
})
const effect = (
  name: string,
  args: unknown,
  out: { result?: unknown; error?: { name: string; message: string; code?: string } },
  async = false,
): Omit<EffectRow, 'seq'> => ({
  kind: async ? 'async-effect' : 'effect',
  name,
  args: encode(args),
  result: 'result' in out ? encode(out.result) : null,
  error: out.error === undefined ? null : JSON.stringify(out.error),
})

function ctxOf(...rows: Omit<EffectRow, 'seq'>[]): PlaybackContext {
  return new PlaybackContext(
    'sku:1',
    'rec-1',
    'compute',
    1,
    rows.map((r, seq) => ({ ...r, seq })),
    (v) => encode(v),
  )
}

/** A function that fails the test if playback ever calls it. */
const never = (): never => {
  throw new Error('the effect function was called under replay')
}

function divergenceOf(fn: () => unknown): EffectDivergence {
  try {
    fn()
  } catch (err) {
    if (err instanceof EffectDivergence) return err
    throw err
  }
  throw new Error('expected an EffectDivergence')
}

describe('PlaybackContext: recorded values in order', () => {
  it('exposes key, record id, stage and attempt', () => {
    const ctx = ctxOf()
    expect([ctx.key, ctx.recordId, ctx.stage, ctx.attempt]).toEqual(['sku:1', 'rec-1', 'compute', 1])
  })

  it('returns recorded now() and random() values in order', () => {
    const ctx = ctxOf(now(1_700_000_000_000), random(0.25), now(1_700_000_000_500), random(0.75))
    expect(ctx.now()).toBe(1_700_000_000_000)
    expect(ctx.random()).toBe(0.25)
    expect(ctx.now()).toBe(1_700_000_000_500)
    expect(ctx.random()).toBe(0.75)
    expect(ctx.unused).toEqual([])
    expect(ctx.divergence).toBeUndefined()
  })

  it('returns a sync effect result as a value, without calling fn', () => {
    const ctx = ctxOf(effect('kv.get', { key: 'a' }, { result: { qty: 4 } }))
    const out = ctx.effect('kv.get', { key: 'a' }, never)
    expect(out).toEqual({ qty: 4 })
    expect(out).not.toBeInstanceOf(Promise)
  })

  it('returns an async-recorded effect result as a promise, without calling fn', async () => {
    const ctx = ctxOf(effect('http.get', ['/stock'], { result: [1, 2] }, true))
    const out = ctx.effect('http.get', ['/stock'], never)
    expect(out).toBeInstanceOf(Promise)
    await expect(out).resolves.toEqual([1, 2])
  })

  it('revives typed values (Date, BigInt, Map) in effect results', () => {
    const at = new Date('2026-01-02T03:04:05.000Z')
    const ctx = ctxOf(effect('db.row', 1, { result: { at, big: 12n, m: new Map([['a', 1]]) } }))
    expect(ctx.effect('db.row', 1, never)).toEqual({ at, big: 12n, m: new Map([['a', 1]]) })
  })

  it('returns undefined for an effect that returned undefined', () => {
    const ctx = ctxOf(effect('cache.del', 'k', { result: undefined }))
    expect(ctx.effect('cache.del', 'k', never)).toBeUndefined()
  })

  it('throws a recorded sync effect error with its name, message and code', () => {
    const ctx = ctxOf(
      effect('kv.get', 'a', { error: { name: 'TimeoutError', message: 'kv timed out', code: 'ETIMEDOUT' } }),
    )
    let caught: unknown
    try {
      ctx.effect('kv.get', 'a', never)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(Error)
    expect(caught).not.toBeInstanceOf(EffectDivergence)
    expect((caught as Error).name).toBe('TimeoutError')
    expect((caught as Error).message).toBe('kv timed out')
    expect((caught as { code?: unknown }).code).toBe('ETIMEDOUT')
    expect(ctx.divergence).toBeUndefined()
  })

  it('rejects with a recorded async effect error', async () => {
    const ctx = ctxOf(effect('http.get', '/x', { error: { name: 'Error', message: 'socket hang up' } }, true))
    const out = ctx.effect('http.get', '/x', never)
    expect(out).toBeInstanceOf(Promise)
    await expect(out).rejects.toMatchObject({ name: 'Error', message: 'socket hang up' })
  })

  it('matches args structurally, whatever the key order', () => {
    const ctx = ctxOf(effect('kv.get', { a: 1, b: [1, 2] }, { result: 'ok' }))
    expect(ctx.effect('kv.get', { b: [1, 2], a: 1 }, never)).toBe('ok')
  })

  it('lets a redaction token in recorded args match any local value', () => {
    const ctx = ctxOf(
      effect(
        'auth.call',
        { user: 'u1', token: '[redacted]', key: '[redacted:AbCdEfGhIjKlMnOp]' },
        { result: 1 },
      ),
    )
    expect(ctx.effect('auth.call', { user: 'u1', token: 'local-secret', key: { any: 'shape' } }, never)).toBe(
      1,
    )
    expect(ctx.divergence).toBeUndefined()
  })

  it('still compares the args around a redaction token', () => {
    const ctx = ctxOf(effect('auth.call', { user: 'u1', token: '[redacted]' }, { result: 1 }))
    const d = divergenceOf(() => ctx.effect('auth.call', { user: 'u2', token: 'x' }, never))
    expect(d.message).toContain('"u1"')
    expect(d.message).toContain('"u2"')
  })

  it('lets args production could not record (an unrecorded marker) match any local args', () => {
    const ctx = ctxOf({
      kind: 'effect',
      name: 'blob.put',
      args: JSON.stringify({ $t: 'unrecorded', reason: 'too-large', message: 'payload is 2 MB', size: 2e6 }),
      result: encode('stored'),
      error: null,
    })
    expect(ctx.effect('blob.put', { data: 'x'.repeat(100) }, never)).toBe('stored')
    expect(ctx.divergence).toBeUndefined()
  })

  it('lists recorded effects the stage did not ask for', () => {
    const ctx = ctxOf(now(1), effect('kv.get', 'a', { result: 1 }), random(0.5))
    ctx.now()
    expect(ctx.unused.map((e) => [e.seq, e.kind, e.name])).toEqual([
      [1, 'effect', 'kv.get'],
      [2, 'random', 'random'],
    ])
  })
})

describe('PlaybackContext: divergences', () => {
  it('names expected and actual when the local build calls another effect', () => {
    const ctx = ctxOf(effect('kv.get', { key: 'a' }, { result: 1 }))
    const d = divergenceOf(() => ctx.effect('kv.scan', { key: 'a' }, never))
    expect(d.code).toBe('E_EFFECT_DIVERGED')
    expect(d.message).toContain('"kv.get"')
    expect(d.message).toContain('"kv.scan"')
    expect(d.expected).toEqual({ kind: 'effect', name: 'kv.get' })
    expect(d.actual).toEqual({ kind: 'effect', name: 'kv.scan', args: { key: 'a' } })
    expect(ctx.divergence).toBe(d)
  })

  it('names expected and actual args when the local build passes other args', () => {
    const ctx = ctxOf(effect('kv.get', { key: 'a' }, { result: 1 }))
    const d = divergenceOf(() => ctx.effect('kv.get', { key: 'b' }, never))
    expect(d.message).toMatch(/other args/)
    expect(d.message).toContain('{"key":"a"}')
    expect(d.message).toContain('{"key":"b"}')
    expect(d.expected).toEqual({ kind: 'effect', name: 'kv.get', args: { key: 'a' } })
    expect(d.actual).toEqual({ kind: 'effect', name: 'kv.get', args: { key: 'b' } })
  })

  it('prints typed args (a Date) as recorded, not re-encoded', () => {
    const ctx = ctxOf(effect('orders.since', { at: new Date('2026-01-01T00:00:00.000Z') }, { result: [] }))
    const d = divergenceOf(() =>
      ctx.effect('orders.since', { at: new Date('2026-01-02T00:00:00.000Z') }, never),
    )
    expect(d.message).toContain('recorded {"at":{"$t":"date","v":"2026-01-01T00:00:00.000Z"}}')
    expect(d.message).toContain('local {"at":{"$t":"date","v":"2026-01-02T00:00:00.000Z"}}')
  })

  it('treats a missing arg as other args', () => {
    const ctx = ctxOf(effect('kv.get', { key: 'a', shard: 2 }, { result: 1 }))
    expect(divergenceOf(() => ctx.effect('kv.get', { key: 'a' }, never)).code).toBe('E_EFFECT_DIVERGED')
  })

  it('names the kinds when now() is called where random() was recorded', () => {
    const ctx = ctxOf(random(0.5))
    const d = divergenceOf(() => ctx.now())
    expect(d.message).toContain('ctx.random()')
    expect(d.message).toContain('ctx.now()')
    expect(d.expected).toEqual({ kind: 'random', name: 'random' })
    expect(d.actual).toEqual({ kind: 'now', name: 'now' })
  })

  it('names an effect called where a clock read was recorded', () => {
    const ctx = ctxOf(now(5))
    const d = divergenceOf(() => ctx.effect('kv.get', 'a', never))
    expect(d.message).toContain('ctx.now()')
    expect(d.message).toContain('ctx.effect("kv.get")')
  })

  it('refuses one call more than recorded, naming the call and how many were recorded', () => {
    const ctx = ctxOf(now(1), random(0.5))
    ctx.now()
    ctx.random()
    const d = divergenceOf(() => ctx.random())
    expect(d.message).toContain('ctx.random()')
    expect(d.message).toMatch(/not recorded/)
    expect(d.message).toContain('2 effect calls')
    expect(d.expected).toBeNull()
    expect(d.actual).toEqual({ kind: 'random', name: 'random' })
  })

  it('refuses an effect when nothing was recorded', () => {
    const d = divergenceOf(() => ctxOf().effect('kv.get', 'a', never))
    expect(d.message).toContain('ctx.effect("kv.get")')
    expect(d.expected).toBeNull()
  })

  it('rejects (not throws) when the recorded call it diverges from was async', async () => {
    const ctx = ctxOf(effect('http.get', '/a', { result: 1 }, true))
    const out = ctx.effect('http.get', '/b', never) as unknown as Promise<unknown>
    expect(out).toBeInstanceOf(Promise)
    await expect(out).rejects.toBeInstanceOf(EffectDivergence)
  })

  it('remembers the first divergence even when the stage swallows it and goes on', () => {
    const ctx = ctxOf(effect('kv.get', 'a', { result: 1 }), now(2))
    try {
      ctx.effect('kv.put', 'a', never)
    } catch {}
    try {
      ctx.random()
    } catch {}
    expect(ctx.divergence?.message).toContain('"kv.put"')
  })

  it('reports local args that cannot be encoded (cyclic) as a divergence, not a crash', () => {
    const ctx = ctxOf(effect('kv.get', { key: 'a' }, { result: 1 }))
    const cyclic: Record<string, unknown> = { key: 'a' }
    cyclic.self = cyclic
    const d = divergenceOf(() => ctx.effect('kv.get', cyclic, never))
    expect(d.code).toBe('E_EFFECT_DIVERGED')
    expect(d.message).toContain('{"key":"a"}')
    expect(ctx.divergence).toBe(d)
  })

  it('does not advance past a diverging call', () => {
    const ctx = ctxOf(effect('kv.get', 'a', { result: 1 }))
    divergenceOf(() => ctx.effect('kv.get', 'b', never))
    expect(ctx.unused.map((e) => e.name)).toEqual(['kv.get'])
  })
})

describe('PlaybackContext on effects recorded by the SDK', () => {
  let ws: Workspace
  let effects: EffectRow[]

  beforeAll(async () => {
    ws = workspace()
    const path = ws.path('effects.sqlite')
    let t = 1_000
    await record(
      path,
      async (recorder) => {
        const stage = recorder.stage('fetch', async (sku: string, ctx) => {
          const at = ctx.now()
          const roll = ctx.random()
          const price = await ctx.effect('price.get', { sku, apiKey: 'k-123' }, async () => 9.5)
          const stock = ctx.effect('stock.get', [sku], () => 3)
          let err = ''
          try {
            ctx.effect('flaky', sku, () => {
              throw new RangeError('flaky failed')
            })
          } catch (e) {
            err = (e as Error).message
          }
          return { at, roll, price, stock, err }
        })
        await recorder.record('sku:1', () => stage('sku:1'))
      },
      { clock: () => (t += 7), random: () => 0.125 },
    )
    const set = BundleSet.open([path])
    try {
      const [id] = [...set.readers[0]!.recordIds()]
      effects = set.loadRecord(id!).captures[0]!.effects
    } finally {
      set.close()
    }
  })
  afterAll(() => ws?.remove())

  it('plays back clock, random, async and sync effects and a recorded throw', async () => {
    const ctx = new PlaybackContext('sku:1', 'r', 'fetch', 1, effects, (v) => encode(v))
    const at = ctx.now()
    const roll = ctx.random()
    // The recorder redacted apiKey; any local key matches it.
    const price = await ctx.effect('price.get', { sku: 'sku:1', apiKey: 'local-key' }, never)
    const stock = ctx.effect('stock.get', ['sku:1'], never)
    expect(() => ctx.effect('flaky', 'sku:1', never)).toThrow(
      expect.objectContaining({ name: 'RangeError', message: 'flaky failed' }),
    )
    expect({ roll, price, stock }).toEqual({ roll: 0.125, price: 9.5, stock: 3 })
    // The recording clock ticks by 7 from 1,000; the played-back value is the recorded one.
    expect(at).toBe(Number(effects[0]!.result))
    expect(at).toBeGreaterThan(1_000)
    expect((at - 1_000) % 7).toBe(0)
    expect(ctx.unused).toEqual([])
    expect(ctx.divergence).toBeUndefined()
  })
})

/**
 * A stage that fans out: two reads in flight at once, each followed by a write once its
 * read returns. Production runs the writes in the order the reads came back.
 */
async function fanOut(
  ctx: PlaybackContext | import('../../src/index.js').StageContext,
  slow = new Set<string>(),
) {
  const branch = async (x: string): Promise<unknown> => {
    const v = await ctx.effect(
      'get',
      { x },
      () => new Promise((r) => setTimeout(() => r(x.length), slow.has(x) ? 30 : 1)),
    )
    return ctx.effect('put', { x, v }, async () => `ok-${x}`)
  }
  return Promise.all([branch('aaa'), branch('b')])
}

describe('PlaybackContext: effects in flight at once', () => {
  // As production recorded it: the read of "aaa" came back last, so "b" was written first.
  const recorded = (): PlaybackContext =>
    ctxOf(
      effect('get', { x: 'aaa' }, { result: 3 }, true),
      effect('get', { x: 'b' }, { result: 1 }, true),
      effect('put', { x: 'b', v: 1 }, { result: 'ok-b' }, true),
      effect('put', { x: 'aaa', v: 3 }, { result: 'ok-aaa' }, true),
    )

  it('lets a continuation take the later recorded effect it matches exactly', async () => {
    const ctx = recorded()
    await expect(fanOut(ctx)).resolves.toEqual(['ok-aaa', 'ok-b'])
    expect(ctx.divergence).toBeUndefined()
    expect(ctx.unused).toEqual([])
  })

  it('lists an effect it left, and not one it took out of order', async () => {
    const ctx = recorded()
    const a = ctx.effect('get', { x: 'aaa' }, never)
    const b = ctx.effect('get', { x: 'b' }, never)
    await Promise.all([a, b])
    await ctx.effect('put', { x: 'aaa', v: 3 }, never)
    expect(ctx.unused.map((e) => e.seq)).toEqual([2])
  })

  it('still diverges on a call that matches no effect left', async () => {
    const ctx = recorded()
    await Promise.all([ctx.effect('get', { x: 'aaa' }, never), ctx.effect('get', { x: 'b' }, never)])
    await expect(ctx.effect('put', { x: 'aaa', v: 4 }, never)).rejects.toThrow(
      'effect #2 "put" was called with other args than in production: recorded {"x":"b","v":1}, local {"x":"aaa","v":4}',
    )
  })

  it('keeps a stage that awaits each effect in turn to the recorded order', async () => {
    // Production wrote, then read; a local build that reads first has changed what it does.
    const ctx = ctxOf(
      effect('put', { x: 'a' }, { result: 'ok' }, true),
      effect('get', { x: 'a' }, { result: 'new' }, true),
    )
    await expect(ctx.effect('get', { x: 'a' }, never)).rejects.toThrow(
      'effect #0 was ctx.effect("put") in production, the local build called ctx.effect("get")',
    )
  })
})

describe('PlaybackContext on a fan-out recorded by the SDK', () => {
  let ws: Workspace
  let effects: EffectRow[]

  beforeAll(async () => {
    ws = workspace()
    const path = ws.path('fan.sqlite')
    await record(path, async (recorder) => {
      const stage = recorder.stage('fan', (_: null, ctx) => fanOut(ctx, new Set(['aaa'])))
      await recorder.record('k:1', () => stage(null))
    })
    const set = BundleSet.open([path])
    try {
      const [id] = [...set.readers[0]!.recordIds()]
      effects = set.loadRecord(id!).captures[0]!.effects
    } finally {
      set.close()
    }
  })
  afterAll(() => ws?.remove())

  it('plays it back whatever order the reads came back in', async () => {
    // The slow read finished last: production wrote "b" first.
    expect(effects.map((e) => `${e.name} ${e.args}`)).toEqual([
      'get {"x":"aaa"}',
      'get {"x":"b"}',
      'put {"x":"b","v":1}',
      'put {"x":"aaa","v":3}',
    ])
    const ctx = new PlaybackContext('k:1', 'r', 'fan', 1, effects, (v) => encode(v))
    await expect(fanOut(ctx)).resolves.toEqual(['ok-aaa', 'ok-b'])
    expect(ctx.divergence).toBeUndefined()
    expect(ctx.unused).toEqual([])
  })
})
