import { existsSync } from 'node:fs'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { decode } from '../../src/codec/index.js'
import type { StageContext } from '../../src/index.js'
import { readBundle, withDb } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'

const decoded = (text: string | null): unknown => (text === null ? null : decode(text))

describe('captures', () => {
  it('records each stage call of a record with seq, attempt, input and output', async () => {
    const { path, recorder } = testRecorder({ build: 'build-1', origin: { host: 'web-1', pid: 4242 } })
    const parse = recorder.stage('parse', (text: string) => JSON.parse(text) as { sku: string; qty: number })
    const price = recorder.stage('price', async (o: { sku: string; qty: number }) => ({
      ...o,
      total: BigInt(o.qty) * 2n,
      at: new Date(0),
    }))

    const out = await recorder.record('sku:1', async () => price(await parse('{"sku":"a","qty":3}')))
    expect(out).toEqual({ sku: 'a', qty: 3, total: 6n, at: new Date(0) })
    await recorder.close()

    const { records, captures, manifest } = readBundle(path)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({
      key: 'sku:1',
      status: 'ok',
      error: null,
      host: 'web-1',
      pid: 4242,
      build: 'build-1',
    })
    expect(captures.map((c) => [c.seq, c.stage, c.attempt, c.record_id])).toEqual([
      [0, 'parse', 1, records[0]!.id],
      [1, 'price', 1, records[0]!.id],
    ])
    expect(decoded(captures[0]!.input)).toBe('{"sku":"a","qty":3}')
    expect(captures[0]!.output).toBe('{"sku":"a","qty":3}')
    expect(decoded(captures[1]!.input)).toEqual({ sku: 'a', qty: 3 })
    expect(decoded(captures[1]!.output)).toEqual({ sku: 'a', qty: 3, total: 6n, at: new Date(0) })
    expect(captures.every((c) => c.error === null && c.duration_ms >= 0)).toBe(true)
    expect(manifest).toMatchObject({
      format: 'retrace-bundle',
      pipeline: 'test-pipeline',
      builds: ['build-1'],
    })
    expect(recorder.stats()).toMatchObject({ captured: 2, written: 2, dropped: 0, errors: 0 })
  })

  it('wraps sync and async stage functions alike: both return a promise of the result', async () => {
    const { path, recorder } = testRecorder()
    const syncStage = recorder.stage('sync', (n: number) => n + 1)
    const asyncStage = recorder.stage('async', async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      return n * 10
    })
    const p = recorder.record('k', async () => {
      const a = syncStage(1)
      expect(a).toBeInstanceOf(Promise)
      return asyncStage(await a)
    })
    expect(await p).toBe(20)
    await recorder.close()
    const { captures } = readBundle(path)
    expect(captures.map((c) => [c.stage, c.input, c.output])).toEqual([
      ['sync', '1', '2'],
      ['async', '2', '20'],
    ])
  })

  it('counts calls of two wrappers of one stage name as attempts of that stage, sampled in or out', async () => {
    for (const sample of [1, 0]) {
      const { path, recorder } = testRecorder({ sample })
      const seen: [string, number][] = []
      const first = recorder.stage('fetch', (n: number, ctx: StageContext) => {
        seen.push([ctx.stage, ctx.attempt])
        return n
      })
      const other = recorder.stage('other', (n: number, ctx: StageContext) => {
        seen.push([ctx.stage, ctx.attempt])
        return n
      })
      const again = recorder.stage('fetch', (n: number, ctx: StageContext) => {
        seen.push([ctx.stage, ctx.attempt])
        return n + 1
      })
      await recorder.record('sku:two', async () => other(await again(await first(1))))
      await recorder.record('sku:three', async () => again(await first(1)))
      expect(seen).toEqual([
        ['fetch', 1],
        ['fetch', 2],
        ['other', 1],
        ['fetch', 1],
        ['fetch', 2],
      ])
      await recorder.close()
      const { captures } = readBundle(path)
      expect(captures.map((c) => [c.stage, c.attempt])).toEqual(
        sample === 1
          ? [
              ['fetch', 1],
              ['fetch', 2],
              ['other', 1],
              ['fetch', 1],
              ['fetch', 2],
            ]
          : [],
      )
    }
  })

  it('counts a second call of the same stage in one record as a retry', async () => {
    const { path, recorder } = testRecorder()
    const attemptsSeen: number[] = []
    let calls = 0
    const fetch = recorder.stage('fetch', (n: number, ctx: StageContext) => {
      attemptsSeen.push(ctx.attempt)
      if (++calls < 3) throw new Error(`flaky ${calls}`)
      return n * 2
    })
    const other = recorder.stage('other', (n: number) => n)

    const result = await recorder.record('sku:retry', async () => {
      for (;;) {
        try {
          return await other(await fetch(21))
        } catch {
          // retry
        }
      }
    })
    expect(result).toBe(42)
    expect(attemptsSeen).toEqual([1, 2, 3])
    await recorder.close()

    const { captures, records } = readBundle(path)
    expect(records[0]!.status).toBe('ok')
    expect(captures.map((c) => [c.seq, c.stage, c.attempt])).toEqual([
      [0, 'fetch', 1],
      [1, 'fetch', 2],
      [2, 'fetch', 3],
      [3, 'other', 1],
    ])
    expect(JSON.parse(captures[0]!.error!)).toMatchObject({ name: 'Error', message: 'flaky 1' })
    expect(captures[0]!.output).toBeNull()
    expect(captures[2]!.output).toBe('42')
    expect(captures[2]!.error).toBeNull()
  })

  it('rethrows exactly what the stage threw, sync or async, and records it', async () => {
    const { path, recorder } = testRecorder()
    const syncErr = Object.assign(new RangeError('out of stock'), { code: 'E_STOCK' })
    const asyncErr = new TypeError('bad input')
    const notAnError = { reason: 'thrown object' }
    const throwsSync = recorder.stage('sync', () => {
      throw syncErr
    })
    const rejects = recorder.stage('async', async () => {
      await Promise.resolve()
      throw asyncErr
    })
    const throwsValue = recorder.stage('value', () => {
      throw notAnError
    })

    expect(await recorder.record('k1', () => throwsSync(1)).catch((e: unknown) => e)).toBe(syncErr)
    expect(await recorder.record('k2', () => rejects(2)).catch((e: unknown) => e)).toBe(asyncErr)
    expect(await recorder.record('k3', () => throwsValue(3)).catch((e: unknown) => e)).toBe(notAnError)
    // Outside a record the stage is not recorded but still throws the same object.
    expect(await throwsSync(4).catch((e: unknown) => e)).toBe(syncErr)
    await recorder.close()

    const { records, captures } = readBundle(path)
    expect(records.map((r) => [r.key, r.status]).sort()).toEqual([
      ['k1', 'error'],
      ['k2', 'error'],
      ['k3', 'error'],
    ])
    const k1 = records.find((r) => r.key === 'k1')!
    expect(JSON.parse(k1.error!)).toMatchObject({ name: 'RangeError', message: 'out of stock' })
    const byStage = new Map(captures.map((c) => [c.stage, c]))
    expect(JSON.parse(byStage.get('sync')!.error!)).toMatchObject({
      name: 'RangeError',
      message: 'out of stock',
      code: 'E_STOCK',
    })
    expect(JSON.parse(byStage.get('async')!.error!)).toMatchObject({
      name: 'TypeError',
      message: 'bad input',
    })
    expect(JSON.parse(byStage.get('value')!.error!)).toMatchObject({ name: 'NonError' })
    expect(captures.every((c) => c.output === null)).toBe(true)
    expect(captures).toHaveLength(3)
  })

  it('records as usual when something that is no replay hook sits where replay publishes one', async () => {
    const { path, recorder } = testRecorder({ sample: 1 })
    const host = globalThis as Record<symbol, unknown>
    const slot = Symbol.for('retrace.replay')
    const before = Object.hasOwn(host, slot)
    const saved = host[slot]
    host[slot] = 'not a function'
    try {
      const double = recorder.stage('double', (n: number) => n * 2)
      expect(await recorder.record('n:1', () => double(2))).toBe(4)
    } finally {
      if (before) host[slot] = saved
      else delete host[slot]
    }
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 1, errors: 0 })
    expect(readBundle(path).captures).toHaveLength(1)
  })

  it('calls a method wrapped in place on its object, recorded or not', async () => {
    const { path, recorder, errors } = testRecorder({ sample: 1 })
    class Pricing {
      rate = 3
      price(qty: number, ctx: StageContext): { qty: number; cents: number; attempt: number } {
        return { qty, cents: qty * this.rate, attempt: ctx.attempt }
      }
    }
    const svc = new Pricing()
    const price = recorder.stage('price', svc.price)
    const keyed = recorder.stage('price', svc.price, { key: (qty) => `qty:${qty}` })
    const wrapped = Object.assign(new Pricing(), { price, keyed })
    // In a record, through a key function, and outside any record (not recorded).
    expect(await recorder.record('sku:1', () => wrapped.price(2))).toEqual({ qty: 2, cents: 6, attempt: 1 })
    expect(await wrapped.keyed(4)).toEqual({ qty: 4, cents: 12, attempt: 1 })
    expect(await wrapped.price(5)).toEqual({ qty: 5, cents: 15, attempt: 1 })
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 2, unrecorded: 1, errors: 0 })
    expect(errors.map((e) => e.code)).toEqual(['E_NO_RECORD'])
    const bundle = readBundle(path)
    expect(bundle.captures.map((c) => decoded(c.output))).toEqual([
      { qty: 2, cents: 6, attempt: 1 },
      { qty: 4, cents: 12, attempt: 1 },
    ])
  })

  it('snapshots the input at stage entry', async () => {
    const { path, recorder } = testRecorder()
    const mutate = recorder.stage('mutate', (o: { qty: number; tags: string[]; at: Date }) => {
      o.qty = 99
      o.tags.push('changed')
      o.at.setTime(5000)
      return o
    })
    const input = { qty: 1, tags: ['a'], at: new Date(0) }
    await recorder.record('k', () => mutate(input))
    expect(input.qty).toBe(99)
    await recorder.close()
    const [capture] = readBundle(path).captures
    expect(decoded(capture!.input)).toEqual({ qty: 1, tags: ['a'], at: new Date(0) })
    expect(decoded(capture!.output)).toEqual({ qty: 99, tags: ['a', 'changed'], at: new Date(5000) })
  })
})

describe('effects', () => {
  it('records now(), random() and effect() in call order with args and results or errors', async () => {
    let t = 1_000
    const { path, recorder } = testRecorder({ clock: () => t++, random: () => 0.25 })
    const seen: Partial<StageContext>[] = []
    const compute = recorder.stage('compute', async (sku: string, ctx) => {
      seen.push({ key: ctx.key, recordId: ctx.recordId, stage: ctx.stage, attempt: ctx.attempt })
      const now = ctx.now()
      const r = ctx.random()
      const stock = ctx.effect('kv.get', { key: `stock:${sku}` }, () => 7)
      const price = await ctx.effect('http.price', [sku, { currency: 'EUR' }], async () => 125n)
      let syncFailure = ''
      try {
        ctx.effect('cache.get', { key: 'x' }, () => {
          throw new Error('cache down')
        })
      } catch (err) {
        syncFailure = (err as Error).message
      }
      const rejected = await ctx
        .effect('db.read', 'q', () => Promise.reject(new TypeError('db gone')))
        .catch((err: Error) => err.message)
      return { now, r, stock, price, syncFailure, rejected }
    })

    const out = await recorder.record('sku:9', () => compute('sku-9'))
    expect(out).toMatchObject({
      r: 0.25,
      stock: 7,
      price: 125n,
      syncFailure: 'cache down',
      rejected: 'db gone',
    })
    const current = await recorder.record('sku:9', async () => recorder.current())
    expect(seen).toEqual([{ key: 'sku:9', recordId: expect.any(String), stage: 'compute', attempt: 1 }])
    expect(current?.key).toBe('sku:9')
    await recorder.close()

    const { captures } = readBundle(path)
    const effects = captures[0]!.effects
    expect(effects.map((e) => [e.seq, e.kind, e.name])).toEqual([
      [0, 'now', 'now'],
      [1, 'random', 'random'],
      [2, 'effect', 'kv.get'],
      [3, 'async-effect', 'http.price'],
      [4, 'effect', 'cache.get'],
      [5, 'async-effect', 'db.read'],
    ])
    expect(Number(effects[0]!.result)).toBe((out as { now: number }).now)
    expect(Number(effects[1]!.result)).toBe(0.25)
    expect(decoded(effects[2]!.args)).toEqual({ key: 'stock:sku-9' })
    expect(decoded(effects[2]!.result)).toBe(7)
    expect(decoded(effects[3]!.args)).toEqual(['sku-9', { currency: 'EUR' }])
    expect(decoded(effects[3]!.result)).toBe(125n)
    expect(effects[4]!.result).toBeNull()
    expect(JSON.parse(effects[4]!.error!)).toMatchObject({ name: 'Error', message: 'cache down' })
    expect(effects[5]!.result).toBeNull()
    expect(JSON.parse(effects[5]!.error!)).toMatchObject({ name: 'TypeError', message: 'db gone' })
    expect(effects.slice(0, 4).every((e) => e.error === null)).toBe(true)
  })

  it('runs effects for real, unrecorded, outside a record', async () => {
    const { path, recorder } = testRecorder()
    let ran = 0
    const s = recorder.stage('s', (n: number, ctx) => ctx.effect('side', n, () => ++ran))
    expect(await s(1)).toBe(1)
    expect(ran).toBe(1)
    await recorder.close()
    expect(readBundle(path).captures).toHaveLength(0)
  })
})

describe('records', () => {
  it('starts a record from a stage key function when none is active', async () => {
    const { path, recorder, errors } = testRecorder()
    const inside: unknown[] = []
    const enrich = recorder.stage('enrich', (e: { sku: number }) => ({ ...e, enriched: true }))
    const ingest = recorder.stage(
      'ingest',
      async (e: { sku: number }, ctx) => {
        inside.push(recorder.current(), ctx.key)
        return enrich(e)
      },
      { key: (e) => `sku:${e.sku}` },
    )
    expect(await ingest({ sku: 7 })).toEqual({ sku: 7, enriched: true })
    expect(await ingest({ sku: 8 })).toEqual({ sku: 8, enriched: true })
    expect(recorder.current()).toBeUndefined()

    const badKey = recorder.stage('bad', (n: number) => n + 1, {
      key: () => {
        throw new Error('no key')
      },
    })
    expect(await badKey(1)).toBe(2)
    // A key function that gives no key (a missing field, null, an object) records nothing;
    // a number is a key.
    const byField = recorder.stage('field', (o: { id?: unknown }) => o.id, {
      key: (o: { id?: unknown }) => o.id as string,
    })
    for (const id of [undefined, null, {}, '', Number.NaN]) expect(await byField({ id })).toBe(id)
    expect(await byField({ id: 42 })).toBe(42)
    await recorder.close()

    const { records, captures } = readBundle(path)
    expect(records.map((r) => r.key).sort()).toEqual(['42', 'sku:7', 'sku:8'])

    expect(inside[0]).toEqual({ recordId: expect.any(String), key: 'sku:7' })
    expect(inside[1]).toBe('sku:7')
    const first = records.find((r) => r.key === 'sku:7')!
    expect(captures.filter((c) => c.record_id === first.id).map((c) => c.stage)).toEqual(['ingest', 'enrich'])
    expect((inside[0] as { recordId: string }).recordId).toBe(first.id)
    expect(errors.map((e) => e.code)).toContain('E_KEY')
  })

  it('tells onError when a key function gives no key', async () => {
    const { recorder, errors } = testRecorder()
    const s = recorder.stage('field', (o: { id?: string }) => o, { key: (o) => o.id as string })
    await s({})
    expect(errors.map((e) => e.message)).toEqual([
      'stage field: the key function gave undefined, not a key (a non-empty string or a number); not recorded',
    ])
    expect(recorder.stats()).toMatchObject({ captured: 0, unrecorded: 1 })
  })

  it('continues a record under a given id, across recorders', async () => {
    const upstream = testRecorder()
    const downstream = testRecorder()
    const a = upstream.recorder.stage('a', (n: number) => n + 1)
    const b = downstream.recorder.stage('b', (n: number) => n * 2)

    let handoff: { recordId: string; key: string } | undefined
    const mid = await upstream.recorder.record('order:1', async () => {
      const v = await a(1)
      handoff = upstream.recorder.current()
      return v
    })
    expect(handoff?.recordId).toMatch(/^[0-9A-Z]{26}$/)
    let seenId = ''
    const out = await downstream.recorder.record(
      handoff!.key,
      async () => {
        seenId = downstream.recorder.current()!.recordId
        return b(mid)
      },
      { recordId: handoff!.recordId },
    )
    expect(out).toBe(4)
    expect(seenId).toBe(handoff!.recordId)
    await upstream.recorder.close()
    await downstream.recorder.close()

    const up = readBundle(upstream.path)
    const down = readBundle(downstream.path)
    expect(up.records[0]!.id).toBe(handoff!.recordId)
    expect(down.records[0]!.id).toBe(handoff!.recordId)
    expect(down.captures.map((c) => [c.record_id, c.stage])).toEqual([[handoff!.recordId, 'b']])
  })

  it('times the parts of a record continued in the same process on one clock, so the later part starts after the earlier ended', async () => {
    const upstream = testRecorder()
    const downstream = testRecorder()
    const a = upstream.recorder.stage('a', async (n: number) => {
      await new Promise((r) => setTimeout(r, 1))
      return n + 1
    })
    const b = downstream.recorder.stage('b', (n: number) => n * 2)
    // Each part's start on the millisecond of its own record would put the later part up to
    // a millisecond early: before the end of the stage that handed it its input.
    for (let i = 0; i < 30; i++) {
      let id = ''
      const mid = await upstream.recorder.record(`k:${i}`, async () => {
        id = upstream.recorder.current()!.recordId
        return a(i)
      })
      await downstream.recorder.record(`k:${i}`, () => b(mid), { recordId: id })
    }
    await upstream.recorder.close()
    await downstream.recorder.close()
    const ended = new Map(
      readBundle(upstream.path).captures.map((c) => [c.record_id, c.started_at + c.duration_ms]),
    )
    const down = readBundle(downstream.path)
    expect(down.captures).toHaveLength(30)
    const early = down.captures.filter((c) => c.started_at < ended.get(c.record_id)! - 0.0015)
    expect(early.map((c) => c.record_id)).toEqual([])
    for (const r of down.records) {
      const first = down.captures.find((c) => c.record_id === r.id)!
      expect(r.started_at).toBeLessThanOrEqual(first.started_at)
    }
  })

  it('a record continued by a recorder sharing the file is ordered as it ran, whichever part was written first', async () => {
    let now = 1_000
    const clock = () => now
    const upstream = testRecorder({ clock, flushIntervalMs: 60_000 })
    const downstream = testRecorder({ path: upstream.path, clock, flushIntervalMs: 60_000 })
    const ingest = upstream.recorder.stage('ingest', (n: number) => n + 1)
    const compute = downstream.recorder.stage('compute', (n: number) => n * 10)
    let id = ''
    const mid = await upstream.recorder.record('k', async () => {
      const v = await ingest(1)
      id = upstream.recorder.current()!.recordId
      return v
    })
    now = 2_000
    await downstream.recorder.record('k', () => compute(mid), { recordId: id })
    // The part that ran second is written first.
    await downstream.recorder.flush()
    await upstream.recorder.close()
    await downstream.recorder.close()
    const bundle = readBundle(upstream.path)
    expect(bundle.records.map((r) => [r.id, r.started_at])).toEqual([[id, 1_000]])
    expect(bundle.captures.map((c) => [c.seq, c.stage, c.started_at])).toEqual([
      [0, 'ingest', 1_000],
      [1, 'compute', 2_000],
    ])
  })

  it('current() is undefined outside a record and follows the record across awaits', async () => {
    const { recorder } = testRecorder({ ids: () => 'REC-FIXED' })
    expect(recorder.current()).toBeUndefined()
    const seen = await recorder.record('key:1', async () => {
      const before = recorder.current()
      await new Promise((resolve) => setTimeout(resolve, 1))
      const after = recorder.current()
      const nested = await recorder.record('key:2', async () => recorder.current(), { recordId: 'REC-2' })
      return { before, after, nested, back: recorder.current() }
    })
    expect(seen).toEqual({
      before: { recordId: 'REC-FIXED', key: 'key:1' },
      after: { recordId: 'REC-FIXED', key: 'key:1' },
      nested: { recordId: 'REC-2', key: 'key:2' },
      back: { recordId: 'REC-FIXED', key: 'key:1' },
    })
    expect(recorder.current()).toBeUndefined()
  })
})

describe('several recorders in one process', () => {
  const tick = () => new Promise((resolve) => setTimeout(resolve, 1))

  it('keeps each recorder its own record when records of two recorders nest', async () => {
    const a = testRecorder({ ids: () => 'A-1' })
    const b = testRecorder({ ids: () => 'B-1' })
    const seen: Record<string, unknown> = {}
    const look = (label: string) => {
      seen[label] = { a: a.recorder.current(), b: b.recorder.current() }
    }
    const sa = a.recorder.stage('sa', async (n: number, ctx) => {
      await tick()
      return `${ctx.recordId}:${n}`
    })
    const sb = b.recorder.stage('sb', (n: number, ctx) => `${ctx.recordId}:${n}`)

    const out = await a.recorder.record('a:1', async () => {
      look('inA')
      const bOutsideItsRecord = await sb(0)
      const inner = await b.recorder.record('b:1', async () => {
        look('inB')
        const x = await sa(1)
        const y = await sb(2)
        look('inBAfterAwaits')
        const z = await a.recorder.record(
          'a:2',
          async () => {
            look('inA2')
            return [await sa(3), await sb(4)]
          },
          { recordId: 'A-2' },
        )
        look('backInB')
        return [x, y, ...z]
      })
      look('backInA')
      return [bOutsideItsRecord, ...inner, await sa(5)]
    })
    look('outside')
    expect(out).toEqual([':0', 'A-1:1', 'B-1:2', 'A-2:3', 'B-1:4', 'A-1:5'])
    const a1 = { recordId: 'A-1', key: 'a:1' }
    const a2 = { recordId: 'A-2', key: 'a:2' }
    const b1 = { recordId: 'B-1', key: 'b:1' }
    expect(seen).toEqual({
      inA: { a: a1, b: undefined },
      inB: { a: a1, b: b1 },
      inBAfterAwaits: { a: a1, b: b1 },
      inA2: { a: a2, b: b1 },
      backInB: { a: a1, b: b1 },
      backInA: { a: a1, b: undefined },
      outside: { a: undefined, b: undefined },
    })
    await a.recorder.close()
    await b.recorder.close()

    const inA = readBundle(a.path)
    const inB = readBundle(b.path)
    expect(inA.records.map((r) => [r.id, r.key]).sort()).toEqual([
      ['A-1', 'a:1'],
      ['A-2', 'a:2'],
    ])
    expect(inA.captures.map((c) => [c.record_id, c.seq, c.stage, c.input])).toEqual(
      expect.arrayContaining([
        ['A-1', 0, 'sa', '1'],
        ['A-1', 1, 'sa', '5'],
        ['A-2', 0, 'sa', '3'],
      ]),
    )
    expect(inA.captures).toHaveLength(3)
    expect(inB.records.map((r) => [r.id, r.key])).toEqual([['B-1', 'b:1']])
    expect(inB.captures.map((c) => [c.record_id, c.seq, c.stage, c.input])).toEqual([
      ['B-1', 0, 'sb', '2'],
      ['B-1', 1, 'sb', '4'],
    ])
  })

  it('records with a recorder created after another was closed', async () => {
    const first = testRecorder({ ids: () => 'F-1' })
    const f = first.recorder.stage('f', (n: number) => n + 1)
    expect(await first.recorder.record('f:1', () => f(1))).toBe(2)
    await first.recorder.close()

    const second = testRecorder({ ids: () => 'S-1' })
    const s = second.recorder.stage('s', async (n: number) => {
      await tick()
      return f(n)
    })
    const seen = await second.recorder.record('s:1', async () => {
      const out = await s(10)
      return { out, first: first.recorder.current(), second: second.recorder.current() }
    })
    expect(seen).toEqual({ out: 11, first: undefined, second: { recordId: 'S-1', key: 's:1' } })
    // A record of the closed recorder is counted as dropped; the open one still sees its own.
    const both = await second.recorder.record('s:1', () =>
      first.recorder.record('f:2', async () => [
        first.recorder.current(),
        second.recorder.current(),
        await f(20),
      ]),
    )
    expect(both).toEqual([{ recordId: 'F-1', key: 'f:2' }, { recordId: 'S-1', key: 's:1' }, 21])
    await second.recorder.close()

    expect(first.recorder.stats()).toMatchObject({
      captured: 1,
      written: 1,
      dropped: 1,
      droppedBy: { closed: 1 },
    })
    expect(second.recorder.stats()).toMatchObject({ captured: 1, written: 1, dropped: 0 })
    expect(readBundle(first.path).captures.map((c) => [c.record_id, c.stage, c.input])).toEqual([
      ['F-1', 'f', '1'],
    ])
    expect(readBundle(second.path).captures.map((c) => [c.record_id, c.stage, c.input])).toEqual([
      ['S-1', 's', '10'],
    ])
  })
})

describe('unrecordable payloads', () => {
  it('stores a marker with the size for an oversized payload and a marker for a cyclic one', async () => {
    const { path, recorder, errors } = testRecorder({ maxPayloadBytes: 1000 })
    const big = 'x'.repeat(5000)
    const cyclic: Record<string, unknown> = { name: 'loop' }
    cyclic.self = cyclic
    const s = recorder.stage('s', (input: unknown) => (input === big ? cyclic : 'small'))

    expect(await recorder.record('k1', () => s(big))).toBe(cyclic)
    expect(await recorder.record('k2', () => s(cyclic))).toBe('small')
    await recorder.close()

    const { captures } = readBundle(path)
    const bigInput = JSON.parse(captures.find((c) => c.output !== '"small"')!.input) as Record<
      string,
      unknown
    >
    expect(bigInput).toMatchObject({ $t: 'unrecorded', reason: 'too-large', size: big.length + 2 })
    const cyclicOutput = JSON.parse(captures.find((c) => c.output !== '"small"')!.output!)
    expect(cyclicOutput).toMatchObject({ $t: 'unrecorded', reason: 'cyclic' })
    const cyclicInput = JSON.parse(captures.find((c) => c.output === '"small"')!.input)
    expect(cyclicInput).toMatchObject({ $t: 'unrecorded', reason: 'cyclic' })
    expect(recorder.stats().errors).toBe(3)
    expect(errors.map((e) => e.code)).toEqual(['E_PAYLOAD'])
    expect(recorder.stats().written).toBe(2)
  })

  it('records a marker when a redaction rule throws, and the stage still returns', async () => {
    const { path, recorder, errors } = testRecorder({
      redact: [
        (_path: readonly (string | number)[], value: unknown) => {
          // A rule that rejects a value tends to quote it.
          if (typeof value === 'string' && value.startsWith('CANARY'))
            throw new TypeError(`invalid card ${value}`)
          return false
        },
      ],
    })
    const s = recorder.stage('s', (o: { card: string }) => ({ ok: true, card: o.card }))
    expect(await recorder.record('k', () => s({ card: 'CANARY-RULE-THREW' }))).toEqual({
      ok: true,
      card: 'CANARY-RULE-THREW',
    })
    await recorder.close()
    const [capture] = readBundle(path).captures
    expect(JSON.parse(capture!.input)).toMatchObject({ $t: 'unrecorded', reason: 'redaction-failed' })
    expect(JSON.parse(capture!.output!)).toMatchObject({ $t: 'unrecorded', reason: 'redaction-failed' })
    expect(capture!.input + capture!.output).not.toContain('CANARY')
    expect(recorder.stats().errors).toBe(2)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.code).toBe('E_REDACT')
    expect(errors[0]!.message).toBe('a redaction rule failed (it threw a TypeError; its message is not kept)')
    // The host still reaches what its rule threw.
    expect(((errors[0]!.cause as Error).cause as Error).message).toBe('invalid card CANARY-RULE-THREW')
  })
})

describe('binary values made in another realm', () => {
  it('an ArrayBuffer or SharedArrayBuffer from a vm context is recorded with its bytes, and redacted by them', async () => {
    const { path, recorder } = testRecorder({ redact: ['$.blobs[*]'], redactKey: 'k'.repeat(32) })
    const foreign = (source: string) => runInNewContext(source) as ArrayBuffer
    const s = recorder.stage('s', (x: unknown) => x)
    await recorder.record('k', () =>
      s({
        ab: foreign('new Uint8Array([1, 2, 3, 4]).buffer'),
        sab: foreign('const b = new SharedArrayBuffer(2); new Uint8Array(b).set([9, 8]); b'),
        blobs: [
          foreign('new Uint8Array([5]).buffer'),
          foreign('new Uint8Array([6]).buffer'),
          new Uint8Array([5]).buffer,
        ],
      }),
    )
    await recorder.close()
    const input = decoded(readBundle(path).captures[0]!.input) as Record<string, unknown>
    expect(input.ab).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(input.ab as ArrayBuffer)]).toEqual([1, 2, 3, 4])
    expect(input.sab).toBeInstanceOf(SharedArrayBuffer)
    expect([...new Uint8Array(input.sab as SharedArrayBuffer)]).toEqual([9, 8])
    // Equality-preserving tokens tell the buffers apart by their bytes, whatever their realm.
    const [five, six, localFive] = input.blobs as string[]
    expect(five).toMatch(/^\[redacted:/)
    expect(five).not.toBe(six)
    expect(five).toBe(localFive)
  })
})

describe('close', () => {
  it('leaves one self-contained file that passes integrity_check', async () => {
    const { path, recorder } = testRecorder()
    const s = recorder.stage('s', (n: number) => ({ n, pad: 'p'.repeat(500) }))
    for (let i = 0; i < 200; i++) await recorder.record(`k:${i}`, () => s(i))
    await recorder.flush()
    expect(existsSync(`${path}-wal`)).toBe(true)
    await recorder.close()

    expect(existsSync(path)).toBe(true)
    expect(existsSync(`${path}-wal`)).toBe(false)
    expect(existsSync(`${path}-shm`)).toBe(false)
    expect(existsSync(`${path}-journal`)).toBe(false)
    withDb(
      path,
      (db) => {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
        expect(db.pragma('journal_mode', { simple: true })).toBe('delete')
        expect(db.pragma('application_id', { simple: true })).toBe(0x52545243)
        expect(db.pragma('user_version', { simple: true })).toBe(1)
        expect(db.prepare('SELECT count(*) FROM captures').pluck().get()).toBe(200)
      },
      true,
    )
    expect(recorder.stats()).toMatchObject({ captured: 200, written: 200, dropped: 0 })
  })

  it('after close, stages still run and their records are dropped and counted', async () => {
    const { path, recorder } = testRecorder()
    const s = recorder.stage('s', (n: number) => n + 1)
    await recorder.record('before', () => s(1))
    await recorder.close()
    await recorder.close()
    expect(await recorder.record('after', () => s(2))).toBe(3)
    expect(recorder.stats()).toMatchObject({ written: 1, dropped: 1, droppedBy: { closed: 1 } })
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['before'])
  })

  it('a second close() called while the first runs returns only once everything is written', async () => {
    const { path, recorder } = testRecorder({ flushIntervalMs: 60_000 })
    const s = recorder.stage('s', (n: number) => ({ n, pad: 'p'.repeat(200) }))
    for (let i = 0; i < 500; i++) await recorder.record(`k:${i}`, () => s(i))
    const first = recorder.close()
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ captured: 500, written: 500, dropped: 0 })
    expect(readBundle(path).records).toHaveLength(500)
    await first
  })

  it('flush() makes everything captured so far readable by another connection', async () => {
    const { path, recorder } = testRecorder({ flushIntervalMs: 60_000 })
    const s = recorder.stage('s', (n: number) => n)
    for (let i = 0; i < 10; i++) await recorder.record(`k:${i}`, () => s(i))
    await recorder.flush()
    expect(recorder.stats().written).toBe(10)
    expect(readBundle(path).captures).toHaveLength(10)
  })
})
