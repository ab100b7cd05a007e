/**
 * The write side of a bundle: create or append, batched transactions, clean close.
 * Used by the recorder's writer thread, by `extract` and `accept`.
 */
import Database from 'better-sqlite3'
import { BundleError, ExitCode } from '../errors.js'
import { APPLICATION_ID, FORMAT_VERSION, type Manifest, PAGE_SIZE, SCHEMA_V1 } from './schema.js'
import type { ExpectationRow, RecordUnit, StoredText } from './types.js'

export interface WriterOptions {
  /** Manifest values for a new bundle; builds are merged into an existing one. */
  manifest: Omit<Manifest, 'format' | 'formatVersion' | 'created'> & { created?: string }
  /** Milliseconds to wait on a lock held by another writer. */
  busyTimeoutMs?: number
  /** WAL (default) for long-lived writers; 'delete' for one-shot files like extracts. */
  journal?: 'wal' | 'delete'
  /**
   * Milliseconds close() waits for the file to itself before leaving it in WAL mode
   * (default 250).
   */
  closeWaitMs?: number
  /**
   * Refuse an existing bundle whose manifest names other redaction rules or another pipeline
   * (the recorder's writer): its manifest would no longer say how what is added was written.
   */
  sameManifest?: boolean
}

type Db = Database.Database

/** Throws when the bundle's manifest names other redaction rules or another pipeline than `m`. */
function refuseOtherManifest(db: Db, path: string, m: WriterOptions['manifest']): void {
  const read = (key: string): unknown => {
    const text = db.prepare('SELECT value FROM manifest WHERE key = ?').pluck().get(key) as string | undefined
    try {
      return text === undefined ? undefined : (JSON.parse(text) as unknown)
    } catch {
      return undefined
    }
  }
  const redaction = read('redaction') as Partial<Manifest['redaction']> | undefined
  const rules = JSON.stringify(redaction?.rules ?? null)
  if (
    rules !== JSON.stringify(m.redaction.rules) ||
    redaction?.equalityPreserving !== m.redaction.equalityPreserving
  ) {
    const had = `${rules}${redaction?.equalityPreserving === true ? ' (equality-preserving)' : ''}`
    const has = `${JSON.stringify(m.redaction.rules)}${m.redaction.equalityPreserving ? ' (equality-preserving)' : ''}`
    throw new BundleError(
      'E_MANIFEST_MISMATCH',
      `${path} was written with redaction rules ${had}, this recorder redacts ${has}; refusing to add to it (its manifest would no longer say how its payloads were redacted): write to another path`,
    )
  }
  const pipeline = read('pipeline')
  if (
    typeof pipeline === 'string' &&
    pipeline !== '' &&
    typeof m.pipeline === 'string' &&
    m.pipeline !== '' &&
    pipeline !== m.pipeline
  ) {
    throw new BundleError(
      'E_MANIFEST_MISMATCH',
      `${path} holds pipeline ${JSON.stringify(pipeline)}, this recorder records ${JSON.stringify(m.pipeline)}; refusing to add to it: write to another path`,
    )
  }
}

/** Waited on (never signalled) for a synchronous pause: close() runs in the writer thread. */
const pause = new Int32Array(new SharedArrayBuffer(4))

/**
 * How long close() waits for the file to itself before leaving it in WAL mode: longer than
 * a look of `verify --follow` takes, short enough that a recorder sharing the file with
 * another (which keeps its connection) is not held up much.
 */
const defaultCloseWaitMs = 250

function applyPragmas(db: Db, fresh: boolean, journal: 'wal' | 'delete', busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`)
  if (fresh) {
    db.pragma(`application_id = ${APPLICATION_ID}`)
    db.pragma(`user_version = ${FORMAT_VERSION}`)
  }
  db.pragma(journal === 'wal' ? 'journal_mode = WAL' : 'journal_mode = DELETE')
  // NORMAL in WAL: a killed process loses nothing committed; power loss may lose the tail.
  db.pragma('synchronous = NORMAL')
  // Deleted content is zeroed so removed bytes do not linger in free pages.
  db.pragma('secure_delete = ON')
}

export class BundleWriter {
  private readonly insertRecord: Database.Statement
  private readonly nextSeq: Database.Statement
  private readonly renumber: Database.Statement
  private readonly insertCapture: Database.Statement
  private readonly insertEffect: Database.Statement
  private readonly upsertExpectation: Database.Statement
  private readonly writeUnits: (units: readonly RecordUnit<StoredText>[]) => string[]
  private readonly builds: Set<string>
  private closed = false

  private constructor(
    readonly path: string,
    private readonly db: Db,
    builds: string[],
    private readonly closeWaitMs: number,
  ) {
    this.builds = new Set(builds)
    this.insertRecord = db.prepare(
      `INSERT INTO records (id, key, started_at, ended_at, status, error, host, pid, build)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET started_at = min(started_at, excluded.started_at),
         ended_at = max(coalesce(ended_at, 0), coalesce(excluded.ended_at, 0)),
         status = CASE WHEN status = 'error' THEN status ELSE excluded.status END,
         error = CASE WHEN status = 'error' THEN error ELSE excluded.error END`,
    )
    // A record continued in this file (another process sharing it, `record(key, fn,
    // { recordId })`): its captures go after the ones already there, then the record's
    // captures are numbered in the order they ran. The part committed later may have run
    // first (its process flushed later); each part's own order breaks ties.
    this.nextSeq = db.prepare('SELECT max(seq) + 1 FROM captures WHERE record_id = ?').pluck()
    this.renumber = db.prepare(
      `UPDATE captures SET seq = ordered.n
       FROM (SELECT id, row_number() OVER (ORDER BY started_at, seq, id) - 1 AS n
             FROM captures WHERE record_id = ?) AS ordered
       WHERE captures.id = ordered.id AND captures.seq <> ordered.n`,
    )
    // Payload texts may come as their UTF-8 bytes (StoredText): CAST stores those bytes as
    // the TEXT they are, and leaves a string or NULL as it is.
    this.insertCapture = db.prepare(
      `INSERT INTO captures (record_id, seq, stage, attempt, input, output, error, started_at,
         duration_ms, build, host, pid)
       VALUES (?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?, ?, ?)`,
    )
    this.insertEffect = db.prepare(
      `INSERT INTO effects (capture_id, seq, kind, name, args, result, error)
       VALUES (?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))`,
    )
    this.upsertExpectation = db.prepare(
      `INSERT INTO expectations (record_id, stage, output, error, note, build, accepted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (record_id, stage) DO UPDATE SET output = excluded.output, error = excluded.error,
         note = excluded.note, build = excluded.build, accepted_at = excluded.accepted_at`,
    )
    const setManifest = db.prepare(
      'INSERT INTO manifest (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    )
    // Returns the builds it added to the manifest; the caller adopts them only once the
    // transaction has committed, so a rolled-back batch cannot hide a build from a later one.
    this.writeUnits = db.transaction((units: readonly RecordUnit<StoredText>[]): string[] => {
      const added: string[] = []
      for (const unit of units) {
        const r = unit.record
        this.insertRecord.run(r.id, r.key, r.startedAt, r.endedAt, r.status, r.error, r.host, r.pid, r.build)
        if (r.build !== null && !this.builds.has(r.build) && !added.includes(r.build)) added.push(r.build)
        const after = unit.captures.length > 0 ? Number(this.nextSeq.get(r.id) ?? 0) : 0
        for (const c of unit.captures) {
          const info = this.insertCapture.run(
            r.id,
            c.seq + after,
            c.stage,
            c.attempt,
            c.input,
            c.output,
            c.error,
            c.startedAt,
            c.durationMs,
            r.build,
            r.host,
            r.pid,
          )
          for (const e of c.effects) {
            this.insertEffect.run(info.lastInsertRowid, e.seq, e.kind, e.name, e.args, e.result, e.error)
          }
        }
        if (after > 0) this.renumber.run(r.id)
      }
      if (added.length > 0) setManifest.run('builds', JSON.stringify([...this.builds, ...added]))
      return added
    })
  }

  /** Creates the bundle or opens an existing one for appending. */
  static open(path: string, options: WriterOptions): BundleWriter {
    let db: Db
    try {
      db = new Database(path)
    } catch (err) {
      throw new BundleError(
        'E_BUNDLE_OPEN',
        `cannot open ${path} for writing: ${(err as Error).message}`,
        ExitCode.input,
        {
          cause: err,
        },
      )
    }
    try {
      // Before anything reads the file: once the pager has started at the default page
      // size, a fresh bundle still gets 16 KiB pages, but every insert after cost 1.5-1.7x
      // the CPU (measured with bench/writer-open.ts). On an existing file this changes
      // nothing.
      db.pragma(`page_size = ${PAGE_SIZE}`)
      const fresh = (db.pragma('page_count', { simple: true }) as number) === 0
      if (!fresh) {
        const appId = db.pragma('application_id', { simple: true }) as number
        const version = db.pragma('user_version', { simple: true }) as number
        if (appId !== APPLICATION_ID) {
          throw new BundleError(
            'E_NOT_BUNDLE',
            `${path} exists and is not a retrace bundle; refusing to write into it`,
          )
        }
        if (version > FORMAT_VERSION) {
          throw new BundleError(
            'E_NEWER_FORMAT',
            `${path} is bundle format ${version}; this retrace writes format ${FORMAT_VERSION}. Upgrade retrace.`,
          )
        }
      }
      applyPragmas(db, fresh, options.journal ?? 'wal', options.busyTimeoutMs ?? 1000)
      let builds: string[] = []
      db.transaction(() => {
        db.exec(SCHEMA_V1)
        const existing = db.prepare("SELECT value FROM manifest WHERE key = 'builds'").pluck().get() as
          | string
          | undefined
        if (existing !== undefined) {
          if (options.sameManifest === true) refuseOtherManifest(db, path, options.manifest)
          const parsed: unknown = JSON.parse(existing)
          if (Array.isArray(parsed)) builds = parsed.filter((b): b is string => typeof b === 'string')
        } else {
          const m = options.manifest
          const manifest: Manifest = {
            format: 'retrace-bundle',
            formatVersion: FORMAT_VERSION,
            pipeline: m.pipeline,
            recorderVersion: m.recorderVersion,
            created: m.created ?? new Date().toISOString(),
            builds: m.builds,
            redaction: m.redaction,
            ...(m.extractedFrom ? { extractedFrom: m.extractedFrom } : {}),
          }
          const put = db.prepare('INSERT OR REPLACE INTO manifest (key, value) VALUES (?, ?)')
          for (const [k, v] of Object.entries(manifest)) put.run(k, JSON.stringify(v))
          builds = [...m.builds]
        }
      })()
      return new BundleWriter(path, db, builds, options.closeWaitMs ?? defaultCloseWaitMs)
    } catch (err) {
      db.close()
      if (err instanceof BundleError) throw err
      throw new BundleError(
        'E_BUNDLE_OPEN',
        `cannot prepare ${path}: ${(err as Error).message}`,
        ExitCode.input,
        {
          cause: err,
        },
      )
    }
  }

  /** Writes whole records in one transaction: all of them land, or none. */
  write(units: readonly RecordUnit<StoredText>[]): void {
    if (units.length === 0) return
    for (const build of this.writeUnits(units)) this.builds.add(build)
  }

  /** Pins expectations (used by `accept`). */
  writeExpectations(rows: readonly ExpectationRow[]): void {
    this.db.transaction(() => {
      for (const x of rows) {
        this.upsertExpectation.run(x.recordId, x.stage, x.output, x.error, x.note, x.build, x.acceptedAt)
      }
    })()
  }

  /**
   * Checkpoints the WAL into the main file and leaves it in rollback mode, so the closed
   * bundle is one self-contained file with no -wal or -shm beside it.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)')
      this.leaveWal()
    } catch {
      // Another process still has the file open in WAL mode; it will checkpoint.
    }
    this.db.close()
  }

  /**
   * Leaving WAL mode needs the only connection to the file, and SQLite does not wait for
   * it (no busy handler): a reader looking at the bundle just then (`verify --follow`, which
   * opens it only for each look) is waited for, in short steps. Another process that keeps
   * the file open (a second recorder) is left to fold the WAL in when it closes.
   */
  private leaveWal(): void {
    const end = Date.now() + this.closeWaitMs
    for (;;) {
      try {
        this.db.pragma('journal_mode = DELETE')
        return
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') || Date.now() >= end) throw err
        Atomics.wait(pause, 0, 0, 10)
      }
    }
  }
}
