/**
 * `retrace accept` end to end: it pins the local build's output as a record's expected
 * output, with the note and the build it came from, and from then on that expectation is
 * the oracle. It refuses to pin without --yes when nobody can answer, and refuses a
 * read-only bundle without touching it. On a terminal (a pty), n, Ctrl-D and Ctrl-C at its
 * question each leave the bundle as it was, with one line and their own exit code.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFiles, countBytes, holdingWriteLock, withDb } from '../helpers/bundle-db.js'
import { binPath, expectUsageFailure } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  record,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const parseSrc = `export function parse(event) {
  return { sku: event.sku, onHand: event.onHand, reserved: event.reserved }
}
`
const computeProd = `export function compute(row) {
  return { sku: row.sku, available: row.sku === 'sku:1001' ? row.onHand + row.reserved : row.onHand - row.reserved }
}
`
const computeFixed = `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const formatSrc = `export function format(item) {
  return { sku: item.sku, display: item.available + ' in stock' }
}
`

interface Pinned {
  record_id: string
  stage: string
  output: string | null
  error: string | null
  note: string | null
  build: string | null
  accepted_at: number
}

let ws: Workspace
const ids = { bad: '', good: '' }
let n = 0

beforeAll(async () => {
  ws = workspace('retrace-accept-')
  ws.write('stages/parse.mjs', parseSrc)
  ws.write('stages/compute.mjs', computeFixed)
  ws.write('stages/format.mjs', formatSrc)
  ws.write('prod/compute.mjs', computeProd)
  ws.write(
    'retrace.config.mjs',
    `export default { stages: { parse: './stages/parse.mjs#parse', compute: './stages/compute.mjs#compute', format: './stages/format.mjs#format' } }\n`,
  )
  const chain = [
    ['parse', await importStage(ws.path('stages/parse.mjs'), 'parse')],
    ['compute', await importStage(ws.path('prod/compute.mjs'), 'compute')],
    ['format', await importStage(ws.path('stages/format.mjs'), 'format')],
  ] as const
  await record(ws.path('base.sqlite'), async (recorder) => {
    ids.bad = (
      await runChain(recorder, 'sku:1001', { sku: 'sku:1001', onHand: 46, reserved: 41 }, chain)
    ).recordId
    ids.good = (
      await runChain(recorder, 'sku:2002', { sku: 'sku:2002', onHand: 5, reserved: 1 }, chain)
    ).recordId
  })
})

afterAll(() => ws?.remove())

/** A fresh copy of the recording for one test (accept writes into its bundle). */
function freshBundle(): string {
  const path = ws.path(`b${++n}.sqlite`)
  copyFileSync(ws.path('base.sqlite'), path)
  return path
}

function expectations(path: string): Pinned[] {
  return withDb(
    path,
    (db) => db.prepare('SELECT * FROM expectations ORDER BY record_id, stage').all() as Pinned[],
    true,
  )
}

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)

describe('accept', { timeout: 90_000 }, () => {
  it('refuses without --yes when stdin is not a terminal: exit 2, one line, nothing pinned', async () => {
    const bundle = freshBundle()
    const before = readFileSync(bundle)
    const r = await cli('accept', bundle, ids.bad, '--note', 'BUG-1')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^retrace: not pinned: pass --yes[^\n]*\n$/)
    expect(r.stderr).not.toContain('    at ')
    expect(expectations(bundle)).toEqual([])
    expect(readFileSync(bundle).equals(before)).toBe(true)
    expect(bundleFiles(bundle)).toEqual([bundle])
  })

  it('with --json and no --yes it refuses too, with one JSON error document', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, ids.bad, '--json')
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'E_USAGE', message: expect.stringContaining('--yes') },
    })
    expect(expectations(bundle)).toEqual([])
  })

  it('refuses a read-only bundle with a clear message and leaves it as it was', async () => {
    const bundle = freshBundle()
    chmodSync(bundle, 0o444)
    const before = readFileSync(bundle)
    const r = await cli('accept', bundle, ids.bad, '--yes', '--note', 'BUG-1')
    expect(r.code).toBe(2)
    // The diff it would have pinned is shown; the refusal is one line on stderr.
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('retrace: '))
    expect(lines).toEqual([
      `retrace: ${bundle} is read-only; make it writable (chmod u+w) to pin expectations in it`,
    ])
    expect(r.stderr).not.toContain('    at ')
    expect(readFileSync(bundle).equals(before)).toBe(true)
    expect(bundleFiles(bundle)).toEqual([bundle])
    chmodSync(bundle, 0o644)
    expect(expectations(bundle)).toEqual([])
  })

  it('refuses with one line while another process writes the bundle, and pins nothing', async () => {
    const bundle = freshBundle()
    const r = await holdingWriteLock(bundle, () => cli('accept', bundle, ids.bad, '--yes', '--note', 'BUG-1'))
    expect(r.code).toBe(2)
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('retrace: '))
    expect(lines).toEqual([
      `retrace: ${bundle} is being written by another process (a recorder, accept or test --update); nothing pinned, pin again once it has finished`,
    ])
    expect(r.stderr).not.toContain('    at ')
    expect(expectations(bundle)).toEqual([])
    expect(bundleFiles(bundle)).toEqual([bundle])
  })

  it('pins every stage by default, with the note and the build, and the output the local build gave', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, ids.bad, '--note', 'BUG-4211', '--build', 'laptop-7f3e', '--yes')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('~ $.available 87 → 5')
    expect(r.stdout).toContain(
      `about to pin 3 stages (parse, compute, format) of ${ids.bad} with note "BUG-4211"`,
    )
    const rows = expectations(bundle)
    expect(rows.map(({ accepted_at: _a, output: _o, ...x }) => x)).toEqual(
      ['compute', 'format', 'parse'].map((stage) => ({
        record_id: ids.bad,
        stage,
        error: null,
        note: 'BUG-4211',
        build: 'laptop-7f3e',
      })),
    )
    const out = Object.fromEntries(rows.map((x) => [x.stage, JSON.parse(x.output!) as unknown]))
    expect(out).toEqual({
      parse: { sku: 'sku:1001', onHand: 46, reserved: 41 },
      compute: { sku: 'sku:1001', available: 5 },
      format: { sku: 'sku:1001', display: '5 in stock' },
    })
    for (const x of rows) expect(Number.isInteger(x.accepted_at) && x.accepted_at > 0).toBe(true)
    // No journal or WAL left beside the bundle.
    expect(bundleFiles(bundle)).toEqual([bundle])
  })

  it('without --build stores "local"; --json reports what it pinned', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, ids.bad, '--stage', 'compute', '--yes', '--json')
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout) as { recordId: string; pinned: unknown[]; replay: { verdict: string } }
    expect(doc.recordId).toBe(ids.bad)
    expect(doc.pinned).toEqual([{ stage: 'compute', note: null, build: 'local' }])
    expect(doc.replay.verdict).toBe('diverged')
    expect(doc).not.toHaveProperty('replay.outputs')
    expect(expectations(bundle).map((x) => [x.stage, x.note, x.build])).toEqual([['compute', null, 'local']])
  })

  it('--stage pins that stage only', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, ids.bad, '--stage', 'compute', '--note', 'BUG-2', '--yes')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`about to pin 1 stage (compute) of ${ids.bad}`)
    const rows = expectations(bundle)
    expect(rows.map((x) => [x.record_id, x.stage, x.note])).toEqual([[ids.bad, 'compute', 'BUG-2']])
    expect(JSON.parse(rows[0]!.output!)).toEqual({ sku: 'sku:1001', available: 5 })
  })

  it('--stage naming a stage the record does not have is a usage error and pins nothing', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, ids.bad, '--stage', 'nope', '--yes')
    expect(expectUsageFailure(r)).toBe(`retrace: record ${ids.bad} has no stage "nope"`)
    expect(expectations(bundle)).toEqual([])
  })

  it('refuses a pin the record would still fail with (replay blocked the network): exit 2, one line, nothing pinned', async () => {
    ws.write(
      'stages/compute-online.mjs',
      `export async function compute(row) {
  await fetch('http://127.0.0.1:9/stock')
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`,
    )
    ws.write(
      'online.config.mjs',
      `export default { stages: { parse: './stages/parse.mjs#parse', compute: './stages/compute-online.mjs#compute', format: './stages/format.mjs#format' } }\n`,
    )
    const bundle = freshBundle()
    const r = await cli(
      'accept',
      bundle,
      ids.bad,
      '--config',
      'online.config.mjs',
      '--note',
      'BUG-3',
      '--yes',
    )
    expect(expectUsageFailure(r)).toMatch(
      /^retrace: not pinned: with its pin, compute still fails: replay stopped it \(replay is offline: stage compute tried to reach 127\.0\.0\.1:9;.*\), which no pin stands for; the bundle is unchanged$/,
    )
    expect(expectations(bundle)).toEqual([])
  })

  it('an unknown record is a usage error', async () => {
    const bundle = freshBundle()
    const r = await cli('accept', bundle, 'ZZZZZZZZ', '--yes')
    expectUsageFailure(r)
    expect(expectations(bundle)).toEqual([])
  })

  it('after accept the expectation is the oracle: replay of that record matches', async () => {
    const bundle = freshBundle()
    const before = await cli('replay', bundle, ids.bad, '--json')
    expect(before.code).toBe(1)
    expect((await cli('accept', bundle, ids.bad, '--note', 'BUG-1', '--yes')).code).toBe(0)
    const after = await cli('replay', bundle, ids.bad, '--json')
    expect(after.code).toBe(0)
    const rec = parseReplayJson(after).records[0]!
    expect(rec).toMatchObject({ recordId: ids.bad, verdict: 'matched', firstDivergence: null })
    expect(statuses(rec)).toEqual({ parse: 'matched', compute: 'matched', format: 'matched' })
    const oracles = rec.stages.map((s) => (s.attempts as { oracle: string }[]).map((a) => a.oracle))
    expect(oracles).toEqual([['expected'], ['expected'], ['expected']])
    // The other record has no expectation and is still judged against production.
    const good = parseReplayJson(await cli('replay', bundle, ids.good, '--json')).records[0]!
    expect(good.verdict).toBe('matched')
    expect(good.stages.map((s) => (s.attempts as { oracle: string }[])[0]!.oracle)).toEqual([
      'recorded',
      'recorded',
      'recorded',
    ])
  })

  it('after accepting one stage, that stage is judged against its expectation, the rest against production', async () => {
    const bundle = freshBundle()
    expect((await cli('accept', bundle, ids.bad, '--stage', 'compute', '--yes')).code).toBe(0)
    const r = await cli('replay', bundle, ids.bad, '--json')
    const rec = parseReplayJson(r).records[0]!
    const oracles = Object.fromEntries(
      rec.stages.map((s) => [s.stage, (s.attempts as { oracle: string }[])[0]!.oracle]),
    )
    expect(oracles).toEqual({ parse: 'recorded', compute: 'expected', format: 'recorded' })
    // compute matches its pinned 5; format gives "5 in stock" where production recorded
    // "87 in stock", only because its input changed: inherited, not its own divergence.
    expect(statuses(rec)).toEqual({ parse: 'matched', compute: 'matched', format: 'inherited' })
    expect(rec.stages[2]!.changes).toEqual([
      { path: '$.display', kind: 'changed', recorded: '87 in stock', local: '5 in stock' },
    ])
    expect(rec.verdict).toBe('matched')
    expect(r.code).toBe(0)
  })

  it('accepting again replaces the note and output (one row per record and stage)', async () => {
    const bundle = freshBundle()
    expect((await cli('accept', bundle, ids.bad, '--stage', 'compute', '--note', 'OLD', '--yes')).code).toBe(
      0,
    )
    expect((await cli('accept', bundle, ids.bad, '--stage', 'compute', '--note', 'NEW', '--yes')).code).toBe(
      0,
    )
    expect(expectations(bundle).map((x) => [x.stage, x.note])).toEqual([['compute', 'NEW']])
  })
})

/**
 * Records one record of a `route` stage (module source `src`, in folder `dir` of the
 * workspace, with a config naming it) under the redaction rules `redact`.
 */
async function recordRoute(
  dir: string,
  src: string,
  redact: string[],
  tolerate: readonly string[] = [],
): Promise<{ bundle: string; id: string }> {
  const file = ws.write(`${dir}/route.mjs`, src)
  ws.write(`${dir}/retrace.config.json`, JSON.stringify({ stages: { route: './route.mjs#route' } }))
  const route = await importStage(file, 'route')
  const bundle = ws.path(`${dir}/prod.sqlite`)
  let id = ''
  await record(
    bundle,
    async (recorder) => {
      const stage = recorder.stage('route', route)
      await recorder.record('r:1', async () => {
        id = recorder.current()!.recordId
        return stage({ id: 1 })
      })
    },
    { redact },
    tolerate,
  )
  return { bundle, id }
}

describe('accept redacts what it pins as the bundle was redacted', { timeout: 90_000 }, () => {
  it("the local output's secrets (a default name, a path rule, a query parameter, a URL's) never reach the bundle, and test passes", async () => {
    const secret = 'LOCAL-SECRET-Jq72x'
    const src = `export function route(req) {
  return {
    id: req.id,
    headers: new Headers({ authorization: 'Bearer ${secret}', accept: 'text/plain' }),
    query: new URLSearchParams({ token: '${secret}', page: '2' }),
    customer: { phone: '${secret}', name: 'n' },
    callback: new URL('https://hooks.example/cb?page=2&access_token=${secret}#done'),
    dsn: new URL('postgres://svc:${secret}@db.example:5432/app'),
    search: new URL('https://h.example/s?q=${secret}'),
    home: new URL('https://h.example/?page=2#top'),
  }
}
`
    const { bundle, id } = await recordRoute('secrets', src, ['$.customer.phone', '$.search.q'])
    expect(countBytes(bundle, secret)).toBe(0)
    const config = ws.path('secrets/retrace.config.json')
    expect((await cli('accept', bundle, id, '--yes', '--config', config)).code).toBe(0)
    expect(countBytes(bundle, secret)).toBe(0)
    const [pinned] = expectations(bundle)
    expect(JSON.parse(pinned!.output!)).toEqual({
      id: 1,
      headers: { accept: 'text/plain', authorization: '[redacted]' },
      query: '[redacted]',
      customer: { phone: '[redacted]', name: 'n' },
      callback: '[redacted]',
      dsn: '[redacted]',
      search: '[redacted]',
      home: 'https://h.example/?page=2#top',
    })
    const t = await cli('test', bundle, '--config', config)
    expect(t.code).toBe(0)
  })

  it('a recording whose redaction rules could not be used (every payload a token) gets pins that are a token', async () => {
    const src = `export function route(req) {
  return { id: req.id, note: 'LOCAL-ONLY-Vb19k' }
}
`
    const { bundle, id } = await recordRoute('closed', src, ['$.customer['], ['E_OPTIONS'])
    const config = ws.path('closed/retrace.config.json')
    expect((await cli('accept', bundle, id, '--yes', '--config', config)).code).toBe(0)
    expect(countBytes(bundle, 'LOCAL-ONLY-Vb19k')).toBe(0)
    expect(expectations(bundle).map((x) => x.output)).toEqual(['"[redacted]"'])
  })
})

/**
 * Runs the CLI on a pseudo-terminal (python's pty module: node has none), answers its
 * question with `answer` once it is asked, and returns what the terminal showed and the
 * exit status.
 */
const ptyDriver = `
import os, pty, select, sys, time
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b''
def read(until, seconds):
    global out
    end = time.time() + seconds
    while time.time() < end and (until is None or until not in out):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
read(b'[y/N]', 60)
os.write(fd, answer)
read(None, 0.5)
_, status = os.waitpid(pid, 0)
read(None, 0.2)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.stdout.write('\\nEXIT %d\\n' % (os.waitstatus_to_exitcode(status)))
`

function onTerminal(answer: string, args: string[]): { screen: string; code: number } {
  const r = spawnSync('python3', ['-c', ptyDriver, answer, process.execPath, binPath, ...args], {
    cwd: ws.dir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', DEBUG: '' },
    timeout: 90_000,
  })
  const m = /\nEXIT (-?\d+)\n$/.exec(r.stdout)
  if (m === null) throw new Error(`the pty driver failed: ${r.stderr}${r.stdout}`)
  return { screen: r.stdout.slice(0, m.index), code: Number(m[1]) }
}

const hasPython = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0

describe.skipIf(!hasPython)('accept on a terminal', { timeout: 90_000 }, () => {
  it('y pins', () => {
    const bundle = freshBundle()
    const r = onTerminal('y\r', ['accept', bundle, ids.bad])
    expect(r.screen).toContain('pinned 3 expectations')
    expect(r.code).toBe(0)
    expect(expectations(bundle)).toHaveLength(3)
  })

  it.each([
    ['n', 'n\r'],
    ['Ctrl-D', '\x04'],
  ])('%s: not pinned, one plain line, exit 0, the bundle unchanged', (_name, answer) => {
    const bundle = freshBundle()
    const before = readFileSync(bundle)
    const r = onTerminal(answer, ['accept', bundle, ids.bad])
    expect(r.screen).toContain('not pinned: the bundle is unchanged')
    expect(r.screen).not.toContain('--yes')
    expect(r.screen).not.toContain('bug in retrace')
    expect(r.code).toBe(0)
    expect(readFileSync(bundle).equals(before)).toBe(true)
  })

  it('Ctrl-C: not pinned, one line, exit 130, the bundle unchanged', () => {
    const bundle = freshBundle()
    const before = readFileSync(bundle)
    const r = onTerminal('\x03', ['accept', bundle, ids.bad])
    expect(r.screen).toMatch(/retrace: not pinned: stopped with Ctrl-C\r?\n/)
    expect(r.screen).not.toContain('bug in retrace')
    expect(r.code).toBe(130)
    expect(readFileSync(bundle).equals(before)).toBe(true)
  })
})
