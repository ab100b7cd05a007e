/**
 * Hostile payloads, counted: `__proto__` / `constructor.prototype` keys at every depth
 * replayed through a stage that checks for pollution in the CLI process; a generated set of
 * terminal control sequences in every recorded place, through every read command; hostile
 * record keys as output file names; and 5 MB strings in diffs.
 *
 * test/e2e/hostile-payloads.test.ts pins how one of each is shown; this is the count form.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import * as fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { safeFileName } from '../../src/bundle/index.js'
import { createRecorder, type StageContext } from '../../src/index.js'
import { withDb } from '../helpers/bundle-db.js'
import { type CliResult, runCli } from '../helpers/cli.js'
import { parseReplayJson, record, runChain, type Workspace, workspace } from '../replay/fixture.js'
import { full, mapLimit, reportFault, requireBuild, scale } from './kit.js'

let ws: Workspace
beforeAll(() => {
  requireBuild()
  ws = workspace('retrace-faults-hostile-')
})
afterAll(() => ws?.remove())

const cli = (args: string[], timeoutMs = 60_000): Promise<CliResult> =>
  runCli(args, { cwd: ws.dir, timeoutMs })

describe('prototype keys at every depth', () => {
  const maxDepth = scale(200, 40)

  /** JSON text holding `inner` at `depth`, through objects and arrays in turn. */
  function nestText(depth: number, inner: string): string {
    let text = inner
    for (let d = 0; d < depth; d++) text = d % 3 === 2 ? `[1,${text}]` : `{"k${d}":${text},"n":${d}}`
    return text
  }
  const poison = '{"polluted":"yes","toString":"owned"}'
  const shapes: Record<string, string> = {
    proto: `{"__proto__":${poison},"a":1}`,
    constructor: `{"constructor":{"prototype":${poison}},"a":1}`,
    both: `{"__proto__":${poison},"constructor":{"prototype":${poison}},"prototype":${poison}}`,
    'map tag': `{"$t":"map","v":[["__proto__",${poison}],[{"__proto__":${poison}},1]]}`,
    'obj tag': `{"$t":"obj","v":{"__proto__":${poison},"$t":"x"}}`,
    'set tag': `{"$t":"set","v":[{"__proto__":${poison}}]}`,
    'error tag': `{"$t":"error","v":{"name":"E","message":"m","__proto__":${poison},"code":{"__proto__":${poison}}}}`,
  }

  it(`replays ${Object.keys(shapes).length} shapes at depths 0..${maxDepth} with no pollution in the CLI`, {
    timeout: 30 * 60_000,
  }, async () => {
    // The stage answers whether this process's prototypes are clean; production said yes.
    const checkSrc = `export function check(input) {
  const probe = {}
  const clean = probe.polluted === undefined && [].polluted === undefined && Object.prototype.polluted === undefined &&
    typeof probe.toString === 'function' && Object.getPrototypeOf(probe) === Object.prototype
  return { clean, seen: typeof input }
}
`
    ws.write('proto/check.mjs', checkSrc)
    // The control: a build that pollutes, to show the check can fail.
    ws.write('proto/polluting.mjs', `Object.prototype.polluted = 'yes'\n${checkSrc}`)
    ws.write('proto/retrace.config.mjs', `export default { stages: { check: './check.mjs#check' } }\n`)
    ws.write('proto/polluting.config.mjs', `export default { stages: { check: './polluting.mjs#check' } }\n`)
    const bundle = ws.path('proto/prod.sqlite')
    const cases: { name: string; text: string }[] = []
    for (let depth = 0; depth <= maxDepth; depth++) {
      for (const [name, inner] of Object.entries(shapes))
        cases.push({ name: `${name} at ${depth}`, text: nestText(depth, inner) })
    }
    const check = (await import(ws.path('proto/check.mjs'))) as {
      check: (i: unknown, c: StageContext) => unknown
    }
    const ids: string[] = []
    await record(bundle, async (recorder) => {
      for (const [i] of cases.entries())
        ids.push((await runChain(recorder, `proto:${i}`, { slot: i }, [['check', check.check]])).recordId)
    })
    // The recorder itself never writes these keys; a stranger's file can hold anything.
    withDb(bundle, (db) => {
      const set = db.prepare('UPDATE captures SET input = ? WHERE record_id = ?')
      for (const [i, c] of cases.entries()) set.run(c.text, ids[i])
    })

    const [replay, control, show, ls] = await Promise.all([
      cli(['replay', bundle, '--config', 'proto/retrace.config.mjs', '--json'], 10 * 60_000),
      cli(['replay', bundle, ids[0]!, '--config', 'proto/polluting.config.mjs', '--json']),
      cli(['show', bundle, ids.at(-1)!, '--json']),
      cli(['ls', bundle, '--json']),
    ])
    expect(replay.stderr).toBe('')
    const doc = parseReplayJson(replay)
    const polluted = doc.records.filter((r) => r.verdict !== 'matched')
    expect(polluted.map((r) => r.key)).toEqual([])
    expect(replay.code).toBe(0)
    expect(doc.summary.matched).toBe(cases.length)
    // The control diverges: the check does see pollution when there is some.
    expect(control.code).toBe(1)
    expect(parseReplayJson(control).records[0]!.verdict).toBe('diverged')
    for (const r of [show, ls]) {
      expect(r.code).toBe(0)
      expect(r.stdout).not.toContain('polluted')
    }
    reportFault(
      'proto',
      `${cases.length} records (${Object.keys(shapes).length} shapes x depths 0..${maxDepth}) with __proto__ / ` +
        `constructor.prototype keys replayed in one CLI process: ${doc.summary.matched} matched, ${polluted.length} saw ` +
        `a polluted prototype (control build that pollutes: diverged as it must)`,
    )
  })
})

describe('typed-JSON tags with hostile fields', () => {
  it('replay, show and report read them without an internal error', { timeout: 30 * 60_000 }, async () => {
    const tags = [
      'date',
      'bigint',
      'num',
      'undef',
      'buffer',
      'bytes',
      'typedarray',
      'arraybuffer',
      'sharedarraybuffer',
      'dataview',
      'map',
      'set',
      'error',
      'obj',
      'unrecorded',
      'unreadable',
    ]
    const fields = ['v', 'k', 'reason', 'message', 'size', 'name', 'code']
    // What `String()` or `Number()` of a field would trip on, and shapes no encoder writes.
    const values = [
      '{"toString":""}',
      '{"valueOf":""}',
      '{"toString":"","valueOf":""}',
      '[]',
      '[[{"toString":""}]]',
      'null',
      'true',
      '{"$t":"num","v":{"toString":""}}',
    ]
    const payloads: string[] = []
    for (const tag of tags)
      for (const field of fields)
        for (const value of values) payloads.push(`{"$t":"${tag}","${field}":${value}}`)
    const every = `[${payloads.join(',')}]`

    ws.write('tags/echo.mjs', 'export function echo(input) { return input }\n')
    ws.write('tags/retrace.config.mjs', "export default { stages: { echo: './echo.mjs#echo' } }\n")
    const bundle = ws.path('tags/prod.sqlite')
    const echo = (input: unknown) => input
    const ids: string[] = []
    await record(bundle, async (recorder) => {
      for (let i = 0; i <= payloads.length; i++)
        ids.push((await runChain(recorder, `tag:${i}`, { i }, [['echo', echo]])).recordId)
    })
    withDb(bundle, (db) => {
      const set = db.prepare('UPDATE captures SET input = ?, output = ? WHERE record_id = ?')
      for (const [i, p] of payloads.entries()) set.run(p, p, ids[i])
      set.run(every, every, ids.at(-1))
    })
    const last = ids.at(-1)!
    const runs: [string, string[]][] = [
      ['replay', ['replay', bundle, '--config', 'tags/retrace.config.mjs']],
      ['replay --json', ['replay', bundle, '--config', 'tags/retrace.config.mjs', '--json']],
      [
        'replay --format unified',
        ['replay', bundle, last, '--config', 'tags/retrace.config.mjs', '--format', 'unified'],
      ],
      ['show', ['show', bundle, last]],
      ['show --expand', ['show', bundle, last, '--expand']],
      ['show --json', ['show', bundle, last, '--json']],
      ['report', ['report', bundle, last, '-o', ws.path('tags/report.html')]],
    ]
    const results = await mapLimit(runs, 3, async ([label, argv]) => ({
      label,
      r: await cli(argv, 5 * 60_000),
    }))
    const bad = results
      .filter(
        ({ r }) =>
          r.signal !== null || ![0, 1].includes(r.code ?? -1) || /bug in retrace| {4}at /.test(r.stderr),
      )
      .map(({ label, r }) => `${label}: exit ${r.code} ${r.stderr.slice(0, 200)}`)
    expect(bad).toEqual([])
    reportFault(
      'tags',
      `${payloads.length} typed-JSON tags with hostile fields (${tags.length} tags x ${fields.length} fields x ` +
        `${values.length} values), replayed one record each and shown all together: ${results.length - bad.length} ` +
        `of ${results.length} command runs ended normally (exit 0 or 1), ${bad.length} internal errors`,
    )
  })
})

/** Every character class the renderers must escape, in the sequences a terminal acts on. */
function controlSequences(): string[] {
  const seqs: string[] = []
  for (const final of 'ABCDEFGHJKSTfhlmnsu') seqs.push(`\u001b[2${final}`)
  seqs.push('\u001b[31;1;4m', '\u001b[?1049h', '\u001b[6n', '\u001b[0c', '\u001b[2J\u001b[H')
  seqs.push(
    '\u001b]0;pwned\u0007',
    '\u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\',
    '\u001b]52;c;cHduZWQ=\u0007',
  )
  seqs.push(
    '\u001bPq#0;2;0;0;0\u001b\\',
    '\u001b_apc\u001b\\',
    '\u001b^pm\u001b\\',
    '\u001bXsos\u001b\\',
    '\u001bc',
    '\u001b7\u001b8',
  )
  for (let c = 0x80; c <= 0x9f; c++) seqs.push(`x${String.fromCharCode(c)}y`)
  for (let c = 0; c <= 0x1f; c++) if (c !== 0x09 && c !== 0x0a) seqs.push(`x${String.fromCharCode(c)}y`)
  seqs.push('x\u007fy')
  for (const c of [
    0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068,
    0x2069,
  ]) {
    seqs.push(`a${String.fromCharCode(c)}b`)
  }
  return seqs
}

/** Characters that must never reach a terminal raw (tab and newline are layout, and allowed). */
const RAW =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

describe('terminal control sequences in every recorded place', () => {
  it('never reach stdout or stderr raw, in any read command or replay', {
    timeout: 30 * 60_000,
  }, async () => {
    const seqs = controlSequences()
    const all = seqs.join('|')
    const bundle = ws.path('ansi/prod.sqlite')
    ws.write('ansi/.keep', '')
    const recorder = createRecorder({
      path: bundle,
      pipeline: `pipe${all}`,
      build: `build${all}`,
      origin: { host: `host${all}`, pid: 1 },
      flushIntervalMs: 5,
    })
    const ids: string[] = []
    // One record per sequence in its key; three records carrying all of them everywhere else.
    const keyed = recorder.stage('keyed', (v: unknown) => v)
    for (const s of seqs) await recorder.record(`key${s}`, () => keyed(s))
    const places = ['record key', 'pipeline', 'build', 'host']
    const everywhere = Object.fromEntries(seqs.map((s, i) => [`k${i}${s}`, `v${s}`]))
    for (let r = 0; r < 3; r++) {
      await recorder
        .record(`all:${r}`, async () => {
          ids.push(recorder.current()!.recordId)
          const stages = seqs.map((s, i) =>
            recorder.stage(`stage${i}${s}`, (input: unknown, ctx: StageContext) => {
              ctx.effect(`effect${s}`, { [`arg${s}`]: s }, () => `result${s}`)
              if (i === seqs.length - 1 && r === 2) throw new Error(`failed${all}`)
              return { ...(input as object), [`out${s}`]: s }
            }),
          )
          let v: unknown = everywhere
          for (const st of stages) v = await st(v)
          return v
        })
        .catch(() => undefined)
    }
    await recorder.close()
    places.push(
      'stage name',
      'effect name',
      'effect args',
      'effect result',
      'payload key',
      'payload value',
      'error message',
    )

    // A local build that returns other hostile values, so replay prints diffs of them.
    ws.write(
      'ansi/local.mjs',
      `export function keyed(v) { return { changed: v + ${JSON.stringify(all)} } }\n`,
    )
    ws.write('ansi/retrace.config.mjs', `export default { stages: { keyed: './local.mjs#keyed' } }\n`)
    const keyedIds = withDb(
      bundle,
      (db) =>
        db
          .prepare("SELECT id FROM records WHERE key LIKE 'key%' ORDER BY started_at")
          .pluck()
          .all() as string[],
    )
    const shows: [string, string[]][] = ids.flatMap((id, r): [string, string[]][] => [
      [`show ${r}`, ['show', bundle, id]],
      [`show ${r} --expand`, ['show', bundle, id, '--expand']],
      [`show ${r} --json`, ['show', bundle, id, '--json']],
    ])
    const allRuns: [string, string[]][] = [
      ['ls', ['ls', bundle]],
      ['ls --json', ['ls', bundle, '--json']],
      ['inspect', ['inspect', bundle]],
      ['inspect --json', ['inspect', bundle, '--json']],
      ['find', ['find', bundle, '--where', 'keyed contains y']],
      ['find --json', ['find', bundle, '--where', 'keyed contains y', '--json']],
      // The bounded run shows each record one way (the failed one in human form).
      ...(full ? shows : [shows[1]!, shows[5]!, shows[6]!]),
      [
        'replay',
        [
          'replay',
          bundle,
          ...keyedIds.slice(0, 40),
          '--config',
          'ansi/retrace.config.mjs',
          '--stage',
          'keyed',
        ],
      ],
      [
        'replay --format unified',
        [
          'replay',
          bundle,
          keyedIds[0]!,
          '--config',
          'ansi/retrace.config.mjs',
          '--stage',
          'keyed',
          '--format',
          'unified',
        ],
      ],
      [
        'replay --json',
        ['replay', bundle, keyedIds[1]!, '--config', 'ansi/retrace.config.mjs', '--stage', 'keyed', '--json'],
      ],
      // An argument cannot hold NUL; everything else goes in.
      ['show unknown key', ['show', bundle, '--key', `nope${all.replaceAll('\u0000', '')}`]],
    ]
    const runs = full ? allRuns : allRuns.filter(([label]) => !/^(ls|inspect|find) --json$/.test(label))
    const results = await mapLimit(runs, 3, async ([label, argv]) => ({ label, r: await cli(argv) }))
    const leaks: string[] = []
    for (const { label, r } of results) {
      expect(r.signal, label).toBeNull()
      expect([0, 1, 2], `${label}: ${r.stderr}`).toContain(r.code)
      if (RAW.test(r.stdout)) leaks.push(`${label} (stdout)`)
      if (RAW.test(r.stderr)) leaks.push(`${label} (stderr)`)
    }
    // The output did carry the sequences, escaped: the check is not vacuous.
    const lsOut = results.find((x) => x.label === 'ls')!.r.stdout
    expect(lsOut).toContain('stage0\\x1b[2A,stage1\\x1b[2B')
    // A stage name holding the unit separator is still one stage (it once split in two).
    expect(lsOut).toContain('stage94x\\x1fy,stage95')
    expect(leaks).toEqual([])
    reportFault(
      'ansi',
      `${seqs.length} sequences (CSI, OSC, DCS/APC/PM/SOS, C0, DEL, C1, bidi and separators) in ${places.length} places ` +
        `(${places.join(', ')}), through ${runs.length} command runs: ${leaks.length} raw control characters on stdout or stderr`,
    )
  })
})

describe('hostile record keys as output file names', () => {
  const hostileKeys = [
    '..',
    '.',
    '../../etc/passwd',
    '/etc/passwd',
    'a/../../b',
    '..\\..\\windows\\system32',
    'C:\\Windows\\x',
    'nul\u0000byte',
    '\uff0e\uff0e\uff0fetc',
    '\u2024\u2024/x',
    '....//....//',
    '~/x',
    '-rf',
    ' ',
    '',
    'CON',
    'x'.repeat(5000),
    '\u202egnp.exe',
    'a\nb',
  ]

  it('safeFileName never yields a separator, a dot name or a name over 80 characters', {
    timeout: 10 * 60_000,
  }, () => {
    const runs = scale(20_000, 1_000)
    const prefix = fc.constantFrom('', '..', '../', '/', '\\', './', '\uff0e\uff0e\uff0f', '\u0000', '~', '.')
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(...hostileKeys),
          fc.tuple(prefix, fc.string({ unit: 'binary' }), prefix).map((p) => p.join('')),
        ),
        (key) => {
          const name = safeFileName(key)
          expect(name).not.toMatch(/[/\\\u0000]/)
          expect(name.startsWith('.')).toBe(false)
          expect(name.length).toBeGreaterThan(0)
          expect(name.length).toBeLessThanOrEqual(80)
          const dir = resolve('/out/dir')
          expect(dirname(resolve(dir, `${name}.sqlite`))).toBe(dir)
        },
      ),
      { numRuns: runs },
    )
    reportFault(
      'names',
      `safeFileName over ${runs} generated hostile keys (fast-check) and ${hostileKeys.length} fixed ones: 0 escaped the folder`,
    )
  })

  it('extract -o <folder> writes each hostile-keyed record inside the folder', {
    timeout: 10 * 60_000,
  }, async () => {
    // Each extract is a CLI run; the bounded run takes the most telling few.
    const extractKeys = full
      ? hostileKeys
      : ['..', '../../etc/passwd', '/etc/passwd', '\uff0e\uff0e\uff0fetc', 'nul\u0000byte', '']
    const bundle = ws.path('names/prod.sqlite')
    mkdirSync(ws.path('names'))
    const recorder = createRecorder({ path: bundle, flushIntervalMs: 5 })
    const s = recorder.stage('s', (v: unknown) => v)
    const ids: string[] = []
    for (const key of extractKeys) {
      await recorder.record(key, async () => {
        ids.push(recorder.current()!.recordId)
        await s(1)
      })
    }
    await recorder.close()
    // A folder per record: keys that all reduce to `record` (., .., '') in the same
    // millisecond would share a name, and extract refuses to overwrite without --force.
    const folders = ids.map((_, i) => ws.write(`names/out/${i}/.keep`, '').replace(/\/\.keep$/, ''))
    const results = await mapLimit(ids, 3, (id, i) => cli(['extract', bundle, id, '-o', folders[i]!]))
    for (const [i, r] of results.entries())
      expect(r.code, `${JSON.stringify(extractKeys[i])}: ${r.stderr}`).toBe(0)
    const written = folders.map((f) => readdirSync(f).filter((x) => x !== '.keep'))
    expect(written.map((w) => w.length)).toEqual(extractKeys.map(() => 1))
    expect(readdirSync(ws.path('names')).sort()).toEqual(['out', 'prod.sqlite'])
    expect(readdirSync(ws.path('names/out')).sort()).toEqual(folders.map((_, i) => String(i)).sort())
    expect(existsSync(join(ws.dir, 'etc'))).toBe(false)
    reportFault(
      'names',
      `extract -o <folder> of ${extractKeys.length} records with hostile keys: ${written.flat().length} files, ` +
        `every one inside its folder (${written
          .flat()
          .slice(0, 4)
          .map((w) => JSON.stringify(w))
          .join(', ')}, ...)`,
    )
  })
})

describe('huge strings in diffs', () => {
  const size = 5 * 1024 * 1024

  it('5 MB string pairs replay to a finished verdict, structural and unified', {
    timeout: 10 * 60_000,
  }, async () => {
    const big = 'a'.repeat(size)
    // Local: one character changed in the middle, or every character different.
    ws.write(
      'huge/local.mjs',
      `export function blob(n) {
  const s = 'a'.repeat(${size})
  if (n.variant === 0) return s.slice(0, ${size / 2}) + 'X' + s.slice(${size / 2 + 1})
  return 'z'.repeat(${size})
}
`,
    )
    ws.write('huge/retrace.config.mjs', `export default { stages: { blob: './local.mjs#blob' } }\n`)
    const bundle = ws.path('huge/prod.sqlite')
    const ids: string[] = []
    await record(
      bundle,
      async (recorder) => {
        for (const variant of [0, 1]) {
          ids.push((await runChain(recorder, `huge:${variant}`, { variant }, [['blob', () => big]])).recordId)
        }
      },
      { maxPayloadBytes: 16 * 1024 * 1024 },
    )
    const formats: Record<string, string[]> = {
      json: ['--json'],
      structural: [],
      unified: ['--format', 'unified'],
    }
    // Each run parses and diffs 10 MB; the bounded run takes three of the six.
    const plan: [number, string][] = full
      ? [0, 1].flatMap((v) => Object.keys(formats).map((f): [number, string] => [v, f]))
      : [
          [0, 'structural'],
          [1, 'unified'],
          [1, 'json'],
        ]
    const results = await Promise.all(
      plan.map(async ([v, format]) => ({
        v,
        format,
        r: await cli(
          ['replay', bundle, ids[v]!, '--config', 'huge/retrace.config.mjs', ...formats[format]!],
          5 * 60_000,
        ),
      })),
    )
    const sizes: string[] = []
    for (const { v, format, r } of results) {
      const label = `${v === 0 ? 'one character' : 'all different'} / ${format}`
      expect(r.signal, `${label}: ${r.stderr}`).toBeNull()
      expect(r.code, `${label}: ${r.stderr}`).toBe(1)
      if (format === 'json') {
        const stage = parseReplayJson(r).records[0]!.stages[0]!
        expect(stage.status, label).toBe('diverged')
        expect(stage.changes.length, label).toBeGreaterThan(0)
      } else if (format === 'structural') {
        // The structural view folds values to the width: what a person reads stays small.
        expect(r.stdout, label).toContain('diverged')
        expect(r.stdout.length, label).toBeLessThan(64 * 1024)
      } else {
        expect(r.stdout, label).toMatch(/too different to diff|diverged/)
      }
      sizes.push(
        `${label} ${r.stdout.length < 10_240 ? `${r.stdout.length} B` : `${Math.round(r.stdout.length / 1024)} KiB`}`,
      )
    }
    reportFault(
      'huge-diff',
      `5 MB string pairs (one character changed; every character different) through replay: ${results.length} of ` +
        `${results.length} runs finished with exit 1 and the change reported; output sizes: ${sizes.join(', ')} ` +
        `(unified folds lines over 1,000 characters; --json carries the payloads)`,
    )
  })
})
