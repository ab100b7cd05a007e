/** `retrace find` as a user runs it, on a bundle the recorder made in a temp dir. */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  expectUsageFailure,
  makeSampleBundle,
  parseJsonOut,
  runCli,
  SAMPLE_T0,
  type SampleBundle,
  sharedTempDir,
} from '../helpers/cli.js'
import { importStage, record, runChain, type Workspace, workspace } from '../replay/fixture.js'

interface FindJson {
  where: { stage: string; side: string; path: string; op: string; value: unknown }
  records: { recordId: string; key: string; startedAt: number; value: unknown; source: string }[]
  total: number
  truncated: boolean
}

const dir = sharedTempDir('retrace-e2e-find-')
let s: SampleBundle

const idsOf = (...indices: number[]): string[] => indices.map((i) => s.records[i]!.id)

async function find(where: string, ...more: string[]): Promise<FindJson> {
  const r = await runCli(['find', s.path, '--where', where, '--json', ...more])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return parseJsonOut<FindJson>(r)
}

beforeAll(async () => {
  // store's available count per record: 3, 8, 1, (failed: -4), -1; record 5 never reaches store.
  s = await makeSampleBundle(join(dir(), 'find.sqlite'))
  expect(s.recorderErrors).toEqual([])
})

describe('retrace find', () => {
  it('= finds the records whose stage output has the value, and prints them', async () => {
    const r = await runCli(['find', s.path, '--where', 'store.available = 8'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe('1 record where store.available = 8')
    expect(lines[1]).toMatch(
      new RegExp(`^${s.records[1]!.id}\\s+sku:2002\\s+2026-01-10 12:01:00\\.000Z\\s+8$`),
    )
    expect(lines).toHaveLength(2)
  })

  it('--json gives the parsed predicate and the hits', async () => {
    const json = await find('store.available = 3')
    expect(json.where).toMatchObject({
      stage: 'store',
      side: 'output',
      path: '$.available',
      op: '=',
      value: 3,
    })
    expect(json.records).toEqual([
      {
        recordId: s.records[0]!.id,
        key: 'sku:1001',
        startedAt: s.records[0]!.startedAt,
        value: 3,
        source: s.path,
      },
    ])
  })

  it('!=, < and > compare numbers; newest first', async () => {
    const [ne, lt, gt, ge] = await Promise.all([
      find('store.available != 3'),
      find('store.available < 0'),
      find('store.available > 2'),
      find('store.available >= 8'),
    ])
    // The record whose store failed has no output, so it matches nothing.
    expect(ne.records.map((x) => x.recordId)).toEqual(idsOf(4, 2, 1))
    expect(lt.records.map((x) => [x.recordId, x.value])).toEqual([[s.records[4]!.id, -1]])
    expect(gt.records.map((x) => x.recordId)).toEqual(idsOf(1, 0))
    expect(ge.records.map((x) => x.recordId)).toEqual(idsOf(1))
  })

  it('contains matches inside strings and arrays; strings may be quoted', async () => {
    const [note, tags, quoted] = await Promise.all([
      find('store.note contains "order 4"'),
      find('price.tags contains priced'),
      find("parse.sku = 'sku:3003'"),
    ])
    expect(note.records.map((x) => [x.recordId, x.value])).toEqual([[s.records[4]!.id, 'order 4']])
    // A retried stage that matched on both attempts lists its record once.
    expect(tags.records.map((x) => x.recordId)).toEqual(idsOf(4, 3, 2, 1, 0))
    expect(tags.records[0]!.value).toEqual(['priced'])
    expect(quoted.records.map((x) => x.recordId)).toEqual(idsOf(3))
  })

  it('.input searches what the stage received (the seam field exists only there)', async () => {
    const [input, output, qty] = await Promise.all([
      find('store.input.channel = web'),
      find('price.output.channel = web'),
      find('price.input.qty = 2'),
    ])
    expect(input.where.side).toBe('input')
    expect(input.records.map((x) => x.recordId)).toEqual(idsOf(4, 3, 2, 1, 0))
    expect(output.records).toEqual([])
    expect(qty.records.map((x) => x.recordId)).toEqual(idsOf(1))
  })

  it('--limit caps the hits', async () => {
    const json = await find('parse.qty > 0', '--limit', '2')
    expect(json.records.map((x) => x.recordId)).toEqual(idsOf(5, 4))
  })

  it('says when --limit cut the hits short: how many match, and the flag that lists them all', async () => {
    const [cut, retried, whole, human] = await Promise.all([
      find('parse.qty > 0', '--limit', '2'),
      // Record 1's price ran twice: the record counts once.
      find('price.input.qty > 0', '-n', '1'),
      find('parse.qty > 0', '--limit', '6'),
      runCli(['find', s.path, '--where', 'parse.qty > 0', '-n', '2']),
    ])
    expect(cut).toMatchObject({ total: 6, truncated: true })
    expect(retried).toMatchObject({ total: 5, truncated: true })
    expect(whole).toMatchObject({ total: 6, truncated: false })
    expect(whole.records).toHaveLength(6)
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe('2 of 6 records where parse.qty > 0')
    expect(lines.slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual(idsOf(5, 4))
    expect(lines[3]).toBe('… 4 more (6 in all); --limit 0 lists them all')
    expect(lines).toHaveLength(4)
  })

  it('no match prints a note on stdout and exits 0', async () => {
    const r = await runCli(['find', s.path, '--where', 'store.available = 87'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('no records where store.available = 87')
    expect((await find('nosuchstage.x = 1')).records).toEqual([])
  })

  it('a stage the bundle does not have finds nothing and says which stages it has, on stderr', async () => {
    const r = await runCli(['find', s.path, '--where', 'stroe.available = 87'])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('no records where stroe.available = 87')
    const stages = (await runCli(['inspect', s.path, '--json'])).stdout
    const names = (JSON.parse(stages) as { stages: { stage: string }[] }).stages.map((x) => x.stage)
    expect(names).toContain('store')
    expect(r.stderr).toBe(`the bundle has no stage "stroe"; its stages: ${names.join(', ')}\n`)
    // --json stays silent on stderr (find() checks it).
    expect((await find('stroe.available = 87')).total).toBe(0)
  })

  it('a predicate it cannot read is a usage error: exit 2, one line', async () => {
    const [garbage, noValue, noOp, missing] = await Promise.all([
      runCli(['find', s.path, '--where', 'this is not a predicate']),
      runCli(['find', s.path, '--where', 'store.available =']),
      runCli(['find', s.path, '--where', 'store.available']),
      runCli(['find', s.path]),
    ])
    expect(expectUsageFailure(garbage)).toContain('cannot read --where')
    expect(expectUsageFailure(noValue)).toContain('needs a value')
    expect(expectUsageFailure(noOp)).toContain('cannot read --where')
    expect(expectUsageFailure(missing)).toContain('Missing required flag where')
  })

  it('an unquoted value that is not a number, or holds a second predicate, is a usage error, not a listing', async () => {
    // Taken as text, each listed every record for < (SQLite ranks text above numbers).
    const [comma, point, plus, compound] = await Promise.all([
      runCli(['find', s.path, '--where', 'store.available < 1,000']),
      runCli(['find', s.path, '--where', 'store.available < .5']),
      runCli(['find', s.path, '--where', 'store.available > +5']),
      runCli(['find', s.path, '--where', 'store.available < 3 and parse.qty > 100']),
    ])
    expect(expectUsageFailure(comma)).toBe(
      'retrace: --where: cannot read "1,000" as a number; write it as digits (1000, 0.5, -3, 1e6), or quote it to compare as text',
    )
    expect(expectUsageFailure(point)).toContain('cannot read ".5" as a number')
    expect(expectUsageFailure(plus)).toContain('cannot read "+5" as a number')
    expect(expectUsageFailure(compound)).toBe(
      'retrace: --where takes one predicate, and a value with spaces is quoted: "3 and parse.qty > 100" is neither',
    )
    // Quoted, the same texts are strings, as before; a bare word still is one.
    expect((await find("store.available < '1,000'")).where.value).toBe('1,000')
    expect((await find('store.note = "order 4"')).records.map((x) => x.recordId)).toEqual(idsOf(4))
  })

  it('a path with a wildcard or .. is a usage error: exit 2, one line', async () => {
    const [star, deep, json] = await Promise.all([
      runCli(['find', s.path, '--where', 'price.tags[*] = priced']),
      runCli(['find', s.path, '--where', 'store..available = 3']),
      runCli(['find', s.path, '--where', 'price.tags[*] = priced', '--json']),
    ])
    expect(expectUsageFailure(star)).toContain('wildcards')
    expect(expectUsageFailure(deep)).toMatch(/^retrace: --where: /)
    expect(json.code).toBe(2)
    expect(parseJsonOut<{ error: { code: string } }>(json).error.code).toBe('E_USAGE')
  })

  it('user text never becomes SQL', async () => {
    const hostile = await find(`store.note = "x' OR 1=1 --"`)
    expect(hostile.records).toEqual([])
    const quote = await runCli(['find', s.path, '--where', 'store["a\\"b"] = 1'])
    expect(quote.code).toBe(2)
  })
})

describe('retrace find and replay --where on values JSON cannot hold', { timeout: 120_000 }, () => {
  let ws: Workspace
  /** Record ids in recording order (oldest first). */
  const typed: string[] = []
  // What `price` produced for each record: a BigInt, a Date, a special number, undefined,
  // a Buffer, a Map and a plain object.
  const rows = [
    { cents: 24013n, at: '2026-01-01T00:00:00.000Z', ratio: Number.NaN },
    { cents: 9999n, at: '2031-06-01T12:00:00.000Z', ratio: Number.POSITIVE_INFINITY },
    { cents: 12_345_678_901_234n, at: '2026-06-15T08:30:00.000Z', ratio: -0 },
    { cents: -5n, at: '2026-03-01T00:00:00.000Z', ratio: Number.NEGATIVE_INFINITY },
    { cents: 100_000n, at: '2027-01-01T00:00:00.000Z', ratio: 1.5 },
  ]
  const priceSrc = `export function price(i) {
  const rows = ${JSON.stringify(rows.map((r) => ({ ...r, cents: String(r.cents), ratio: String(Object.is(r.ratio, -0) ? '-0' : r.ratio) })))}
  const r = rows[i]
  return {
    cents: BigInt(r.cents),
    at: new Date(r.at),
    ratio: Number(r.ratio),
    gone: undefined,
    bytes: Buffer.from('abc'),
    lookup: new Map([['a', 1]]),
    box: { n: i },
  }
}
`

  beforeAll(async () => {
    ws = workspace('retrace-find-typed-')
    const price = await importStage(ws.write('stages/price.mjs', priceSrc), 'price')
    ws.write('retrace.config.json', JSON.stringify({ stages: { price: './stages/price.mjs#price' } }))
    let now = SAMPLE_T0
    await record(
      ws.path('typed.sqlite'),
      async (recorder) => {
        for (const i of rows.keys()) {
          now = SAMPLE_T0 + i * 60_000
          const r = await runChain(recorder, `order:${i}`, i, [['price', price]])
          typed.push(r.recordId)
        }
      },
      { clock: () => now },
    )
  })
  afterAll(() => ws.remove())

  async function found(where: string): Promise<string[]> {
    const r = await runCli(['find', ws.path('typed.sqlite'), '--where', where, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    return parseJsonOut<FindJson>(r).records.map((x) => x.recordId)
  }
  /** Runs the finds two at a time (each is a process) and checks each against its expected ids. */
  async function expectFound(cases: [string, string[]][]): Promise<void> {
    const got: string[][] = []
    for (let i = 0; i < cases.length; i += 2)
      got.push(...(await Promise.all(cases.slice(i, i + 2).map(([where]) => found(where)))))
    expect(got.map((ids, i) => [cases[i]![0], ids])).toEqual(cases.map(([where, ids]) => [where, ids]))
  }
  /** The ids of these records, newest first, as find lists them. */
  const newestFirst = (...indices: number[]): string[] => indices.sort((a, b) => b - a).map((i) => typed[i]!)

  it('compares a BigInt by its integer value', async () => {
    await expectFound([
      ['price.cents > 10000', newestFirst(0, 2, 4)],
      ['price.cents = 24013', newestFirst(0)],
      ['price.cents = 12345678901234', newestFirst(2)],
      ['price.cents < 0', newestFirst(3)],
      ['price.cents != 9999', newestFirst(0, 2, 3, 4)],
      ['price.cents contains 2401', newestFirst(0)],
    ])
  })

  it('compares a Date by its ISO text against a string, by epoch milliseconds against a number', async () => {
    await expectFound([
      ["price.at > '2030-01-01'", newestFirst(1)],
      ["price.at < '2026-02-01'", newestFirst(0)],
      ['price.at = 2026-06-15T08:30:00.000Z', newestFirst(2)],
      [`price.at >= ${Date.parse('2027-01-01T00:00:00.000Z')}`, newestFirst(1, 4)],
      [`price.at = ${Date.parse('2026-03-01T00:00:00.000Z')}`, newestFirst(3)],
      ['price.at contains 2031-06', newestFirst(1)],
    ])
  })

  it('compares -0 and the infinities as numbers; NaN equals nothing', async () => {
    await expectFound([
      ['price.ratio > 1000', newestFirst(1)],
      ['price.ratio < -1000', newestFirst(3)],
      ['price.ratio = 0', newestFirst(2)],
      ['price.ratio != 1.5', newestFirst(0, 1, 2, 3)],
      ['price.ratio = 1.5', newestFirst(4)],
    ])
  })

  it('treats undefined as a missing value', async () => {
    await expectFound([
      ['price.gone = null', newestFirst(0, 1, 2, 3, 4)],
      ['price.gone != null', []],
      ['price.gone != 1', []],
    ])
  })

  it('orders and searches no undefined, no Buffer or Map, and no object by its JSON text', async () => {
    await expectFound([
      ['price.gone > 5', []],
      ['price.gone >= 0', []],
      ['price.gone < 5', []],
      ['price.gone contains undef', []],
      ['price.bytes > 5', []],
      ["price.bytes < 'zzz'", []],
      ['price.bytes contains buffer', []],
      ['price.bytes != 1', newestFirst(0, 1, 2, 3, 4)],
      ['price.lookup >= 0', []],
      ['price.lookup contains map', []],
      ['price.box > 5', []],
      ['price.box.n > 2', newestFirst(3, 4)],
      ['price.box contains "n"', newestFirst(0, 1, 2, 3, 4)],
    ])
  })

  it('prints the typed value as it was', async () => {
    const r = await runCli(['find', ws.path('typed.sqlite'), '--where', 'price.cents = 24013'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('1 record where price.cents = 24013')
    expect(r.stdout).toMatch(new RegExp(`^${typed[0]}\\s+order:0\\s+.*24013n$`, 'm'))
  })

  it('replay --where replays the records the same predicate finds', async () => {
    const r = await runCli(['replay', 'typed.sqlite', '--where', 'price.cents > 10000', '--json'], {
      cwd: ws.dir,
    })
    expect(r.code).toBe(0)
    const json = parseJsonOut<{ records: { recordId: string }[] }>(r)
    expect(json.records.map((x) => x.recordId).sort()).toEqual([typed[0], typed[2], typed[4]].sort())
  })
})

describe('retrace find and why on keys and stages named in other scripts', () => {
  let ws: Workspace
  const ids: string[] = []
  // A French note, a Greek code and a Japanese stage: what a pipeline outside English returns.
  const labelSrc = `export function étiquette(i) {
  return { 'préavis': i === 1 ? 'Livraison après 18h' : undefined, meta: { 'κωδικός': i === 0 ? '✓' : '✗' }, '数量': i + 2,
    tags: new Set(i === 1 ? ['web', 'vip'] : ['web']), carriers: new Map([[i === 1 ? 'ups' : 'dhl', 620n]]) }
}
`
  beforeAll(async () => {
    ws = workspace('retrace-find-unicode-')
    const label = await importStage(ws.write('stages/label.mjs', labelSrc), 'étiquette')
    await record(ws.path('unicode.sqlite'), async (recorder) => {
      for (const i of [0, 1])
        ids.push((await runChain(recorder, `order:${i}`, i, [['出荷', label]])).recordId)
    })
  })
  afterAll(() => ws.remove())

  it('--where names them as JavaScript spells them, as well as quoted', async () => {
    for (const [where, id] of [
      ["出荷.préavis contains 'après'", ids[1]],
      ["出荷.meta.κωδικός = '✓'", ids[0]],
      ['出荷.数量 = 3', ids[1]],
      ["出荷['préavis'] contains 'après'", ids[1]],
    ] as const) {
      const r = await runCli(['find', ws.path('unicode.sqlite'), '--where', where, '--json'])
      expect([where, r.stderr, r.code]).toEqual([where, '', 0])
      expect(parseJsonOut<FindJson>(r).records.map((x) => x.recordId)).toEqual([id])
    }
  })

  it("contains looks among a Set's items and a Map's entries, not at their tags", async () => {
    for (const [where, found] of [
      ["出荷.tags contains 'vip'", [ids[1]]],
      ["出荷.carriers contains 'ups'", [ids[1]]],
      ["出荷.tags contains 'web'", [ids[1], ids[0]]],
      ["出荷.tags contains 'set'", []],
      ["出荷.carriers contains 'map'", []],
    ] as const) {
      const r = await runCli(['find', ws.path('unicode.sqlite'), '--where', where, '--json'])
      expect([where, r.code]).toEqual([where, 0])
      expect([where, parseJsonOut<FindJson>(r).records.map((x) => x.recordId)]).toEqual([where, found])
    }
  })

  it('why takes the same paths', async () => {
    const r = await runCli(['why', ws.path('unicode.sqlite'), ids[0]!, '出荷.meta.κωδικός'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('why 出荷.output.meta.κωδικός = "✓"')
  })
})

describe('retrace find and why on stages whose names hold a dot or a space', () => {
  let ws: Workspace
  let id = ''
  beforeAll(async () => {
    ws = workspace('retrace-find-dotted-')
    await record(ws.path('dotted.sqlite'), async (recorder) => {
      id = (
        await runChain(recorder, 'order:1', { qty: 2 }, [
          ['orders.parse', (o: unknown) => ({ ...(o as object), parsed: true })],
          ['step 2', (o: unknown) => ({ ...(o as object), total: 10 })],
        ])
      ).recordId
    })
  })
  afterAll(() => ws.remove())

  it('names them in double quotes (unquoted, orders.parse.qty read as a stage orders)', async () => {
    const bundle = ws.path('dotted.sqlite')
    const [dotted, spaced, why] = await Promise.all([
      runCli(['find', bundle, '--where', '"orders.parse".qty = 2', '--json']),
      runCli(['find', bundle, '--where', '"step 2".input.parsed = true', '--json']),
      runCli(['why', bundle, id, '"step 2".output.qty']),
    ])
    expect([dotted.stderr, dotted.code]).toEqual(['', 0])
    expect(parseJsonOut<FindJson>(dotted).records.map((x) => x.recordId)).toEqual([id])
    expect(parseJsonOut<FindJson>(dotted).where.stage).toBe('orders.parse')
    expect(parseJsonOut<FindJson>(spaced).records.map((x) => x.recordId)).toEqual([id])
    expect([why.stderr, why.code]).toEqual(['', 0])
    expect(why.stdout).toContain('orders.parse')
  })
})

describe('names that would print as nothing', () => {
  let ws: Workspace
  let id = ''
  beforeAll(async () => {
    ws = workspace('retrace-names-blank-')
    await record(ws.path('blank.sqlite'), async (recorder) => {
      id = (
        await runChain(recorder, ' ', { qty: 2 }, [
          ['', (o: unknown) => ({ ...(o as object), a: 1 })],
          ['b\u200b', (o: unknown) => ({ ...(o as object), b: 1 })],
        ])
      ).recordId
    })
  })
  afterAll(() => ws.remove())

  it('show and ls quote an empty or space-only name and escape zero-width characters', async () => {
    const bundle = ws.path('blank.sqlite')
    const [show, ls] = await Promise.all([runCli(['show', bundle, id]), runCli(['ls', bundle])])
    expect([show.stderr, show.code]).toEqual(['', 0])
    expect(show.stdout).toContain('key " "')
    expect(show.stdout).toContain('2 stages ("" → b\\u200b)')
    expect([ls.stderr, ls.code]).toEqual(['', 0])
    expect(ls.stdout).toMatch(new RegExp(`^${id}\\s+" "\\s`, 'm'))
  })
})
