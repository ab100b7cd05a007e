/**
 * Reads of one bundle. Everything that can grow with production streams
 * (`stmt.iterate()`); statements are prepared once per reader.
 */
import type Database from 'better-sqlite3'
import { parseJson } from '../codec/index.js'
import { BundleError, RetraceError, UsageError } from '../errors.js'
import { type OpenedBundle, type OpenOptions, openBundleFile, wrapSqliteError } from './open.js'
import type { Manifest } from './schema.js'
import type {
  CaptureRow,
  EffectRow,
  ExpectationRow,
  RecordChain,
  RecordRow,
  RecordStatus,
  RecordSummary,
} from './types.js'

export interface RecordFilter {
  key?: string
  stage?: string
  status?: RecordStatus
  /** Milliseconds since the epoch, inclusive. */
  since?: number
  until?: number
  limit?: number
  order?: 'newest' | 'oldest'
}

/** A predicate for `find`: a stage's output (or input) at a path compared with a value. */
export interface FindPredicate {
  stage: string
  side: 'output' | 'input'
  /** A SQLite JSON path, already validated (`$.a.b[0]`). */
  jsonPath: string
  op: '=' | '!=' | '<' | '>' | '<=' | '>=' | 'contains'
  value: string | number | boolean | null
}

export interface FindHit {
  recordId: string
  key: string
  startedAt: number
  /** The value at the path (JSON text for objects and arrays, as SQLite returns it). */
  value: unknown
}

export interface BundleCounts {
  records: number
  captures: number
  effects: number
  expectations: number
  firstRecordAt: number | null
  lastRecordAt: number | null
  stages: { stage: string; captures: number; errors: number }[]
  statuses: { status: string; records: number }[]
}

const recordColumns = 'r.id, r.key, r.started_at, r.ended_at, r.status, r.error, r.host, r.pid, r.build'

interface RawRecord {
  id: string
  key: string
  started_at: number
  ended_at: number | null
  status: string
  error: string | null
  host: string | null
  pid: number | null
  build: string | null
}

function toRecord(r: RawRecord): RecordRow {
  return {
    id: String(r.id),
    key: String(r.key),
    startedAt: Number(r.started_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    status: r.status === 'error' ? 'error' : 'ok',
    error: r.error === null ? null : String(r.error),
    host: r.host === null ? null : String(r.host),
    pid: r.pid === null ? null : Number(r.pid),
    build: r.build === null ? null : String(r.build),
  }
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

function stageList(json: unknown): string[] {
  if (typeof json !== 'string') return []
  try {
    const list: unknown = JSON.parse(json)
    return Array.isArray(list) ? list.map((s) => String(s)) : []
  } catch {
    return []
  }
}

/** The WHERE clause (empty when nothing is filtered) and its parameters for a record filter. */
function recordConditions(filter: RecordFilter): { where: string; params: unknown[] } {
  const where: string[] = []
  const params: unknown[] = []
  if (filter.key !== undefined) {
    where.push('r.key = ?')
    params.push(filter.key)
  }
  if (filter.status !== undefined) {
    where.push('r.status = ?')
    params.push(filter.status)
  }
  if (filter.since !== undefined) {
    where.push('r.started_at >= ?')
    params.push(filter.since)
  }
  if (filter.until !== undefined) {
    where.push('r.started_at <= ?')
    params.push(filter.until)
  }
  if (filter.stage !== undefined) {
    where.push('EXISTS (SELECT 1 FROM captures c WHERE c.record_id = r.id AND c.stage = ?)')
    params.push(filter.stage)
  }
  return { where: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', params }
}

/**
 * The SQL condition of a `find` predicate, with its named parameters (user text is only
 * ever a parameter). Typed-JSON tags are seen through, so a value JSON cannot hold compares
 * as the value it stands for, as a plain number or string would:
 *
 * - a BigInt (`{"$t":"bigint","v":"24013"}`) by its integer value (beyond 64 bits, as a
 *   float);
 * - `-0`, `Infinity` and `-Infinity` (`{"$t":"num",...}`) as those numbers; `NaN` as a
 *   number equal to nothing;
 * - a Date (`{"$t":"date","v":"2026-...Z"}`) by its ISO text against a string
 *   (`> '2030-01-01'`) and by epoch milliseconds against a number;
 * - `undefined` (`{"$t":"undef"}`) as a missing value: `= null` finds it, `!=` never does.
 *
 * `contains` looks inside the tag's text (`"2026-12"` in a date, `"240"` in a BigInt).
 */
function predicateSql(pred: FindPredicate): {
  col: string
  cond: string
  params: Record<string, unknown>
} {
  const col = pred.side === 'input' ? 'c.input' : 'c.output'
  const raw = `json_extract(${col}, @path)`
  const tag = `json_extract(${col}, @tagPath)`
  const v = `json_extract(${col}, @valuePath)`
  const dateAs = typeof pred.value === 'number' ? `round((julianday(${v}) - 2440587.5) * 86400000)` : v
  const compared = `CASE ${tag}
      WHEN 'bigint' THEN CAST(${v} AS NUMERIC)
      WHEN 'num' THEN CASE ${v} WHEN 'Infinity' THEN 9e999 WHEN '-Infinity' THEN -9e999 WHEN '-0' THEN 0 END
      WHEN 'date' THEN ${dateAs}
      ELSE ${raw} END`
  const undef = `${tag} IS 'undef'`
  const params: Record<string, unknown> = {
    stage: pred.stage,
    path: pred.jsonPath,
    // The tag's own fields, below the path (`$."a"."$t"`): bound like the path itself.
    tagPath: `${pred.jsonPath}."$t"`,
    valuePath: `${pred.jsonPath}."v"`,
    value: typeof pred.value === 'boolean' ? Number(pred.value) : pred.value,
  }
  let cond: string
  switch (pred.op) {
    case 'contains':
      params.value = String(pred.value)
      cond = `instr(CASE WHEN ${tag} IN ('bigint', 'num', 'date') THEN ${v} ELSE CAST(${raw} AS TEXT) END, @value) > 0`
      break
    case '=':
      cond = pred.value === null ? `(${raw} IS NULL OR ${undef})` : `${compared} = @value`
      break
    case '!=':
      // A record without the path has no value to differ: `!=` needs the path present.
      cond =
        pred.value === null
          ? `${raw} IS NOT NULL AND NOT ${undef}`
          : `json_type(${col}, @path) IS NOT NULL AND NOT ${undef} AND ${compared} IS NOT @value`
      break
    default:
      cond = `${compared} ${pred.op} @value`
  }
  return { col, cond, params }
}

export class BundleReader {
  readonly path: string
  readonly sizeBytes: number
  readonly formatVersion: number
  private readonly db: Database.Database
  private readonly cleanup: () => void
  private readonly recordById: Database.Statement
  private readonly capturesOf: Database.Statement
  private readonly effectsOfRecord: Database.Statement
  private readonly expectationsOf: Database.Statement

  constructor(opened: OpenedBundle) {
    this.db = opened.db
    this.path = opened.path
    this.sizeBytes = opened.sizeBytes
    this.formatVersion = opened.formatVersion
    this.cleanup = opened.cleanup
    this.recordById = this.db.prepare(`SELECT ${recordColumns} FROM records r WHERE r.id = ?`)
    this.capturesOf = this.db
      .prepare(
        `SELECT id, record_id, seq, stage, attempt, input, output, error, started_at, duration_ms, build, host, pid
       FROM captures WHERE record_id = ? ORDER BY seq, id`,
      )
      .raw()
    this.effectsOfRecord = this.db
      .prepare(
        `SELECT e.capture_id, e.seq, e.kind, e.name, e.args, e.result, e.error
       FROM captures c JOIN effects e ON e.capture_id = c.id
       WHERE c.record_id = ? ORDER BY e.capture_id, e.seq`,
      )
      .raw()
    this.expectationsOf = this.db.prepare(
      'SELECT record_id, stage, output, error, note, build, accepted_at FROM expectations WHERE record_id = ?',
    )
  }

  /** Runs a read, turning SQLite failures (a corrupt page found late) into BundleError. */
  private guard<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      // Our own errors (an ambiguous prefix) pass as they are; only SQLite's get wrapped.
      if (err instanceof RetraceError) throw err
      throw wrapSqliteError(err, this.path)
    }
  }

  /**
   * Streams rows from a statement, turning SQLite failures into BundleError and closing
   * the statement when the consumer stops early.
   */
  private *stream<T>(start: () => Iterator<T>): Generator<T> {
    const it = this.guard(start)
    try {
      while (true) {
        const next = this.guard(() => it.next())
        if (next.done) return
        yield next.value
      }
    } finally {
      it.return?.()
    }
  }

  manifest(): Partial<Manifest> & Record<string, unknown> {
    return this.guard(() => {
      const out: Record<string, unknown> = {}
      for (const row of this.db.prepare('SELECT key, value FROM manifest').iterate() as Iterable<{
        key: string
        value: string
      }>) {
        if (row.key === '__proto__') continue
        try {
          out[String(row.key)] = parseJson(String(row.value))
        } catch {
          out[String(row.key)] = String(row.value)
        }
      }
      return out as Partial<Manifest> & Record<string, unknown>
    })
  }

  counts(): BundleCounts {
    return this.guard(() => {
      const one = (sql: string): number => Number(this.db.prepare(sql).pluck().get() ?? 0)
      const range = this.db
        .prepare('SELECT min(started_at) AS lo, max(started_at) AS hi FROM records')
        .get() as {
        lo: number | null
        hi: number | null
      }
      return {
        records: one('SELECT count(*) FROM records'),
        captures: one('SELECT count(*) FROM captures'),
        effects: one('SELECT count(*) FROM effects'),
        expectations: one('SELECT count(*) FROM expectations'),
        firstRecordAt: range.lo,
        lastRecordAt: range.hi,
        stages: (
          this.db
            .prepare(
              `SELECT stage, count(*) AS captures, sum(error IS NOT NULL) AS errors
               FROM captures GROUP BY stage ORDER BY min(seq), stage`,
            )
            .all() as { stage: string; captures: number; errors: number }[]
        ).map((s) => ({ stage: String(s.stage), captures: Number(s.captures), errors: Number(s.errors) })),
        statuses: (
          this.db.prepare('SELECT status, count(*) AS records FROM records GROUP BY status').all() as {
            status: string
            records: number
          }[]
        ).map((s) => ({ status: String(s.status), records: Number(s.records) })),
      }
    })
  }

  /** Records matching the filter, newest first by default, streamed. */
  *records(filter: RecordFilter = {}): Generator<RecordSummary> {
    const { where, params } = recordConditions(filter)
    const order = filter.order === 'oldest' ? 'ASC' : 'DESC'
    // A JSON array, not group_concat with a separator: a stage name may hold any character.
    const sql = `SELECT ${recordColumns},
        (SELECT json_group_array(CAST(stage AS TEXT)) FROM (SELECT DISTINCT stage FROM captures c
          WHERE c.record_id = r.id ORDER BY c.seq)) AS stages,
        (SELECT count(*) FROM captures c WHERE c.record_id = r.id) AS ncaptures
      FROM records r ${where}
      ORDER BY r.started_at ${order}, r.id ${order}
      ${filter.limit !== undefined ? `LIMIT ${Math.max(0, Math.trunc(filter.limit))}` : ''}`
    const rows = this.stream(
      () =>
        this.db.prepare(sql).iterate(...params) as Iterator<
          RawRecord & { stages: string | null; ncaptures: number }
        >,
    )
    for (const row of rows) {
      yield {
        ...toRecord(row),
        stages: stageList(row.stages),
        captures: Number(row.ncaptures),
        source: this.path,
      }
    }
  }

  /** How many records `records(filter)` would give without a limit: one COUNT. */
  countRecords(filter: RecordFilter = {}): number {
    const { where, params } = recordConditions(filter)
    return this.guard(() =>
      Number(
        this.db
          .prepare(`SELECT count(*) FROM records r ${where}`)
          .pluck()
          .get(...params) ?? 0,
      ),
    )
  }

  /**
   * Ids of the records matching the filter (its limit aside) as UTF-8 bytes in SQLite's
   * order of ids, which is the order `Buffer.compare` gives: for counting across bundles.
   */
  *recordIdBytes(filter: RecordFilter = {}): Generator<Buffer> {
    const { where, params } = recordConditions(filter)
    yield* this.stream(
      () =>
        this.db
          .prepare(`SELECT CAST(r.id AS BLOB) FROM records r ${where} ORDER BY r.id`)
          .pluck()
          .iterate(...params) as Iterator<Buffer>,
    )
  }

  /** Ids of records whose given stage matches the predicate, newest first, streamed. */
  *find(pred: FindPredicate, limit?: number): Generator<FindHit> {
    const { col, cond, params } = predicateSql(pred)
    const sql = `SELECT c.record_id AS recordId, r.key AS key, r.started_at AS startedAt,
        json_extract(${col}, @path) AS value
      FROM captures c JOIN records r ON r.id = c.record_id
      WHERE c.stage = @stage AND json_valid(${col}) AND ${cond}
      ORDER BY r.started_at DESC, r.id, c.seq DESC`
    const rows = this.stream(
      () =>
        this.db.prepare(sql).iterate(params) as Iterator<{
          recordId: string
          key: string
          startedAt: number
          value: unknown
        }>,
    )
    let last: string | undefined
    let emitted = 0
    for (const row of rows) {
      if (limit !== undefined && emitted >= limit) return
      const id = String(row.recordId)
      // Rows come grouped by record; a retried stage matching twice lists the record once.
      if (id === last) continue
      last = id
      emitted++
      yield { recordId: id, key: String(row.key), startedAt: Number(row.startedAt), value: row.value }
    }
  }

  /** How many records `find` would list without a limit: one COUNT over the same condition. */
  countFound(pred: FindPredicate): number {
    const { col, cond, params } = predicateSql(pred)
    return this.guard(() =>
      Number(
        this.db
          .prepare(
            `SELECT count(DISTINCT c.record_id) FROM captures c JOIN records r ON r.id = c.record_id
             WHERE c.stage = @stage AND json_valid(${col}) AND ${cond}`,
          )
          .pluck()
          .get(params) ?? 0,
      ),
    )
  }

  /** Resolves a full id or a unique prefix; throws a usage error otherwise. */
  resolveRecordId(ref: string): string | undefined {
    return this.guard(() => {
      const exact = this.db.prepare('SELECT id FROM records WHERE id = ?').pluck().get(ref) as
        | string
        | undefined
      if (exact !== undefined) return String(exact)
      if (ref.length < 4) return undefined
      const escaped = ref.replace(/[\\%_]/g, (m) => `\\${m}`)
      const hits = this.db
        .prepare("SELECT id FROM records WHERE id LIKE ? ESCAPE '\\' LIMIT 6")
        .pluck()
        .all(`${escaped}%`) as string[]
      if (hits.length > 1) {
        throw new UsageError(
          `record prefix ${JSON.stringify(ref)} is ambiguous in ${this.path}: ${hits.slice(0, 5).join(', ')}${hits.length > 5 ? ', ...' : ''}`,
          'E_AMBIGUOUS_RECORD',
        )
      }
      return hits[0] === undefined ? undefined : String(hits[0])
    })
  }

  latestRecordIdForKey(key: string): string | undefined {
    return this.guard(() => {
      const id = this.db
        .prepare('SELECT id FROM records WHERE key = ? ORDER BY started_at DESC, id DESC LIMIT 1')
        .pluck()
        .get(key) as string | undefined
      return id === undefined ? undefined : String(id)
    })
  }

  /** Whether this bundle holds (part of) the record with this exact id. */
  hasRecord(id: string): boolean {
    return this.guard(() => this.recordById.get(id) !== undefined)
  }

  /** Everything about one record; undefined when this bundle does not hold it. */
  loadRecord(id: string): RecordChain | undefined {
    return this.guard(() => this.readRecord(id))
  }

  /**
   * The records with these ids, in order, streamed (undefined for one this bundle does not
   * hold). A chunk of records is read in one read transaction: one file lock for the chunk
   * instead of one per query. Chunks are small: a chunk's records live until they are
   * replayed, and with small semi-spaces (src/replay/heap.ts) GC copied chunks of 32 often
   * enough to cost up to a third of `retrace test` (bench/test-workers.ts). Not for use
   * while another query of this reader is being iterated (SQLite refuses a transaction then).
   */
  *loadRecords(ids: readonly string[], chunk = 8): Generator<RecordChain | undefined> {
    const readChunk = this.db.transaction((part: readonly string[]) => part.map((id) => this.readRecord(id)))
    for (let i = 0; i < ids.length; i += chunk) {
      yield* this.guard(() => readChunk(ids.slice(i, i + chunk)))
    }
  }

  private readRecord(id: string): RecordChain | undefined {
    const raw = this.recordById.get(id) as RawRecord | undefined
    if (raw === undefined) return undefined
    // Every effect of the record in one query, grouped by capture.
    const effectsByCapture = new Map<number, EffectRow[]>()
    // Rows as arrays (`raw()`): building named objects cost as much as reading the texts.
    for (const e of this.effectsOfRecord.all(id) as unknown[][]) {
      const captureId = Number(e[0])
      let list = effectsByCapture.get(captureId)
      if (list === undefined) {
        list = []
        effectsByCapture.set(captureId, list)
      }
      const kind = e[2]
      list.push({
        seq: Number(e[1]),
        kind: kind === 'now' || kind === 'random' || kind === 'async-effect' ? kind : 'effect',
        name: String(e[3]),
        args: str(e[4]),
        result: str(e[5]),
        error: str(e[6]),
      })
    }
    const captures = (this.capturesOf.all(id) as unknown[][]).map((c) => {
      const captureId = Number(c[0])
      return {
        id: captureId,
        recordId: String(c[1]),
        seq: Number(c[2]),
        stage: String(c[3]),
        attempt: Number(c[4]),
        input: String(c[5]),
        output: str(c[6]),
        error: str(c[7]),
        startedAt: Number(c[8]),
        durationMs: Number(c[9]),
        build: str(c[10]),
        host: str(c[11]),
        pid: c[12] === null ? null : Number(c[12]),
        effects: effectsByCapture.get(captureId) ?? [],
      } satisfies CaptureRow & { effects: EffectRow[] }
    })
    const expectations = (this.expectationsOf.all(id) as Record<string, unknown>[]).map(
      (x): ExpectationRow => ({
        recordId: String(x.record_id),
        stage: String(x.stage),
        output: str(x.output),
        error: str(x.error),
        note: str(x.note),
        build: str(x.build),
        acceptedAt: Number(x.accepted_at),
      }),
    )
    return { record: toRecord(raw), captures, expectations, source: this.path }
  }

  /** All record ids, oldest first, streamed (for replay and test over a whole bundle). */
  *recordIds(): Generator<string> {
    const ids = this.stream(
      () =>
        this.db
          .prepare('SELECT id FROM records ORDER BY started_at, id')
          .pluck()
          .iterate() as Iterator<string>,
    )
    for (const id of ids) yield String(id)
  }

  /** Every key with its latest record id, streamed in key order. */
  *latestByKey(): Generator<{ key: string; id: string }> {
    const rows = this.stream(
      () =>
        this.db
          .prepare(
            `SELECT key, (SELECT id FROM records r2 WHERE r2.key = r.key ORDER BY started_at DESC, id DESC LIMIT 1) AS id
             FROM records r GROUP BY key ORDER BY key`,
          )
          .iterate() as Iterator<{ key: string; id: string }>,
    )
    for (const row of rows) yield { key: String(row.key), id: String(row.id) }
  }

  /** Records committed after `rowid`, in commit order (for following a live bundle). */
  recordsAfter(rowid: number, limit = 1000): { rowid: number; id: string }[] {
    return this.guard(() =>
      (
        this.db
          .prepare('SELECT rowid, id FROM records WHERE rowid > ? ORDER BY rowid LIMIT ?')
          .all(rowid, limit) as {
          rowid: number
          id: string
        }[]
      ).map((r) => ({ rowid: Number(r.rowid), id: String(r.id) })),
    )
  }

  close(): void {
    try {
      this.db.close()
    } finally {
      this.cleanup()
    }
  }
}

export function openBundle(path: string, options?: OpenOptions): BundleReader {
  return new BundleReader(openBundleFile(path, options))
}

/** Raised when a record named on the command line is in none of the bundles. */
export function recordNotFound(ref: string, paths: readonly string[]): BundleError {
  return new BundleError('E_RECORD_NOT_FOUND', `no record ${JSON.stringify(ref)} in ${paths.join(', ')}`)
}

/** Raised when a --key names no record in any of the bundles. */
export function keyNotFound(key: string, paths: readonly string[]): BundleError {
  return new BundleError(
    'E_RECORD_NOT_FOUND',
    `no record with key ${JSON.stringify(key)} in ${paths.join(', ')}`,
  )
}
