import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { holdingWriteLock, readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'
import { tempDir } from '../helpers/tmp.js'

describe('queue overflow', () => {
  it('drops and counts when the queue is full, without throwing into stages', async () => {
    const { path, recorder, errors } = testRecorder({ maxQueue: 5, flushIntervalMs: 60_000 })
    const a = recorder.stage('a', (n: number) => n + 1)
    const b = recorder.stage('b', (n: number) => n * 2)
    const total = 500
    // All records finish in one go, long before the writer could catch up.
    const results = await Promise.all(
      Array.from({ length: total }, (_, i) => recorder.record(`k:${i}`, async () => b(await a(i)))),
    )
    expect(results).toEqual(Array.from({ length: total }, (_, i) => (i + 1) * 2))
    const mid = recorder.stats()
    expect(mid.dropped).toBeGreaterThan(0)
    expect(mid.droppedBy.queueFull).toBe(mid.dropped)
    expect(mid.captured + mid.dropped).toBe(total * 2)
    await recorder.close()

    const stats = recorder.stats()
    expect(stats.written + stats.dropped).toBe(total * 2)
    expect(stats.written).toBeGreaterThan(0)
    expect(stats.written).toBeLessThanOrEqual(5)
    const bundle = readBundle(path)
    expect(bundle.captures).toHaveLength(stats.written)
    // Whole records or nothing: never one stage of a record without the other.
    expect(bundle.captures).toHaveLength(bundle.records.length * 2)
    expect(errors.map((e) => e.code)).toContain('E_QUEUE_FULL')
    // Reported, but rate-limited: not one call per dropped record.
    expect(errors.length).toBeLessThan(stats.errors)
  })

  it('bounds the queue in bytes too: big payloads fill it long before maxQueue', async () => {
    const { path, recorder, errors } = testRecorder({ maxQueueBytes: 64 * 1024, flushIntervalMs: 60_000 })
    const s = recorder.stage('s', (x: { pad: string }) => ({ pad: x.pad }))
    const pad = 'x'.repeat(10_000)
    await Promise.all(Array.from({ length: 50 }, (_, i) => recorder.record(`k:${i}`, () => s({ pad }))))
    // A record holds about 20 KB of encoded text: three fit in 64 KiB, the others are dropped.
    const mid = recorder.stats()
    expect(mid.captured).toBe(3)
    expect(mid.droppedBy.queueFull).toBe(47)
    expect(errors.map((e) => e.code)).toContain('E_QUEUE_FULL')
    await recorder.close()
    expect(recorder.stats().written).toBe(3)
    expect(readBundle(path).captures).toHaveLength(3)
  })

  it('takes a record bigger than the byte bound when nothing is waiting, and only then', async () => {
    const { path, recorder } = testRecorder({ maxQueueBytes: 1024, flushIntervalMs: 60_000 })
    const s = recorder.stage('s', (x: { pad: string }) => ({ pad: x.pad }))
    const pad = 'y'.repeat(10_000)
    await recorder.record('big:1', () => s({ pad }))
    await recorder.record('big:2', () => s({ pad }))
    expect(recorder.stats()).toMatchObject({ captured: 1, dropped: 1 })
    await recorder.flush()
    await recorder.record('big:3', () => s({ pad }))
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ captured: 2, written: 2, dropped: 1 })
    expect(readBundle(path).records.map((r) => r.key)).toEqual(['big:1', 'big:3'])
  })

  it('keeps accepting records once the writer has drained the queue', async () => {
    const { path, recorder } = testRecorder({ maxQueue: 4 })
    const s = recorder.stage('s', (n: number) => n)
    let offered = 0
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => recorder.record(`r${round}:${i}`, () => s(i))))
      offered += 10
      await recorder.flush()
    }
    await recorder.close()
    const stats = recorder.stats()
    expect(stats.written + stats.dropped).toBe(offered)
    // Each round lands up to the queue bound again.
    expect(stats.written).toBe(20)
    expect(readBundle(path).records).toHaveLength(20)
  })

  it('sheds a record that meets a full queue whole, without encoding the rest of it', async () => {
    // Nothing is sent before close: the queue only fills.
    const { path, recorder, errors } = testRecorder({ maxQueue: 3, flushIntervalMs: 60_000 })
    let reads = 0
    /** An input whose encoding the test can see: every read of `v` is counted. */
    const watched = (v: number) => ({
      get v() {
        reads++
        return v
      },
    })
    const attempts: number[] = []
    let effectsRun = 0
    const s = recorder.stage('s', (_input: { v: number }, ctx) => {
      attempts.push(ctx.attempt)
      return ctx.effect('kv', watched(0), () => ++effectsRun)
    })
    const t = recorder.stage('t', async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      return watched(n)
    })

    await recorder.record('a', () => t(1)) // 1 of 3 queued
    const b = await recorder.record('b', async () => {
      await t(2)
      await t(3)
      // Another record fills the queue meanwhile: 3 of 3.
      await recorder.record('c', async () => [await t(4), await t(5)])
      reads = 0
      // No room for b's third capture: b is shed whole, and from here on nothing of it is encoded.
      const third = await s(watched(6))
      const retry = await s(watched(7))
      return { third, retry, readsWhileShed: reads }
    })
    expect(b).toEqual({ third: 1, retry: 2, readsWhileShed: 0 })
    expect(effectsRun).toBe(2)
    expect(attempts).toEqual([1, 2])
    const mid = recorder.stats()
    expect(mid).toMatchObject({
      captured: 3,
      dropped: 4,
      droppedBy: { queueFull: 4, writeFailed: 0, closed: 0 },
    })
    expect(errors.map((e) => e.code)).toEqual(['E_QUEUE_FULL'])
    expect(errors[0]!.message).toBe('recorder queue is full; dropped a record of 4 captures')
    await recorder.close()

    expect(recorder.stats()).toMatchObject({ written: 3, dropped: 4 })
    const bundle = readBundle(path)
    expect(bundle.records.map((r) => r.key).sort()).toEqual(['a', 'c'])
    const byKey = new Map(bundle.records.map((r) => [r.id, r.key]))
    expect(bundle.captures.map((c) => [byKey.get(c.record_id), c.stage, c.output])).toEqual([
      ['a', 't', '{"v":1}'],
      ['c', 't', '{"v":4}'],
      ['c', 't', '{"v":5}'],
    ])
  })
})

describe('a record shed at its first stage', () => {
  it('encodes nothing of it: neither the input nor the effects', async () => {
    const { recorder, errors } = testRecorder({ maxQueue: 1, flushIntervalMs: 60_000 })
    let reads = 0
    const watched = {
      get v() {
        reads++
        return 1
      },
    }
    const s = recorder.stage('s', (input: { v: number }, ctx) => ctx.effect('kv', input, () => input.v + 1))
    await recorder.record('fills the queue', () => s({ v: 0 }))
    reads = 0
    expect(await recorder.record('shed', () => s(watched))).toBe(2)
    // The stage itself read `v` once; the recorder read it not at all.
    expect(reads).toBe(1)
    expect(recorder.stats()).toMatchObject({ captured: 1, dropped: 1, droppedBy: { queueFull: 1 } })
    expect(errors.map((e) => e.code)).toEqual(['E_QUEUE_FULL'])
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 1, dropped: 1 })
  })
})

describe('an unwritable bundle path', () => {
  it('never throws into the stage; onError is told and the captures are counted as dropped', async () => {
    const dir = tempDir()
    const file = join(dir, 'not-a-dir')
    writeFileSync(file, 'a regular file')
    const { recorder, errors } = testRecorder({ path: join(file, 'bundle.sqlite'), flushIntervalMs: 1 })
    const s = recorder.stage('s', async (n: number, ctx) => ctx.effect('kv', n, () => n * 3))

    let total = 0
    for (let i = 0; i < 20; i++) {
      expect(await recorder.record(`k:${i}`, () => s(i))).toBe(i * 3)
      total++
    }
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 10_000 })
    // More records after the writer is known to be dead: still no throw.
    for (let i = 0; i < 5; i++) {
      expect(await recorder.record(`late:${i}`, () => s(i))).toBe(i * 3)
      total++
    }
    await expect(recorder.flush()).resolves.toBeUndefined()
    await expect(recorder.close()).resolves.toBeUndefined()

    const stats = recorder.stats()
    expect(stats.written).toBe(0)
    expect(stats.dropped).toBe(total)
    expect(stats.droppedBy.writeFailed).toBe(total)
    expect(stats.errors).toBeGreaterThan(0)
    expect(errors[0]!.code).toMatch(/^E_/)
    expect(errors[0]!.message).toContain('cannot open')
  })

  it('a path in a directory that does not exist is absorbed the same way', async () => {
    const { recorder, errors } = testRecorder({ path: join(tempDir(), 'missing', 'deeper', 'b.sqlite') })
    const s = recorder.stage('s', (n: number) => n + 1)
    expect(await recorder.record('k', () => s(1))).toBe(2)
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 10_000 })
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 0, dropped: 1 })
  })

  it('refuses to write into a file that is not a bundle, and leaves it untouched', async () => {
    const dir = tempDir()
    const path = join(dir, 'notes.txt')
    writeFileSync(path, 'important notes, not SQLite')
    const { recorder, errors } = testRecorder({ path })
    const s = recorder.stage('s', (n: number) => n + 1)
    expect(await recorder.record('k', () => s(1))).toBe(2)
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 10_000 })
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 0, dropped: 1 })
    const { readFileSync } = await import('node:fs')
    expect(readFileSync(path, 'utf8')).toBe('important notes, not SQLite')
  })

  it('adds to a bundle written with the same rules, and refuses one whose manifest names other redaction rules or another pipeline', async () => {
    const path = join(tempDir(), 'shared.sqlite')
    const run = async (options: Parameters<typeof testRecorder>[0]) => {
      const t = testRecorder({ path, redactKey: 'k1', redact: ['$.customer.phone'], ...options })
      const s = t.recorder.stage('s', (o: { customer: { phone: string } }) => ({
        ok: o.customer.phone.length,
      }))
      expect(await t.recorder.record('k', () => s({ customer: { phone: '555-0100' } }))).toEqual({ ok: 8 })
      await t.recorder.close()
      return t
    }
    expect((await run({})).recorder.stats()).toMatchObject({ written: 1, dropped: 0 })
    expect((await run({})).recorder.stats()).toMatchObject({ written: 1, dropped: 0 })
    const other = await run({ redact: [], redactDefaults: false })
    expect(other.recorder.stats()).toMatchObject({ written: 0, dropped: 1 })
    expect(other.errors.map((e) => e.code)).toContain('E_MANIFEST_MISMATCH')
    expect(other.errors.find((e) => e.code === 'E_MANIFEST_MISMATCH')!.message).toContain(
      'was written with redaction rules ["$.customer.phone","defaults"] (equality-preserving), this recorder redacts []',
    )
    const renamed = await run({ pipeline: 'billing' })
    expect(renamed.recorder.stats()).toMatchObject({ written: 0, dropped: 1 })
    expect(renamed.errors.map((e) => e.code)).toContain('E_MANIFEST_MISMATCH')
    const bundle = readBundle(path)
    expect(bundle.captures).toHaveLength(2)
    expect(bundle.captures.map((c) => c.input).join('')).not.toContain('555-0100')
  })

  it('flush() stops waiting after closeTimeoutMs while another connection holds the file, says so, and the captures stay queued', async () => {
    const { path, recorder, errors } = testRecorder({ closeTimeoutMs: 300, flushIntervalMs: 20 })
    const s = recorder.stage('s', (n: number) => n)
    await recorder.record('first', () => s(0))
    await recorder.flush()
    await holdingWriteLock(path, async () => {
      await recorder.record('second', () => s(1))
      await recorder.flush()
      expect(errors.map((e) => e.code)).toEqual(['E_FLUSH_TIMEOUT'])
      expect(errors[0]!.message).toBe(
        'recorder flush gave up waiting after 300 ms with 1 captures not yet written; they stay queued',
      )
    })
    await recorder.close()
    expect(recorder.stats()).toMatchObject({ written: 2, dropped: 0 })
    expect(
      readBundle(path)
        .records.map((r) => r.key)
        .sort(),
    ).toEqual(['first', 'second'])
  })
})
