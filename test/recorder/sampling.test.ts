import { describe, expect, it } from 'vitest'
import { hashKey, keySampler } from '../../src/recorder/sampling.js'
import { readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'

describe('keySampler', () => {
  it('decides from the key alone', () => {
    const a = keySampler(0.3)
    const b = keySampler(0.3)
    for (let i = 0; i < 1000; i++) expect(a(`sku:${i}`)).toBe(b(`sku:${i}`))
    expect(hashKey('sku:1')).toBe(hashKey('sku:1'))
    expect(hashKey('sku:1')).not.toBe(hashKey('sku:2'))
  })

  it('keeps everything at 1 (and above), nothing at 0 (and below)', () => {
    for (const key of ['a', 'sku:1', '']) {
      expect(keySampler(1)(key)).toBe(true)
      expect(keySampler(2)(key)).toBe(true)
      expect(keySampler(0)(key)).toBe(false)
      expect(keySampler(-1)(key)).toBe(false)
    }
  })

  it.each([0.01, 0.1, 0.5, 0.9])('keeps about %f of sequential keys', (rate) => {
    const keep = keySampler(rate)
    for (const format of [(i: number) => `sku:${i}`, (i: number) => `order-${i}`, (i: number) => String(i)]) {
      let kept = 0
      for (let i = 0; i < 10_000; i++) if (keep(format(i))) kept++
      expect(Math.abs(kept / 10_000 - rate)).toBeLessThan(0.015)
    }
  })

  it('a lower rate keeps a subset of what a higher rate keeps', () => {
    const low = keySampler(0.2)
    const high = keySampler(0.6)
    for (let i = 0; i < 2000; i++) if (low(`k${i}`)) expect(high(`k${i}`)).toBe(true)
  })
})

describe('sampling across recorders', () => {
  it('two recorder instances record exactly the same keys, about half of 200', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `sku:${1000 + i}`)
    const instances = [testRecorder({ sample: 0.5 }), testRecorder({ sample: 0.5 })]
    const recorded: string[][] = []
    for (const { recorder, path } of instances) {
      const ingest = recorder.stage('ingest', (n: number) => n + 1)
      const store = recorder.stage('store', (n: number) => n * 2)
      for (const [i, key] of keys.entries()) {
        // Sampled out or not, the stage works the same.
        expect(await recorder.record(key, async () => store(await ingest(i)))).toBe((i + 1) * 2)
      }
      await recorder.close()
      const bundle = readBundle(path)
      recorded.push(bundle.records.map((r) => r.key).sort())
      // Sampled records are whole: both stages of each.
      expect(bundle.captures).toHaveLength(bundle.records.length * 2)
      const stats = recorder.stats()
      expect(stats.sampledOut).toBe((200 - bundle.records.length) * 2)
      expect(stats.written).toBe(bundle.records.length * 2)
    }
    expect(recorded[0]).toEqual(recorded[1])
    expect(recorded[0]!.length).toBeGreaterThan(70)
    expect(recorded[0]!.length).toBeLessThan(130)
  })
})

describe('a record sampled out', () => {
  it('ends like any other: a keyed stage called from it later starts its own record, when its key is sampled in', async () => {
    const keep = keySampler(0.5)
    const keys = (prefix: string) => Array.from({ length: 50 }, (_, i) => `${prefix}:${i}`)
    const outKey = keys('req').find((k) => !keep(k))!
    const inKey = keys('job').find((k) => keep(k))!
    const { path, recorder, errors } = testRecorder({ sample: 0.5 })
    const job = recorder.stage('job', (x: number) => x, { key: () => inKey })
    const plain = recorder.stage('plain', (x: number) => x)
    let later: Promise<unknown> = Promise.resolve()
    await recorder.record(outKey, () => {
      later = new Promise((resolve) => setTimeout(resolve, 5)).then(() => Promise.all([job(1), plain(2)]))
    })
    await expect(later).resolves.toEqual([1, 2])
    await recorder.close()
    // The unkeyed stage would not have been recorded in its record either.
    expect(recorder.stats()).toMatchObject({ written: 1, sampledOut: 1, unrecorded: 0 })
    expect(errors).toEqual([])
    const bundle = readBundle(path)
    expect(bundle.records.map((r) => r.key)).toEqual([inKey])
    expect(bundle.captures.map((c) => c.stage)).toEqual(['job'])
  })
})

describe('a retried stage', () => {
  it('sees the same ctx.attempt whether its record is sampled in or out', async () => {
    const seen: Record<string, number[]> = {}
    for (const sample of [1, 0]) {
      const { recorder, errors } = testRecorder({ sample })
      const attempts: number[] = []
      // Fails until its third attempt, as a stage that gives up or backs off by attempt does.
      const reserve = recorder.stage('reserve', (n: number, ctx) => {
        attempts.push(ctx.attempt)
        if (ctx.attempt < 3) throw new Error(`busy (attempt ${ctx.attempt})`)
        return n
      })
      const other = recorder.stage('other', (n: number, ctx) => ctx.attempt + n)
      const result = await recorder.record('sku:1', async () => {
        for (let i = 0; ; i++) {
          try {
            return [await reserve(7), await other(0)]
          } catch (err) {
            if (i >= 4) throw err
          }
        }
      })
      expect(result).toEqual([7, 1])
      await recorder.close()
      expect(errors).toEqual([])
      seen[`sample ${sample}`] = attempts
    }
    expect(seen).toEqual({ 'sample 1': [1, 2, 3], 'sample 0': [1, 2, 3] })
  })
})

describe('a record continued in another service', () => {
  it('is recorded under the upstream id when sampled in; an id passed on from a record sampled out is not reported', async () => {
    const up = testRecorder({ sample: 0.5 })
    const down = testRecorder({ sample: 0.5 })
    const a = up.recorder.stage('a', (x: number) => x)
    const b = down.recorder.stage('b', (x: number) => x)
    const sent: [string, string][] = []
    for (let i = 0; i < 20; i++)
      await up.recorder.record(`k${i}`, async () => {
        await a(i)
        sent.push([`k${i}`, up.recorder.current()!.recordId])
      })
    for (const [key, recordId] of sent) await down.recorder.record(key, () => b(1), { recordId })
    await up.recorder.close()
    await down.recorder.close()
    const kept = sent.filter(([, id]) => id !== '')
    expect(kept.length).toBeGreaterThan(0)
    expect(kept.length).toBeLessThan(20)
    expect(down.errors).toEqual([])
    expect(down.recorder.stats()).toMatchObject({
      errors: 0,
      written: kept.length,
      sampledOut: 20 - kept.length,
    })
    const ids = readBundle(down.path).records.map((r) => [r.key, r.id])
    expect(ids.sort()).toEqual(kept.sort())
  })
})
