/**
 * `retrace why` as a user runs it: on the shipped example's bad value (compute made it,
 * on a retry, from a fallback store), and on an SDK recording whose value changed in
 * transit between two stages.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRecorder } from '../../src/index.js'
import {
  expectUsageFailure,
  makeTypedBundle,
  parseJsonOut,
  repoRoot,
  runCli,
  sharedTempDir,
} from '../helpers/cli.js'

const example = join(repoRoot, 'recordings', 'inventory.sqlite')
const exampleConfig = join(repoRoot, 'examples', 'inventory', 'retrace.config.ts')
/** The incident of the example (examples/inventory/README.md): the last record of sku:1001. */
const BAD = '01KJPWGBPCP1NHCKVZ736JA1KR'

interface WhyJson {
  recordId: string
  key: string
  start: { stage: string; side: string; path: string; value: unknown }
  origin: { stage: string; attempt: number; how: string } | null
  trail: { stage: string; attempt: number; value: unknown; note: string }[]
  evidence: { kind: string; text: string }[]
  caveat: string
}

const dir = sharedTempDir('retrace-e2e-why-')
let seamPath: string
let seamId: string

beforeAll(async () => {
  // compute produces 4; the hand-off to store carries 40: a seam.
  seamPath = join(dir(), 'seam.sqlite')
  const recorder = createRecorder({ path: seamPath, pipeline: 'orders', flushIntervalMs: 5 })
  try {
    const compute = recorder.stage('compute', (sku: string) => ({ sku, available: 4 }))
    const store = recorder.stage('store', (c: { sku: string; available: number }) => ({ ...c, stored: true }))
    await recorder.record('sku:7', async () => {
      seamId = recorder.current()?.recordId ?? ''
      const computed = await compute('sku:7')
      await store({ ...computed, available: 40 })
    })
  } finally {
    await recorder.close()
  }
  expect(recorder.stats()).toMatchObject({ written: 2, dropped: 0, errors: 0 })
})

describe('retrace why on the shipped example', () => {
  it('store.available points at compute, with the retry, the fallback and the arithmetic', async () => {
    const r = await runCli(['why', example, '--key', 'sku:1001', 'store.available'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe(`why store.output.available = 87  record ${BAD} key sku:1001`)
    expect(r.stdout).toContain('origin: produced by compute (attempt 2)')
    expect(r.stdout).toMatch(/^ {2}compute +87 {2}produced here \(attempt 2\)$/m)
    expect(r.stdout).toMatch(/^ {2}store +87 {2}passed through unchanged$/m)
    expect(r.stdout).toMatch(
      /^ {2}\[retry\] compute ran 2 times; the value comes from attempt 2 after attempt 1: .*timed out/m,
    )
    expect(r.stdout).toMatch(
      /^ {2}\[degraded\] kv\.state failed \(.*\); the stage went on with local\.get\b.*: a fallback path$/m,
    )
    expect(r.stdout).toContain(
      '[arithmetic] local.get#1.available (90) + input.change.delta.available (-3) = 87',
    )
    expect(r.stdout).toMatch(/Provenance by evidence/)
  })

  it('--json: the origin, the trail and the evidence as data', async () => {
    const r = await runCli(['why', example, BAD, 'store.output.available', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const doc = parseJsonOut<WhyJson>(r)
    expect(Object.keys(doc).sort()).toEqual([
      'caveat',
      'evidence',
      'key',
      'origin',
      'recordId',
      'start',
      'trail',
    ])
    expect(doc).toMatchObject({
      recordId: BAD,
      key: 'sku:1001',
      start: { stage: 'store', side: 'output', path: '$.available', value: 87 },
      origin: { stage: 'compute', attempt: 2, how: 'produced' },
    })
    expect(doc.trail.map((s) => [s.stage, s.attempt, s.value])).toEqual([
      ['store', 1, 87],
      ['compute', 2, 87],
    ])
    const kinds = new Set(doc.evidence.map((e) => e.kind))
    expect([...kinds]).toEqual(expect.arrayContaining(['retry', 'degraded', 'arithmetic']))
    const degraded = doc.evidence.find((e) => e.kind === 'degraded')!.text
    expect(degraded).toContain('local.get')
    const sums = doc.evidence.filter((e) => e.kind === 'arithmetic').map((e) => e.text)
    expect(sums[0]).toMatch(/\(90\).*\(-3\) = 87$/)
  })

  it('without PATH, with --config, it explains the value the violated invariant reads', async () => {
    const r = await runCli(['why', example, BAD, '--config', exampleConfig, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const doc = parseJsonOut<WhyJson>(r)
    expect(doc.start).toEqual({ stage: 'compute', side: 'output', path: '$.available', value: 87 })
    expect(doc.origin).toEqual({ stage: 'compute', attempt: 2, how: 'produced' })
    expect(doc.evidence.some((e) => e.kind === 'retry')).toBe(true)
  })

  it('--key with a path and no record reads the path as the path', async () => {
    const r = await runCli(['why', example, '--key', 'sku:1001', 'compute.output.available', '--json'])
    expect(r.code).toBe(0)
    expect(parseJsonOut<WhyJson>(r).recordId).toBe(BAD)
  })
})

describe('retrace why: a value changed in transit', () => {
  it('names the seam between the two stages as the origin', async () => {
    const r = await runCli(['why', seamPath, seamId, 'store.output.available', '--json'], { cwd: dir() })
    expect(r.code).toBe(0)
    const doc = parseJsonOut<WhyJson>(r)
    expect(doc.start.value).toBe(40)
    expect(doc.origin).toEqual({ stage: 'compute → store', attempt: 1, how: 'in-transit' })
    expect(doc.evidence).toEqual([
      {
        kind: 'seam',
        text: 'compute produced 4 at $.available, store received 40: the data changed in transit (stale cache, lossy serialisation, another writer)',
      },
    ])
    const text = await runCli(['why', seamPath, '--key', 'sku:7', 'store.available'], { cwd: dir() })
    expect(text.stdout).toContain('origin: changed in transit between compute → store')
    expect(text.stdout).toContain('[seam] compute produced 4 at $.available, store received 40')
  })

  it('without PATH, the config invariant the seam broke picks the value', async () => {
    const config = join(dir(), 'why.config.json')
    writeFileSync(
      config,
      JSON.stringify({
        stages: {},
        invariants: [{ name: 'stored-as-computed', check: 'store.output.available == 4' }],
      }),
    )
    const r = await runCli(['why', seamPath, seamId, '--config', config, '--json'])
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<WhyJson>(r)
    expect(doc.start).toMatchObject({ stage: 'store', path: '$.available', value: 40 })
    expect(doc.origin?.how).toBe('in-transit')
  })
})

describe('retrace why: without PATH, picking the value from the config', () => {
  it('a violated function invariant names no path: the first violated expression after it does', async () => {
    const config = join(dir(), 'mixed.config.mjs')
    writeFileSync(
      config,
      [
        'export default {',
        '  stages: {},',
        '  invariants: [',
        "    { name: 'fn-first', check: (chain) => chain.store.output.available < 10 || 'too many' },",
        "    { name: 'expr-second', check: 'compute.output.available == store.output.available' },",
        '  ],',
        '}',
        '',
      ].join('\n'),
    )
    const r = await runCli(['why', seamPath, seamId, '--config', config, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(parseJsonOut<WhyJson>(r).start).toEqual({
      stage: 'compute',
      side: 'output',
      path: '$.available',
      value: 4,
    })
  })

  it('only a function invariant violated, and nothing to replay: the error does not claim no invariant failed', async () => {
    const config = join(dir(), 'fn-only.config.mjs')
    writeFileSync(
      config,
      "export default { stages: {}, invariants: [{ name: 'fn-only', check: () => 'always' }] }\n",
    )
    const r = await runCli(['why', seamPath, seamId, '--config', config])
    expect(expectUsageFailure(r, 2)).toBe(
      'retrace: the record violates "fn-only", which names no stage path, and replays cleanly: name the value to explain',
    )
  })
})

describe('retrace why: hostile recordings', () => {
  it('control and bidi characters in ids, keys and values are shown, never sent to the terminal', async () => {
    const path = join(dir(), 'hostile.sqlite')
    const recorder = createRecorder({
      path,
      pipeline: 'hostile',
      flushIntervalMs: 5,
      ids: () => '01HOSTILE\u001b[31mRED\u009b2J',
    })
    try {
      const a = recorder.stage('a', () => ({ v: '\u202eevil\u009b2J\u001b]0;title\u0007' }))
      const b = recorder.stage('b', (_x: { v: string }) => ({ v: 1 }))
      await recorder.record('k\u001b[2J', async () => {
        await b(await a(null))
      })
    } finally {
      await recorder.close()
    }
    const r = await runCli(['why', path, '01HOSTILE', 'b.v'], { cwd: dir() })
    expect(r.code).toBe(0)
    expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
    expect(r.stdout).toContain('record 01HOSTILE\\x1b[31mRED\\x9b2J key k\\x1b[2J')
    expect(r.stdout).toContain('changed here from "\\u202eevil\\x9b2J\\u001b]0;title\\u0007"')
  })
})

describe('retrace why: usage errors exit 2', () => {
  it.each([
    [
      'a stage the record does not have',
      'nostage.available',
      `record ${BAD} has no stage "nostage" (stages: binlog, ingest, kv, compute, store, query)`,
    ],
    ['nothing at the path', 'store.output.nope', `store.output has nothing at $.nope in record ${BAD}`],
    ['a wildcard', 'store.output.*', 'why: wildcards and .. are not supported here; name one path'],
    ['a path that does not parse', 'store.output[', 'bad path'],
  ])('%s', async (_what, path, message) => {
    const r = await runCli(['why', example, BAD, path], { cwd: dir() })
    const line = expectUsageFailure(r, 2)
    expect(line).toContain(message)
  })

  it('no PATH and no config: says what to give', async () => {
    const r = await runCli(['why', example, BAD], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toBe(
      'retrace: name the value to explain (e.g. compute.output.available), or pass --config so retrace can find the first violation or divergence',
    )
  })

  it('neither RECORD nor --key', async () => {
    const r = await runCli(['why', example], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toBe('retrace: name a record: RECORD or --key KEY')
  })

  it('a record the bundle does not have', async () => {
    const r = await runCli(['why', example, 'ZZZZZZ', 'store.available'], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toContain('ZZZZZZ')
  })
})

describe('retrace why: typed values', () => {
  it('an undefined output is not explained by an undefined field that happens to be in the input', async () => {
    const t = await makeTypedBundle(join(dir(), 'typed.sqlite'))
    const r = await runCli(['why', t.path, t.second, 'audit.output'], { cwd: dir() })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('why audit.output = undefined')
    expect(r.stdout).toMatch(/audit\s+undefined\s+changed here from \{"orderId":"o-2","receivedAt":Date\(/)
    expect(r.stdout).not.toContain('holds the same value')
    expect(r.stdout).not.toContain('$t')
  })

  it('follows a path into a Map and a Set as the data spells it', async () => {
    const t = await makeTypedBundle(join(dir(), 'typed-2.sqlite'))
    const [entry, item] = await Promise.all([
      runCli(['why', t.path, t.second, 'price.output.unit["SKU-42"]', '--json'], { cwd: dir() }),
      runCli(['why', t.path, t.second, 'price.output.tags[1]', '--json'], { cwd: dir() }),
    ])
    expect(parseJsonOut<WhyJson>(entry).start.value).toBe(8.49)
    expect(parseJsonOut<WhyJson>(item)).toMatchObject({
      start: { value: 'vip' },
      // parse turned the array of tags into a Set: the item came in with the record.
      origin: { stage: 'parse', how: 'recorded-input' },
    })
  })
})

describe('retrace why: BigInt money and dates add up as numbers do', () => {
  it('finds the BigInt fields and the dates of the input that make the value', async () => {
    const path = join(dir(), 'bigint.sqlite')
    const recorder = createRecorder({ path, pipeline: 'billing', flushIntervalMs: 5 })
    let id = ''
    try {
      const rate = recorder.stage('rate', (order: { sku: string }) => ({
        sku: order.sku,
        subtotalCents: 1_000_000_000_000_000_123n,
        surchargeCents: 250n,
        openedAt: new Date('2026-03-01T10:00:00.000Z'),
        closedAt: new Date('2026-03-01T10:00:04.500Z'),
      }))
      const label = recorder.stage(
        'label',
        (r: { subtotalCents: bigint; surchargeCents: bigint; openedAt: Date; closedAt: Date }) => ({
          totalCents: r.subtotalCents + r.surchargeCents,
          tookMs: r.closedAt.getTime() - r.openedAt.getTime(),
          dueAt: new Date(r.closedAt.getTime() + 86_400_000),
        }),
      )
      await recorder.record('order:1', async () => {
        id = recorder.current()?.recordId ?? ''
        await label(await rate({ sku: 'p1' }))
      })
    } finally {
      await recorder.close()
    }
    const arithmeticOf = async (stagePath: string): Promise<string[]> => {
      const r = await runCli(['why', path, id, stagePath, '--json'], { cwd: dir() })
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      return parseJsonOut<WhyJson>(r)
        .evidence.filter((e) => e.kind === 'arithmetic')
        .map((e) => e.text)
    }
    expect(await arithmeticOf('label.output.totalCents')).toEqual([
      'input.subtotalCents (1000000000000000123n) + input.surchargeCents (250n) = 1000000000000000373n',
    ])
    expect(await arithmeticOf('label.output.tookMs')).toEqual([
      'input.closedAt (Date(2026-03-01T10:00:04.500Z)) - input.openedAt (Date(2026-03-01T10:00:00.000Z)) = 4500',
    ])
    expect(await arithmeticOf('label.output.dueAt')).toEqual([])
  })
})

describe('retrace why without PATH, when the first change is in an array matched by arrayKeys', () => {
  it('explains the item the replay named by its id, read at its index in the recording', async () => {
    const path = join(dir(), 'keyed.sqlite')
    const rateSrc = (op: string): string =>
      `export function rate(o) { return { lines: o.parcels.map((p) => ({ id: p.id, kg: Math.${op}(p.grams / 1000) })) } }\n`
    writeFileSync(join(dir(), 'rate-prod.mjs'), rateSrc('ceil'))
    writeFileSync(join(dir(), 'rate-local.mjs'), rateSrc('round'))
    writeFileSync(
      join(dir(), 'keyed.config.json'),
      JSON.stringify({ stages: { rate: './rate-local.mjs#rate' }, diff: { arrayKeys: { '$.lines': 'id' } } }),
    )
    const { rate } = (await import(join(dir(), 'rate-prod.mjs'))) as { rate: (o: unknown) => unknown }
    const recorder = createRecorder({ path, pipeline: 'shipping', flushIntervalMs: 5 })
    let id = ''
    try {
      const stage = recorder.stage('rate', rate)
      await recorder.record('order:9', async () => {
        id = recorder.current()?.recordId ?? ''
        await stage({
          parcels: [
            { id: 'p0', grams: 1000 },
            { id: 'p1', grams: 1200 },
          ],
        })
      })
    } finally {
      await recorder.close()
    }
    const r = await runCli(['why', path, id, '--config', join(dir(), 'keyed.config.json')], { cwd: dir() })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.split('\n')[0]).toBe(`why rate.output.lines[1].kg = 2  record ${id} key order:9`)
  })
})
