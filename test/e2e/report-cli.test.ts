/**
 * `retrace report` as a user runs it, without a browser: where the file goes, --json,
 * the exit codes, and the report without a config. The page itself is tested in a real
 * Chromium in report-browser.test.ts.
 */
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  expectUsageFailure,
  listDir,
  makeSampleBundle,
  makeTypedBundle,
  parseJsonOut,
  repoRoot,
  runCli,
  type SampleBundle,
  sharedTempDir,
} from '../helpers/cli.js'

const example = join(repoRoot, 'recordings', 'inventory.sqlite')
const exampleConfig = join(repoRoot, 'examples', 'inventory', 'retrace.config.ts')
const dir = sharedTempDir('retrace-e2e-report-')
let sample: SampleBundle

beforeAll(async () => {
  sample = await makeSampleBundle(join(dir(), 'orders.sqlite'))
})

describe('retrace report', () => {
  it('writes retrace-report-<record>.html in the working directory and returns {path, recordId} with --json', async () => {
    const cwd = join(dir(), 'json')
    mkdirSync(cwd)
    const r = await runCli(['report', example, '--key', 'sku:1001', '--config', exampleConfig, '--json'], {
      cwd,
    })
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<{ path: string; recordId: string }>(r)
    expect(Object.keys(doc).sort()).toEqual(['path', 'recordId'])
    expect(doc.recordId).toMatch(/^[0-9A-Z]{26}$/)
    expect(doc.path).toBe(join(cwd, `retrace-report-${doc.recordId}.html`))
    expect(listDir(cwd)).toEqual([`retrace-report-${doc.recordId}.html`])
    // The example's bad record diverges and breaks an invariant in production: exit 1.
    expect(r.code).toBe(1)
    const page = readFileSync(doc.path, 'utf8')
    expect(page).toContain('compute diverged: production recorded 87, the local build gives 4')
  })

  it('without a config found or given, writes the recorded scene alone and exits 0', async () => {
    const rec = sample.records[1]!
    const out = join(dir(), 'bare.html')
    const r = await runCli(['report', sample.path, rec.id.slice(0, 20), '-o', out], { cwd: dir() })
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(`wrote bare.html\n`)
    expect(r.code).toBe(0)
    const page = readFileSync(out, 'utf8')
    expect(page).toContain('Recorded scene only: this record was not replayed')
    expect(page).toContain(rec.id)
    expect(page).toContain('attempt 2 (retry)')
    expect(page).toContain('changed in transit')
  })

  it('needs exactly one of RECORD and --key', async () => {
    const both = await runCli(['report', sample.path, sample.records[0]!.id, '--key', 'sku:1001'], {
      cwd: dir(),
    })
    expect(expectUsageFailure(both)).toContain('not both')
    const none = await runCli(['report', sample.path], { cwd: dir() })
    expect(expectUsageFailure(none)).toBe('retrace: name a record: give a RECORD id (or prefix) or --key KEY')
  })

  it('fails with exit 2 and one line when the output cannot be written', async () => {
    writeFileSync(join(dir(), 'a-file'), 'not a folder')
    const out = join(dir(), 'a-file', 'r.html')
    const r = await runCli(['report', sample.path, '--key', 'sku:2002', '-o', out], { cwd: dir() })
    expect(expectUsageFailure(r)).toBe(
      `retrace: cannot write ${out}: a part of the path is a file, not a folder`,
    )
    expect(existsSync(out)).toBe(false)
  })

  it('-o never writes over a bundle: the input (by any name) or another SQLite file; test --output neither', async () => {
    const folder = join(dir(), 'over')
    mkdirSync(folder)
    const bundle = join(folder, 'orders.sqlite')
    copyFileSync(sample.path, bundle)
    symlinkSync(bundle, join(folder, 'latest'))
    linkSync(bundle, join(folder, 'hard-link'))
    copyFileSync(sample.path, join(folder, 'other.db'))
    const before = readFileSync(bundle)
    const rec = sample.records[1]!.id
    const runs = await Promise.all(
      ['orders.sqlite', './orders.sqlite', 'latest', 'hard-link', 'other.db'].map((o) =>
        runCli(['report', bundle, rec, '-o', o], { cwd: folder }),
      ),
    )
    const says = runs.map((r) => expectUsageFailure(r))
    expect(says.slice(0, 4)).toEqual(
      ['orders.sqlite', './orders.sqlite', 'latest', 'hard-link'].map(
        (o) => `retrace: cannot write ${o}: it is the input bundle, which the report would overwrite`,
      ),
    )
    expect(says[4]).toBe(
      'retrace: cannot write other.db: it is a SQLite file (a bundle?), which the report would overwrite',
    )
    // The JUnit report of `test` the same: refused before the config is looked for.
    const test = await runCli(['test', bundle, '--reporter', 'junit', '--output', 'latest'], { cwd: folder })
    expect(expectUsageFailure(test)).toBe(
      'retrace: cannot write latest: it is the input bundle, which the report would overwrite',
    )
    expect(readFileSync(bundle).equals(before)).toBe(true)
    expect(readFileSync(join(folder, 'other.db')).equals(before)).toBe(true)
    // An HTML file there before is written over, as -o always did.
    writeFileSync(join(folder, 'old.html'), 'old')
    const html = await runCli(['report', bundle, rec, '-o', 'old.html'], { cwd: folder })
    expect(html.code).toBe(0)
    expect(readFileSync(join(folder, 'old.html'), 'utf8')).toContain(rec)
  })

  it('-o makes missing folders, and a folder gets retrace-report-<record>.html, as extract names its file', async () => {
    const rec = sample.records[1]!
    const nested = join(dir(), 'made', 'for', 'it.html')
    const folder = join(dir(), 'into')
    mkdirSync(folder)
    const [made, into, slash] = await Promise.all([
      runCli(['report', sample.path, rec.id, '-o', nested], { cwd: dir() }),
      runCli(['report', sample.path, rec.id, '-o', folder, '--json'], { cwd: dir() }),
      runCli(['report', sample.path, rec.id, '-o', 'new-folder/'], { cwd: dir() }),
    ])
    expect([made.code, into.code, slash.code]).toEqual([0, 0, 0])
    expect(readFileSync(nested, 'utf8')).toContain(rec.id)
    expect(parseJsonOut<{ path: string }>(into).path).toBe(join(folder, `retrace-report-${rec.id}.html`))
    expect(listDir(folder)).toEqual([`retrace-report-${rec.id}.html`])
    expect(slash.stdout).toBe(`wrote new-folder/retrace-report-${rec.id}.html\n`)
    expect(listDir(join(dir(), 'new-folder'))).toEqual([`retrace-report-${rec.id}.html`])
  })
})

describe('retrace report: typed values', () => {
  it('expanded payloads show 5102n, Date(...), Set [...], Map {...} and undefined, never a tag', async () => {
    const t = await makeTypedBundle(join(dir(), 'typed.sqlite'))
    const out = join(dir(), 'typed.html')
    const r = await runCli(['report', t.path, t.second, '-o', out], { cwd: dir() })
    expect(r.code).toBe(0)
    const page = readFileSync(out, 'utf8')
    // Everything before the JSON data block is what people read.
    const shown = page.slice(0, page.indexOf('<script type="application/json"'))
    expect(shown).toContain('&quot;subtotalCents&quot;: 5102n')
    expect(shown).toContain('&quot;receivedAt&quot;: Date(2026-01-10T12:01:00.000Z)')
    expect(shown).toContain('&quot;tags&quot;: Set [')
    expect(shown).toContain('&quot;unit&quot;: Map {')
    expect(shown).toContain('&quot;blob&quot;: undefined')
    expect(shown).not.toContain('$t')
  })
})
