/** `retrace ls` as a user runs it, on bundles the recorder made in a temp dir. */
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRecorder } from '../../src/index.js'
import {
  expectUsageFailure,
  listDir,
  makeSampleBundle,
  parseJsonOut,
  runCli,
  SAMPLE_T0,
  type SampleBundle,
  sharedTempDir,
} from '../helpers/cli.js'

interface LsRecord {
  id: string
  key: string
  startedAt: number
  endedAt: number | null
  status: string
  error: string | null
  host: string | null
  pid: number | null
  build: string | null
  stages: string[]
  captures: number
  source: string
}
interface LsJson {
  records: LsRecord[]
  total: number
  truncated: boolean
}

const minute = 60_000
const dir = sharedTempDir('retrace-e2e-ls-')
let a: SampleBundle
let b: SampleBundle

/** Ids of the sample records at these indices, in the order given. */
const idsOf = (bundle: SampleBundle, ...indices: number[]): string[] =>
  indices.map((i) => bundle.records[i]!.id)

async function lsIds(...args: string[]): Promise<string[]> {
  const r = await runCli(['ls', ...args, '--json'])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return parseJsonOut<LsJson>(r).records.map((x) => x.id)
}

beforeAll(async () => {
  a = await makeSampleBundle(join(dir(), 'a.sqlite'))
  // A second process's bundle, its records 30 s after each of the first one's.
  b = await makeSampleBundle(join(dir(), 'b.sqlite'), {
    t0: SAMPLE_T0 + 30_000,
    keys: ['sku:2002', 'sku:5005', 'sku:1001'],
    failAt: [],
    retryAt: [],
    deferAt: [],
    build: 'build-def456',
  })
  expect(a.recorderErrors).toEqual([])
  expect(b.recorderErrors).toEqual([])
  expect(a.records.every((r) => r.id.length === 26)).toBe(true)
})

describe('retrace ls', () => {
  it('lists one line per record, newest first, with key, status, time and stages', async () => {
    const r = await runCli(['ls', a.path])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^RECORD\s+KEY\s+STATUS\s+STARTED\s+STAGES$/)
    const rows = lines.slice(1)
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(idsOf(a, 5, 4, 3, 2, 1, 0))
    expect(rows[0]).toMatch(/sku:4004\s+ok\s+2026-01-10 12:05:00\.000Z\s+parse$/)
    expect(rows[2]).toMatch(/sku:3003\s+error\s+2026-01-10 12:03:00\.000Z\s+parse,price,store$/)
    expect(rows[4]).toContain('parse,price,store (+1 retry)')
    // One bundle: no source column.
    expect(r.stdout).not.toContain(a.path)
  })

  it('lines the columns up when keys hold wide (CJK) characters', async () => {
    const wide = await makeSampleBundle(join(dir(), 'wide.sqlite'), {
      keys: ['日本語:4', 'order:295', 'ordér ünïcødé 1'],
      failAt: [],
      retryAt: [],
      deferAt: [],
    })
    const r = await runCli(['ls', wide.path])
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(4)
    // Two columns a character for 日, 本 and 語: the status starts in the same column on every line.
    const statusColumn = (l: string): number => {
      const before = l.slice(0, l.search(/ STATUS | ok {4}/) + 1)
      return [...before].reduce((n, ch) => n + (/[\u3000-\u9fff]/.test(ch) ? 2 : 1), 0)
    }
    expect(new Set(lines.map(statusColumn)).size).toBe(1)
  })

  it('--json prints the records as one document, the same order', async () => {
    const r = await runCli(['ls', a.path, '--json'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const json = parseJsonOut<LsJson>(r)
    expect(Object.keys(json)).toEqual(['records', 'total', 'truncated'])
    expect(json).toMatchObject({ total: 6, truncated: false })
    expect(json.records.map((x) => x.id)).toEqual(idsOf(a, 5, 4, 3, 2, 1, 0))
    const retried = json.records.find((x) => x.id === a.records[1]!.id)!
    expect(retried).toMatchObject({
      key: 'sku:2002',
      startedAt: SAMPLE_T0 + minute,
      status: 'ok',
      error: null,
      host: 'test-host',
      pid: 4242,
      build: 'build-abc123',
      stages: ['parse', 'price', 'store'],
      captures: 4,
      retries: 1,
      source: a.path,
    })
    const failed = json.records.find((x) => x.status === 'error')!
    expect(failed.key).toBe('sku:3003')
    expect(failed.error).toContain('db rejected sku:3003')
    expect(json.records.find((x) => x.key === 'sku:4004')).toMatchObject({ stages: ['parse'], captures: 1 })
  })

  it('--key lists only that key, newest first', async () => {
    const [many, one, none] = await Promise.all([
      lsIds(a.path, '--key', 'sku:1001'),
      lsIds(a.path, '-k', 'sku:3003'),
      lsIds(a.path, '--key', 'sku:9999'),
    ])
    expect(many).toEqual(idsOf(a, 4, 2, 0))
    expect(one).toEqual(idsOf(a, 3))
    expect(none).toEqual([])
  })

  it('--stage lists only records that went through the stage', async () => {
    const [store, parse, none] = await Promise.all([
      lsIds(a.path, '--stage', 'store'),
      lsIds(a.path, '--stage', 'parse'),
      runCli(['ls', a.path, '--stage', 'nosuchstage']),
    ])
    expect(store).toEqual(idsOf(a, 4, 3, 2, 1, 0))
    expect(parse).toEqual(idsOf(a, 5, 4, 3, 2, 1, 0))
    expect(none.code).toBe(0)
    expect(none.stdout.trim()).toBe('no records match')
  })

  it('--status ok|error filters by how the record ended; other values are usage errors', async () => {
    const [error, ok, bad] = await Promise.all([
      lsIds(a.path, '--status', 'error'),
      lsIds(a.path, '--status', 'ok'),
      runCli(['ls', a.path, '--status', 'broken']),
    ])
    expect(error).toEqual(idsOf(a, 3))
    expect(ok).toEqual(idsOf(a, 5, 4, 2, 1, 0))
    expect(expectUsageFailure(bad)).toContain('--status')
  })

  it('--limit keeps the newest N; 0 lists all', async () => {
    const [two, oneOfKey, all, negative, word] = await Promise.all([
      lsIds(a.path, '--limit', '2'),
      lsIds(a.path, '-n', '1', '--key', 'sku:1001'),
      lsIds(a.path, '--limit', '0'),
      runCli(['ls', a.path, '--limit', '-1']),
      runCli(['ls', a.path, '--limit', 'many']),
    ])
    expect(two).toEqual(idsOf(a, 5, 4))
    expect(oneOfKey).toEqual(idsOf(a, 4))
    expect(all).toEqual(idsOf(a, 5, 4, 3, 2, 1, 0))
    expectUsageFailure(negative)
    expectUsageFailure(word)
  })

  it('says when --limit cut the listing short: how many more, and the flag that lists them all', async () => {
    const [cut, whole, human, exact] = await Promise.all([
      runCli(['ls', a.path, '--limit', '2', '--json']),
      runCli(['ls', a.path, '-n', '1', '--key', 'sku:1001', '--json']),
      runCli(['ls', a.path, '--limit', '2']),
      runCli(['ls', a.path, '--limit', '6']),
    ])
    expect(parseJsonOut<LsJson>(cut)).toMatchObject({ total: 6, truncated: true })
    expect(parseJsonOut<LsJson>(cut).records).toHaveLength(2)
    expect(parseJsonOut<LsJson>(whole)).toMatchObject({ total: 3, truncated: true })
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[3]).toBe('… 4 more (6 in all); --limit 0 lists them all')
    // Exactly the limit: nothing left out, nothing said.
    expect(exact.stdout.trimEnd().split('\n')).toHaveLength(7)
    expect(exact.stdout).not.toContain('more')
  })

  it('tells calls once per item from retries, as show does', async () => {
    const path = join(dir(), 'per-item.sqlite')
    const recorder = createRecorder({ path, flushIntervalMs: 5 })
    let calls = 0
    try {
      const price = recorder.stage('price', (item: { sku: string }) => ({ ...item, cents: 100 }))
      const flaky = recorder.stage('flaky', (n: number) => {
        if (++calls === 1) throw new Error('timeout')
        return n
      })
      const order = recorder.stage('order', async (items: { sku: string }[]) => Promise.all(items.map(price)))
      await recorder.record('order:3-items', async () => {
        await order([{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }])
        await flaky(1).catch(() => flaky(1))
      })
    } finally {
      await recorder.close()
    }
    const text = await runCli(['ls', path])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/order,price,flaky \(\+1 retry\)$/m)
    const json = parseJsonOut<LsJson>(await runCli(['ls', path, '--json']))
    expect(json.records[0]).toMatchObject({ stages: ['order', 'price', 'flaky'], captures: 6, retries: 1 })
  })

  it('counts a record continued in another bundle once in the total', async () => {
    const first = join(dir(), 'continued-1.sqlite')
    const second = join(dir(), 'continued-2.sqlite')
    const one = createRecorder({ path: first, flushIntervalMs: 5, clock: () => SAMPLE_T0 })
    const two = createRecorder({ path: second, flushIntervalMs: 5, clock: () => SAMPLE_T0 + 1000 })
    try {
      const step = one.stage('step', (n: number) => n + 1)
      const later = two.stage('later', (n: number) => n * 2)
      let id = ''
      await one.record('sku:handed-on', () => {
        id = one.current()?.recordId ?? ''
        return step(1)
      })
      await one.record('sku:alone', () => step(2))
      await two.record('sku:handed-on', () => later(2), { recordId: id })
    } finally {
      await one.close()
      await two.close()
    }
    const [cut, all] = await Promise.all([
      runCli(['ls', first, second, '-n', '1', '--json']),
      runCli(['ls', first, second, '--json']),
    ])
    expect(parseJsonOut<LsJson>(all)).toMatchObject({ total: 2, truncated: false })
    expect(parseJsonOut<LsJson>(all).records).toHaveLength(2)
    expect(parseJsonOut<LsJson>(cut)).toMatchObject({ total: 2, truncated: true })
  })

  it('--since and --until bound the start time, inclusive, as ISO time or epoch ms', async () => {
    const iso = (ms: number): string => new Date(ms).toISOString()
    const [between, sinceMs, untilMs, after] = await Promise.all([
      lsIds(a.path, '--since', iso(SAMPLE_T0 + minute), '--until', iso(SAMPLE_T0 + 3 * minute)),
      lsIds(a.path, '--since', String(SAMPLE_T0 + 4 * minute)),
      lsIds(a.path, '--until', String(SAMPLE_T0)),
      lsIds(a.path, '--since', iso(SAMPLE_T0 + 10 * minute)),
    ])
    expect(between).toEqual(idsOf(a, 3, 2, 1))
    expect(sinceMs).toEqual(idsOf(a, 5, 4))
    expect(untilMs).toEqual(idsOf(a, 0))
    expect(after).toEqual([])
  })

  it('--since takes an age (2h) relative to now', async () => {
    const hour = 3_600_000
    // Records 3 h, 2 h and 1 h ago: an age of 150 minutes keeps the last two.
    const recent = await makeSampleBundle(join(dir(), 'recent.sqlite'), {
      t0: Date.now() - 3 * hour,
      stepMs: hour,
      keys: ['sku:1', 'sku:2', 'sku:3'],
      failAt: [],
      retryAt: [],
      deferAt: [],
    })
    const [lastTwo, all] = await Promise.all([
      lsIds(recent.path, '--since', '150m'),
      lsIds(recent.path, '--since', '1d'),
    ])
    expect(lastTwo).toEqual(idsOf(recent, 2, 1))
    expect(all).toEqual(idsOf(recent, 2, 1, 0))
  })

  it('a --since that is not a time is a usage error', async () => {
    const line = expectUsageFailure(await runCli(['ls', a.path, '--since', 'yesterday']))
    expect(line).toContain('--since "yesterday" is not a time')
  })

  it('reads several bundles as one, merged newest first, with the source of each record', async () => {
    const r = await runCli(['ls', a.path, b.path])
    expect(r.code).toBe(0)
    const rows = r.stdout.trimEnd().split('\n').slice(1)
    const expected = [
      [a, 5],
      [a, 4],
      [a, 3],
      [b, 2],
      [a, 2],
      [b, 1],
      [a, 1],
      [b, 0],
      [a, 0],
    ] as const
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(expected.map(([bundle, i]) => bundle.records[i]!.id))
    expect(rows.map((l) => l.trimEnd().split(/\s+/).at(-1))).toEqual(expected.map(([bundle]) => bundle.path))

    const json = parseJsonOut<LsJson>(await runCli(['ls', b.path, a.path, '--json']))
    const times = json.records.map((x) => x.startedAt)
    expect(times).toEqual([...times].sort((x, y) => y - x))
    expect(json.records).toHaveLength(9)
    expect(json.records.filter((x) => x.source === b.path).map((x) => x.build)).toEqual([
      'build-def456',
      'build-def456',
      'build-def456',
    ])
  })

  it('a folder names every bundle under it; a file named by its folder and by name is read once', async () => {
    const procs = join(dir(), 'procs')
    mkdirSync(procs)
    copyFileSync(a.path, join(procs, 'a.sqlite'))
    copyFileSync(b.path, join(procs, 'b.sqlite'))
    const [files, folder, both] = await Promise.all([
      lsIds(a.path, b.path),
      lsIds(procs),
      lsIds(`${procs}/`, join(procs, 'b.sqlite')),
    ])
    expect(files).toHaveLength(9)
    expect(folder).toEqual(files)
    expect(both).toEqual(files)
    const empty = join(dir(), 'no-bundles')
    mkdirSync(empty)
    expect(expectUsageFailure(await runCli(['ls', empty]))).toBe(
      `retrace: ${empty}: is a directory, and no bundle (.sqlite, .bundle) is under it`,
    )
  })

  it('filters and --limit apply across the merged bundles; flags may come between paths', async () => {
    const [byKey, limited, mixed] = await Promise.all([
      lsIds(a.path, '--key', 'sku:1001', b.path),
      lsIds(a.path, b.path, '--limit', '3'),
      lsIds(b.path, '--key=sku:2002', a.path, '-n', '2'),
    ])
    expect(byKey).toEqual([...idsOf(a, 4), ...idsOf(b, 2), ...idsOf(a, 2, 0)])
    expect(limited).toEqual(idsOf(a, 5, 4, 3))
    expect(mixed).toEqual([...idsOf(a, 1), ...idsOf(b, 0)])
  })

  it('lists a record continued in another process once, whole: every stage, every capture, both sources', async () => {
    const first = join(dir(), 'split-a.sqlite')
    const second = join(dir(), 'split-b.sqlite')
    const front = createRecorder({ path: first })
    const back = createRecorder({ path: second })
    const parse = front.stage('parse', (x: number) => x + 1)
    const price = back.stage('price', (x: number) => x * 2)
    const audit = back.stage('audit', (x: number) => x)
    let id = ''
    await front.record('order:1', async () => {
      await parse(1)
      id = front.current()!.recordId
    })
    await new Promise((resolve) => setTimeout(resolve, 5))
    await back.record('order:1', async () => audit(await price(2)), { recordId: id })
    await Promise.all([front.close(), back.close()])
    const json = parseJsonOut<LsJson>(await runCli(['ls', second, first, '--json']))
    expect(json.records).toHaveLength(1)
    expect(json.records[0]).toMatchObject({
      id,
      key: 'order:1',
      stages: ['parse', 'price', 'audit'],
      captures: 3,
      source: `${first}, ${second}`,
    })
  })

  it('filters and orders a record continued in another process by the whole record', async () => {
    // X starts in one process (ok, at t0) and ends in another (error, at t0 + 100 s); Y runs
    // in the second process between them (t0 + 50 s).
    const first = join(dir(), 'whole-a.sqlite')
    const second = join(dir(), 'whole-b.sqlite')
    let now = SAMPLE_T0
    const clock = (): number => now
    const front = createRecorder({ path: first, clock })
    const back = createRecorder({ path: second, clock })
    const parse = front.stage('parse', (x: number) => x + 1)
    const store = back.stage('store', (_x: number) => {
      throw new Error('store is down')
    })
    const echo = back.stage('echo', (x: number) => x)
    let x = ''
    await front.record('sku:x', async () => {
      await parse(1)
      x = front.current()!.recordId
    })
    now = SAMPLE_T0 + 50_000
    let y = ''
    await back.record('sku:y', async () => {
      await echo(1)
      y = back.current()!.recordId
    })
    now = SAMPLE_T0 + 100_000
    await back.record('sku:x', async () => store(2), { recordId: x }).catch(() => {})
    await Promise.all([front.close(), back.close()])

    const ls = async (...flags: string[]): Promise<LsJson> => {
      const r = await runCli(['ls', first, second, '--json', ...flags])
      expect(r.stderr).toBe('')
      return parseJsonOut<LsJson>(r)
    }
    const [all, one, ok, error, since, until, okOne] = await Promise.all([
      ls(),
      ls('--limit', '1'),
      ls('--status', 'ok'),
      ls('--status', 'error'),
      ls('--since', String(SAMPLE_T0 + 40_000)),
      ls('--until', String(SAMPLE_T0 + 40_000)),
      ls('--status', 'ok', '--limit', '1'),
    ])
    // Newest first by when the whole record started: X started first.
    expect(all.records.map((r) => [r.id, r.status, r.startedAt])).toEqual([
      [y, 'ok', SAMPLE_T0 + 50_000],
      [x, 'error', SAMPLE_T0],
    ])
    expect(one).toMatchObject({ total: 2, truncated: true })
    expect(one.records.map((r) => r.id)).toEqual([y])
    expect(ok.records.map((r) => r.id)).toEqual([y])
    expect(error.records.map((r) => [r.id, r.stages])).toEqual([[x, ['parse', 'store']]])
    expect(since.records.map((r) => r.id)).toEqual([y])
    expect(until.records.map((r) => r.id)).toEqual([x])
    expect(okOne).toMatchObject({ total: 1, truncated: false })
  })

  it('gives a continued record the host and build of the part that started it and the error of the part that failed', async () => {
    // X starts in the front process and fails in the back one, which lists its part first
    // (newest first); `show` reads the same whole record.
    const first = join(dir(), 'row-a.sqlite')
    const second = join(dir(), 'row-b.sqlite')
    let now = SAMPLE_T0
    const clock = (): number => now
    const front = createRecorder({ path: first, clock, build: 'front-1', origin: { host: 'front', pid: 1 } })
    const back = createRecorder({ path: second, clock, build: 'back-1', origin: { host: 'back', pid: 2 } })
    const parse = front.stage('parse', (x: number) => x + 1)
    const store = back.stage('store', (_x: number) => {
      throw new Error('store is down')
    })
    let x = ''
    await front.record('sku:x', async () => {
      await parse(1)
      x = front.current()!.recordId
    })
    now = SAMPLE_T0 + 100_000
    await back.record('sku:x', async () => store(2), { recordId: x }).catch(() => {})
    await Promise.all([front.close(), back.close()])

    const [ls, show] = await Promise.all([
      runCli(['ls', second, first, '--json']),
      runCli(['show', second, first, x, '--json']),
    ])
    expect(ls.stderr).toBe('')
    const [listed] = parseJsonOut<LsJson>(ls).records
    expect(listed).toMatchObject({
      id: x,
      startedAt: SAMPLE_T0,
      status: 'error',
      host: 'front',
      pid: 1,
      build: 'front-1',
      stages: ['parse', 'store'],
    })
    expect(listed?.error).toContain('store is down')
    expect(show.stderr).toBe('')
    expect(parseJsonOut(show)).toMatchObject({
      recordId: x,
      status: 'error',
      host: 'front',
      error: { message: 'store is down' },
    })
  })

  it('fails with one line and exit 2 when one of several bundles is missing', async () => {
    const missing = join(dir(), 'missing.sqlite')
    const line = expectUsageFailure(await runCli(['ls', a.path, missing]))
    expect(line).toBe(`retrace: ${missing}: no such file`)
  })

  it('needs a bundle and knows its flags', async () => {
    const [noArg, badFlag] = await Promise.all([runCli(['ls']), runCli(['ls', a.path, '--bogus'])])
    expect(expectUsageFailure(noArg)).toContain('Missing 1 required arg')
    expect(expectUsageFailure(badFlag)).toContain('--bogus')
  })

  it('reads a bundle a recorder is still writing, and writes nothing beside it', async () => {
    const live = join(dir(), 'live')
    mkdirSync(live)
    const path = join(live, 'live.sqlite')
    const recorder = createRecorder({ path, flushIntervalMs: 5, clock: () => SAMPLE_T0 })
    try {
      const step = recorder.stage('step', (n: number) => n + 1)
      await recorder.record('sku:live', () => step(1))
      await recorder.flush()
      const before = listDir(live)
      const r = await runCli(['ls', path, '--json'])
      expect(r.code).toBe(0)
      expect(parseJsonOut<LsJson>(r).records.map((x) => x.key)).toEqual(['sku:live'])
      expect(listDir(live)).toEqual(before)
    } finally {
      await recorder.close()
    }
    expect(listDir(live)).toEqual(['live.sqlite'])
  })
})
