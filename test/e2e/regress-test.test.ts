/**
 * `retrace test` end to end: reporters (default, json, junit with hostile bytes), --output,
 * --shard, --update (and its refusal in CI), stale recordings and expectations, and the
 * exit codes 0, 1 and 2.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pinExpectations } from '../../src/bundle/index.js'
import { holdingWriteLock, withDb } from '../helpers/bundle-db.js'
import { expectUsageFailure, runCli as spawnCli } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  inventoryChain,
  inventorySources,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

// For the hostile recording: production echoes the text, the local build decorates it.
const mangleProd = `export function mangle(input) {
  return { text: input.text, n: 1 }
}
`
const mangleLocal = `export function mangle(input) {
  return { text: '<local>' + input.text + ']]>', n: 2 }
}
`
const configOf = (stages: Record<string, string>): string =>
  `export default { stages: ${JSON.stringify(stages)} }\n`
const stages = {
  parse: './stages/parse.mjs#parse',
  compute: './stages/compute.mjs#compute',
  format: './stages/format.mjs#format',
}

/** Every kind of byte JUnit XML cannot hold as is. */
const HOSTILE =
  ']]> <b>&amp;</b> & "q" \'a\' esc\u001b[2J nul\u0000 ctl\u0001\u0002\u0008\u000b\u000c\u000e\u001f ' +
  'del\u007f c1\u0085\u009b lone\ud800hi lone\udfffslo \ufffe\uffff ls\u2028 astral😀 end'
const HOSTILE_KEY = 'key\u001b[31m\u0000\u0001]]><&"\'\ud800\uffff'

const RECORDS = 20

let ws: Workspace
const ids: string[] = []
const hostileIds: string[] = []
let n = 0

beforeAll(async () => {
  ws = workspace('retrace-test-cmd-')
  const chain = await inventoryChain(ws)
  ws.write('stages/compute-v2.mjs', inventorySources.computeOffByOne)
  ws.write('stages/mangle.mjs', mangleLocal)
  ws.write('prod/mangle.mjs', mangleProd)
  ws.write('retrace.config.mjs', configOf(stages))
  ws.write('v2.config.mjs', configOf({ ...stages, compute: './stages/compute-v2.mjs#compute' }))
  const { format: _f, ...withoutFormat } = stages
  ws.write('partial.config.mjs', configOf(withoutFormat))
  ws.write('hostile.config.mjs', configOf({ mangle: './stages/mangle.mjs#mangle' }))
  mkdirSync(ws.path('recordings'))
  await record(ws.path('recordings/a.sqlite'), async (recorder) => {
    for (let i = 0; i < RECORDS; i++) {
      const sku = `sku:${1000 + i}`
      ids.push((await runChain(recorder, sku, { sku, onHand: 10 + i, reserved: i % 3 }, chain)).recordId)
    }
  })
  mkdirSync(ws.path('hostile'))
  const mangle = [['mangle', await importStage(ws.path('prod/mangle.mjs'), 'mangle')]] as const
  await record(ws.path('hostile/h.sqlite'), async (recorder) => {
    hostileIds.push((await runChain(recorder, HOSTILE_KEY, { text: HOSTILE }, mangle)).recordId)
    hostileIds.push(
      (await runChain(recorder, `plain ${HOSTILE}`, { text: `${HOSTILE}\n${HOSTILE}` }, mangle)).recordId,
    )
  })
})

afterAll(() => ws?.remove())

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)
const cliEnv = (env: Record<string, string | undefined>, ...args: string[]): Promise<CliResult> =>
  spawnCli(args, { cwd: ws.dir, env })
const noCi = { CI: undefined, GITHUB_ACTIONS: undefined }

/** A fresh copy of the 20-record recording for a test that writes into it. */
function copyOfA(): string {
  const path = ws.path(`copies/a${++n}.sqlite`)
  mkdirSync(ws.path('copies'), { recursive: true })
  copyFileSync(ws.path('recordings/a.sqlite'), path)
  return path
}

function expectations(path: string): { record_id: string; stage: string; note: string | null }[] {
  return withDb(
    path,
    (db) =>
      db.prepare('SELECT record_id, stage, note FROM expectations ORDER BY record_id, stage').all() as {
        record_id: string
        stage: string
        note: string | null
      }[],
    true,
  )
}

interface JsonReport {
  bundles: {
    path: string
    summary: { records: number; matched: number; diverged: number; errors: number }
    failures: Record<string, unknown>[]
    notUpdated?: string
  }[]
  summary: { records: number; matched: number; diverged: number; errors: number; updated?: number }
  stale: { bundle: string; recordId: string; stage: string; why: string }[]
  updated: number
}

function parseReport(r: CliResult): JsonReport {
  try {
    return JSON.parse(r.stdout) as JsonReport
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
}

// XML 1.0 Char production: anything else must never appear, escaped or not.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const TAG =
  /<(?:\?xml(?:\s+[a-z]+="[^"<&]*")*\s*\?|\/[A-Za-z][A-Za-z-]*|[A-Za-z][A-Za-z-]*(?:\s+[A-Za-z]+="(?:[^"<&]|&(?:amp|lt|gt|quot|apos);)*")*\s*\/?)>/g

/**
 * Stricter than fast-xml-parser's validator (which lets control characters, `]]>` in text
 * and `<` in attributes through): every character is an XML Char, every `&` starts one of
 * the five entities, every `<` starts a well-formed tag, and text never holds `]]>`.
 */
function expectWellFormed(xml: string): void {
  expect(XMLValidator.validate(xml)).toBe(true)
  const bad = NOT_XML_CHAR.exec(xml)
  expect(bad === null ? null : `U+${bad[0].codePointAt(0)!.toString(16)} at ${bad.index}`).toBeNull()
  expect(xml).not.toMatch(/&(?!(?:amp|lt|gt|quot|apos);)/)
  const text = xml.replace(TAG, '\u0000')
  expect(text).not.toContain('<')
  expect(text).not.toContain(']]>')
}

interface Testcase {
  '@_name': string
  '@_classname': string
  failure?: { '@_message': string; '@_type': string; '#text': string }
}
interface Suite {
  '@_name': string
  '@_tests': string
  '@_failures': string
  testcase: Testcase[]
}

function parseJunit(xml: string): Suite[] {
  const doc = new XMLParser({
    ignoreAttributes: false,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    isArray: (name) => name === 'testsuite' || name === 'testcase',
  }).parse(xml) as { testsuites: { testsuite?: Suite[]; '@_tests': string; '@_failures': string } }
  return doc.testsuites.testsuite ?? []
}

/** Record ids a JUnit report ran, from the testcase names (`key recordId`). */
function junitIds(xml: string): string[] {
  return parseJunit(xml)
    .flatMap((s) => s.testcase)
    .map((t) => t['@_name'].split(' ').at(-1)!)
}

describe('retrace test', { timeout: 120_000 }, () => {
  describe('exit codes and the default reporter', () => {
    it('0 when every record matches, with a summary per bundle and overall, and nothing on stderr off a TTY', async () => {
      const r = await cliEnv(noCi, 'test', 'recordings')
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(
        `✓ recordings/a.sqlite  ${RECORDS} records tested, ${RECORDS} matched, 0 diverged, 0 errors\n${RECORDS} records tested, ${RECORDS} matched, 0 diverged, 0 errors\n`,
      )
      // No progress bar on a pipe.
      expect(r.stderr).toBe('')
    })

    it('uses recordings/ when given no path', async () => {
      const r = await cli('test')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`✓ recordings/a.sqlite  ${RECORDS} records tested`)
    })

    it('1 when a record diverges, naming the stage, with the step diff', async () => {
      const r = await cli('test', 'recordings', '--config', 'v2.config.mjs')
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `✗ recordings/a.sqlite  ${RECORDS} records tested, 0 matched, ${RECORDS} diverged`,
      )
      expect(r.stdout).toContain(`record ${ids[0]}  key sku:1000  diverged at compute`)
      expect(r.stdout).toContain('~ $.available 10 → 9')
    })

    it('2 for a path that does not exist, a folder without bundles, and bad flags', async () => {
      expect(expectUsageFailure(await cli('test', 'nowhere'))).toBe(
        'retrace: nowhere: no such file or folder',
      )
      mkdirSync(ws.path('empty'), { recursive: true })
      expect(expectUsageFailure(await cli('test', 'empty'))).toBe(
        'retrace: no bundles (*.sqlite) under empty',
      )
      expectUsageFailure(await cli('test', 'recordings', '--reporter', 'xml'))
      for (const shard of ['0/2', '3/2', '1/0', 'a/b', '1']) {
        expect(expectUsageFailure(await cli('test', 'recordings', '--shard', shard))).toContain('--shard')
      }
    })

    it('a symlink back up the folder does not run the same bundle again', async () => {
      mkdirSync(ws.path('looped/sub'), { recursive: true })
      copyFileSync(ws.path('recordings/a.sqlite'), ws.path('looped/a.sqlite'))
      symlinkSync('..', ws.path('looped/sub/up'))
      symlinkSync('.', ws.path('looped/self'))
      const doc = parseReport(await cli('test', 'looped', '--reporter', 'json'))
      expect(doc.bundles.map((b) => b.path)).toEqual([ws.path('looped/a.sqlite')])
      expect(doc.summary.records).toBe(RECORDS)
    })

    it('2 for a file that is not a bundle', async () => {
      ws.write('junk/not-a-bundle.sqlite', 'hello, I am not SQLite\n')
      expectUsageFailure(await cli('test', 'junk'))
    })
  })

  describe('--reporter json', () => {
    it('one JSON document: bundles with summary and failures, summary, stale, updated', async () => {
      const r = await cli('test', 'recordings', '--config', 'v2.config.mjs', '--reporter', 'json')
      expect(r.code).toBe(1)
      expect(r.stderr).toBe('')
      const doc = parseReport(r)
      expect(Object.keys(doc).sort()).toEqual(['bundles', 'stale', 'summary', 'updated'])
      expect(doc.summary).toEqual({ records: RECORDS, matched: 0, diverged: RECORDS, errors: 0 })
      expect(doc.stale).toEqual([])
      expect(doc.updated).toBe(0)
      expect(doc.bundles).toHaveLength(1)
      const b = doc.bundles[0]!
      expect(b.path).toBe(ws.path('recordings/a.sqlite'))
      expect(b.summary).toEqual(doc.summary)
      expect(b.failures.map((f) => f.recordId).sort()).toEqual([...ids].sort())
      for (const f of b.failures) {
        expect(f).toMatchObject({
          verdict: 'diverged',
          firstDivergence: { stage: 'compute', status: 'diverged' },
        })
        expect(f).not.toHaveProperty('outputs')
      }
      const first = b.failures.find((f) => f.recordId === ids[0]) as {
        stages: { stage: string; status: string; changes: unknown[] }[]
      }
      expect(first.stages.map((s) => [s.stage, s.status])).toEqual([
        ['parse', 'matched'],
        ['compute', 'diverged'],
        ['format', 'inherited'],
      ])
      expect(first.stages[1]!.changes).toEqual([
        { path: '$.available', kind: 'changed', recorded: 10, local: 9 },
      ])
    })

    it('a passing run has no failures', async () => {
      const doc = parseReport(await cli('test', 'recordings', '--reporter', 'json'))
      expect(doc.summary).toEqual({ records: RECORDS, matched: RECORDS, diverged: 0, errors: 0 })
      expect(doc.bundles[0]!.failures).toEqual([])
    })
  })

  describe('--reporter junit', () => {
    it('is well-formed XML whatever the keys and payloads hold', async () => {
      const r = await cli('test', 'hostile', '--config', 'hostile.config.mjs', '--reporter', 'junit')
      expect(r.code).toBe(1)
      expect(r.stderr).toBe('')
      expect(r.stdout.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true)
      expectWellFormed(r.stdout)
      const suites = parseJunit(r.stdout)
      expect(suites).toHaveLength(1)
      const suite = suites[0]!
      expect(suite).toMatchObject({
        '@_name': ws.path('hostile/h.sqlite'),
        '@_tests': '2',
        '@_failures': '2',
      })
      expect(suite.testcase).toHaveLength(2)
      expect(suite.testcase.map((t) => t['@_name'].split(' ').at(-1)).sort()).toEqual([...hostileIds].sort())
      for (const t of suite.testcase) {
        expect(t.failure?.['@_message']).toBe('diverged at stage mangle')
        expect(t.failure?.['@_type']).toBe('diverged')
        // The escaped markup comes back as text, so the report says what the payload held.
        expect(t.failure?.['#text']).toContain(']]>')
        expect(t.failure?.['#text']).toContain('<b>&amp;</b>')
        expect(t.failure?.['#text']).toContain('<local>')
      }
      const named = suite.testcase.find((t) => t['@_name'].startsWith('key'))!
      expect(named['@_name']).toContain(']]><&"\'')
    })

    it('lists passing records as testcases too', async () => {
      const r = await cli('test', 'recordings', '--reporter', 'junit')
      expect(r.code).toBe(0)
      expectWellFormed(r.stdout)
      const [suite] = parseJunit(r.stdout)
      expect(suite!['@_tests']).toBe(String(RECORDS))
      expect(suite!['@_failures']).toBe('0')
      expect(suite!.testcase.every((t) => t.failure === undefined)).toBe(true)
      expect(junitIds(r.stdout).sort()).toEqual([...ids].sort())
    })
  })

  describe('--output', () => {
    it('writes the report to the file, not stdout, and says so on stderr', async () => {
      const file = ws.path('reports-junit.xml')
      const r = await cli(
        'test',
        'hostile',
        '--config',
        'hostile.config.mjs',
        '--reporter',
        'junit',
        '--output',
        file,
      )
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(`report written to ${file}`)
      const xml = readFileSync(file, 'utf8')
      expectWellFormed(xml)
      expect(junitIds(xml).sort()).toEqual([...hostileIds].sort())
      const json = ws.path('report.json')
      const j = await cli('test', 'recordings', '--reporter', 'json', '--output', json)
      expect(j.code).toBe(0)
      expect(j.stdout).toBe('')
      expect((JSON.parse(readFileSync(json, 'utf8')) as JsonReport).summary.records).toBe(RECORDS)
    })
  })

  describe('--output where the folder is missing or named', () => {
    it('makes the missing folders and writes the report (the README example)', async () => {
      const r = await cli(
        'test',
        'recordings',
        '--reporter',
        'junit',
        '--output',
        'new-reports/ci/retrace.xml',
      )
      expect(r.code).toBe(0)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain('report written to new-reports/ci/retrace.xml')
      const xml = readFileSync(ws.path('new-reports/ci/retrace.xml'), 'utf8')
      expectWellFormed(xml)
      expect(junitIds(xml).sort()).toEqual([...ids].sort())
    })

    it('writes retrace.xml, .json or .txt by reporter into a folder it is given', async () => {
      mkdirSync(ws.path('existing-reports'))
      const [junit, json, text] = await Promise.all([
        cli('test', 'recordings', '--reporter', 'junit', '--output', 'existing-reports'),
        cli('test', 'recordings', '--reporter', 'json', '--output', 'made-reports/'),
        cli('test', 'recordings', '--output', 'existing-reports/'),
      ])
      expect([junit.code, json.code, text.code]).toEqual([0, 0, 0])
      expect(junit.stderr).toContain('report written to existing-reports/retrace.xml')
      expectWellFormed(readFileSync(ws.path('existing-reports/retrace.xml'), 'utf8'))
      expect(
        (JSON.parse(readFileSync(ws.path('made-reports/retrace.json'), 'utf8')) as JsonReport).summary
          .records,
      ).toBe(RECORDS)
      expect(readFileSync(ws.path('existing-reports/retrace.txt'), 'utf8')).toContain(
        `${RECORDS} records tested`,
      )
    })

    it('a path that cannot be written fails at once, in one line, before the config is loaded', async () => {
      ws.write('a-file', 'not a folder')
      // The config does not exist: were the path checked after the run, this would be exit 3.
      const [under, folder] = await Promise.all([
        cli('test', 'recordings', '--config', 'no-such.config.mjs', '--output', 'a-file/retrace.xml'),
        cli('test', 'recordings', '--reporter', 'junit', '--output', 'recordings/a.sqlite/x.xml'),
      ])
      expect(expectUsageFailure(under)).toBe(
        `retrace: cannot write ${ws.path('a-file/retrace.xml')}: a part of the path is a file, not a folder`,
      )
      expect(expectUsageFailure(folder)).toContain('a part of the path is a file, not a folder')
    })
  })

  describe('--shard', () => {
    it('i/n split the records: disjoint, together all of them, the same on every run', async () => {
      const run = async (shard: string): Promise<string[]> => {
        const r = await cli('test', 'recordings', '--reporter', 'junit', '--shard', shard)
        expect(r.code).toBe(0)
        return junitIds(r.stdout).sort()
      }
      const one = await run('1/2')
      const two = await run('2/2')
      expect(one.length).toBeGreaterThan(0)
      expect(two.length).toBeGreaterThan(0)
      expect(one.filter((id) => two.includes(id))).toEqual([])
      expect([...one, ...two].sort()).toEqual([...ids].sort())
      expect(await run('1/2')).toEqual(one)
      expect(await run('2/2')).toEqual(two)
      // A split in three partitions them as well, and the counts add up in the summary.
      const thirds = await Promise.all(['1/3', '2/3', '3/3'].map(run))
      expect(thirds.flat().sort()).toEqual([...ids].sort())
      const sums = await Promise.all(
        ['1/3', '2/3', '3/3'].map(
          async (s) =>
            parseReport(await cli('test', 'recordings', '--reporter', 'json', '--shard', s)).summary.records,
        ),
      )
      expect(sums).toEqual(thirds.map((t) => t.length))
    })
  })

  describe('--update', () => {
    it('re-pins the failing stages from the local build; the next run passes', async () => {
      const bundle = copyOfA()
      const r = await cliEnv(noCi, 'test', bundle, '--config', 'v2.config.mjs', '--update')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`updated ${RECORDS * 2} expectations from the local build`)
      // The summary says what was done, and the exit code agrees with it.
      expect(r.stdout).toMatch(
        new RegExp(`\\n${RECORDS} records tested, 0 matched, 0 diverged, 0 errors, ${RECORDS} updated\\n$`),
      )
      expect(r.stdout).toContain('updated: re-pinned from the local build')
      const pinned = expectations(bundle)
      // compute diverged and format inherited: both re-pinned, parse (matched) not.
      expect(pinned).toHaveLength(RECORDS * 2)
      expect(new Set(pinned.map((p) => p.stage))).toEqual(new Set(['compute', 'format']))
      expect(new Set(pinned.map((p) => p.note))).toEqual(new Set(['retrace test --update']))
      const again = await cliEnv(noCi, 'test', bundle, '--config', 'v2.config.mjs')
      expect(again.code).toBe(0)
      expect(again.stdout).toContain(`${RECORDS} records tested, ${RECORDS} matched, 0 diverged, 0 errors`)
      // The old build now fails against the new expectations.
      const old = await cliEnv(noCi, 'test', bundle)
      expect(old.code).toBe(1)
      expect(old.stdout).toContain('~ $.available 9 → 10')
    })

    it('is refused in CI (exit 2, nothing pinned) unless --force', async () => {
      const bundle = copyOfA()
      for (const ci of ['1', 'true']) {
        const r = await cliEnv({ CI: ci }, 'test', bundle, '--config', 'v2.config.mjs', '--update')
        expect(expectUsageFailure(r)).toMatch(/^retrace: refusing --update in CI/)
        expect(expectations(bundle)).toEqual([])
      }
      const forced = await cliEnv({ CI: '1' }, 'test', bundle, '--config', 'v2.config.mjs', '-u', '--force')
      expect(forced.code).toBe(0)
      expect(expectations(bundle)).toHaveLength(RECORDS * 2)
    })

    it('pins nothing when everything passes', async () => {
      const bundle = copyOfA()
      const r = await cliEnv(noCi, 'test', bundle, '--update')
      expect(r.code).toBe(0)
      expect(r.stdout).not.toContain('updated ')
      expect(r.stdout).toContain(
        `${RECORDS} records tested, ${RECORDS} matched, 0 diverged, 0 errors, 0 updated`,
      )
      expect(expectations(bundle)).toEqual([])
    })

    it('a failure re-pinning cannot mend (an invariant the local build breaks) still fails: exit 1, as the summary says', async () => {
      ws.write(
        'v2-invariant.config.mjs',
        `export default { stages: ${JSON.stringify({ ...stages, compute: './stages/compute-v2.mjs#compute' })}, invariants: ['compute.output.available >= 10'] }\n`,
      )
      // Production's available is at least 10 everywhere; the off-by-one build gives 9 for records 0-2.
      const broken = [ids[0], ids[1], ids[2]].sort()
      // Each run re-pins into a copy of its own.
      const run = (...more: string[]): Promise<CliResult> =>
        cliEnv(noCi, 'test', copyOfA(), '--config', 'v2-invariant.config.mjs', '--update', ...more)
      const [h, jsonRun, junit] = await Promise.all([
        run(),
        run('--reporter', 'json'),
        run('--reporter', 'junit'),
      ])
      expect(h.code).toBe(1)
      expect(h.stdout).toMatch(
        new RegExp(
          `\\n${RECORDS} records tested, 0 matched, 3 diverged, 0 errors, ${RECORDS - 3} updated\\n$`,
        ),
      )
      expect([jsonRun.code, junit.code]).toEqual([1, 1])
      const j = parseReport(jsonRun)
      expect(j.summary).toEqual({
        records: RECORDS,
        matched: 0,
        diverged: 3,
        errors: 0,
        updated: RECORDS - 3,
      })
      const failures = j.bundles[0]!.failures
      expect(
        failures
          .filter((f) => f.updated !== true)
          .map((f) => f.recordId)
          .sort(),
      ).toEqual(broken)
      expect(failures.filter((f) => f.updated === true)).toHaveLength(RECORDS - 3)
      const x = junit.stdout
      expectWellFormed(x)
      const [suite] = parseJunit(x)
      expect(suite!['@_failures']).toBe('3')
      expect(
        suite!.testcase
          .filter((t) => t.failure !== undefined)
          .map((t) => t['@_name'].split(' ').at(-1))
          .sort(),
      ).toEqual(broken)
      expect(suite!.testcase).toHaveLength(RECORDS)
    })
  })

  describe('bundles deep in folders', () => {
    it('finds a bundle twelve folders down, beside one at the top', async () => {
      const top = ws.path(`deep${++n}`)
      const deep = `${top}/${Array.from({ length: 12 }, (_, i) => `d${i + 1}`).join('/')}`
      mkdirSync(deep, { recursive: true })
      copyFileSync(ws.path('recordings/a.sqlite'), `${top}/ok.sqlite`)
      copyFileSync(ws.path('recordings/a.sqlite'), `${deep}/a.sqlite`)
      const r = await cli('test', top, '--config', 'v2.config.mjs', '--reporter', 'json')
      expect(r.code).toBe(1)
      const j = parseReport(r)
      expect(j.bundles.map((b) => b.path)).toEqual([`${deep}/a.sqlite`, `${top}/ok.sqlite`])
      expect(j.summary).toMatchObject({ records: RECORDS * 2, diverged: RECORDS * 2 })
    })
  })

  describe('--update with a failure a pin cannot mend', () => {
    it('an effect the local build calls differently: not pinned, not updated, counted as an error (exit 1)', async () => {
      ws.write(
        'prod/rate.mjs',
        `export async function rate(row, ctx) {
  return { ...row, rate: await ctx.effect('fx.rate', { sku: row.sku }, async () => 2) }
}
`,
      )
      ws.write(
        'stages/rate-v2.mjs',
        `export async function rate(row, ctx) {
  return { ...row, rate: await ctx.effect('fx.rate.v2', { sku: row.sku }, async () => 2) }
}
`,
      )
      ws.write('rate.config.mjs', configOf({ rate: './stages/rate-v2.mjs#rate' }))
      const dir = ws.path(`fx${++n}`)
      mkdirSync(dir)
      const rate = [['rate', await importStage(ws.path('prod/rate.mjs'), 'rate')]] as const
      await record(`${dir}/e.sqlite`, async (recorder) => {
        for (const sku of ['sku:1', 'sku:2']) await runChain(recorder, sku, { sku }, rate)
      })
      const u = await cliEnv(noCi, 'test', dir, '--config', 'rate.config.mjs', '--update')
      expect(u.stdout).toMatch(/\n2 records tested, 0 matched, 0 diverged, 2 errors, 0 updated\n$/)
      expect(u.stdout).not.toContain('updated: re-pinned')
      expect(u.code).toBe(1)
      expect(expectations(`${dir}/e.sqlite`)).toEqual([])
      const again = await cliEnv(noCi, 'test', dir, '--config', 'rate.config.mjs')
      expect(again.code).toBe(1)
    })
  })

  describe('--update with a read-only bundle', () => {
    it('reports that bundle with its failures and goes on pinning the others: exit 1', async () => {
      const dir = ws.path(`ro${++n}`)
      mkdirSync(dir)
      for (const name of ['a', 'b', 'c'])
        copyFileSync(ws.path('recordings/a.sqlite'), `${dir}/${name}.sqlite`)
      chmodSync(`${dir}/b.sqlite`, 0o444)
      const before = readFileSync(`${dir}/b.sqlite`)
      const [h, jsonRun] = [
        await cliEnv(noCi, 'test', dir, '--config', 'v2.config.mjs', '--update'),
        await cliEnv(noCi, 'test', dir, '--config', 'v2.config.mjs', '--update', '--reporter', 'json'),
      ]
      expect(h.code).toBe(1)
      expect(h.stderr).toBe('')
      expect(h.stdout).toMatch(
        /✗ ro\d+\/b\.sqlite .*\n {4}not updated: .*b\.sqlite is read-only; make it writable/,
      )
      expect(h.stdout).toMatch(
        new RegExp(
          `\\n${RECORDS * 3} records tested, 0 matched, ${RECORDS} diverged, 0 errors, ${RECORDS * 2} updated\\n$`,
        ),
      )
      expect(expectations(`${dir}/a.sqlite`)).toHaveLength(RECORDS * 2)
      expect(expectations(`${dir}/c.sqlite`)).toHaveLength(RECORDS * 2)
      expect(readFileSync(`${dir}/b.sqlite`).equals(before)).toBe(true)
      // The second run: a and c now pass on their pins; b still fails, and says why.
      expect(jsonRun.code).toBe(1)
      const j = parseReport(jsonRun)
      expect(j.summary).toEqual({
        records: RECORDS * 3,
        matched: RECORDS * 2,
        diverged: RECORDS,
        errors: 0,
        updated: 0,
      })
      expect(j.bundles.map((b) => b.notUpdated === undefined)).toEqual([true, false, true])
      expect(j.bundles[1]!.notUpdated).toMatch(/read-only/)
    })
  })

  describe('--update with a bundle another process is writing', () => {
    it('reports that bundle with its failures and goes on pinning the others: exit 1', async () => {
      const dir = ws.path(`busy${++n}`)
      mkdirSync(dir)
      for (const name of ['a', 'b']) copyFileSync(ws.path('recordings/a.sqlite'), `${dir}/${name}.sqlite`)
      const r = await holdingWriteLock(`${dir}/a.sqlite`, () =>
        cliEnv(noCi, 'test', dir, '--config', 'v2.config.mjs', '--update'),
      )
      expect(r.code).toBe(1)
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(
        /✗ busy\d+\/a\.sqlite .*\n {4}not updated: .*a\.sqlite is being written by another process/,
      )
      expect(r.stdout).toMatch(
        new RegExp(
          `\\n${RECORDS * 2} records tested, 0 matched, ${RECORDS} diverged, 0 errors, ${RECORDS} updated\\n$`,
        ),
      )
      expect(expectations(`${dir}/a.sqlite`)).toEqual([])
      expect(expectations(`${dir}/b.sqlite`)).toHaveLength(RECORDS * 2)
    })
  })

  describe('stale', () => {
    it('lists records whose stage is gone from the config, and expectations never exercised', async () => {
      const bundle = copyOfA()
      // An expectation for a stage record 0 never ran, and one for format on record 1,
      // which the partial config no longer runs.
      pinExpectations(
        bundle,
        [
          {
            recordId: ids[0]!,
            stage: 'ghost',
            output: '1',
            error: null,
            note: 'old',
            build: null,
            acceptedAt: 1,
          },
          {
            recordId: ids[1]!,
            stage: 'format',
            output: '{"sku":"sku:1001","display":"10 in stock"}',
            error: null,
            note: 'old',
            build: null,
            acceptedAt: 1,
          },
        ],
        'test',
      )
      const full = parseReport(await cli('test', bundle, '--reporter', 'json'))
      expect(full.stale).toEqual([
        { bundle, recordId: ids[0], stage: 'ghost', why: 'expectation never exercised' },
      ])
      expect(full.summary.matched).toBe(RECORDS)

      const r = await cli('test', bundle, '--config', 'partial.config.mjs', '--reporter', 'json')
      const doc = parseReport(r)
      const notInConfig = doc.stale.filter((s) => s.why === 'stage not in config')
      expect(notInConfig.map((s) => s.recordId).sort()).toEqual([...ids].sort())
      expect(new Set(notInConfig.map((s) => s.stage))).toEqual(new Set(['format']))
      const neverRun = doc.stale.filter((s) => s.why === 'expectation never exercised')
      expect(neverRun.map((s) => [s.recordId, s.stage]).sort()).toEqual(
        [
          [ids[0], 'ghost'],
          [ids[1], 'format'],
        ].sort(),
      )
      expect(doc.stale).toHaveLength(RECORDS + 2)
      // Stale is reported, not failed: the stages that do run still match.
      expect(r.code).toBe(0)
      const human = await cli('test', bundle, '--config', 'partial.config.mjs')
      expect(human.stdout).toContain(`stale: ${RECORDS + 2}`)
      expect(human.stdout).toContain(`${ids[0]} ghost: expectation never exercised`)
      expect(human.stdout).toMatch(/ format: stage not in config/)
    })
  })

  it('a record that passes with every stage skipped is listed as stale: nothing was replayed', async () => {
    // The config runs none of the recorded stages: each record "matches" having checked nothing.
    const r = await cli('test', 'recordings/a.sqlite', '--config', 'hostile.config.mjs', '--reporter', 'json')
    expect(r.code).toBe(0)
    const doc = parseReport(r)
    const nothing = doc.stale.filter((s) => s.why === 'nothing replayed')
    expect(nothing.map((s) => s.recordId).sort()).toEqual([...ids].sort())
    expect(new Set(nothing.map((s) => s.stage))).toEqual(new Set(['parse']))
    // A run where the stages do run lists none.
    const full = parseReport(await cli('test', 'recordings/a.sqlite', '--reporter', 'json'))
    expect(full.stale.filter((s) => s.why === 'nothing replayed')).toEqual([])
  })

  it('leaves the recordings as they were (a read-only run writes nothing)', () => {
    expect(existsSync(ws.path('recordings/a.sqlite-journal'))).toBe(false)
    expect(existsSync(ws.path('recordings/a.sqlite-wal'))).toBe(false)
    expect(expectations(ws.path('recordings/a.sqlite'))).toEqual([])
  })
})
