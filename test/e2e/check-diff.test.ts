/**
 * `retrace diff` as a user runs it: two records (one bundle, or two) stage by stage, and
 * two whole bundles matched by key, on bundles the SDK records in a temp dir.
 */
import { copyFileSync, writeFileSync } from 'node:fs'
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

interface Change {
  path: string
  kind: string
  recorded?: unknown
  local?: unknown
}
interface RecordDiffJson {
  a: { recordId: string; key: string; source: string }
  b: { recordId: string; key: string; source: string }
  firstDifference: string | null
  stages: {
    stage: string
    status: string
    input: Change[]
    output: Change[]
    suppressed: { input: { path: string; reason: string }[]; output: { path: string; reason: string }[] }
    truncated: boolean
  }[]
}
interface BundleDiffJson {
  keys: number
  same: number
  differing: number
  onlyInA: number
  onlyInB: number
  byStage: {
    stage: string
    keys: number
    examples: { key: string; a: string; b: string; change: string }[]
  }[]
}

interface Order {
  key: string
  qty: number
  /** What compute makes of it (a bug shows here). */
  available: number
}

const dir = sharedTempDir('retrace-e2e-diff-')
const unsuppressed = { suppressed: { input: [], output: [] }, truncated: false }

/** Records parse -> compute -> store for each order; returns the record ids by position. */
async function recordDay(path: string, orders: readonly Order[], t0: number): Promise<string[]> {
  let now = t0
  const recorder = createRecorder({ path, pipeline: 'orders', clock: () => now, flushIntervalMs: 5 })
  const ids: string[] = []
  try {
    for (const o of orders) {
      now += 1000
      const parse = recorder.stage('parse', (raw: string) => {
        const [sku, qty] = raw.split('|')
        return { sku: sku ?? '', qty: Number(qty) }
      })
      const compute = recorder.stage('compute', (p: { sku: string; qty: number }) => ({
        ...p,
        available: o.available,
      }))
      const store = recorder.stage('store', (c: { available: number }) => ({ ...c, stored: true }))
      await recorder.record(o.key, async () => {
        ids.push(recorder.current()?.recordId ?? '')
        await store(await compute(await parse(`${o.key}|${o.qty}`)))
      })
    }
  } finally {
    await recorder.close()
  }
  expect(recorder.stats()).toMatchObject({
    captured: orders.length * 3,
    written: orders.length * 3,
    dropped: 0,
  })
  return ids
}

let monday: string
let tuesday: string
let mondayIds: string[]
let tuesdayIds: string[]

const mondayOrders: Order[] = [
  { key: 'sku:1', qty: 1, available: 9 },
  { key: 'sku:2', qty: 2, available: 8 },
  { key: 'sku:3', qty: 3, available: 7 },
  { key: 'sku:4', qty: 4, available: 6 },
  { key: 'sku:5', qty: 5, available: 5 },
  { key: 'sku:8', qty: 8, available: 1 },
  // A later record of sku:1 exactly like the first,
  { key: 'sku:1', qty: 1, available: 9 },
  // and the latest one, which went wrong in compute.
  { key: 'sku:1', qty: 1, available: 87 },
]

beforeAll(async () => {
  monday = join(dir(), 'monday.sqlite')
  tuesday = join(dir(), 'tuesday.sqlite')
  mondayIds = await recordDay(monday, mondayOrders, 1_767_000_000_000)
  tuesdayIds = await recordDay(
    tuesday,
    [
      { key: 'sku:1', qty: 1, available: 87 }, // same as monday's latest sku:1
      { key: 'sku:2', qty: 2, available: -2 }, // compute differs
      { key: 'sku:3', qty: 3, available: 7 }, // same
      { key: 'sku:4', qty: 40, available: 6 }, // parse differs (another order came in)
      { key: 'sku:6', qty: 6, available: 4 }, // only on tuesday
      { key: 'sku:7', qty: 7, available: 3 }, // only on tuesday
      { key: 'sku:5', qty: 5, available: 0 }, // compute differs; sku:8 is only on monday
    ],
    1_767_086_400_000,
  )
})

describe('retrace diff: two records', () => {
  it('same bundle with #RECORD: exit 1 and names the first stage whose output differs', async () => {
    const r = await runCli(['diff', `${monday}#${mondayIds[0]}`, `#${mondayIds[7]}`], { cwd: dir() })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(1)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe(`A ${mondayIds[0]} sku:1 ${monday}`)
    expect(lines[1]).toBe(`B ${mondayIds[7]} sku:1 ${monday}`)
    expect(r.stdout).toMatch(/^ {2}= parse$/m)
    expect(r.stdout).toMatch(/^ {2}≠ compute$/m)
    expect(r.stdout).toMatch(/^ {2}≠ store$/m)
    expect(r.stdout).toContain('$.available 9 → 87')
    expect(lines.at(-2)).toBe('outputs first differ at compute')
  })

  it('--json: both records and every stage with its input and output changes', async () => {
    const r = await runCli(['diff', `${monday}#${mondayIds[0]}`, `#${mondayIds[7]}`, '--json'], {
      cwd: dir(),
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<RecordDiffJson>(r)
    expect(doc).toEqual({
      a: { recordId: mondayIds[0], key: 'sku:1', source: monday },
      b: { recordId: mondayIds[7], key: 'sku:1', source: monday },
      firstDifference: 'compute',
      stages: [
        { stage: 'parse', status: 'same', input: [], output: [], ...unsuppressed },
        {
          stage: 'compute',
          status: 'differs',
          input: [],
          output: [{ path: '$.available', kind: 'changed', recorded: 9, local: 87 }],
          ...unsuppressed,
        },
        {
          stage: 'store',
          status: 'differs',
          input: [{ path: '$.available', kind: 'changed', recorded: 9, local: 87 }],
          output: [{ path: '$.available', kind: 'changed', recorded: 9, local: 87 }],
          ...unsuppressed,
        },
      ],
    })
  })

  it('identical records: exit 0, every stage the same', async () => {
    const r = await runCli(['diff', `${monday}#${mondayIds[0]}`, `#${mondayIds[6]}`], { cwd: dir() })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /^ {2}= parse\n {2}= compute\n {2}= store\n\nthe records match stage for stage\n$/m,
    )
    const json = await runCli(['diff', `${monday}#${mondayIds[0]}`, `#${mondayIds[6]}`, '--json'], {
      cwd: dir(),
    })
    expect(json.code).toBe(0)
    const doc = parseJsonOut<RecordDiffJson>(json)
    expect(doc.firstDifference).toBeNull()
    expect(doc.stages.map((s) => s.status)).toEqual(['same', 'same', 'same'])
  })

  it('a record against itself, by unique prefix: exit 0', async () => {
    const prefix = mondayIds[3]!.slice(0, 20)
    const r = await runCli(['diff', `${monday}#${prefix}`, `#${prefix}`, '--json'], { cwd: dir() })
    expect(r.code).toBe(0)
    expect(parseJsonOut<RecordDiffJson>(r).a.recordId).toBe(mondayIds[3])
  })

  it('two bundles: BUNDLE#RECORD on each side', async () => {
    const r = await runCli(['diff', `${monday}#${mondayIds[1]}`, `${tuesday}#${tuesdayIds[1]}`, '--json'], {
      cwd: dir(),
    })
    expect(r.code).toBe(1)
    const doc = parseJsonOut<RecordDiffJson>(r)
    expect(doc.a.source).toBe(monday)
    expect(doc.b.source).toBe(tuesday)
    expect(doc.firstDifference).toBe('compute')
    expect(doc.stages[1]!.output).toEqual([{ path: '$.available', kind: 'changed', recorded: 8, local: -2 }])
  })

  it('two bundles with --key: that key latest records (yesterday good, today same: exit 0)', async () => {
    const same = await runCli(['diff', monday, tuesday, '--key', 'sku:1', '--json'], { cwd: dir() })
    expect(same.code).toBe(0)
    const doc = parseJsonOut<RecordDiffJson>(same)
    expect(doc.a.recordId).toBe(mondayIds[7])
    expect(doc.b.recordId).toBe(tuesdayIds[0])
    expect(doc.firstDifference).toBeNull()
    const differs = await runCli(['diff', monday, tuesday, '--key', 'sku:4'], { cwd: dir() })
    expect(differs.code).toBe(1)
    expect(differs.stdout).toContain('outputs first differ at parse')
  })
})

describe('retrace diff: Date, Set, Map and BigInt', () => {
  it('names paths in the data and shows values as replay does, in text and in --json', async () => {
    const t = await makeTypedBundle(join(dir(), 'typed.sqlite'))
    const [text, json] = await Promise.all([
      runCli(['diff', `${t.path}#${t.first}`, `#${t.second}`], { cwd: dir() }),
      runCli(['diff', `${t.path}#${t.first}`, `#${t.second}`, '--json'], { cwd: dir() }),
    ])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain(
      'out ~ $.receivedAt Date(2026-01-10T12:00:00.000Z) → Date(2026-01-10T12:01:00.000Z)',
    )
    expect(text.stdout).toContain('out + $.tags[1] "vip"')
    expect(text.stdout).toContain('out ~ $.subtotalCents 2401n → 5102n')
    expect(text.stdout).not.toMatch(/\.v\b|\$t/)
    const d = parseJsonOut<RecordDiffJson>(json)
    expect(d.stages.find((s) => s.stage === 'price')!.output.map((c) => c.path)).toEqual([
      '$.orderId',
      '$.receivedAt',
      '$.tags[1]',
      '$.subtotalCents',
    ])
  })
})

describe('retrace diff: the config rules', () => {
  it('counts and labels each difference a rule hid, in text and in --json', async () => {
    const t = await makeTypedBundle(join(dir(), 'typed-rules.sqlite'))
    const config = join(dir(), 'rules.config.json')
    writeFileSync(
      config,
      JSON.stringify({
        stages: {},
        diff: { ignore: ['$.receivedAt'], tolerance: { '$.subtotalCents': 5000 } },
      }),
    )
    const args = ['diff', `${t.path}#${t.first}`, `#${t.second}`, '--config', config]
    const [text, json] = await Promise.all([
      runCli(args, { cwd: dir() }),
      runCli([...args, '--json'], { cwd: dir() }),
    ])
    expect(text.code).toBe(1)
    expect(text.stdout).not.toContain('$.receivedAt')
    expect(text.stdout).toContain('suppressed: 1 ignored, 1 within-tolerance')
    const d = parseJsonOut<RecordDiffJson>(json)
    const price = d.stages.find((s) => s.stage === 'price')!
    expect(price.output.map((c) => c.path)).toEqual(['$.orderId', '$.tags[1]'])
    expect(price.suppressed.output.map((x) => [x.path, x.reason])).toEqual([
      ['$.receivedAt', 'ignored'],
      ['$.subtotalCents', 'within-tolerance'],
    ])
  })
})

describe('retrace diff: two bundles by key', () => {
  it('tallies keys by the first stage that differs: exit 1', async () => {
    const r = await runCli(['diff', monday, tuesday, '--json'], { cwd: dir() })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<BundleDiffJson>(r)
    expect(doc).toEqual({
      keys: 8,
      same: 2,
      differing: 3,
      onlyInA: 1,
      onlyInB: 2,
      byStage: [
        {
          stage: 'compute',
          keys: 2,
          examples: [
            { key: 'sku:2', a: mondayIds[1], b: tuesdayIds[1], change: '$.available: 8 → -2' },
            { key: 'sku:5', a: mondayIds[4], b: tuesdayIds[6], change: '$.available: 5 → 0' },
          ],
        },
        {
          stage: 'parse',
          keys: 1,
          examples: [{ key: 'sku:4', a: mondayIds[3], b: tuesdayIds[3], change: '$.qty: 4 → 40' }],
        },
      ],
    })
  })

  it('the text names the stages and the keys', async () => {
    const r = await runCli(['diff', monday, tuesday], { cwd: dir() })
    expect(r.code).toBe(1)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe('8 keys: 2 same, 3 differ, 1 only in A, 2 only in B')
    expect(r.stdout).toContain('first differ at compute: 2 keys')
    expect(r.stdout).toMatch(/^first differ at parse: 1 key$/m)
    expect(r.stdout).toMatch(
      new RegExp(`^ {2}sku:2 {2}${mondayIds[1]} vs ${tuesdayIds[1]} {2}\\$\\.available: 8 → -2$`, 'm'),
    )
  })

  it('a bundle against itself: exit 0, every key the same', async () => {
    const r = await runCli(['diff', monday, monday, '--json'], { cwd: dir() })
    expect(r.code).toBe(0)
    expect(parseJsonOut<BundleDiffJson>(r)).toEqual({
      keys: 6,
      same: 6,
      differing: 0,
      onlyInA: 0,
      onlyInB: 0,
      byStage: [],
    })
  })

  it('a bundle whose file name holds # (named after a ticket) is read whole, and gives records after its name', async () => {
    const ticket = join(dir(), 'bug#4711.sqlite')
    copyFileSync(monday, ticket)
    const [whole, swapped, record, missing] = await Promise.all([
      runCli(['diff', ticket, monday, '--json'], { cwd: dir() }),
      runCli(['diff', monday, 'bug#4711.sqlite', '--json'], { cwd: dir() }),
      runCli(['diff', `${ticket}#${mondayIds[1]}`, `#${mondayIds[2]}`, '--json'], { cwd: dir() }),
      runCli(['diff', join(dir(), 'bug#9.sqlite'), monday], { cwd: dir() }),
    ])
    // Before, the name was cut at its # ("bug: no such file", exit 2).
    expect(whole.code).toBe(0)
    expect(parseJsonOut<BundleDiffJson>(whole)).toMatchObject({ keys: 6, same: 6 })
    expect(swapped.code).toBe(0)
    expect(parseJsonOut<BundleDiffJson>(swapped)).toMatchObject({ keys: 6, same: 6 })
    const d = parseJsonOut<RecordDiffJson>(record)
    expect([d.a.recordId, d.b.recordId]).toEqual([mondayIds[1], mondayIds[2]])
    expect(d.a.source).toBe(d.b.source)
    expect(d.a.source).toContain('bug#4711.sqlite')
    expect(expectUsageFailure(missing)).toBe(`retrace: ${join(dir(), 'bug#9.sqlite')}: no such file`)
  })

  it('the shipped example against itself: exit 0', async () => {
    const r = await runCli(['diff', example, example], { cwd: dir() })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^(\d+) keys: \1 same, 0 differ, 0 only in A, 0 only in B\n$/)
  })
})

describe('retrace diff: hostile recordings', () => {
  it('control characters in record ids and keys are shown, never sent to the terminal', async () => {
    const paths: string[] = []
    for (const [name, value] of [
      ['hostile-a.sqlite', 1],
      ['hostile-b.sqlite', 2],
    ] as const) {
      const path = join(dir(), name)
      paths.push(path)
      const recorder = createRecorder({
        path,
        pipeline: 'hostile',
        flushIntervalMs: 5,
        ids: () => `01HOSTILE\u001b[31m${name}\u009b2J`,
      })
      try {
        const s = recorder.stage('s', () => ({ v: value, note: '\u202eevil' }))
        await recorder.record('k\u001b]0;title\u0007', async () => {
          await s(null)
        })
      } finally {
        await recorder.close()
      }
    }
    for (const args of [paths, [`${paths[0]}#01HOSTILE`, `${paths[1]}#01HOSTILE`]]) {
      const r = await runCli(['diff', ...args], { cwd: dir() })
      expect(r.code).toBe(1)
      expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
      expect(r.stdout).toContain('01HOSTILE\\x1b[31mhostile-a.sqlite\\x9b2J')
      expect(r.stdout).toContain('01HOSTILE\\x1b[31mhostile-b.sqlite\\x9b2J')
    }
  })
})

describe('retrace diff: usage errors exit 2', () => {
  it('a record on one side only', async () => {
    const r = await runCli(['diff', monday, `#${mondayIds[0]}`], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toBe(
      'retrace: compare a record with a record: give both as BUNDLE#RECORD (or --key)',
    )
  })

  it('a record the bundle does not have', async () => {
    const r = await runCli(['diff', `${monday}#ZZZZ`, `#${mondayIds[0]}`], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toContain('ZZZZ')
  })

  it('a missing bundle', async () => {
    const r = await runCli(['diff', monday, join(dir(), 'nope.sqlite')], { cwd: dir() })
    expect(expectUsageFailure(r, 2)).toContain('no such file')
  })
})
