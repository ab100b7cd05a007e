import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { APPLICATION_ID, FORMAT_VERSION, PAGE_SIZE } from '../../src/bundle/schema.js'
import type { RecordUnit } from '../../src/bundle/types.js'
import { BundleWriter, type WriterOptions } from '../../src/bundle/writer.js'
import { BundleError } from '../../src/errors.js'
import { integrityCheck, okRecord, readBundle, withDb } from '../helpers/bundle-db.js'
import { tempPath } from '../helpers/tmp.js'

const options = (build = 'b1'): WriterOptions => ({
  manifest: {
    pipeline: 'inventory',
    recorderVersion: '0.0.0-test',
    builds: [build],
    redaction: { rules: ['defaults'], equalityPreserving: false },
  },
})

function unit(id: string, build: string | null = 'b1', captures = 2): RecordUnit {
  return {
    record: okRecord(id, build),
    captures: Array.from({ length: captures }, (_, seq) => ({
      seq,
      stage: `stage${seq}`,
      attempt: 1,
      input: JSON.stringify({ seq }),
      output: '1',
      error: null,
      startedAt: 1000 + seq,
      durationMs: 0.5,
      effects: [{ seq: 0, kind: 'now' as const, name: 'now', args: null, result: '1000', error: null }],
    })),
  }
}

function openWriter(path: string, opts = options()): BundleWriter {
  return BundleWriter.open(path, opts)
}

describe('BundleWriter', () => {
  it('creates a bundle with its identity, page size, WAL and manifest', () => {
    const path = tempPath()
    const writer = openWriter(path)
    try {
      withDb(path, (db) => {
        expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID)
        expect(db.pragma('user_version', { simple: true })).toBe(FORMAT_VERSION)
        expect(db.pragma('page_size', { simple: true })).toBe(PAGE_SIZE)
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      })
    } finally {
      writer.close()
    }
    const { manifest } = readBundle(path)
    expect(manifest).toMatchObject({
      format: 'retrace-bundle',
      formatVersion: FORMAT_VERSION,
      pipeline: 'inventory',
      builds: ['b1'],
      redaction: { rules: ['defaults'], equalityPreserving: false },
    })
    expect(Number.isNaN(Date.parse(manifest.created as string))).toBe(false)
  })

  it('writes records, captures and effects, and a batch lands whole or not at all', () => {
    const path = tempPath()
    const writer = openWriter(path)
    writer.write([unit('r1'), unit('r2', 'b2')])
    const broken = unit('r4')
    // Two effects with the same seq violate the effects primary key.
    broken.captures[1]!.effects.push({ ...broken.captures[1]!.effects[0]! })
    expect(() => writer.write([unit('r3'), broken])).toThrow()
    writer.write([])
    writer.close()

    const { records, captures, manifest } = readBundle(path)
    expect(records.map((r) => r.id)).toEqual(['r1', 'r2'])
    expect(captures).toHaveLength(4)
    expect(captures.every((c) => c.effects.length === 1)).toBe(true)
    expect(captures.find((c) => c.record_id === 'r2')!.build).toBe('b2')
    expect(manifest.builds).toEqual(['b1', 'b2'])
  })

  it('still records a new build in the manifest after a batch carrying it was rolled back', () => {
    const path = tempPath()
    const writer = openWriter(path)
    const broken = unit('r2', 'b3')
    broken.captures[0]!.effects.push({ ...broken.captures[0]!.effects[0]! })
    expect(() => writer.write([unit('r1', 'b3'), broken])).toThrow()
    expect(readBundle(path).manifest.builds).toEqual(['b1'])
    writer.write([unit('r3', 'b3')])
    writer.close()
    expect(readBundle(path).manifest.builds).toEqual(['b1', 'b3'])
  })

  it('appends to an existing bundle, keeping its manifest and merging builds', () => {
    const path = tempPath()
    const first = openWriter(path)
    first.write([unit('r1')])
    first.close()
    const created = readBundle(path).manifest.created

    const second = openWriter(path, options('b9'))
    second.write([unit('r2', 'b9')])
    second.close()
    const { records, manifest } = readBundle(path)
    expect(records.map((r) => r.id)).toEqual(['r1', 'r2'])
    expect(manifest.created).toBe(created)
    expect(manifest.builds).toEqual(['b1', 'b9'])
  })

  it('updates a record continued under the same id instead of failing', () => {
    const path = tempPath()
    const writer = openWriter(path)
    writer.write([unit('same')])
    const later = unit('same')
    later.record.endedAt = 2000
    later.record.status = 'error'
    later.record.error = '{"message":"x"}'
    writer.write([later])
    writer.close()
    const { records, captures } = readBundle(path)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ ended_at: 2000, status: 'error' })
    expect(captures).toHaveLength(4)
    // The later part's captures come after the earlier part's, in the order they ran.
    expect(captures.map((c) => c.seq)).toEqual([0, 1, 2, 3])
  })

  it('keeps a record that failed in one part failed when a later part ends well', () => {
    const path = tempPath()
    const writer = openWriter(path)
    const first = unit('same')
    first.record.status = 'error'
    first.record.error = '{"message":"front failed"}'
    first.record.endedAt = 3000
    writer.write([first])
    const later = unit('same')
    later.record.endedAt = 2500
    writer.write([later])
    writer.close()
    expect(readBundle(path).records[0]).toMatchObject({
      status: 'error',
      error: '{"message":"front failed"}',
      ended_at: 3000,
    })
  })

  it('close() checkpoints into one file that passes integrity_check', () => {
    const path = tempPath()
    const writer = openWriter(path)
    for (let i = 0; i < 50; i++) writer.write([unit(`r${i}`)])
    expect(existsSync(`${path}-wal`)).toBe(true)
    writer.close()
    writer.close()
    expect(existsSync(`${path}-wal`)).toBe(false)
    expect(existsSync(`${path}-shm`)).toBe(false)
    expect(integrityCheck(path)).toBe('ok')
    expect(readBundle(path).records).toHaveLength(50)
  })

  it('close() waits for a reader looking at the bundle just then, and still leaves one file', async () => {
    const path = tempPath()
    // A wait far longer than the reader stays, however loaded the machine.
    const writer = BundleWriter.open(path, { ...options(), closeWaitMs: 30_000 })
    writer.write([unit('r1')])
    // Another process reads the bundle (as verify --follow does for each look) and lets go
    // 200 ms later; SQLite refuses to leave WAL mode while it is there, and does not wait.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(process.argv[1], { readonly: true })
         db.prepare('SELECT count(*) FROM records').get()
         process.stdout.write('open\\n')
         setTimeout(() => db.close(), 200)`,
        path,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const exited = new Promise((resolve) => reader.on('close', resolve))
    await new Promise<void>((resolve) => reader.stdout.once('data', () => resolve()))
    writer.close()
    await exited
    expect(existsSync(`${path}-wal`)).toBe(false)
    expect(existsSync(`${path}-shm`)).toBe(false)
    expect(readBundle(path).records).toHaveLength(1)
  })

  it('pins expectations, replacing an earlier one for the same record and stage', () => {
    const path = tempPath()
    const writer = openWriter(path)
    const row = {
      recordId: 'r1',
      stage: 's',
      output: '1',
      error: null,
      note: 'first',
      build: 'b1',
      acceptedAt: 1,
    }
    writer.writeExpectations([row])
    writer.writeExpectations([{ ...row, output: '2', note: 'second', acceptedAt: 2 }])
    writer.close()
    withDb(path, (db) => {
      expect(db.prepare('SELECT record_id, stage, output, note FROM expectations').all()).toEqual([
        { record_id: 'r1', stage: 's', output: '2', note: 'second' },
      ])
    })
  })

  it('refuses a SQLite file of another application, and leaves it untouched', () => {
    const path = tempPath('other.sqlite')
    withDb(
      path,
      (db) => {
        db.exec('CREATE TABLE mine (x)')
      },
      false,
      true,
    )
    const caught = catchError(() => openWriter(path))
    expect(caught).toBeInstanceOf(BundleError)
    expect((caught as BundleError).code).toBe('E_NOT_BUNDLE')
    withDb(path, (db) => {
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual([
        'mine',
      ])
    })
  })

  it('refuses a bundle of a newer format', () => {
    const path = tempPath()
    openWriter(path).close()
    withDb(path, (db) => db.pragma(`user_version = ${FORMAT_VERSION + 1}`))
    const caught = catchError(() => openWriter(path))
    expect(caught).toBeInstanceOf(BundleError)
    expect((caught as BundleError).code).toBe('E_NEWER_FORMAT')
    expect((caught as Error).message).toContain('Upgrade retrace')
  })

  it('wraps a file that is not SQLite, or a path it cannot create, in a BundleError', () => {
    const text = tempPath('notes.txt')
    writeFileSync(text, 'x'.repeat(4096))
    const notDb = catchError(() => openWriter(text))
    expect(notDb).toBeInstanceOf(BundleError)
    expect((notDb as BundleError).code).toBe('E_BUNDLE_OPEN')

    const underFile = catchError(() => openWriter(`${text}/bundle.sqlite`))
    expect(underFile).toBeInstanceOf(BundleError)
    expect((underFile as BundleError).code).toBe('E_BUNDLE_OPEN')
    expect((underFile as Error).message).toContain('cannot open')
  })

  it("writes a rollback-journal file with journal: 'delete'", () => {
    const path = tempPath()
    const writer = BundleWriter.open(path, { ...options(), journal: 'delete' })
    writer.write([unit('r1')])
    expect(existsSync(`${path}-wal`)).toBe(false)
    writer.close()
    withDb(path, (db) => expect(db.pragma('journal_mode', { simple: true })).toBe('delete'))
  })
})

function catchError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
