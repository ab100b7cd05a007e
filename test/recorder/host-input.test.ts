/**
 * What hosts really pass and do: records that never end, record ids from message headers,
 * options from unset environment variables, calls that land after their record or stage,
 * a batch job that is one huge record, a shutdown that runs out of time. The recorder
 * bounds its memory, counts what it cannot record, says what it could not use, and never
 * throws into the host.
 */
import { mkdirSync, renameSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'
import { tempDir } from '../helpers/tmp.js'

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms))

describe('records that never end', () => {
  it('hold at most maxOpenBytes: the oldest are dropped and counted, later records are kept', async () => {
    const { path, recorder, errors } = testRecorder({ maxOpenBytes: 64 * 1024 })
    const s = recorder.stage('s', (x: { pad: string }) => x)
    const never = new Promise(() => {})
    const pad = 'z'.repeat(10_000)
    // Each holds ~20 KB (input and output): 50 of them would hold 1 MB.
    for (let i = 0; i < 50; i++)
      void recorder.record(`hung:${i}`, async () => {
        await s({ pad: pad + i })
        await never
      })
    await tick(10)
    const mid = recorder.stats()
    expect(mid.droppedBy.unfinished).toBeGreaterThanOrEqual(45)
    expect(mid.dropped).toBe(mid.droppedBy.unfinished)
    expect(errors.map((e) => e.code)).toContain('E_OPEN_FULL')
    expect(errors.find((e) => e.code === 'E_OPEN_FULL')!.message).toMatch(
      /^records not yet ended held more than 65536 bytes; dropped the oldest \(key hung:0, 1 captures\): do some records never end\?$/,
    )
    // A record that does end is recorded as ever.
    await recorder.record('fine', () => s({ pad: 'ok' }))
    await recorder.flush()
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['fine'])
  })

  it('a record that ends after it was dropped is counted once, its later stage calls with it', async () => {
    // Room for the big record (~20 KB), not for it and the slow one's 10 KB input.
    const { recorder } = testRecorder({ maxOpenBytes: 25_000 })
    const s = recorder.stage('s', (x: string) => x)
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const first = recorder.record('slow', async () => {
      await s('a'.repeat(10_000))
      await held
      await s('b')
      await s('c')
    })
    await tick()
    await recorder.record('big', () => s('d'.repeat(10_000)))
    expect(recorder.stats().droppedBy.unfinished).toBe(1)
    release()
    await first
    const stats = recorder.stats()
    expect(stats.droppedBy.unfinished).toBe(3)
    expect(stats.captured + stats.dropped).toBe(4)
  })
})

describe('record ids from another process', () => {
  it('takes bytes and numbers as text, and refuses what cannot be an id without harm to other records', async () => {
    const { path, recorder, errors } = testRecorder()
    const s = recorder.stage('s', (x: number) => x + 1)
    await recorder.record('bytes', () => s(1), {
      recordId: Buffer.from('01HX-from-kafka') as unknown as string,
    })
    await recorder.record('number', () => s(2), { recordId: 12345 as unknown as string })
    for (const bad of [{ id: 1 }, Symbol('x'), () => 'f', '', 'x'.repeat(300)]) {
      await expect(recorder.record('bad', () => s(3), { recordId: bad as unknown as string })).resolves.toBe(
        4,
      )
    }
    await recorder.record('after', () => s(4))
    await recorder.close()
    const ids = new Map(readBundle(path).records.map((r) => [r.key, r.id]))
    expect(ids.get('bytes')).toBe('01HX-from-kafka')
    expect(ids.get('number')).toBe('12345')
    expect(typeof ids.get('bad')).toBe('string')
    expect(ids.get('after')).toMatch(/^[0-9A-Z]{26}$/)
    expect(readBundle(path).records).toHaveLength(8)
    expect(errors.filter((e) => e.code === 'E_RECORD_ID').length).toBeGreaterThanOrEqual(1)
    expect(recorder.stats()).toMatchObject({ written: 8, dropped: 0 })
  })
})

describe('record ids given as bytes', () => {
  it('that are not UTF-8 text are named by their hex, so different ids never merge', async () => {
    const { path, recorder, errors } = testRecorder()
    const s = recorder.stage('s', (x: string) => x)
    const given: [string, Uint8Array][] = [
      ['order:A', Buffer.from('ff00112233445566778899aabbccddee', 'hex')],
      ['order:B', Buffer.from('fe00112233445566778899aabbccddee', 'hex')],
      ['order:C', Buffer.from('0011223344556677', 'hex')],
      ['order:D', new Uint8Array(Buffer.from('caf\u00e9-01HX'))],
    ]
    for (const [key, id] of given)
      await recorder.record(key, () => s(key), { recordId: id as unknown as string })
    await recorder.close()
    expect(errors).toEqual([])
    const bundle = readBundle(path)
    expect(bundle.records.map((r) => [r.key, r.id]).sort()).toEqual([
      ['order:A', "x'ff00112233445566778899aabbccddee'"],
      ['order:B', "x'fe00112233445566778899aabbccddee'"],
      ['order:C', "x'0011223344556677'"],
      ['order:D', 'caf\u00e9-01HX'],
    ])
    expect(bundle.captures.map((c) => [c.record_id, c.input]).sort()).toEqual(
      bundle.records.map((r) => [r.id, JSON.stringify(r.key)]).sort(),
    )
  })
})

describe('a record with more captures than maxQueue', () => {
  it('is taken whole when nothing else is waiting', async () => {
    const { path, recorder } = testRecorder({ maxQueue: 100, flushIntervalMs: 60_000 })
    const s = recorder.stage('s', (n: number) => n)
    await recorder.record('batch-job', async () => {
      for (let i = 0; i < 500; i++) await s(i)
    })
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ captured: 500, written: 500, dropped: 0 })
    expect(readBundle(path).captures).toHaveLength(500)
  })
})

describe('close() that runs out of time', () => {
  it('stops the writer: what it did not write is counted as dropped, and nothing lands later', async () => {
    const { path, recorder, errors } = testRecorder({ closeTimeoutMs: 1 })
    const s = recorder.stage('s', (x: number) => ({ x, pad: 'p'.repeat(2000) }))
    for (let i = 0; i < 3000; i++) await recorder.record(`k${i}`, () => s(i))
    await recorder.close()
    const atClose = recorder.stats()
    expect(atClose.written + atClose.dropped).toBe(3000)
    expect(atClose.droppedBy.closed).toBe(atClose.dropped)
    expect(errors.find((e) => e.code === 'E_CLOSE_TIMEOUT')?.message).toMatch(
      /^recorder close timed out after 1 ms; \d+ captures not yet written were dropped$/,
    )
    await tick(300)
    expect(recorder.stats()).toEqual(atClose)
    let inFile = 0
    try {
      inFile = readBundle(path).captures.length
    } catch {
      // Stopped before it had made the schema: nothing was written.
    }
    expect(inFile).toBe(atClose.written)
  })
})

describe('options that cannot be meant', () => {
  it('are reported (E_OPTIONS) and replaced by the default, never thrown or printed', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const { path, recorder, errors } = testRecorder({
        sample: Number(undefined),
        flushIntervalMs: Number.POSITIVE_INFINITY,
        maxQueue: -1,
        clock: (() => 'soon') as unknown as () => number,
      })
      const s = recorder.stage('s', (x: number) => x)
      for (let i = 0; i < 20; i++) await recorder.record(`k${i}`, () => s(i))
      await recorder.close()
      await tick(10)
      const messages = errors.filter((e) => e.code === 'E_OPTIONS').map((e) => e.message)
      expect(messages).toEqual([
        'recorder option sample NaN cannot be used; it must be a number from 0 to 1; recording every record',
        'recorder option flushIntervalMs Infinity cannot be used; it must be a number from 1 to 2147483647; using 200',
        'recorder option maxQueue -1 cannot be used; it must be a number from 1 to 9007199254740991; using 10000',
        'the clock option gave something other than a finite number; the real clock is used instead',
      ])
      const bundle = readBundle(path)
      expect(bundle.records).toHaveLength(20)
      expect(bundle.records.every((r) => Math.abs(r.started_at - Date.now()) < 60_000)).toBe(true)
      expect(warnings).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('an origin whose host is not a string or whose pid is not a whole number is reported, and this process is recorded', async () => {
    for (const origin of [{ host: 42 }, { pid: {} }, { pid: Number.NaN }, 'web-1']) {
      const { path, recorder, errors } = testRecorder({
        path: join(tempDir(), 'b-{host}-{pid}.sqlite'),
        origin: origin as unknown as { host?: string; pid?: number },
      })
      const s = recorder.stage('s', (x: number) => x * 2)
      await expect(recorder.record('k', () => s(2))).resolves.toBe(4)
      await recorder.close()
      expect(errors.map((e) => e.code)).toEqual(['E_OPTIONS'])
      expect(recorder.stats()).toMatchObject({ written: 1, dropped: 0 })
      const file = path
        .replace('{host}', hostname().replace(/[^\w.-]/g, '_'))
        .replace('{pid}', String(process.pid))
      expect(readBundle(file).records.map((r) => [r.host, r.pid])).toEqual([[hostname(), process.pid]])
    }
  })

  it('an ids option that gives no usable id is reported, and each record gets a generated id', async () => {
    const given: (() => string)[] = [
      () => '',
      () => 'x'.repeat(300),
      () => 42 as unknown as string,
      () => {
        throw new Error('id service down')
      },
    ]
    for (const ids of given) {
      const { path, recorder, errors } = testRecorder({ ids })
      const s = recorder.stage('s', (x: number) => x * 2)
      await expect(recorder.record('k1', () => s(1))).resolves.toBe(2)
      await expect(recorder.record('k2', () => s(2))).resolves.toBe(4)
      await recorder.close()
      expect(errors.map((e) => e.message)).toEqual([
        'the ids option gave something other than a string of 1 to 256 characters; a generated id is used instead',
      ])
      expect(recorder.stats()).toMatchObject({ written: 2, sampledOut: 0, dropped: 0 })
      const records = readBundle(path).records
      // Two generated ids in one millisecond need not sort in the order they were made.
      expect(records.map((r) => r.key).sort()).toEqual(['k1', 'k2'])
      expect(new Set(records.map((r) => r.id)).size).toBe(2)
      for (const r of records) expect(r.id).toMatch(/^[0-9A-Z]{26}$/)
    }
  })

  it('a path that names no file records nothing and says so', async () => {
    for (const bad of ['', ':memory:', 'a\0b.sqlite']) {
      const { recorder, errors } = testRecorder({ path: bad })
      const s = recorder.stage('s', (x: number) => x * 2)
      await expect(recorder.record('k', () => s(2))).resolves.toBe(4)
      expect(errors.map((e) => e.code)).toEqual(['E_BUNDLE_OPEN'])
      expect(recorder.stats()).toMatchObject({ captured: 0, dropped: 1, droppedBy: { writeFailed: 1 } })
    }
  })

  it('one redaction rule given alone is taken as a list of one', async () => {
    const { path, recorder, errors } = testRecorder({ redact: '$.card' as unknown as string[] })
    const s = recorder.stage('s', (x: { card: string }) => x)
    await recorder.record('k', () => s({ card: '4111 1111 1111 1111' }))
    await recorder.close()
    expect(errors).toEqual([])
    expect(readBundle(path).captures[0]!.input).not.toContain('4111')
  })

  it('a redaction rule that cannot be used is reported, never thrown, and every payload is redacted whole', async () => {
    const { path, recorder, errors } = testRecorder({
      redact: ['$..[', '$.a.', 5 as unknown as string, '$.customer.phone'],
    })
    const s = recorder.stage('s', (x: unknown) => x)
    await expect(
      recorder.record('k', () => s({ customer: { phone: '555-0100' }, note: 'call 555-0199' })),
    ).resolves.toEqual({ customer: { phone: '555-0100' }, note: 'call 555-0199' })
    await recorder.close()
    expect(errors.map((e) => e.code)).toEqual(['E_OPTIONS', 'E_OPTIONS', 'E_OPTIONS'])
    expect(errors[0]!.message).toMatch(
      /^recorder option redact: rule "\$\.\.\[" is not a path: .*; every payload is recorded redacted whole until it is fixed$/,
    )
    expect(errors[2]!.message).toBe(
      'recorder option redact: rule 5 is neither a path nor a function; every payload is recorded redacted whole until it is fixed',
    )
    const bundle = readBundle(path)
    expect(bundle.captures.map((c) => [c.input, c.output])).toEqual([['"[redacted]"', '"[redacted]"']])
    expect(bundle.manifest.redaction).toMatchObject({ rules: ['fn:redactEverything', 'defaults'] })
  })

  it('a short redactKey is used, and the host told it can be guessed', async () => {
    const { path, recorder, errors } = testRecorder({ redactKey: 'short' })
    const s = recorder.stage('s', (x: unknown) => x)
    await recorder.record('k', () => s({ password: 'hunter2' }))
    await recorder.close()
    expect(errors.map((e) => e.code)).toEqual(['E_REDACT_KEY'])
    expect(readBundle(path).manifest.redaction).toMatchObject({ equalityPreserving: true })
  })

  it('an empty redactKey is refused: anyone could recompute its tokens', async () => {
    for (const key of ['', Buffer.alloc(0)]) {
      const { path, recorder, errors } = testRecorder({ redactKey: key })
      const s = recorder.stage('s', (x: unknown) => x)
      await recorder.record('k', () => s({ password: 'hunter2' }))
      await recorder.close()
      expect(errors.map((e) => e.code)).toEqual(['E_REDACT_KEY'])
      const bundle = readBundle(path)
      expect(bundle.manifest.redaction).toMatchObject({ equalityPreserving: false })
      expect(bundle.captures[0]!.input).not.toContain('hunter2')
    }
  })
})

describe('calls the recorder cannot record', () => {
  it('run as usual, and are counted as unrecorded with the host told why', async () => {
    const { path, recorder, errors } = testRecorder()
    const s = recorder.stage('s', (x: number) => x + 1)
    // Outside any record, with no key option.
    await expect(s(1)).resolves.toBe(2)
    // A key function that returns a promise gives no key.
    const keyed = recorder.stage('keyed', (x: number) => x, {
      key: (async (x: number) => `k:${x}`) as unknown as (x: number) => string,
    })
    await expect(keyed(5)).resolves.toBe(5)
    // ctx calls after the stage returned, and a stage call after its record ended.
    let later: Promise<unknown> = Promise.resolve()
    const leaky = recorder.stage('leaky', (x: number, ctx) => {
      later = tick(5).then(() => Promise.all([ctx.now(), ctx.effect('kv.get', { x }, () => x * 10), s(x)]))
      return x
    })
    await recorder.record('r', () => leaky(7))
    const [, effectValue, stageValue] = (await later) as [number, number, number]
    expect(effectValue).toBe(70)
    expect(stageValue).toBe(8)
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ unrecorded: 5, written: 1 })
    const codes = errors.map((e) => e.code)
    expect(codes.sort()).toEqual(['E_KEY', 'E_LATE_CALL', 'E_NO_RECORD'])
    expect(errors.find((e) => e.code === 'E_KEY')!.message).toBe(
      'stage keyed: the key function returned a promise; it must return the key itself',
    )
    const bundle = readBundle(path)
    expect(bundle.captures.map((c) => c.stage)).toEqual(['leaky'])
    expect(bundle.captures[0]!.effects).toEqual([])
  })
})

describe('stages and effects a record did not wait for', () => {
  it('are recorded as unfinished, their later calls counted as unrecorded, and they hold no memory after the record ends', async () => {
    const { path, recorder, errors } = testRecorder({ maxOpenBytes: 100_000 })
    const slow = recorder.stage('slow', async (x: number, ctx) => {
      await tick(5)
      ctx.now()
      return 'o'.repeat(30_000) + x
    })
    const fetchLater = recorder.stage('fetch', (x: number, ctx) => {
      void ctx.effect('http.get', { x }, () => tick(5).then(() => 'b'.repeat(30_000)))
      return x
    })
    const fast = recorder.stage('fast', (x: number) => x)
    for (let i = 0; i < 4; i++) {
      let running: Promise<string> = Promise.resolve('')
      await recorder.record(`fire:${i}`, () => {
        running = slow(i)
        return fetchLater(i)
      })
      await expect(running).resolves.toBe(`${'o'.repeat(30_000)}${i}`)
      await tick(10)
    }
    for (let i = 0; i < 5; i++) await recorder.record(`ok:${i}`, () => fast(i))
    await recorder.close()
    // Nothing is open, so nothing is shed; each late ctx.now() is counted once.
    expect(recorder.stats()).toMatchObject({ captured: 13, written: 13, dropped: 0, unrecorded: 4 })
    expect(errors.map((e) => e.code).sort()).toEqual(['E_LATE_CALL', 'E_STAGE_UNFINISHED'])
    const bundle = readBundle(path)
    expect(bundle.records.map((r) => r.key).sort()).toEqual([
      'fire:0',
      'fire:1',
      'fire:2',
      'fire:3',
      'ok:0',
      'ok:1',
      'ok:2',
      'ok:3',
      'ok:4',
    ])
    const unfinished = { $t: 'unrecorded', reason: 'unfinished' }
    for (const c of bundle.captures.filter((c) => c.stage === 'slow')) {
      expect(JSON.parse(c.output!)).toMatchObject(unfinished)
      expect(c.error).toBeNull()
      expect(c.effects).toEqual([])
    }
    for (const c of bundle.captures.filter((c) => c.stage === 'fetch')) {
      expect(c.effects).toHaveLength(1)
      expect(JSON.parse(c.effects[0]!.result!)).toMatchObject(unfinished)
    }
  })
})

describe('stages a record did not wait for, started inside one another', () => {
  it('are all recorded as unfinished, and the host is told of the one that started first', async () => {
    const { path, recorder, errors } = testRecorder()
    const inner = recorder.stage('inner', async (x: number) => {
      await tick(5)
      return x
    })
    // The outer stage starts the inner one before it returns its own promise.
    const outer = recorder.stage('outer', (x: number) => {
      const started = inner(x)
      return started.then((v) => v + 1)
    })
    const done = recorder.stage('done', (x: number) => x)
    let running: Promise<number> = Promise.resolve(0)
    await recorder.record('nested', () => {
      running = outer(1)
      return done(0)
    })
    await expect(running).resolves.toBe(2)
    await recorder.close()
    expect(errors.filter((e) => e.code === 'E_STAGE_UNFINISHED').map((e) => e.message)).toEqual([
      'record nested ended while stage outer was still running (a call it did not wait for); its output is recorded as unfinished',
    ])
    const bundle = readBundle(path)
    const unfinished = { $t: 'unrecorded', reason: 'unfinished' }
    expect(bundle.captures.map((c) => c.stage)).toEqual(['outer', 'inner', 'done'])
    for (const c of bundle.captures.slice(0, 2)) expect(JSON.parse(c.output!)).toMatchObject(unfinished)
    expect(JSON.parse(bundle.captures[2]!.output!)).toBe(0)
  })
})

describe('a bundle path that comes and goes', () => {
  it('a bundle moved away (log rotation) is recorded into anew at its path, nothing lost', async () => {
    const dir = tempDir()
    const path = join(dir, 'b.sqlite')
    const { recorder, errors } = testRecorder({ path, flushIntervalMs: 5 })
    const s = recorder.stage('s', (n: number) => n)
    for (let i = 0; i < 10; i++) await recorder.record(`before:${i}`, () => s(i))
    await recorder.flush()
    renameSync(path, join(dir, 'archive.sqlite'))
    for (let i = 0; i < 10; i++) await recorder.record(`after:${i}`, () => s(i))
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 20, dropped: 0 })
    expect(readBundle(join(dir, 'archive.sqlite')).records).toHaveLength(10)
    expect(
      readBundle(path)
        .records.map((r) => r.key)
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, i) => `after:${i}`))
    expect(errors.map((e) => e.message)).toEqual([
      `the bundle ${path} was moved, deleted or replaced while recording; recording goes on in a new bundle at that path`,
    ])
  })

  it('a directory made after the recorder started is recorded into once it exists', async () => {
    const dir = join(tempDir(), 'later')
    const path = join(dir, 'b.sqlite')
    const { recorder, errors } = testRecorder({ path, flushIntervalMs: 5 })
    const s = recorder.stage('s', (n: number) => n)
    await recorder.record('lost', () => s(0))
    await recorder.flush()
    expect(recorder.stats().droppedBy.writeFailed).toBe(1)
    expect(errors.map((e) => e.code)).toContain('E_BUNDLE_OPEN')
    mkdirSync(dir)
    // Tried again at most once a second.
    await tick(1_100)
    await recorder.record('kept', () => s(1))
    await recorder.close()
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['kept'])
    expect(recorder.stats()).toMatchObject({ written: 1, dropped: 1 })
  })
})

describe('a record continued from one its process sampled out', () => {
  it("says why the '' it was handed is no id, and records it as a new record", async () => {
    const { path, recorder, errors } = testRecorder()
    const s = recorder.stage('notify', (x: number) => x + 1)
    await expect(recorder.record('order:7', () => s(1), { recordId: '' })).resolves.toBe(2)
    await recorder.close()
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['order:7'])
    const said = errors.filter((e) => e.code === 'E_RECORD_ID').map((e) => e.message)
    expect(said).toHaveLength(1)
    expect(said[0]).toContain("recordId '' is what current() gives in a record sampled out")
    expect(said[0]).toContain('the same `sample`')
  })
})
