/**
 * The recorder under the usage a real service gives it: many records in flight, records
 * started from callbacks, odd values, effects that misbehave, two recorders, a lifecycle
 * out of order, and redaction rules with odd paths.
 */
import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { decode } from '../../src/codec/index.js'
import { createRecorder, type RecorderError } from '../../src/index.js'
import { readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'
import { tempPath } from '../helpers/tmp.js'

const decoded = (text: string | null): unknown => (text === null ? null : decode(text))
const jitter = () => sleep(Math.floor(Math.random() * 4))

describe('concurrency', () => {
  it('keeps 200 records in flight apart: each capture in its own record, seq and attempts right', async () => {
    const { path, recorder, errors } = testRecorder()
    const parse = recorder.stage('parse', async (n: number, ctx) => {
      await jitter()
      return { n, key: ctx.key }
    })
    // Every seventh key fails its first compute, and is retried.
    const fail = new Set<number>()
    const compute = recorder.stage('compute', async (o: { n: number; key: string }, ctx) => {
      await jitter()
      const kv = await ctx.effect('kv.get', { n: o.n }, async () => {
        await jitter()
        return o.n * 2
      })
      if (o.n % 7 === 0 && !fail.has(o.n)) {
        fail.add(o.n)
        throw new Error(`flaky ${o.n}`)
      }
      return { ...o, kv, attempt: ctx.attempt, rid: ctx.recordId }
    })
    const store = recorder.stage('store', async (o: { n: number }) => {
      await jitter()
      return { stored: o.n }
    })
    const out = await Promise.all(
      Array.from({ length: 200 }, (_, n) =>
        recorder.record(`k:${n}`, async () => {
          const p = await parse(n)
          let c: { n: number; kv: number; attempt: number; rid: string }
          try {
            c = (await compute(p)) as never
          } catch {
            await jitter()
            c = (await compute(p)) as never
          }
          expect(recorder.current()?.key).toBe(`k:${n}`)
          return store(c)
        }),
      ),
    )
    expect(out.map((o) => o.stored)).toEqual(Array.from({ length: 200 }, (_, n) => n))
    await recorder.close()
    const { records, captures } = readBundle(path)
    expect(records).toHaveLength(200)
    for (const r of records) {
      const n = Number(r.key.slice(2))
      const mine = captures.filter((c) => c.record_id === r.id).sort((a, b) => a.seq - b.seq)
      const expected =
        n % 7 === 0 ? ['parse:1', 'compute:1', 'compute:2', 'store:1'] : ['parse:1', 'compute:1', 'store:1']
      expect(mine.map((c) => `${c.stage}:${c.attempt}`)).toEqual(expected)
      expect(mine.map((c) => c.seq)).toEqual(expected.map((_, i) => i))
      expect(decoded(mine[0]!.input)).toBe(n)
      const last = mine.at(-2)!
      expect(decoded(last.output)).toMatchObject({
        n,
        key: r.key,
        kv: n * 2,
        rid: r.id,
        attempt: n % 7 === 0 ? 2 : 1,
      })
      for (const c of mine) for (const e of c.effects) expect(decoded(e.args)).toEqual({ n })
    }
    expect(new Set(records.map((r) => r.key)).size).toBe(200)
    expect(errors).toEqual([])
  })

  it('starts records from an EventEmitter, setImmediate, queueMicrotask; stream data joins the open record', async () => {
    const { path, recorder, errors } = testRecorder()
    const st = recorder.stage(
      'st',
      async (x: string, ctx) => {
        await jitter()
        return `${x}@${ctx.key}`
      },
      { key: (x) => `key:${x}` },
    )
    const em = new EventEmitter()
    const done: Promise<unknown>[] = []
    em.on('ev', (x: string) => done.push(recorder.record(`e:${x}`, () => st(x))))
    await recorder.record('outer', async () => {
      em.emit('ev', 'a')
      await new Promise<void>((r) =>
        setImmediate(() => {
          done.push(recorder.record('i:b', () => st('b')))
          r()
        }),
      )
      queueMicrotask(() => done.push(recorder.record('m:c', () => st('c'))))
      const s = Readable.from(['d', 'e'])
      const fromStream: Promise<unknown>[] = []
      s.on('data', (x: string) => fromStream.push(st(x)))
      await new Promise((r) => s.on('end', r))
      await Promise.all(fromStream)
      await st('outer')
    })
    await Promise.all(done)
    await recorder.close()
    const { records, captures } = readBundle(path)
    const keyOf = new Map(records.map((r) => [r.id, r.key]))
    const seen = captures.map((c) => `${keyOf.get(c.record_id)}=${decoded(c.input)}`).sort()
    // The stream's handlers run in the context of the record that read it.
    expect(seen).toEqual(['e:a=a', 'i:b=b', 'm:c=c', 'outer=d', 'outer=e', 'outer=outer'].sort())
    expect(errors).toEqual([])
  })
})

class Weird {
  get boom(): never {
    throw new Error('getter')
  }
  x = 1
}

describe('odd values a stage returns', () => {
  it('are handed back untouched and recorded as JSON.stringify would write them', async () => {
    const { path, recorder } = testRecorder()
    async function* gen() {
      yield 1
    }
    const selfJson = {
      a: 1,
      toJSON() {
        return this
      },
    }
    // biome-ignore lint/suspicious/noThenProperty: a `then` that is no function is what is under test
    const thenNotFn = { then: 5, v: 1 }
    const frozen = Object.freeze({ f: Object.freeze([1, 2]) })
    const proxy = new Proxy({ p: 1 }, { get: (t, k) => (k === 'p' ? 2 : Reflect.get(t, k)) })
    const ownThrow = Object.defineProperty({}, 'bad', {
      enumerable: true,
      get() {
        throw new Error('own getter')
      },
    })
    const outs: Record<string, unknown> = {
      gen: gen(),
      stream: Readable.from(['x']),
      weird: new Weird(),
      frozen,
      thenNotFn,
      proxy,
      selfJson,
      ownThrow,
    }
    const got: Record<string, unknown> = {}
    await recorder.record('k', async () => {
      for (const [name, v] of Object.entries(outs)) got[name] = await recorder.stage(name, () => v)(0)
    })
    for (const [name, v] of Object.entries(outs)) expect(got[name]).toBe(v)
    await recorder.close()
    const { captures } = readBundle(path)
    const out = Object.fromEntries(captures.map((c) => [c.stage, decoded(c.output)]))
    expect(out.weird).toEqual({ x: 1 })
    expect(out.frozen).toEqual({ f: [1, 2] })
    expect(out.thenNotFn).toEqual(thenNotFn)
    expect(out.proxy).toEqual({ p: 2 })
    expect(out.selfJson).toEqual({ a: 1 })
    // Nothing of their state is in own fields JSON would write.
    expect(out.gen).toEqual({})
    expect(out.ownThrow).toMatchObject({ $t: 'unrecorded', reason: 'unserialisable' })
    expect(typeof out.stream).toBe('object')
  })

  it('an input is recorded as it was at entry, an output as it was returned, whatever is mutated later', async () => {
    const { path, recorder } = testRecorder()
    const input = { items: [1], m: new Map([['a', { v: 1 }]]) }
    const st = recorder.stage('st', async (o: typeof input) => {
      o.items.push(2)
      o.m.get('a')!.v = 2
      await sleep(1)
      o.items.push(3)
      return o
    })
    await recorder.record('k', async () => {
      const out = await st(input)
      out.items.push(4)
      await sleep(5)
    })
    await recorder.close()
    const [c] = readBundle(path).captures
    expect(decoded(c!.input)).toEqual({ items: [1], m: new Map([['a', { v: 1 }]]) })
    expect(decoded(c!.output)).toEqual({ items: [1, 2, 3], m: new Map([['a', { v: 2 }]]) })
  })
})

describe('effects', () => {
  it('records non-Error rejections, an effect whose function calls another, and markers for cyclic or huge args', async () => {
    const { path, recorder } = testRecorder({ maxPayloadBytes: 10_000 })
    let lateCtx: import('../../src/index.js').StageContext | undefined
    const cyc: Record<string, unknown> = { a: 1 }
    cyc.self = cyc
    const st = recorder.stage('st', async (_: number, ctx) => {
      lateCtx = ctx
      await expect(ctx.effect('rej', 1, () => Promise.reject('plain string'))).rejects.toBe('plain string')
      await expect(
        ctx.effect('rej2', 2, () => Promise.reject({ code: 'E_X', message: 'obj' })),
      ).rejects.toEqual({ code: 'E_X', message: 'obj' })
      await expect(ctx.effect('rej3', 3, () => Promise.reject(undefined))).rejects.toBe(undefined)
      // What the outer effect's function calls through ctx is covered by its result.
      const nested = await ctx.effect(
        'outer',
        'o',
        async () => 1 + (await ctx.effect('inner', 'i', async () => 1)),
      )
      const c = ctx.effect('cyc', cyc, () => 'ok')
      const h = ctx.effect('huge', 'x'.repeat(100_000), () => 'ok')
      return { nested, c, h }
    })
    await recorder.record('k', () => st(0))
    expect(lateCtx!.effect('late', 1, () => 7)).toBe(7)
    expect(recorder.stats().unrecorded).toBe(1)
    await recorder.close()
    const [c] = readBundle(path).captures
    const effs = c!.effects.map((e) => ({
      seq: e.seq,
      name: e.name,
      args: decoded(e.args),
      result: decoded(e.result),
      error: e.error === null ? null : JSON.parse(e.error),
    }))
    expect(effs.map((e) => [e.seq, e.name])).toEqual([
      [0, 'rej'],
      [1, 'rej2'],
      [2, 'rej3'],
      [3, 'outer'],
      [4, 'cyc'],
      [5, 'huge'],
    ])
    expect(effs.slice(0, 3).map((e) => e.error)).toEqual([
      { name: 'NonError', message: 'plain string' },
      { name: 'NonError', message: 'obj', code: 'E_X' },
      { name: 'NonError', message: 'undefined' },
    ])
    expect(effs[3]!.result).toBe(2)
    expect(effs[4]!.args).toMatchObject({ $t: 'unrecorded', reason: 'cyclic' })
    expect(effs[5]!.args).toMatchObject({ $t: 'unrecorded', reason: 'too-large' })
    expect(effs.slice(4).map((e) => e.result)).toEqual(['ok', 'ok'])
  })
})

describe('promises the host handles itself', () => {
  it('a stage, an effect or a record left unawaited, whose promise the host handled, raises no unhandled rejection', async () => {
    const { path, recorder } = testRecorder()
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      const logged: string[] = []
      /** Rejects, with the host's own handler on it: what a fire-and-forget call returns. */
      const handled = (message: string): Promise<never> => {
        const p = Promise.reject(new Error(message))
        p.catch((e: Error) => logged.push(e.message))
        return p
      }
      const notify = recorder.stage('notify', () => handled('smtp down'))
      const warm = recorder.stage('warm', (_: unknown, ctx) => {
        void ctx.effect('cache.warm', {}, () => handled('cache down'))
        return 'ok'
      })
      await recorder.record('k:1', async () => {
        void notify({})
        await warm({})
      })
      void recorder.record('k:2', () => handled('record down'))
      await sleep(20)
      expect(logged.sort()).toEqual(['cache down', 'record down', 'smtp down'])
      expect(unhandled).toEqual([])
      await recorder.close()
      // Still recorded, with the errors the host saw.
      const { captures } = readBundle(path)
      expect(captures.map((c) => [c.stage, decoded(c.error)])).toContainEqual([
        'notify',
        expect.objectContaining({ message: 'smtp down' }),
      ])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it("a stage gives back the native promise its function returned, with what the host's code added to it", async () => {
    const { recorder } = testRecorder()
    const spawnLike = recorder.stage('spawn', () => Object.assign(Promise.resolve('done'), { pid: 4242 }))
    const got = await recorder.record('k', async () => {
      const p = spawnLike({}) as Promise<string> & { pid?: number }
      expect(p.pid).toBe(4242)
      return p
    })
    expect(got).toBe('done')
  })
})

describe('lifecycle', () => {
  it('close() twice at once, flush() after close(), a record running across close() and one after it', async () => {
    const { path, recorder, errors } = testRecorder()
    const st = recorder.stage('st', async (n: number) => {
      await sleep(20)
      return n
    })
    await recorder.record('before', () => st(1))
    const running = recorder.record('running', () => st(2))
    const [a, b] = [recorder.close(), recorder.close()]
    await Promise.all([a, b])
    await recorder.flush()
    expect(await running).toBe(2)
    expect(await recorder.record('after', () => st(3))).toBe(3)
    await recorder.flush()
    await recorder.close()
    // What ends after close() has started is dropped and counted, never thrown.
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['before'])
    expect(recorder.stats()).toMatchObject({ written: 1, dropped: 2, droppedBy: { closed: 2 } })
    expect(errors).toEqual([])
  })

  it('after close(), or with no bundle, payloads are not read: the host pays nothing for records that are dropped', async () => {
    let reads = 0
    const payload = {
      get items(): number[] {
        reads++
        return [1, 2, 3]
      },
    }
    const closedOne = testRecorder()
    const noBundle = testRecorder({ path: ':memory:' })
    await closedOne.recorder.close()
    for (const { recorder } of [closedOne, noBundle]) {
      const st = recorder.stage('st', (p: typeof payload, ctx) => ctx.effect('kv.get', p, () => p))
      for (let i = 0; i < 5; i++)
        await expect(recorder.record(`k${i}`, () => st(payload))).resolves.toBe(payload)
    }
    expect(reads).toBe(0)
    expect(closedOne.recorder.stats()).toMatchObject({ dropped: 5, droppedBy: { closed: 5 }, unrecorded: 0 })
    expect(noBundle.recorder.stats()).toMatchObject({
      dropped: 5,
      droppedBy: { writeFailed: 5 },
      unrecorded: 0,
    })
  })

  it('an onError that throws never reaches the host, and is told once per code in 10 s', async () => {
    const calls: RecorderError[] = []
    const recorder = createRecorder({
      path: tempPath(),
      onError: (e) => {
        calls.push(e)
        throw new Error('handler broke')
      },
    })
    const st = recorder.stage('st', (x: unknown) => x)
    const cyc: Record<string, unknown> = {}
    cyc.c = cyc
    for (let i = 0; i < 20; i++) await expect(recorder.record(`k${i}`, () => st(cyc))).resolves.toBe(cyc)
    await recorder.close()
    expect(calls.filter((c) => c.code === 'E_PAYLOAD')).toHaveLength(1)
    // The input and the output of each record.
    expect(recorder.stats().errors).toBe(40)
  })
})

describe('two recorders', () => {
  it('write interleaved records to their own bundles; a keyed stage starts its own record inside the other', async () => {
    const A = testRecorder()
    const B = testRecorder()
    const sa = A.recorder.stage('sa', async (n: number) => {
      await jitter()
      return n
    })
    const sb = B.recorder.stage(
      'sb',
      async (n: number, ctx) => {
        await jitter()
        return `${n}:${ctx.key}`
      },
      { key: (n) => `b:${n}` },
    )
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        A.recorder.record(`a:${n}`, async () => {
          await sa(n)
          const got = await sb(n)
          expect(got).toBe(`${n}:b:${n}`)
          await sa(n)
        }),
      ),
    )
    await A.recorder.close()
    await B.recorder.close()
    const a = readBundle(A.path)
    const b = readBundle(B.path)
    expect(a.records).toHaveLength(50)
    expect(a.captures.map((c) => c.stage).every((s) => s === 'sa')).toBe(true)
    expect(a.captures.filter((c) => c.attempt === 2)).toHaveLength(50)
    expect(b.records).toHaveLength(50)
    expect(b.records.every((r) => r.key.startsWith('b:'))).toBe(true)
  })
})

describe('redaction rules', () => {
  it('with odd paths redact what they name, and one that does not parse fails closed', async () => {
    const v = { 'a.b': 'dot', 'q"x': 'quote', 'x-y': 'dash', n: [1, { 'x-y': 'deep' }] }
    const all = { 'a.b': '[redacted]', 'q"x': '[redacted]', 'x-y': '[redacted]', n: '[redacted]' }
    const expected: Record<string, unknown> = {
      '$..': '[redacted]',
      '$[*]': all,
      "$['a.b']": { ...v, 'a.b': '[redacted]' },
      '$["q\\"x"]': { ...v, 'q"x': '[redacted]' },
      "$..['x-y']": { ...v, 'x-y': '[redacted]', n: [1, { 'x-y': '[redacted]' }] },
      '$.*': all,
      '$..*': all,
      '$[0]': v,
    }
    for (const [rule, want] of Object.entries(expected)) {
      const errors: RecorderError[] = []
      const path = tempPath()
      const recorder = createRecorder({ path, redact: [rule], onError: (e) => errors.push(e) })
      const st = recorder.stage('st', (x: unknown) => x)
      await expect(recorder.record('k', () => st(v))).resolves.toBe(v)
      await recorder.close()
      const [c] = readBundle(path).captures
      expect([rule, decoded(c!.output)]).toEqual([rule, want])
      expect(errors.map((e) => e.code)).toEqual(rule === '$..' ? ['E_OPTIONS'] : [])
    }
  })

  it('an empty redactKey is refused, and a rule that throws records a marker, never the value', async () => {
    const { path, recorder, errors } = testRecorder({
      redactKey: '',
      redact: [
        '$.card',
        () => {
          throw new Error('rule broke')
        },
      ],
    })
    const st = recorder.stage('st', (x: unknown) => x)
    await recorder.record('k', () => st({ card: '4111' }))
    await recorder.close()
    const { captures } = readBundle(path)
    expect(captures[0]!.input).not.toContain('4111')
    expect(decoded(captures[0]!.input)).toMatchObject({ $t: 'unrecorded', reason: 'redaction-failed' })
    expect(errors.map((e) => e.code)).toEqual(['E_REDACT_KEY', 'E_REDACT'])
  })
})
