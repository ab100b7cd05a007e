/**
 * `retrace extract` end to end: a new standalone bundle holding only the named records,
 * with no byte of any other record in the file (a grep over the raw bytes), extra
 * redaction on the way out recorded in the manifest, nothing left beside it, safe names
 * when -o is a folder, and refusals for an existing output or the input itself.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFiles, countBytes, integrityCheck, readBundle, withDb } from '../helpers/bundle-db.js'
import { expectUsageFailure, listDir } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const parseSrc = `export function parse(event) {
  return { sku: event.sku, qty: event.qty, customer: { name: event.name, email: event.email } }
}
`
// Looks the customer up through a recorded effect (a CRM call).
const enrichSrc = `export async function enrich(order, ctx) {
  const crm = await ctx.effect('crm.get', { email: order.customer.email }, async () => globalThis.crm[order.customer.email])
  return { ...order, tier: crm.tier, ref: crm.ref }
}
`
const storeSrc = `export function store(order, ctx) {
  if (order.qty < 0) throw new Error('negative quantity for ' + order.customer.name)
  return { sku: order.sku, qty: order.qty, tier: order.tier, at: ctx.now() }
}
`

/** Strings that exist in exactly one record each (input, effect, error, key, note). */
function canaries(i: number) {
  return {
    key: `key-canary-${i}-Zq81`,
    name: `NAME-CANARY-${i}-Wv93k`,
    email: `mail-${i}-Yp27@canary.test`,
    ref: `REF-CANARY-${i}-Hx55m`,
    note: `NOTE-CANARY-${i}-Ku40c`,
  }
}
const N = 4
const hostileKeys = { traversal: '../../etc/passwd', control: '\u001b[31mred\u0007\r\n\u0001key\u007f' }

let ws: Workspace
let source: string
/** Record ids by index (0..N-1), then the two hostile-key records. */
const ids: string[] = []
const hostile = { traversal: '', control: '' }

beforeAll(async () => {
  ws = workspace('retrace-extract-')
  ws.write('stages/parse.mjs', parseSrc)
  ws.write('stages/enrich.mjs', enrichSrc)
  ws.write('stages/store.mjs', storeSrc)
  ws.write(
    'retrace.config.mjs',
    `export default { stages: { parse: './stages/parse.mjs#parse', enrich: './stages/enrich.mjs#enrich', store: './stages/store.mjs#store' } }\n`,
  )
  const crm: Record<string, { tier: string; ref: string }> = {}
  for (let i = 0; i < N; i++) crm[canaries(i).email] = { tier: 'gold', ref: canaries(i).ref }
  ;(globalThis as { crm?: unknown }).crm = crm
  const parse = await importStage(ws.path('stages/parse.mjs'), 'parse')
  const enrich = await importStage(ws.path('stages/enrich.mjs'), 'enrich')
  const store = await importStage(ws.path('stages/store.mjs'), 'store')
  source = ws.path('prod.sqlite')
  try {
    await record(source, async (recorder) => {
      const p = recorder.stage('parse', parse)
      const e = recorder.stage('enrich', enrich)
      const s = recorder.stage('store', store)
      const run = async (key: string, event: unknown): Promise<string> => {
        let id = ''
        try {
          await recorder.record(key, async () => {
            id = recorder.current()!.recordId
            return s(await e(await p(event)))
          })
        } catch {
          // Record 2 fails in store on purpose: its error message holds its canary.
        }
        return id
      }
      for (let i = 0; i < N; i++) {
        const c = canaries(i)
        ids.push(
          await run(c.key, {
            sku: `sku:${1000 + i}`,
            qty: i === 2 ? -1 : i + 1,
            name: c.name,
            email: c.email,
          }),
        )
      }
      const plain = { sku: 'sku:9', qty: 1, name: 'n', email: canaries(0).email }
      hostile.traversal = await run(hostileKeys.traversal, plain)
      hostile.control = await run(hostileKeys.control, plain)
    })
  } finally {
    delete (globalThis as { crm?: unknown }).crm
  }
  // Expectations on two records, each note a canary of its own record.
  for (const i of [0, 1]) {
    const r = await cli('accept', source, ids[i]!, '--note', canaries(i).note, '--yes')
    if (r.code !== 0) throw new Error(`accept failed: ${r.stderr}`)
  }
})

afterAll(() => ws?.remove())

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)

/** Every canary string of record i (only records 0 and 1 have expectations, so notes). */
const allOf = (i: number): string[] => {
  const { note, ...rest } = canaries(i)
  return [...Object.values(rest), ...(i < 2 ? [note] : [])]
}

let outN = 0
function outDir(): string {
  const dir = ws.path(`out${++outN}`)
  mkdirSync(dir)
  return dir
}

describe('extract', { timeout: 120_000 }, () => {
  it('the source holds every canary (so the greps below can find what they look for)', () => {
    for (let i = 0; i < N; i++) {
      for (const c of allOf(i)) expect(countBytes(source, c), c).toBeGreaterThan(0)
    }
  })

  it('writes only the named records: captures, effects, expectations and a manifest saying where from', async () => {
    const out = join(outDir(), 'two.sqlite')
    const r = await cli('extract', source, ids[0]!, ids[3]!, '-o', out, '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ path: out, records: 2, captures: 6, redactedValues: 0 })
    expect(integrityCheck(out)).toBe('ok')
    const small = readBundle(out)
    const full = readBundle(source)
    expect(small.records.map((x) => x.id).sort()).toEqual([ids[0], ids[3]].sort())
    // Captures and effects are the source's, byte for byte (ids aside).
    const strip = ({ id: _i, effects, ...c }: (typeof full.captures)[number]) => ({
      ...c,
      effects: effects.map(({ capture_id: _c, ...e }) => e),
    })
    const wanted = full.captures.filter((c) => c.record_id === ids[0] || c.record_id === ids[3])
    expect(small.captures.map(strip)).toEqual(wanted.map(strip))
    expect(small.captures.flatMap((c) => c.effects.map((e) => e.name))).toEqual([
      'crm.get',
      'now',
      'crm.get',
      'now',
    ])
    // Expectations: record 0's three, none of record 1's.
    const pinned = withDb(
      out,
      (db) => db.prepare('SELECT record_id, stage, note FROM expectations ORDER BY stage').all(),
      true,
    )
    expect(pinned).toEqual(
      ['enrich', 'parse', 'store'].map((stage) => ({ record_id: ids[0], stage, note: canaries(0).note })),
    )
    expect(small.manifest).toMatchObject({
      format: 'retrace-bundle',
      pipeline: full.manifest.pipeline,
      builds: full.manifest.builds,
      redaction: full.manifest.redaction,
      extractedFrom: { bundle: 'prod.sqlite', records: 2, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    })
    // Standalone: it replays on its own, expectations and all.
    const replay = await cli('replay', out)
    expect(replay.code).toBe(0)
    expect(replay.stdout).toContain('2 records replayed, 2 matched, 0 diverged, 0 errors')
  })

  it('leaves no byte of any other record in the file (grep over the raw bytes)', async () => {
    const dir = outDir()
    const out = join(dir, 'one.sqlite')
    const r = await cli('extract', source, ids[1]!, '-o', out)
    expect(r.code).toBe(0)
    expect(bundleFiles(out)).toEqual([out])
    const bytes = readFileSync(out)
    for (const c of allOf(1)) expect(countBytes(out, c), c).toBeGreaterThan(0)
    for (const i of [0, 2, 3]) {
      for (const c of allOf(i)) expect(bytes.includes(Buffer.from(c)), `${c} of record ${i}`).toBe(false)
    }
    for (const id of [ids[0]!, ids[2]!, ids[3]!, hostile.traversal, hostile.control]) {
      expect(bytes.includes(Buffer.from(id)), id).toBe(false)
    }
    // The failing record's error travels with it when it is the one extracted, not otherwise.
    const failing = join(dir, 'failing.sqlite')
    expect((await cli('extract', source, ids[2]!, '-o', failing)).code).toBe(0)
    expect(countBytes(failing, `negative quantity for ${canaries(2).name}`)).toBeGreaterThan(0)
    expect(countBytes(out, 'negative quantity')).toBe(0)
  })

  it('--redact replaces values on the way out, everywhere, and lists the rule in the manifest', async () => {
    const out = join(outDir(), 'redacted.sqlite')
    const r = await cli('extract', source, ids[0]!, '-o', out, '--redact', '$..email', '--json')
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout) as { redactedValues: number }
    // parse input and output, enrich input, the effect's args, and the parse expectation.
    expect(doc.redactedValues).toBeGreaterThanOrEqual(5)
    expect(countBytes(out, canaries(0).email)).toBe(0)
    expect(countBytes(out, 'canary.test')).toBe(0)
    // What was not named stays.
    expect(countBytes(out, canaries(0).name)).toBeGreaterThan(0)
    const small = readBundle(out)
    expect((small.manifest.redaction as { rules: string[] }).rules).toContain('$..email')
    const parse = small.captures.find((c) => c.stage === 'parse')!
    expect(JSON.parse(parse.input)).toMatchObject({ email: '[redacted]', name: canaries(0).name })
    const enrich = small.captures.find((c) => c.stage === 'enrich')!
    expect(JSON.parse(enrich.effects[0]!.args!)).toEqual({ email: '[redacted]' })
    const expected = withDb(
      out,
      (db) => db.prepare("SELECT output FROM expectations WHERE stage = 'parse'").pluck().get() as string,
      true,
    )
    expect(JSON.parse(expected)).toMatchObject({ customer: { email: '[redacted]' } })
    // The source is not touched.
    expect(countBytes(source, canaries(0).email)).toBeGreaterThan(0)
    // Redacted consistently, the record still replays against its expectations.
    const replay = await cli('replay', out)
    expect(replay.code).toBe(0)
  })

  it('--redact names values inside a Map by key, as the recorder does: none of them is left', async () => {
    const secret = 'map-secret@leak.example'
    const file = ws.write(
      'prod/maps.mjs',
      `export function parse(input) {
  return { id: input.id, customer: new Map([['email', input.email], ['name', 'n']]) }
}
export function send(o) {
  return { id: o.id, to: o.customer.get('email').length }
}
`,
    )
    const chain = [
      ['parse', await importStage(file, 'parse')],
      ['send', await importStage(file, 'send')],
    ] as const
    const dir = outDir()
    const maps = join(dir, 'maps.sqlite')
    let id = ''
    await record(maps, async (recorder) => {
      id = (await runChain(recorder, 'm:1', { id: 1, email: secret }, chain)).recordId
    })
    expect(countBytes(maps, secret)).toBeGreaterThan(0)
    const out = join(dir, 'maps-redacted.sqlite')
    const r = await cli('extract', maps, id, '-o', out, '--redact', '$..email', '--json')
    expect(r.code).toBe(0)
    // parse's input, the Map entry in parse's output and in send's input.
    expect((JSON.parse(r.stdout) as { redactedValues: number }).redactedValues).toBe(3)
    expect(countBytes(out, secret)).toBe(0)
    const parse = readBundle(out).captures.find((c) => c.stage === 'parse')!
    expect(JSON.parse(parse.output!)).toMatchObject({
      customer: {
        $t: 'map',
        v: [
          ['email', '[redacted]'],
          ['name', 'n'],
        ],
      },
    })
    const rule = await cli(
      'extract',
      maps,
      id,
      '-o',
      join(dir, 'maps-rule.sqlite'),
      '--redact',
      '$.customer.email',
    )
    expect(rule.code).toBe(0)
    const byPath = readBundle(join(dir, 'maps-rule.sqlite')).captures
    expect(countBytes(join(dir, 'maps-rule.sqlite'), secret)).toBe(1)
    expect(byPath.find((c) => c.stage === 'send')!.input).toContain('["email","[redacted]"]')
  })

  it('--redact naming a parameter of a recorded query string redacts the string whole, as the recorder does', async () => {
    const secret = 'acct-1-9Qz41-canary'
    const file = ws.write(
      'prod/query.mjs',
      `export function route(input) {
  const acct = 'acct-' + input.id + '-9Qz41-canary'
  return { id: input.id, query: new URLSearchParams({ acct, page: '2' }), note: 'acct=kept' }
}
`,
    )
    const route = await importStage(file, 'route')
    const dir = outDir()
    const source = join(dir, 'query.sqlite')
    let id = ''
    await record(source, async (recorder) => {
      id = (await runChain(recorder, 'q:1', { id: 1 }, [['route', route]])).recordId
    })
    expect(countBytes(source, secret)).toBeGreaterThan(0)
    const out = join(dir, 'query-redacted.sqlite')
    const r = await cli('extract', source, id, '-o', out, '--redact', '$.query.acct', '--json')
    expect(r.code).toBe(0)
    expect((JSON.parse(r.stdout) as { redactedValues: number }).redactedValues).toBe(1)
    expect(countBytes(out, secret)).toBe(0)
    const [capture] = readBundle(out).captures
    // Only the string a rule reaches into: text elsewhere that reads like a query is kept.
    expect(JSON.parse(capture!.output!)).toEqual({ id: 1, query: '[redacted]', note: 'acct=kept' })
  })

  it('--redact naming a parameter of a recorded URL redacts its stored href whole', async () => {
    const secret = 'acct-1-7Rk20-canary'
    const file = ws.write(
      'prod/url.mjs',
      `export function route(input) {
  const acct = 'acct-' + input.id + '-7Rk20-canary'
  return {
    id: input.id,
    url: new URL('https://api.example/v1/orders?acct=' + acct + '&page=2#top'),
    other: new URL('https://api.example/v1/orders?page=2#acct=x'),
    note: 'https://api.example/v1/orders?acct=kept',
  }
}
`,
    )
    const route = await importStage(file, 'route')
    const dir = outDir()
    const source = join(dir, 'url.sqlite')
    let id = ''
    await record(source, async (recorder) => {
      id = (await runChain(recorder, 'u:1', { id: 1 }, [['route', route]])).recordId
    })
    // No rule named the parameter when it was recorded: the URL is its href.
    expect(countBytes(source, secret)).toBeGreaterThan(0)
    const out = join(dir, 'url-redacted.sqlite')
    const r = await cli('extract', source, id, '-o', out, '--redact', '$.url.acct', '--json')
    expect(r.code).toBe(0)
    expect((JSON.parse(r.stdout) as { redactedValues: number }).redactedValues).toBe(1)
    expect(countBytes(out, secret)).toBe(0)
    const [capture] = readBundle(out).captures
    // The fragment is not the query, and a rule reaches into no other string.
    expect(JSON.parse(capture!.output!)).toEqual({
      id: 1,
      url: '[redacted]',
      other: 'https://api.example/v1/orders?page=2#acct=x',
      note: 'https://api.example/v1/orders?acct=kept',
    })
  })

  it('--redact reaches a value nested deeper than a recorder writes, which readers still read', async () => {
    // 700 levels: past the recorder's 512, within what every reader decodes (a hand-made file).
    const dir = outDir()
    const deep = join(dir, 'deep.sqlite')
    copyFileSync(source, deep)
    const secret = 'deep-secret@leak.example'
    const value = `${'['.repeat(699)}{"email":${JSON.stringify(secret)}}${']'.repeat(699)}`
    withDb(deep, (db) =>
      db
        .prepare(
          'UPDATE captures SET output = ? WHERE id = (SELECT MIN(id) FROM captures WHERE record_id = ?)',
        )
        .run(value, ids[3]!),
    )
    expect((await cli('show', deep, ids[3]!)).code).toBe(0)
    const out = join(dir, 'deep-redacted.sqlite')
    const r = await cli('extract', deep, ids[3]!, '-o', out, '--redact', '$..email')
    expect(r.stderr).toMatch(/^wrote .*deep-redacted\.sqlite: 1 record, /)
    expect(r.code).toBe(0)
    expect(countBytes(out, secret)).toBe(0)
    expect(countBytes(out, canaries(3).email)).toBe(0)
  })

  it('--redact leaves out a value nested too deeply to walk, in one line, and leaks none of it', async () => {
    // 3,000 levels: past what every reader decodes (they show it as unreadable); 1,950:
    // readable, but deep enough that a recursive walk may run out of stack first.
    for (const depth of [3000, 1950]) {
      const dir = outDir()
      const deep = join(dir, 'deep.sqlite')
      copyFileSync(source, deep)
      const secret = `deeper-${depth}@leak.example`
      const value = `${'['.repeat(depth)}{"email":${JSON.stringify(secret)}}${']'.repeat(depth)}`
      withDb(deep, (db) =>
        db
          .prepare(
            'UPDATE captures SET output = ? WHERE id = (SELECT MIN(id) FROM captures WHERE record_id = ?)',
          )
          .run(value, ids[3]!),
      )
      const out = join(dir, 'deep-redacted.sqlite')
      const r = await cli('extract', deep, ids[3]!, '-o', out, '--redact', '$..email', '--json')
      expect(r.stderr).not.toMatch(/call stack|\n\s+at /)
      expect(r.code).toBe(0)
      const doc = JSON.parse(r.stdout) as { redactedValues: number; tooDeepValues?: number }
      if (depth === 3000) expect(doc.tooDeepValues).toBe(1)
      expect(countBytes(out, secret)).toBe(0)
      expect(countBytes(out, canaries(3).email)).toBe(0)
      expect(listDir(dir).sort()).toEqual(['deep-redacted.sqlite', 'deep.sqlite'])
      if (doc.tooDeepValues) {
        const shown = await cli('show', out, ids[3]!)
        expect(shown.code).toBe(0)
        expect(shown.stdout).toContain('<unrecorded: too-deep>')
      }
    }
  })

  it('--redact may come before the record ids and be repeated; each rule is one value', async () => {
    const out = join(outDir(), 'two-rules.sqlite')
    const r = await cli(
      'extract',
      source,
      '--redact',
      '$..email',
      ids[0]!,
      '--redact',
      '$..name',
      ids[3]!,
      '-o',
      out,
    )
    expect(r.code).toBe(0)
    expect(
      readBundle(out)
        .records.map((x) => x.id)
        .sort(),
    ).toEqual([ids[0], ids[3]].sort())
    for (const i of [0, 3]) {
      expect(countBytes(out, canaries(i).email)).toBe(0)
      expect(countBytes(out, canaries(i).name)).toBe(0)
      expect(countBytes(out, canaries(i).ref)).toBeGreaterThan(0)
    }
    const rules = (readBundle(out).manifest.redaction as { rules: string[] }).rules
    expect(rules.slice(-2)).toEqual(['$..email', '$..name'])
  })

  it('a --redact that is not a path is a usage error naming it, and writes nothing', async () => {
    const dir = outDir()
    const r = await cli('extract', source, ids[0]!, '-o', join(dir, 'z.sqlite'), '--redact', '$.customer[')
    expect(expectUsageFailure(r)).toMatch(/^retrace: --redact: bad path "\$\.customer\[" at column \d+/)
    const empty = await cli('extract', source, ids[0]!, '-o', join(dir, 'z.sqlite'), '--redact', '')
    expect(expectUsageFailure(empty)).toBe(
      'retrace: --redact needs a path to redact, e.g. --redact "$..email"',
    )
    expect(listDir(dir)).toEqual([])
  })

  it('leaves no -wal, -shm, -journal or temporary file beside the output', async () => {
    const dir = outDir()
    const out = join(dir, 'x.sqlite')
    expect((await cli('extract', source, ids[0]!, ids[1]!, '-o', out, '--redact', '$..name')).code).toBe(0)
    expect(listDir(dir)).toEqual(['x.sqlite'])
    const header = readFileSync(out).subarray(0, 20)
    // Bytes 18 and 19 are the write and read format versions: 1 = rollback journal, 2 = WAL.
    expect([header[18], header[19]]).toEqual([1, 1])
  })

  it('an unknown record is a usage error and writes nothing', async () => {
    const dir = outDir()
    const r = await cli('extract', source, ids[0]!, 'ZZZZZZZZZZ', '-o', join(dir, 'y.sqlite'))
    expectUsageFailure(r)
    expect(listDir(dir)).toEqual([])
  })

  it('-o to a folder names the file from the key, made safe: a traversal key stays in the folder', async () => {
    const before = listDir(ws.dir)
    const dir = outDir()
    const r = await cli('extract', source, hostile.traversal, '-o', dir)
    expect(r.code).toBe(0)
    const out = r.stdout.trim()
    expect(dirname(out)).toBe(dir)
    expect(basename(out)).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.sqlite$/)
    expect(basename(out)).toContain(
      hostile.traversal
        .replace(/[^\w]+/g, '_')
        .replace(/^_+/, '')
        .slice(0, 6),
    )
    expect(listDir(dir)).toEqual([basename(out)])
    expect(readBundle(out).records.map((x) => x.key)).toEqual([hostileKeys.traversal])
    // Nothing appeared anywhere else.
    expect(listDir(ws.dir)).toEqual([...before, basename(dir)].sort())
    expect(existsSync(join(ws.dir, 'etc'))).toBe(false)
    expect(existsSync(join(dirname(ws.dir), 'etc', 'passwd.sqlite'))).toBe(false)
  })

  it('-o to a folder with a key full of control characters gives a plain file name', async () => {
    const dir = outDir()
    const r = await cli('extract', source, hostile.control, '-o', `${dir}/`)
    expect(r.code).toBe(0)
    const name = readdirSync(dir)
    expect(name).toHaveLength(1)
    expect(name[0]).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.sqlite$/)
    expect(r.stdout).toBe(`${join(dir, name[0]!)}\n`)
    expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/)
    expect(readBundle(join(dir, name[0]!)).records.map((x) => x.key)).toEqual([hostileKeys.control])
  })

  it('-o makes missing folders: a new path ending in / is a folder, named from the key', async () => {
    const base = outDir()
    const [folder, file] = await Promise.all([
      cli('extract', source, ids[2]!, '-o', `${base}/new/`),
      cli('extract', source, ids[2]!, '-o', join(base, 'deep', 'er', 'x.sqlite')),
    ])
    expect([folder.code, file.code]).toEqual([0, 0])
    const made = readdirSync(join(base, 'new'))
    expect(made).toHaveLength(1)
    expect(made[0]).toMatch(/-.{10}\.sqlite$/)
    expect(folder.stdout).toBe(`${join(base, 'new', made[0]!)}\n`)
    expect(readBundle(join(base, 'new', made[0]!)).records.map((x) => x.id)).toEqual([ids[2]])
    expect(readBundle(join(base, 'deep', 'er', 'x.sqlite')).records.map((x) => x.id)).toEqual([ids[2]])
    // A path through a file fails in one line and leaves nothing.
    const blocked = await cli('extract', source, ids[2]!, '-o', join(source, 'x.sqlite'))
    expect(expectUsageFailure(blocked)).toBe(
      `retrace: cannot write ${join(source, 'x.sqlite')}: a part of the path is a file, not a folder`,
    )
  })

  it('an existing output is refused without --force (exit 2, untouched) and replaced with it', async () => {
    const out = join(outDir(), 'exists.sqlite')
    expect((await cli('extract', source, ids[0]!, '-o', out)).code).toBe(0)
    const before = readFileSync(out)
    const r = await cli('extract', source, ids[3]!, '-o', out)
    expect(expectUsageFailure(r)).toBe(`retrace: ${out} exists; pass --force to replace it`)
    expect(readFileSync(out).equals(before)).toBe(true)
    const forced = await cli('extract', source, ids[3]!, '-o', out, '--force')
    expect(forced.code).toBe(0)
    expect(readBundle(out).records.map((x) => x.id)).toEqual([ids[3]])
    for (const c of allOf(0)) expect(countBytes(out, c), c).toBe(0)
    expect(bundleFiles(out)).toEqual([out])
  })

  it('--force replaces a file only: a pipe named by -o is refused and left as it was', async () => {
    const fifo = join(outDir(), 'pipe.sqlite')
    execFileSync('mkfifo', [fifo])
    const r = await cli('extract', source, ids[0]!, '-o', fifo, '--force')
    expect(expectUsageFailure(r)).toBe(`retrace: ${fifo} is not a regular file; refusing to replace it`)
    expect(lstatSync(fifo).isFIFO()).toBe(true)
  })

  it('refuses to write over its input, however the path is spelt, even with --force', async () => {
    const before = readFileSync(source)
    for (const o of [source, 'prod.sqlite', './out1/../prod.sqlite']) {
      const r = await cli('extract', 'prod.sqlite', ids[0]!, '-o', o, '--force')
      expect(expectUsageFailure(r)).toBe('retrace: the output would overwrite the input bundle')
    }
    expect(readFileSync(source).equals(before)).toBe(true)
    expect(readBundle(source).records).toHaveLength(N + 2)
  })
})
