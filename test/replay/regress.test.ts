/**
 * The regression-test module called directly: pinning rows from a replay result, finding
 * bundles, sharding, and `runTests` over bundles recorded by the SDK with local stage
 * functions passed in as a map.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleSet, type ExpectationRow, pinExpectations } from '../../src/bundle/index.js'
import { noRules } from '../../src/compare/diff.js'
import { UsageError } from '../../src/errors.js'
import type { StageFn } from '../../src/index.js'
import type { RecordResult, ReplayOptions, StageResult } from '../../src/replay/engine.js'
import {
  discoverBundles,
  inShard,
  parseShard,
  pinFromResult,
  runTests,
  type StaleItem,
  testRecord,
} from '../../src/replay/regress.js'
import { tempDir } from '../helpers/tmp.js'
import { record, type Workspace, workspace } from './fixture.js'

function stage(name: string, status: StageResult['status'], extra: Partial<StageResult> = {}): StageResult {
  return { stage: name, status, changes: [], suppressed: [], error: null, attempts: [], ...extra }
}

function result(stages: StageResult[], outputs: Record<string, string>): RecordResult {
  return {
    recordId: 'R1',
    key: 'sku:1',
    verdict: 'diverged',
    firstDivergence: { stage: 'b', status: 'diverged' },
    stages,
    mode: 'cascade',
    outputs,
  }
}

describe('pinFromResult', () => {
  const r = result(
    [
      stage('a', 'matched'),
      stage('b', 'diverged'),
      stage('c', 'inherited'),
      stage('d', 'error', { error: { name: 'TypeError', message: 'boom', code: 'E_STAGE_THREW' } }),
      stage('e', 'skipped'),
    ],
    { a: '{"a":1}', b: '{"b":2}', c: '{"c":3}', e: '{"e":5}' },
  )
  const base = { note: 'BUG-1', build: 'local', now: 1234 }

  it('pins every stage that ran, with its local output, note, build and time', () => {
    expect(pinFromResult(r, base)).toEqual([
      {
        recordId: 'R1',
        stage: 'a',
        output: '{"a":1}',
        error: null,
        note: 'BUG-1',
        build: 'local',
        acceptedAt: 1234,
      },
      {
        recordId: 'R1',
        stage: 'b',
        output: '{"b":2}',
        error: null,
        note: 'BUG-1',
        build: 'local',
        acceptedAt: 1234,
      },
      {
        recordId: 'R1',
        stage: 'c',
        output: '{"c":3}',
        error: null,
        note: 'BUG-1',
        build: 'local',
        acceptedAt: 1234,
      },
      {
        recordId: 'R1',
        stage: 'd',
        output: null,
        error: JSON.stringify({ name: 'TypeError', message: 'boom', code: 'E_STAGE_THREW' }),
        note: 'BUG-1',
        build: 'local',
        acceptedAt: 1234,
      },
    ])
  })

  it('only: one stage; onlyFailing: not the matched ones', () => {
    expect(pinFromResult(r, { ...base, only: 'c' }).map((x) => x.stage)).toEqual(['c'])
    expect(pinFromResult(r, { ...base, onlyFailing: true }).map((x) => x.stage)).toEqual(['b', 'c', 'd'])
    expect(pinFromResult(r, { ...base, only: 'e' })).toEqual([])
  })
})

describe('parseShard and inShard', () => {
  it('reads i/n and refuses anything else as a usage error', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 })
    expect(parseShard(' 1/1 ')).toEqual({ index: 1, count: 1 })
    for (const bad of ['0/4', '5/4', '1/0', '-1/2', '1.5/2', '1/2/3', 'a/b', '', '2', '/2']) {
      let err: unknown
      try {
        parseShard(bad)
      } catch (e) {
        err = e
      }
      expect(err, bad).toBeInstanceOf(UsageError)
      expect((err as UsageError).exit).toBe(2)
    }
  })

  it('puts every record in exactly one shard of n, for every n, and fairly', () => {
    const ids = Array.from(
      { length: 2000 },
      (_, i) => `01JD3Q${i.toString(36).padStart(20, '0').toUpperCase()}`,
    )
    for (const n of [1, 2, 3, 5, 8]) {
      const sizes = Array.from({ length: n }, () => 0)
      for (const id of ids) {
        const hits = sizes.map((_, i) => inShard(id, { index: i + 1, count: n }))
        expect(hits.filter(Boolean)).toHaveLength(1)
        sizes[hits.indexOf(true)]!++
      }
      // No shard gets much more than its share (a skewed split idles CI workers).
      for (const s of sizes) expect(Math.abs(s - ids.length / n)).toBeLessThan((ids.length / n) * 0.2)
    }
    expect(ids.every((id) => inShard(id, undefined))).toBe(true)
  })

  it('is a pure function of the record id: the same answer on every machine and every run', () => {
    // Pinned: changing the hash would move records between CI workers mid-migration.
    const ids = ['01JD3Q7ZK8A8S1X1V4C2N9M0PQ', '01JD3Q7ZK8A8S1X1V4C2N9M0PR', 'r', 'sku:1001', 'a', 'b']
    const shardOf = (id: string): number | undefined =>
      [1, 2, 3, 4].find((i) => inShard(id, { index: i, count: 4 }))
    expect(ids.map(shardOf)).toEqual([1, 2, 3, 2, 4, 3])
  })
})

describe('discoverBundles', () => {
  it('finds .sqlite and .bundle files under folders, sorted, skipping dot files and node_modules', () => {
    const dir = tempDir()
    for (const f of [
      'b.sqlite',
      'a.bundle',
      'sub/deep/c.sqlite',
      '.hidden.sqlite',
      'node_modules/x.sqlite',
      'notes.txt',
    ]) {
      mkdirSync(join(dir, f, '..'), { recursive: true })
      writeFileSync(join(dir, f), 'x')
    }
    mkdirSync(join(dir, '.git'))
    writeFileSync(join(dir, '.git', 'd.sqlite'), 'x')
    expect(discoverBundles([dir])).toEqual([
      join(dir, 'a.bundle'),
      join(dir, 'b.sqlite'),
      join(dir, 'sub/deep/c.sqlite'),
    ])
    // A file named on the command line is taken whatever its name; duplicates collapse.
    expect(discoverBundles([join(dir, 'notes.txt'), dir, join(dir, 'b.sqlite')])).toEqual([
      join(dir, 'a.bundle'),
      join(dir, 'b.sqlite'),
      join(dir, 'notes.txt'),
      join(dir, 'sub/deep/c.sqlite'),
    ])
  })

  it('a missing path is a usage error', () => {
    const dir = tempDir()
    expect(() => discoverBundles([join(dir, 'nope')])).toThrow(UsageError)
  })

  it('a symlink back up the tree does not find the same bundles again and again', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'rec', 'sub'), { recursive: true })
    writeFileSync(join(dir, 'rec', 'a.sqlite'), 'x')
    writeFileSync(join(dir, 'rec', 'sub', 'b.sqlite'), 'x')
    symlinkSync('..', join(dir, 'rec', 'sub', 'up'))
    symlinkSync('.', join(dir, 'rec', 'self'))
    symlinkSync('a.sqlite', join(dir, 'rec', 'z-alias.sqlite'))
    expect(discoverBundles([join(dir, 'rec')])).toEqual([
      join(dir, 'rec', 'a.sqlite'),
      join(dir, 'rec', 'sub', 'b.sqlite'),
    ])
  })

  it('a broken link named like a bundle is a usage error, not a crash; other broken links are skipped', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'a.sqlite'), 'x')
    symlinkSync('missing-folder', join(dir, 'old'))
    expect(discoverBundles([dir])).toEqual([join(dir, 'a.sqlite')])
    symlinkSync('gone.sqlite', join(dir, 'b.sqlite'))
    expect(() => discoverBundles([dir])).toThrow(UsageError)
  })
})

describe('runTests over recorded bundles', () => {
  type Row = { sku: string; onHand: number; reserved: number }
  const parse: StageFn = (e) => ({ ...(e as Row) })
  const compute: StageFn = (r) => ({
    sku: (r as Row).sku,
    available: (r as Row).onHand - (r as Row).reserved,
  })
  const computeV2: StageFn = (r) => ({
    sku: (r as Row).sku,
    available: (r as Row).onHand - (r as Row).reserved - 1,
  })
  const engine = (stages: Record<string, StageFn>): ReplayOptions => ({
    mode: 'cascade',
    stages: new Map(Object.entries(stages)),
    rules: noRules,
    now: () => 0,
  })

  let ws: Workspace
  const paths: string[] = []
  const ids: string[][] = [[], []]

  beforeAll(async () => {
    ws = workspace('retrace-regress-')
    for (const [b, count] of [
      [0, 6],
      [1, 3],
    ] as const) {
      const path = ws.path(`b${b}.sqlite`)
      paths.push(path)
      await record(path, async (recorder) => {
        const p = recorder.stage('parse', parse)
        const c = recorder.stage('compute', compute)
        for (let i = 0; i < count; i++) {
          await recorder.record(`sku:${b}${i}`, async () => {
            ids[b]!.push(recorder.current()!.recordId)
            return c(await p({ sku: `sku:${b}${i}`, onHand: 10, reserved: i }))
          })
        }
      })
    }
  })

  afterAll(() => ws?.remove())

  it('passes when the local build matches, per bundle and overall', async () => {
    const seen: [string, number][] = []
    let onRecord = 0
    const run = await runTests(paths, {
      engine: engine({ parse, compute }),
      keepAll: false,
      now: () => 1,
      onBundle: (path, n) => seen.push([path, n]),
      onRecord: () => onRecord++,
    })
    expect(run.summary).toEqual({ records: 9, matched: 9, diverged: 0, errors: 0 })
    expect(run.bundles.map((b) => [b.path, b.summary.records, b.failures.length, b.results])).toEqual([
      [paths[0], 6, 0, undefined],
      [paths[1], 3, 0, undefined],
    ])
    expect(seen).toEqual([
      [paths[0], 6],
      [paths[1], 3],
    ])
    expect(onRecord).toBe(9)
    expect(run.stale).toEqual([])
    expect(run.updated).toBe(0)
  })

  it('keepAll keeps every result (JUnit needs the passing ones); failures hold the diverged', async () => {
    const run = await runTests(paths, {
      engine: engine({ parse, compute: computeV2 }),
      keepAll: true,
      now: () => 1,
    })
    expect(run.summary).toEqual({ records: 9, matched: 0, diverged: 9, errors: 0 })
    expect(run.bundles[0]!.results?.map((r) => r.recordId).sort()).toEqual([...ids[0]!].sort())
    expect(run.bundles[0]!.failures.every((r) => r.firstDivergence?.stage === 'compute')).toBe(true)
  })

  it('shards split each bundle the same way every time', async () => {
    const idsOf = async (index: number): Promise<string[]> => {
      const run = await runTests(paths, {
        engine: engine({ parse, compute: computeV2 }),
        keepAll: true,
        now: () => 1,
        shard: { index, count: 2 },
      })
      return run.bundles.flatMap((b) => b.results!.map((r) => r.recordId)).sort()
    }
    const [one, two] = [await idsOf(1), await idsOf(2)]
    expect(one.filter((id) => two.includes(id))).toEqual([])
    expect([...one, ...two].sort()).toEqual([...ids[0]!, ...ids[1]!].sort())
    expect(await idsOf(1)).toEqual(one)
  })

  it('update hands each bundle its failing rows once, after its records ran', async () => {
    const dir = tempDir()
    const copy = join(dir, 'copy.sqlite')
    await record(copy, async (recorder) => {
      const p = recorder.stage('parse', parse)
      const c = recorder.stage('compute', compute)
      await recorder.record('sku:u', async () => c(await p({ sku: 'sku:u', onHand: 3, reserved: 1 })))
    })
    const calls: [string, ExpectationRow[]][] = []
    const run = await runTests([copy], {
      engine: engine({ parse, compute: computeV2 }),
      keepAll: false,
      now: () => 42,
      update: (path, rows) => {
        calls.push([path, rows])
        pinExpectations(path, rows, 'test')
      },
    })
    expect(run.updated).toBe(1)
    expect(calls).toHaveLength(1)
    expect(calls[0]![1].map(({ recordId: _r, ...x }) => x)).toEqual([
      {
        stage: 'compute',
        output: JSON.stringify({ sku: 'sku:u', available: 1 }),
        error: null,
        note: 'retrace test --update',
        build: null,
        acceptedAt: 42,
      },
    ])
    const again = await runTests([copy], {
      engine: engine({ parse, compute: computeV2 }),
      keepAll: false,
      now: () => 1,
    })
    expect(again.summary.matched).toBe(1)
  })

  it('testRecord reports stages missing from the config and expectations never exercised', async () => {
    const dir = tempDir()
    const path = join(dir, 's.sqlite')
    let id = ''
    await record(path, async (recorder) => {
      const p = recorder.stage('parse', parse)
      const c = recorder.stage('compute', compute)
      await recorder.record('sku:s', async () => {
        id = recorder.current()!.recordId
        return c(await p({ sku: 'sku:s', onHand: 3, reserved: 1 }))
      })
    })
    pinExpectations(
      path,
      [{ recordId: id, stage: 'gone', output: '1', error: null, note: null, build: null, acceptedAt: 1 }],
      'test',
    )
    const set = BundleSet.open([path])
    let stale: StaleItem[]
    try {
      stale = (await testRecord(path, set.loadRecord(id), engine({ parse }))).stale
    } finally {
      set.close()
    }
    expect(stale).toEqual([
      { bundle: path, recordId: id, stage: 'compute', why: 'stage not in config' },
      { bundle: path, recordId: id, stage: 'gone', why: 'expectation never exercised' },
    ])
  })
})
