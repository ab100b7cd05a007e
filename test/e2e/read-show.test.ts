/** `retrace show` as a user runs it, on bundles the recorder made in a temp dir. */
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  expectUsageFailure,
  makeSampleBundle,
  makeTypedBundle,
  parseJsonOut,
  recordPayloads,
  runCli,
  SAMPLE_T0,
  type SampleBundle,
  sharedTempDir,
  type TypedBundle,
} from '../helpers/cli.js'

interface SceneError {
  name: string
  message: string
  code?: string | number
}
interface SceneJson {
  recordId: string
  key: string
  status: string
  error?: SceneError
  startedAt: number
  endedAt: number | null
  build: string | null
  host: string | null
  pid: number | null
  source: string
  stages: string[]
  retries: number
  captures: {
    seq: number
    stage: string
    attempt: number
    status: string
    durationMs: number
    build: string | null
    input: unknown
    output?: unknown
    error?: SceneError
    effects: { seq: number; kind: string; name: string; args?: unknown; result?: unknown }[]
    transform: { changes: { path: string; kind: string; recorded?: unknown; local?: unknown }[] } | null
    final: boolean
  }[]
  seams: {
    from: string
    to: string
    matches: boolean
    diff: { changes: { path: string; kind: string; recorded?: unknown; local?: unknown }[] }
  }[]
}

const dir = sharedTempDir('retrace-e2e-show-')
let sample: SampleBundle
let bigPath: string
let bigId: string
let passPath: string
let typed: TypedBundle

/** The longest prefix every id shares. */
function commonPrefix(ids: readonly string[]): string {
  let p = ids[0] ?? ''
  for (const id of ids) while (!id.startsWith(p)) p = p.slice(0, -1)
  return p
}

beforeAll(async () => {
  sample = await makeSampleBundle(join(dir(), 'sample.sqlite'))
  expect(sample.recorderErrors).toEqual([])
  const items = Array.from({ length: 300 }, (_, i) => ({ sku: `item-${i}`, qty: i }))
  bigPath = join(dir(), 'big.sqlite')
  bigId = await recordPayloads(bigPath, 'sku:big', [
    { name: 'load', output: { items } },
    { name: 'sum', output: { items, total: 44_850 } },
  ])
  // Stages that hand on exactly what they produced: every seam matches.
  passPath = join(dir(), 'pass.sqlite')
  await recordPayloads(passPath, 'sku:pass', [
    { name: 'one', output: { n: 1 } },
    { name: 'two', output: { n: 2 } },
    { name: 'three', output: { n: 3 } },
  ])
  typed = await makeTypedBundle(join(dir(), 'typed.sqlite'))
})

describe('retrace show', () => {
  it('shows the scene stage by stage: payloads, effects, the retry with its error, the seam', async () => {
    const rec = sample.records[1]!
    const r = await runCli(['show', sample.path, rec.id])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = r.stdout
    expect(out).toContain(`record ${rec.id}  key sku:2002  ok  2026-01-10 12:01:00.000Z`)
    expect(out).toContain(
      '3 stages (parse → price → store), 1 retry · build build-abc123 · host test-host · pid 4242',
    )
    // parse: input and output, and what it changed.
    expect(out).toContain('in  "sku:2002|2"')
    expect(out).toContain('out {"sku":"sku:2002","qty":2,"note":"order 1"}')
    // The failed first attempt with its error, then the retry that fed downstream.
    expect(out).toMatch(/ 2 price error [^\n]* superseded by a later attempt\n/)
    expect(out).toContain('threw TransientError [ETIMEDOUT]: kv timeout while pricing')
    expect(out).toMatch(/ 2 price attempt 2 \(retry\) ok /)
    // Effects each stage saw.
    expect(out).toContain('#0 kv.get({"key":"price:sku:2002"}) → 251')
    expect(out).toContain(`#0 now() → ${SAMPLE_T0 + 60_000}`)
    expect(out).toContain('#1 db.put({"sku":"sku:2002","qty":2}) → 8')
    // What price changed, and the seam where the pipeline added a field in transit.
    expect(out).toMatch(/^\s+\+ .*\btotal\b/m)
    expect(out).toContain('seam price → store: the data changed in transit')
    expect(out).toMatch(/seam price → store: the data changed in transit\n\s+\+ \$\.channel "web"\n/)
    expect(out.trimEnd().split('\n').at(-1)).toBe('seams: 1 of 2 hand-offs changed in transit')
    // The seam is printed after the attempt that fed store, not after the failed one.
    expect(out.indexOf('seam price → store')).toBeGreaterThan(out.indexOf('attempt 2 (retry)'))
  })

  it('--json gives the same scene as one document', async () => {
    const rec = sample.records[1]!
    const r = await runCli(['show', sample.path, rec.id, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const scene = parseJsonOut<SceneJson>(r)
    expect(scene).toMatchObject({
      recordId: rec.id,
      key: 'sku:2002',
      status: 'ok',
      startedAt: SAMPLE_T0 + 60_000,
      build: 'build-abc123',
      host: 'test-host',
      pid: 4242,
      source: sample.path,
      stages: ['parse', 'price', 'store'],
      retries: 1,
    })
    expect(scene.error).toBeUndefined()
    expect(scene.captures.map((c) => [c.stage, c.attempt, c.status, c.final])).toEqual([
      ['parse', 1, 'ok', true],
      ['price', 1, 'error', false],
      ['price', 2, 'ok', true],
      ['store', 1, 'ok', true],
    ])
    const [parse, failed, retried, store] = scene.captures
    expect(parse!.input).toBe('sku:2002|2')
    expect(parse!.output).toEqual({ sku: 'sku:2002', qty: 2, note: 'order 1' })
    expect(failed!.error).toEqual(
      expect.objectContaining({
        name: 'TransientError',
        message: 'kv timeout while pricing',
        code: 'ETIMEDOUT',
      }),
    )
    expect(failed!).not.toHaveProperty('output')
    expect(failed!.transform).toBeNull()
    expect(retried!.effects).toEqual([
      { seq: 0, kind: 'effect', name: 'kv.get', args: { key: 'price:sku:2002' }, result: 251 },
    ])
    expect(retried!.transform!.changes).toEqual([
      { path: '$.unit', kind: 'added', local: 251 },
      { path: '$.total', kind: 'added', local: 502 },
      { path: '$.tags', kind: 'added', local: ['priced'] },
    ])
    expect(store!.effects.map((e) => [e.kind, e.name, e.result])).toEqual([
      ['now', 'now', SAMPLE_T0 + 60_000],
      ['effect', 'db.put', 8],
    ])
    expect(store!.output).toMatchObject({ available: 8, channel: 'web' })
    expect(scene.seams.map((s) => [s.from, s.to, s.matches])).toEqual([
      ['parse', 'price', true],
      ['price', 'store', false],
    ])
    expect(scene.seams[1]!.diff.changes).toEqual([{ path: '$.channel', kind: 'added', local: 'web' }])
  })

  it('names a record by a unique id prefix', async () => {
    const rec = sample.records[2]!
    const r = await runCli(['show', sample.path, rec.id.slice(0, 12), '--json'])
    expect(r.code).toBe(0)
    expect(parseJsonOut<SceneJson>(r).recordId).toBe(rec.id)
  })

  it('--key picks the latest record of the key', async () => {
    const [human, json] = await Promise.all([
      runCli(['show', sample.path, '--key', 'sku:1001']),
      runCli(['show', sample.path, '-k', 'sku:1001', '--json']),
    ])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(`record ${sample.records[4]!.id}  key sku:1001`)
    expect(parseJsonOut<SceneJson>(json).recordId).toBe(sample.records[4]!.id)
  })

  it('shows a failed record with the error that ended it', async () => {
    const rec = sample.records[3]!
    const [human, json] = await Promise.all([
      runCli(['show', sample.path, rec.id]),
      runCli(['show', sample.path, rec.id, '--json']),
    ])
    // Showing a failed record is a success: the scene was read.
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(`record ${rec.id}  key sku:3003  error`)
    expect(human.stdout).toContain('record failed: Error: db rejected sku:3003: constraint failed')
    expect(human.stdout).toMatch(/ 3 store error [^\n]*\n(?:.*\n)*?\s+threw Error: db rejected sku:3003/)
    const scene = parseJsonOut<SceneJson>(json)
    expect(scene.status).toBe('error')
    expect(scene.error).toMatchObject({ name: 'Error', message: 'db rejected sku:3003: constraint failed' })
    expect(scene.captures.at(-1)).toMatchObject({ stage: 'store', status: 'error' })
  })

  it('says when every seam lines up', async () => {
    const r = await runCli(['show', passPath, '--key', 'sku:pass'])
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('changed in transit')
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('seams: all 2 hand-offs match')
  })

  it('folds large payloads to the width; --expand prints them in full', async () => {
    const [folded, narrow, expanded] = await Promise.all([
      runCli(['show', bigPath, bigId]),
      runCli(['show', bigPath, bigId, '--width', '40']),
      runCli(['show', bigPath, bigId, '--expand']),
    ])
    for (const r of [folded, narrow, expanded]) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }
    const outLine = (text: string): string => text.split('\n').find((l) => l.trimStart().startsWith('out '))!
    expect(outLine(folded.stdout).endsWith('…')).toBe(true)
    expect(outLine(folded.stdout).trimStart().length).toBeLessThanOrEqual(4 + 120)
    expect(outLine(narrow.stdout).trimStart().length).toBeLessThanOrEqual(4 + 40)
    expect(folded.stdout).not.toContain('item-299')
    expect(folded.stdout.split('\n').length).toBeLessThan(40)

    expect(expanded.stdout).toContain('"sku": "item-299"')
    expect(expanded.stdout).toContain('"total": 44850')
    expect(expanded.stdout.split('\n').length).toBeGreaterThan(300)
    expect(outLine(expanded.stdout).trim()).toBe('out {')
  })

  it('--expand prints a payload of 150,000 lines', async () => {
    // One line per item: past ~120,000 lines, adding them as the arguments of one call
    // overflowed the stack (exit 5).
    const zeros = join(dir(), 'zeros.sqlite')
    const id = await recordPayloads(zeros, 'k:zeros', [{ name: 'load', output: new Array(150_000).fill(0) }])
    const r = await runCli(['show', zeros, id, '--expand'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.split('\n').length).toBeGreaterThan(150_000)
  })

  it('an ambiguous prefix is a usage error that lists the candidates', async () => {
    const prefix = commonPrefix(sample.records.map((r) => r.id))
    expect(prefix.length).toBeGreaterThanOrEqual(4)
    const line = expectUsageFailure(await runCli(['show', sample.path, prefix]))
    expect(line).toMatch(/^retrace: record prefix "[0-9A-Z]+" is ambiguous in /)
    expect(line).toContain(sample.records[0]!.id)
  })

  it('an unknown record, an unknown key, or no record named at all exit 2 with one line', async () => {
    const [unknown, short, noKey, neither, both] = await Promise.all([
      runCli(['show', sample.path, 'ZZZZZZZZZZ']),
      runCli(['show', sample.path, '01']),
      runCli(['show', sample.path, '--key', 'sku:0000']),
      runCli(['show', sample.path]),
      runCli(['show', sample.path, sample.records[0]!.id, '--key', 'sku:1001']),
    ])
    expect(expectUsageFailure(unknown)).toBe(`retrace: no record "ZZZZZZZZZZ" in ${sample.path}`)
    expect(expectUsageFailure(short)).toContain('no record "01"')
    expect(expectUsageFailure(noKey)).toBe(`retrace: no record with key "sku:0000" in ${sample.path}`)
    expect(expectUsageFailure(neither)).toBe(
      'retrace: name a record: give a RECORD id (or prefix) or --key KEY',
    )
    expect(expectUsageFailure(both)).toContain('name a record')
  })

  it('a missing bundle argument or an unknown flag exits 2 with one line', async () => {
    const [noArgs, badFlag, badWidth] = await Promise.all([
      runCli(['show']),
      runCli(['show', sample.path, sample.records[0]!.id, '--colour']),
      runCli(['show', sample.path, sample.records[0]!.id, '--width', '5']),
    ])
    expect(expectUsageFailure(noArgs)).toContain('Missing 1 required arg')
    expect(expectUsageFailure(badFlag)).toContain('--colour')
    expect(expectUsageFailure(badWidth)).toContain('--width')
  })

  it('with --json a usage error is a JSON error document on stdout, and still exit 2', async () => {
    const r = await runCli(['show', sample.path, 'ZZZZZZZZZZ', '--json'])
    expect(r.code).toBe(2)
    expect(parseJsonOut(r)).toEqual({
      error: { code: 'E_RECORD_NOT_FOUND', message: `no record "ZZZZZZZZZZ" in ${sample.path}` },
    })
    expect(r.stderr).toBe(`retrace: no record "ZZZZZZZZZZ" in ${sample.path}\n`)
  })
})

describe('retrace show: Date, Set, Map, BigInt and undefined', () => {
  it('says what each stage did in terms of the data, never with typed-JSON tags', async () => {
    const r = await runCli(['show', typed.path, typed.second])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('$t')
    expect(r.stdout).not.toMatch(/\.v\b/)
    expect(r.stdout).toContain('~ $.tags ["web","vip"] → Set["web","vip"]')
    expect(r.stdout).toContain('+ added orderId, receivedAt, blob')
    expect(r.stdout).toContain('+ added unit, subtotalCents')
    // audit returns undefined: the payload became undefined, nothing was "added" or "dropped".
    expect(r.stdout).toMatch(/ {4}out undefined\n {4}~ \$ \{"orderId":"o-2",.*→ undefined\n/)
    expect(r.stdout).not.toContain('dropped orderId')
  })

  it('--json names the same paths', async () => {
    const r = await runCli(['show', typed.path, typed.second, '--json'])
    expect(r.code).toBe(0)
    const scene = parseJsonOut<SceneJson>(r)
    const paths = scene.captures.flatMap((c) =>
      (c.transform?.changes ?? []).map((x) => `${c.stage} ${x.kind} ${x.path}`),
    )
    expect(paths).toEqual([
      'parse removed $.id',
      'parse changed $.tags',
      'parse added $.orderId',
      'parse added $.receivedAt',
      'parse added $.blob',
      'price added $.unit',
      'price added $.subtotalCents',
      'audit changed $',
    ])
    expect(scene.captures[2]!.transform!.changes[0]!.local).toEqual({ $t: 'undef' })
  })
})
