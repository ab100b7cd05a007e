/**
 * `retrace replay` end to end on an inventory-like pipeline recorded by the SDK: the
 * production build has a bug in `compute` (it adds the reserved count instead of taking
 * it away); the local build in the workspace has the fix. Replay must name compute as the
 * first divergence and let store and query inherit it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectUsageFailure } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  type ReplayJson,
  record,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const parseSrc = `export function parse(event) {
  return { sku: event.row.sku, onHand: event.row.on_hand, reserved: event.row.reserved }
}
`
const computeFixed = `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const computeBuggy = `export function compute(row) {
  return { sku: row.sku, available: row.onHand + row.reserved }
}
`
// The store reads the previous version and writes; the write fails once for keys in
// globalThis.failWrites (a flaky database), and the caller retries.
const storeSrc = `export async function store(item, ctx) {
  const prev = await ctx.effect('kv.get', { key: item.sku }, async () => ({ version: 7 }))
  await ctx.effect('db.write', { key: item.sku }, async () => {
    const flaky = globalThis.failWrites
    if (flaky && flaky.delete(item.sku)) {
      const err = new Error('connection reset by peer')
      err.code = 'ECONNRESET'
      throw err
    }
    return 'ok'
  })
  return { ...item, version: prev.version + 1 }
}
`
const querySrc = `export function query(item) {
  return { sku: item.sku, display: item.available + ' in stock' }
}
`
const stageMap = (stages: Record<string, string>): string =>
  `export default { stages: ${JSON.stringify(stages)} }\n`
const allStages = {
  parse: './stages/parse.mjs#parse',
  compute: './stages/compute.mjs#compute',
  store: './stages/store.mjs#store',
  query: './stages/query.mjs#query',
}

const event = (sku: string, onHand: number, reserved: number) => ({
  table: 'inventory',
  row: { sku, on_hand: onHand, reserved },
})

let ws: Workspace
let bundle: string
/** Record ids: the planted bug, a record it does not affect, and one with a retried write. */
const ids = { bad: '', good: '', retried: '' }

beforeAll(async () => {
  ws = workspace()
  ws.write('stages/parse.mjs', parseSrc)
  ws.write('stages/compute.mjs', computeFixed)
  ws.write('stages/store.mjs', storeSrc)
  ws.write('stages/query.mjs', querySrc)
  ws.write('prod/compute.mjs', computeBuggy)
  ws.write('retrace.config.mjs', stageMap(allStages))
  // The same pipeline with `store` left out of the config.
  const { store: _store, ...withoutStore } = allStages
  ws.write('partial.config.mjs', stageMap(withoutStore))

  const parse = await importStage(ws.path('stages/parse.mjs'), 'parse')
  const compute = await importStage(ws.path('prod/compute.mjs'), 'compute')
  const store = await importStage(ws.path('stages/store.mjs'), 'store')
  const query = await importStage(ws.path('stages/query.mjs'), 'query')
  const chain = [
    ['parse', parse],
    ['compute', compute],
    ['store', store],
    ['query', query],
  ] as const
  bundle = ws.path('prod.sqlite')
  const failWrites = new Set(['sku:3003'])
  ;(globalThis as { failWrites?: Set<string> }).failWrites = failWrites
  try {
    await record(bundle, async (recorder) => {
      const bad = await runChain(recorder, 'sku:1001', event('sku:1001', 46, 41), chain)
      expect(bad.output).toEqual({ sku: 'sku:1001', display: '87 in stock' })
      ids.bad = bad.recordId
      // With nothing reserved the bug does not show: production and local agree.
      const good = await runChain(recorder, 'sku:2002', event('sku:2002', 5, 0), chain)
      expect(good.output).toEqual({ sku: 'sku:2002', display: '5 in stock' })
      ids.good = good.recordId
      // The first write fails and production retries the store stage.
      const [p, c, s, q] = chain.map(([name, fn]) => recorder.stage(name, fn))
      await recorder.record('sku:3003', async () => {
        ids.retried = recorder.current()!.recordId
        const computed = await c!(await p!(event('sku:3003', 9, 0)))
        let stored: unknown
        try {
          stored = await s!(computed)
        } catch {
          stored = await s!(computed)
        }
        return q!(stored)
      })
    })
  } finally {
    delete (globalThis as { failWrites?: Set<string> }).failWrites
  }
  expect(failWrites.size).toBe(0)
})

afterAll(() => ws?.remove())

const replay = (...args: string[]): Promise<CliResult> => runCli(['replay', ...args], ws.dir)

function recordOf(doc: ReplayJson, id: string): ReplayJson['records'][number] {
  const r = doc.records.find((x) => x.recordId === id)
  if (r === undefined) throw new Error(`record ${id} not in the replay output`)
  return r
}

/** Checks a --json document against the published contract, field by field. */
function expectContract(doc: ReplayJson): void {
  expect(Object.keys(doc)).toEqual(expect.arrayContaining(['records', 'summary']))
  expect(doc.summary).toEqual({
    records: expect.any(Number),
    matched: expect.any(Number),
    diverged: expect.any(Number),
    errors: expect.any(Number),
  })
  expect(doc.summary.records).toBe(doc.records.length)
  expect(doc.summary.matched + doc.summary.diverged + doc.summary.errors).toBe(doc.summary.records)
  for (const r of doc.records) {
    expect(typeof r.recordId).toBe('string')
    expect(typeof r.key).toBe('string')
    expect(['matched', 'diverged', 'error']).toContain(r.verdict)
    if (r.firstDivergence === null) expect(r.verdict).toBe('matched')
    else {
      expect(r.firstDivergence).toEqual({ stage: expect.any(String), status: r.verdict })
      expect(r.stages.map((s) => s.stage)).toContain(r.firstDivergence.stage)
    }
    expect(Array.isArray(r.stages)).toBe(true)
    for (const s of r.stages) {
      expect(typeof s.stage).toBe('string')
      expect(['matched', 'diverged', 'inherited', 'error', 'skipped']).toContain(s.status)
      expect(Array.isArray(s.changes)).toBe(true)
      for (const c of s.changes) {
        expect(typeof c.path).toBe('string')
        expect(['added', 'removed', 'changed']).toContain(c.kind)
        if (c.kind !== 'added') expect(c).toHaveProperty('recorded')
        if (c.kind !== 'removed') expect(c).toHaveProperty('local')
      }
      expect(Array.isArray(s.suppressed)).toBe(true)
      for (const x of s.suppressed)
        expect(x).toMatchObject({ path: expect.any(String), reason: expect.any(String) })
      if (s.error !== null)
        expect(s.error).toMatchObject({ message: expect.any(String), code: expect.any(String) })
    }
  }
}

describe('cascade (the default mode)', () => {
  it('names compute as the first divergence and store, query as inheriting it (human output)', async () => {
    const r = await replay(bundle)
    expect(r.code).toBe(1)
    const lines = r.stdout.split('\n')
    expect(r.stdout).toContain(`record ${ids.bad}  key sku:1001  diverged at compute`)
    expect(lines.find((l) => /^\s+2 compute\b/.test(l))).toMatch(/✗ diverged/)
    expect(lines.find((l) => /^\s+3 store\b/.test(l))).toMatch(/↳ inherited from compute/)
    expect(lines.find((l) => /^\s+4 query\b/.test(l))).toMatch(/↳ inherited from compute/)
    expect(r.stdout).toContain('~ $.available 87 → 5')
    expect(r.stdout).toMatch(
      /first divergence: compute \(diverged\): production recorded 87 at \$\.available, the local build gives 5; store, query inherit it/,
    )
    expect(r.stdout).toContain('3 records replayed, 2 matched, 1 diverged, 0 errors')
    // A matched record gets one line, not its stages.
    expect(lines.filter((l) => l.includes(ids.good))).toEqual([
      expect.stringMatching(/record \S+ {2}key sku:2002 {2}matched$/),
    ])
    expect(r.stderr).not.toMatch(/retrace: /)
  })

  it('--json matches the contract exactly', async () => {
    const r = await replay(bundle, '--json')
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseReplayJson(r)
    expectContract(doc)
    expect(doc.summary).toEqual({ records: 3, matched: 2, diverged: 1, errors: 0 })
    const bad = recordOf(doc, ids.bad)
    expect(bad).toMatchObject({
      recordId: ids.bad,
      key: 'sku:1001',
      verdict: 'diverged',
      firstDivergence: { stage: 'compute', status: 'diverged' },
    })
    expect(
      bad.stages.map(({ stage, status, changes, suppressed, error }) => ({
        stage,
        status,
        changes,
        suppressed,
        error,
      })),
    ).toEqual([
      { stage: 'parse', status: 'matched', changes: [], suppressed: [], error: null },
      {
        stage: 'compute',
        status: 'diverged',
        changes: [{ path: '$.available', kind: 'changed', recorded: 87, local: 5 }],
        suppressed: [],
        error: null,
      },
      {
        stage: 'store',
        status: 'inherited',
        changes: [{ path: '$.available', kind: 'changed', recorded: 87, local: 5 }],
        suppressed: [],
        error: null,
      },
      {
        stage: 'query',
        status: 'inherited',
        changes: [{ path: '$.display', kind: 'changed', recorded: '87 in stock', local: '5 in stock' }],
        suppressed: [],
        error: null,
      },
    ])
    const good = recordOf(doc, ids.good)
    expect(good).toMatchObject({ key: 'sku:2002', verdict: 'matched', firstDivergence: null })
    expect(Object.values(statuses(good))).toEqual(['matched', 'matched', 'matched', 'matched'])
  })

  it('counts a retried stage whose first attempt threw the production error as matched', async () => {
    const r = await replay(bundle, ids.retried, '--json')
    expect(r.code).toBe(0)
    const rec = recordOf(parseReplayJson(r), ids.retried)
    expect(rec.verdict).toBe('matched')
    const store = rec.stages.find((s) => s.stage === 'store')!
    expect(store.status).toBe('matched')
    expect(store.error).toBeNull()
    const attempts = store.attempts as { attempt: number; status: string }[]
    expect(attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 'matched'],
      [2, 'matched'],
    ])
  })

  it('exits 0 when every selected record matches (by id, and by --key)', async () => {
    const byId = await replay(bundle, ids.good)
    expect(byId.code).toBe(0)
    expect(byId.stdout).toContain('1 record replayed, 1 matched, 0 diverged, 0 errors')
    const byKey = await replay(bundle, '--key', 'sku:2002', '--json')
    expect(byKey.code).toBe(0)
    const doc = parseReplayJson(byKey)
    expect(doc.records.map((x) => x.recordId)).toEqual([ids.good])
    expect(doc.summary).toEqual({ records: 1, matched: 1, diverged: 0, errors: 0 })
  })

  it('accepts a unique prefix of a record id', async () => {
    // Long enough to differ from both other records (ids made in one millisecond share most
    // of their characters): the first place each differs, whichever comes later, plus one.
    const firstDiff = (other: string): number => [...ids.bad].findIndex((ch, i) => ch !== other[i])
    const prefixLen = Math.max(firstDiff(ids.good), firstDiff(ids.retried)) + 1
    const r = await replay(bundle, ids.bad.slice(0, Math.max(prefixLen, 6)), '--json')
    expect(parseReplayJson(r).records.map((x) => x.recordId)).toEqual([ids.bad])
  })
})

describe('--mode isolated', () => {
  it('pinpoints compute with every downstream stage matched', async () => {
    const r = await replay(bundle, ids.bad, '--mode', 'isolated', '--json')
    expect(r.code).toBe(1)
    const rec = recordOf(parseReplayJson(r), ids.bad)
    expect(rec.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
    expect(statuses(rec)).toEqual({
      parse: 'matched',
      compute: 'diverged',
      store: 'matched',
      query: 'matched',
    })
    expect(rec.stages.find((s) => s.stage === 'compute')!.changes).toEqual([
      { path: '$.available', kind: 'changed', recorded: 87, local: 5 },
    ])
  })

  it('names the stage in human output without any inherited stage', async () => {
    const r = await replay(bundle, ids.bad, '--mode', 'isolated')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('first divergence: compute (diverged)')
    expect(r.stdout).not.toContain('inherited')
  })
})

describe('--splice and --stage', () => {
  it('--splice compute uses the recorded output, so downstream matches production', async () => {
    const r = await replay(bundle, ids.bad, '--splice', 'compute', '--json')
    expect(r.code).toBe(0)
    const rec = recordOf(parseReplayJson(r), ids.bad)
    expect(rec.verdict).toBe('matched')
    expect(statuses(rec)).toEqual({
      parse: 'matched',
      compute: 'skipped',
      store: 'matched',
      query: 'matched',
    })
    expect(rec.stages.find((s) => s.stage === 'compute')!.reason).toMatch(/spliced/)
  })

  it('--splice takes one stage per flag, before or after the bundle', async () => {
    const r = await replay('--splice', 'compute', '--splice', 'store', bundle, ids.bad, '--json')
    expect(r.code).toBe(0)
    const rec = recordOf(parseReplayJson(r), ids.bad)
    expect(statuses(rec)).toEqual({
      parse: 'matched',
      compute: 'skipped',
      store: 'skipped',
      query: 'matched',
    })
  })

  it('--splice parse still runs compute (and finds the bug)', async () => {
    const r = await replay(bundle, ids.bad, '--splice', 'parse', '--json')
    expect(r.code).toBe(1)
    expect(recordOf(parseReplayJson(r), ids.bad).firstDivergence).toEqual({
      stage: 'compute',
      status: 'diverged',
    })
  })

  it('--stage compute replays only compute', async () => {
    const r = await replay(bundle, ids.bad, '--stage', 'compute', '--json')
    expect(r.code).toBe(1)
    const rec = recordOf(parseReplayJson(r), ids.bad)
    expect(statuses(rec)).toEqual({
      parse: 'skipped',
      compute: 'diverged',
      store: 'skipped',
      query: 'skipped',
    })
    expect(rec.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
  })

  it('--stage store on its recorded input matches, even on the bad record', async () => {
    const r = await replay(bundle, '--stage', 'store', '--json')
    expect(r.code).toBe(0)
    const doc = parseReplayJson(r)
    expect(doc.summary).toEqual({ records: 3, matched: 3, diverged: 0, errors: 0 })
    expect(statuses(recordOf(doc, ids.bad))).toEqual({
      parse: 'skipped',
      compute: 'skipped',
      store: 'matched',
      query: 'skipped',
    })
  })

  it('refuses --stage or --splice naming a stage the config does not have (exit 2)', async () => {
    const stage = await replay(bundle, '--stage', 'compte')
    expect(stage.code).toBe(2)
    expect(stage.stderr).toMatch(/compte/)
    expect(stage.stderr).toMatch(/parse, compute, store, query/)
    const splice = await replay(bundle, '--splice', 'nope', '--json')
    expect(splice.code).toBe(2)
    expect(JSON.parse(splice.stdout)).toEqual({
      error: { code: 'E_USAGE', message: expect.stringMatching(/nope/) },
    })
  })
})

describe('a stage in the recording but not in the config', () => {
  it('is reported and its recorded output used, not a crash', async () => {
    const r = await replay(bundle, ids.bad, '--config', 'partial.config.mjs')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/stages in the recording but not in the config \(recorded output used\): store/)
    expect(r.stdout).toMatch(/3 store\s+· skipped/)
    expect(r.stdout).toContain('not in the config')
    expect(r.stdout).toContain('first divergence: compute (diverged)')
  })

  it('is named in --json as skipped, with the missing stage listed', async () => {
    const r = await replay(bundle, ids.bad, '--config', 'partial.config.mjs', '--json')
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseReplayJson(r)
    expectContract(doc)
    const store = recordOf(doc, ids.bad).stages.find((s) => s.stage === 'store')!
    expect(store.status).toBe('skipped')
    expect(store.reason).toMatch(/not in the config/)
    expect(doc.missingStages).toEqual(['store'])
  })
})

describe('exit codes for input and config problems', () => {
  // One line on stderr starting `retrace: `, no stack trace, nothing on stdout.
  const noStack = (r: CliResult): void => {
    expectUsageFailure(r, r.code ?? -1)
  }

  it('2 for a missing bundle', async () => {
    const r = await replay(ws.path('nope.sqlite'))
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('nope.sqlite')
    noStack(r)
  })

  it('2 for a file that is not a bundle', async () => {
    const r = await replay(ws.path('retrace.config.mjs'))
    expect(r.code).toBe(2)
    noStack(r)
  })

  it('2 for a bad flag or a bad flag value', async () => {
    const unknown = await replay(bundle, '--bogus')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('--bogus')
    const mode = await replay(bundle, '--mode', 'sideways')
    expect(mode.code).toBe(2)
    expect(mode.stderr).toContain('sideways')
    noStack(mode)
  })

  it('2 for a record that is not in the bundle, with --json still one JSON document', async () => {
    const human = await replay(bundle, 'ZZZZZZ')
    expect(human.code).toBe(2)
    expect(human.stderr).toContain('no record "ZZZZZZ"')
    const json = await replay(bundle, 'ZZZZZZ', '--json')
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'E_RECORD_NOT_FOUND', message: expect.stringContaining('ZZZZZZ') },
    })
  })

  it('2 for an unknown record after a known one, with --json still one JSON document', async () => {
    const json = await replay(bundle, ids.good, 'ZZZZZZ', '--json')
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'E_RECORD_NOT_FOUND' } })
  })

  it('2 for a --key no record has (a typo is not a run of nothing), in one process or several', async () => {
    for (const extra of [[], ['--workers', '2']]) {
      const human = await replay(bundle, '--key', 'sku:100l', ...extra)
      expect(human.code).toBe(2)
      expect(human.stdout).toBe('')
      expect(human.stderr).toBe(`retrace: no record with key "sku:100l" in ${bundle}\n`)
      const json = await replay(bundle, '--key', 'sku:100l', '--json', ...extra)
      expect(json.code).toBe(2)
      expect(JSON.parse(json.stdout)).toEqual({
        error: { code: 'E_RECORD_NOT_FOUND', message: `no record with key "sku:100l" in ${bundle}` },
      })
    }
  })

  it('2 for a --where no record matches, naming the predicate and the bundle, in one process or several', async () => {
    for (const extra of [[], ['--workers', '2']]) {
      const human = await replay(bundle, '--where', 'compute.available = 12345', ...extra)
      expect(human.code).toBe(2)
      expect(human.stdout).toBe('')
      expect(human.stderr).toBe(`retrace: no record where compute.available = 12345 in ${bundle}\n`)
      const json = await replay(bundle, '--where', 'compute.available = 12345', '--json', ...extra)
      expect(json.code).toBe(2)
      expect(JSON.parse(json.stdout)).toEqual({
        error: {
          code: 'E_RECORD_NOT_FOUND',
          message: `no record where compute.available = 12345 in ${bundle}`,
        },
      })
    }
    // The same predicate matching a record replays it.
    const hit = await replay(bundle, '--where', `compute.sku = 'sku:2002'`, '--json')
    expect(hit.code).toBe(0)
    expect(parseReplayJson(hit).records.map((r) => r.recordId)).toEqual([ids.good])
  })

  it('--key with --where replays the records of that key the predicate matches', async () => {
    // The predicate alone matches every key; the key narrows it to one.
    const both = await replay(bundle, '--where', 'compute.sku contains sku', '--json')
    expect(new Set(parseReplayJson(both).records.map((r) => r.key))).toEqual(
      new Set(['sku:1001', 'sku:2002', 'sku:3003']),
    )
    const one = await replay(bundle, '--where', 'compute.sku contains sku', '--key', 'sku:2002', '--json')
    expect(one.code).toBe(0)
    expect(parseReplayJson(one).records.map((r) => r.recordId)).toEqual([ids.good])
    // A key the predicate matches no record of is an input error, naming both.
    const none = await replay(bundle, '--where', `compute.sku = 'sku:1001'`, '--key', 'sku:2002')
    expect(none.code).toBe(2)
    expect(none.stderr).toBe(
      `retrace: no record of key sku:2002 where compute.sku = 'sku:1001' in ${bundle}\n`,
    )
    const unknown = await replay(bundle, '--where', 'compute.sku contains sku', '--key', 'sku:none')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('no record with key "sku:none"')
  })

  it('2 for records named and selected at once: which was meant cannot be told', async () => {
    for (const flags of [
      ['--key', 'sku:1001'],
      ['--where', 'compute.available = 4'],
    ]) {
      const r = await replay(bundle, ids.good, ...flags)
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toBe(`retrace: name records or select them with ${flags[0]}, not both\n`)
    }
  })

  it('2 for a missing bundle argument, in one line without advice that does not apply', async () => {
    const r = await replay()
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      'retrace: Missing 1 required arg: bundle  Bundle files (.sqlite) or folders of them, read as one.\n',
    )
  })

  it('2 for --stage and --splice naming the same stage (nothing would be compared)', async () => {
    const r = await replay(bundle, '--stage', 'compute', '--splice', 'compute')
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(
      'retrace: --stage "compute" and --splice "compute" together replay nothing: use one of them\n',
    )
  })

  it('2 for an unreadable --where, with --json still one JSON document', async () => {
    const r = await replay(bundle, '--where', '((', '--json')
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'E_USAGE', message: expect.stringContaining('--where') },
    })
  })

  it('3 when no config is found, naming the fix', async () => {
    const empty = workspace()
    try {
      const r = await runCli(['replay', bundle], empty.dir)
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/no retrace\.config\.\{ts,mts,js,mjs,json,cjs,cts\}.*--config/)
      noStack(r)
      const json = await runCli(['replay', bundle, '--json'], empty.dir)
      expect(json.code).toBe(3)
      expect(JSON.parse(json.stdout)).toEqual({
        error: { code: 'E_CONFIG_MISSING', message: expect.any(String) },
      })
    } finally {
      empty.remove()
    }
  })

  it('finds the config upward from a subdirectory', async () => {
    ws.write('deep/inside/.keep', '')
    const r = await runCli(['replay', bundle, ids.good], ws.path('deep/inside'))
    expect(r.code).toBe(0)
  })

  it('3 when a stage module lacks the export, naming what it does export', async () => {
    ws.write('bad-export.config.mjs', stageMap({ ...allStages, compute: './stages/compute.mjs#computeAll' }))
    const r = await replay(bundle, '--config', 'bad-export.config.mjs')
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /stage compute: .*compute\.mjs has no function export "computeAll" \(it exports compute\)/,
    )
    noStack(r)
  })

  it('3 when the config names a class, naming the functions the module exports', async () => {
    ws.write(
      'stages/checks.cjs',
      'class Checks { static compute(row) { return row } }\nmodule.exports = Checks\nmodule.exports.computeAll = (row) => row\n',
    )
    ws.write('class.config.mjs', stageMap({ ...allStages, compute: './stages/checks.cjs' }))
    const r = await replay(bundle, '--config', 'class.config.mjs')
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /stage compute: export "default" of \S*checks\.cjs is a class, not a stage function; name a function \(input, ctx\) => output \(it exports computeAll\)\n$/,
    )
    noStack(r)
    const json = await replay(bundle, '--config', 'class.config.mjs', '--json')
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'E_STAGE_EXPORT', message: expect.stringContaining('is a class') },
    })
  })

  it('3 when a stage module has a syntax error', async () => {
    ws.write('stages/broken.mjs', 'export function compute(row {\n  return row\n}\n')
    ws.write('broken.config.mjs', stageMap({ ...allStages, compute: './stages/broken.mjs#compute' }))
    const r = await replay(bundle, '--config', 'broken.config.mjs')
    expect(r.code).toBe(3)
    // With the line of the error: node's own loader keeps it out of the error it throws.
    expect(r.stderr).toMatch(/stage compute: cannot load \S*broken\.mjs: [^\n]+ \(line 1\)\n/)
    noStack(r)
  })

  it('3 when a stage module does not exist', async () => {
    ws.write('missing.config.mjs', stageMap({ ...allStages, query: './stages/gone.mjs#query' }))
    const r = await replay(bundle, '--config', 'missing.config.mjs', '--json')
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'E_STAGE_MISSING', message: expect.stringContaining('gone.mjs') },
    })
  })

  it('3, not an internal error, when --config names a file that does not exist', async () => {
    const r = await replay(bundle, '--config', 'no-such.config.mjs')
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(`retrace: config ${ws.path('no-such.config.mjs')} does not exist\n`)
  })

  it('--config naming a folder loads the config in it, in the order the upward search takes names', async () => {
    const inFolder = Object.fromEntries(
      Object.entries(allStages).map(([k, v]) => [k, v.replace('./', '../')]),
    )
    ws.write('config-folder/retrace.config.mjs', stageMap(inFolder))
    // Later in the order: never read while the .mjs is there (it would not load).
    ws.write('config-folder/retrace.config.json', '{"stages": ')
    const [plain, slash] = await Promise.all([
      replay(bundle, ids.good, '--config', 'config-folder'),
      replay(bundle, ids.good, '--config', `${ws.path('config-folder')}/`),
    ])
    expect([plain.code, slash.code]).toEqual([0, 0])
    expect(plain.stderr).toContain('through the local build in config-folder/retrace.config.mjs')
  })

  it('finds a CommonJS config (.cjs, .cts) upward, after the other names, and by --config', async () => {
    const inFolder = Object.fromEntries(
      Object.entries(allStages).map(([k, v]) => [k, v.replace('./', '../')]),
    )
    const body = `module.exports = { stages: ${JSON.stringify(inFolder)} }\n`
    ws.write('cjs-config/retrace.config.cjs', body)
    ws.write('cjs-config/deep/.keep', '')
    ws.write(
      'cts-config/retrace.config.cts',
      `const stages: Record<string, string> = ${JSON.stringify(inFolder)}\nmodule.exports = { stages }\n`,
    )
    ws.write('cts-config/deep/.keep', '')
    // Earlier in the order: a folder holding both keeps the config it had.
    ws.write('both-config/retrace.config.json', JSON.stringify({ stages: inFolder }))
    ws.write('both-config/retrace.config.cjs', 'module.exports = {\n')
    ws.write('both-config/deep/.keep', '')
    const found = await Promise.all(
      ['cjs-config', 'cts-config', 'both-config'].map((dir) =>
        runCli(['replay', bundle, ids.good], ws.path(`${dir}/deep`)),
      ),
    )
    expect(found.map((r) => r.code)).toEqual([0, 0, 0])
    expect(found[0]!.stderr).toContain('through the local build in ../retrace.config.cjs')
    expect(found[1]!.stderr).toContain('through the local build in ../retrace.config.cts')
    expect(found[2]!.stderr).toContain('through the local build in ../retrace.config.json')
    const named = await Promise.all([
      replay(bundle, ids.good, '--config', 'cjs-config/retrace.config.cjs'),
      replay(bundle, ids.good, '--config', 'cts-config'),
    ])
    expect(named.map((r) => r.code)).toEqual([0, 0])
    expect(named[1]!.stderr).toContain('through the local build in cts-config/retrace.config.cts')
  })

  it('3 and one line when --config names a folder with no config in it', async () => {
    ws.write('no-config-here/readme.txt', 'nothing')
    const r = await replay(bundle, '--config', 'no-config-here')
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(
      `retrace: no retrace.config.{ts,mts,js,mjs,json,cjs,cts} in ${ws.path('no-config-here')}, the folder --config names\n`,
    )
    expect(r.stdout).toBe('')
  })

  it('3 when the config itself does not load', async () => {
    ws.write('broken-config/retrace.config.json', '{"stages": {"parse": ')
    const r = await runCli(['replay', bundle], ws.path('broken-config'))
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/cannot load config .*retrace\.config\.json/)
    noStack(r)
  })

  it('3, with one line, when reading the config throws (a Proxy)', async () => {
    ws.write(
      'proxy-config/retrace.config.mjs',
      'export default new Proxy({}, { get() { throw new Error("no such setting") } })\n',
    )
    const r = await runCli(['replay', bundle], ws.path('proxy-config'))
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(
      `retrace: ${ws.path('proxy-config/retrace.config.mjs')}: reading the config threw: no such setting\n`,
    )
  })

  it('3, with one line, when the config awaits something that never settles as it loads', async () => {
    ws.write('hung-config/retrace.config.mjs', 'export default { stages: {} }\nawait new Promise(() => {})\n')
    const r = await runCli(['replay', bundle], ws.path('hung-config'))
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(
      `retrace: cannot load config ${ws.path('hung-config/retrace.config.mjs')}: it never finished loading: its top-level code awaits something that can never settle\n`,
    )
  })
})
