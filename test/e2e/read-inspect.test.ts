/** `retrace inspect` and `retrace doctor` as a user runs them. */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  expectUsageFailure,
  makeSampleBundle,
  parseJsonOut,
  runCli,
  SAMPLE_T0,
  type SampleBundle,
  sharedTempDir,
} from '../helpers/cli.js'

interface InspectJson {
  path: string
  sizeBytes: number
  formatVersion: number
  manifest: {
    format: string
    formatVersion: number
    pipeline: string | null
    recorderVersion: string
    created: string
    builds: string[]
    redaction: { rules: string[]; equalityPreserving: boolean }
  }
  records: number
  captures: number
  effects: number
  expectations: number
  firstRecordAt: number | null
  lastRecordAt: number | null
  stages: { stage: string; captures: number; errors: number }[]
  statuses: { status: string; records: number }[]
}

const dir = sharedTempDir('retrace-e2e-inspect-')
let s: SampleBundle

beforeAll(async () => {
  s = await makeSampleBundle(join(dir(), 'inspect.sqlite'))
  expect(s.recorderErrors).toEqual([])
})

describe('retrace inspect', () => {
  it('--json: manifest, format version, counts, time range, stages, builds, size, redaction rules', async () => {
    const r = await runCli(['inspect', s.path, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const v = parseJsonOut<InspectJson>(r)
    expect(v.path).toBe(s.path)
    expect(v.sizeBytes).toBe(statSync(s.path).size)
    expect(v.formatVersion).toBe(1)
    expect(v.manifest).toMatchObject({
      format: 'retrace-bundle',
      formatVersion: 1,
      pipeline: 'orders',
      builds: ['build-abc123'],
      redaction: { equalityPreserving: false },
    })
    expect(v.manifest.redaction.rules).toContain('$.card')
    expect(Number.isNaN(Date.parse(v.manifest.created))).toBe(false)
    // 6 records: 5 went parse -> price -> store (one price retried), one stopped after parse.
    expect(v.records).toBe(6)
    expect(v.captures).toBe(17)
    // price: one kv.get per attempt (6); store: now() and db.put (2 x 5).
    expect(v.effects).toBe(16)
    expect(v.expectations).toBe(0)
    expect(v.firstRecordAt).toBe(SAMPLE_T0)
    expect(v.lastRecordAt).toBe(SAMPLE_T0 + 5 * 60_000)
    expect(v.stages).toEqual([
      { stage: 'parse', captures: 6, errors: 0 },
      { stage: 'price', captures: 6, errors: 1 },
      { stage: 'store', captures: 5, errors: 1 },
    ])
    expect([...v.statuses].sort((x, y) => x.status.localeCompare(y.status))).toEqual([
      { status: 'error', records: 1 },
      { status: 'ok', records: 5 },
    ])
  })

  it('prints the same for people', async () => {
    const r = await runCli(['inspect', s.path])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = r.stdout
    expect(out).toContain(`bundle    ${s.path} (`)
    expect(out).toMatch(/^format {4}retrace bundle v1, recorder \S+, created \S+$/m)
    expect(out).toMatch(/^pipeline {2}orders$/m)
    expect(out).toMatch(/^builds {4}build-abc123$/m)
    expect(out).toMatch(/^records {3}6 \(1 error, 5 ok\), 17 captures, 16 effects, 0 expectations$/m)
    expect(out).toMatch(/^time {6}2026-01-10 12:00:00\.000Z \.\. 2026-01-10 12:05:00\.000Z$/m)
    expect(out).toMatch(/^redaction \$\.card/m)
    expect(out).toMatch(/^ {2}price +6 captures, 1 error$/m)
    expect(out).toMatch(/^ {2}parse +6 captures$/m)
  })

  it('needs a bundle', async () => {
    expect(expectUsageFailure(await runCli(['inspect']))).toContain('Missing 1 required arg')
  })
})

describe('retrace doctor', () => {
  it('exits 0 and says SQLite works', async () => {
    const r = await runCli(['doctor'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^retrace \S+ on node v\d+/)
    expect(r.stdout).toContain('✓ better-sqlite3 loads; SQLite 3.')
  })

  it('--json reports ok: true with the versions', async () => {
    const r = await runCli(['doctor', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const json = parseJsonOut<{
      ok: boolean
      node: string
      platform: string
      sqlite: { ok: boolean; json: boolean; sqliteVersion: string }
      fix: string | null
    }>(r)
    expect(json).toMatchObject({
      ok: true,
      node: process.version,
      fix: null,
      sqlite: { ok: true, json: true },
    })
    expect(json.platform).toBe(`${process.platform}-${process.arch}`)
    expect(json.sqlite.sqliteVersion).toMatch(/^3\.\d+\.\d+$/)
  })
})
