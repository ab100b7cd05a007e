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
  /** One record, by its exact id. */
  id?: string
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

/** A records row as SQLite returns it: text columns may hold BLOBs (Buffers) or numbers. */
interface RawRecord {
  id: unknown
  key: unknown
  started_at: number
  ended_at: number | null
  status: unknown
  error: unknown
  host: unknown
  pid: number | null
  build: unknown
}

/*
 * Text columns (record ids, keys, stage and effect names) are read through `textOf` and
 * matched through `storedForms`, so that whatever a read names can be found again by that
 * name. Bundles hold text there, but a recorder handed a Buffer (as `recordId`; as a key,
 * stage or effect name before those were coerced to strings) stored a BLOB, and a file made
 * by hand can hold numbers or NULLs.
 */

/**
 * How a BLOB whose bytes are not UTF-8 text is named: SQL's notation for its bytes (read
 * in lower case, found in either).
 */
const blobName = /^x'((?:[0-9a-f]{2})*)'$/i

/**
 * The text of a value from a text column: a BLOB's UTF-8 text (`x'<hex>'` when its bytes are
 * not UTF-8), a number's digits, '' for NULL.
 */
export function textOf(v: unknown): string {
  if (typeof v === 'string') return v
  if (v instanceof Uint8Array) {
    const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    const text = bytes.toString('utf8')
    return Buffer.from(text, 'utf8').equals(bytes) ? text : `x'${bytes.toString('hex')}'`
  }
  return v === null || v === undefined ? '' : String(v)
}

/** What a text column may store that `textOf` reads as `text`: the values for `inStored`. */
function storedForms(text: string): [string, Buffer, string | Buffer, string | number] {
  const hex = blobName.exec(text)?.[1]
  const bytes = hex === undefined ? undefined : Buffer.from(hex, 'hex')
  const n = Number(text)
  return [
    text,
    Buffer.from(text, 'utf8'),
    bytes !== undefined && textOf(bytes) === text.toLowerCase() ? bytes : text,
    text.trim() !== '' && Number.isFinite(n) && String(n) === text ? n : text,
  ]
}

/** Matches a column against `storedForms` (each a lookup in the column's index). */
const inStored = 'IN (?, ?, ?, ?)'

function sameStored(a: unknown, b: unknown): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array ? Buffer.compare(a, b) === 0 : a === b
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : textOf(v))

function toRecord(r: RawRecord): RecordRow {
  return {
    id: textOf(r.id),
    key: textOf(r.key),
    startedAt: Number(r.started_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    status: textOf(r.status) === 'error' ? 'error' : 'ok',
    error: str(r.error),
    host: str(r.host),
    pid: r.pid === null ? null : Number(r.pid),
    build: str(r.build),
  }
}

/**
 * A record's stage names, read through `textOf` and listed once each in the order they ran,
 * from `stagesJson`'s [type, value] pairs.
 */
function stageList(json: unknown): string[] {
  if (typeof json !== 'string') return []
  let list: unknown
  try {
    list = JSON.parse(json)
  } catch {
    return []
  }
  if (!Array.isArray(list)) return []
  const names = list.map((pair) => {
    const [type, value] = Array.isArray(pair) ? pair : []
    return textOf(type === 'blob' && typeof value === 'string' ? Buffer.from(value, 'hex') : value)
  })
  return [...new Set(names)]
}

/**
 * A record's stage names in the order they ran, as a JSON array of [type, value] pairs (a
 * BLOB as hex): what `textOf` needs to name each as every other read does. SQLite's own
 * DISTINCT and CAST would keep a BLOB copy of a text name apart and turn NULL into null.
 * (A JSON array, not group_concat with a separator: a stage name may hold any character.)
 */
const stagesJson = `(SELECT json_group_array(json_array(typeof(stage),
    CASE typeof(stage) WHEN 'blob' THEN hex(stage) ELSE stage END))
  FROM (SELECT stage FROM captures c WHERE c.record_id = r.id ORDER BY c.seq))`

/** Whether a records row ended in error, as `toRecord` reads its status (never NULL). */
const statusIsError = "(CAST(r.status AS TEXT) IS 'error')"

/** The WHERE clause (empty when nothing is filtered) and its parameters for a record filter. */
function recordConditions(
  filter: RecordFilter,
  stored: (
    column: 'records.key' | 'captures.stage',
    text: string,
    expr: string,
  ) => { sql: string; values: unknown[] } = (_column, text, expr) => ({ sql: `${expr} = ?`, values: [text] }),
): { where: string; params: unknown[] } {
  // A row with no id names no record (and no capture can belong to it).
  const where: string[] = ['r.id IS NOT NULL']
  const params: unknown[] = []
  if (filter.id !== undefined) {
    // As recordRow finds it: an id stored as a BLOB or a number is named by its text.
    where.push(`r.id ${inStored}`)
    params.push(...storedForms(filter.id))
  }
  if (filter.key !== undefined) {
    const key = stored('records.key', filter.key, 'r.key')
    where.push(key.sql)
    params.push(...key.values)
  }
  if (filter.status !== undefined) {
    // As toRecord reads it: 'error' (as text, or a BLOB of that text) is an error, anything
    // else is ok.
    where.push(filter.status === 'error' ? statusIsError : `NOT ${statusIsError}`)
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
    const stage = stored('captures.stage', filter.stage, 'c.stage')
    where.push(`EXISTS (SELECT 1 FROM captures c WHERE c.record_id = r.id AND ${stage.sql})`)
    params.push(...stage.values)
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
 * - `undefined` (`{"$t":"undef"}`) as a missing value: `= null` finds it, `!=` never does,
 *   nor does any other operator;
 * - any other tag (a Buffer, a Map, a Set, an Error, ...) as a value with no order and no
 *   text: only `!=` finds it.
 *
 * `<`, `>`, `<=` and `>=` order scalars only: an object or array is never above or below a
 * value (SQLite would compare its JSON text). `contains` looks inside the tag's text
 * (`"2026-12"` in a date, `"240"` in a BigInt), inside the JSON text of a plain object
 * or array, and inside the JSON text of a Set's items or a Map's entries.
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
  // A tag other than these (undef, buffer, map, ...) compares as NULL, never as its JSON text.
  const compared = `CASE WHEN ${tag} IS NULL THEN ${raw}
      WHEN ${tag} = 'bigint' THEN CAST(${v} AS NUMERIC)
      WHEN ${tag} = 'num' THEN CASE ${v} WHEN 'Infinity' THEN 9e999 WHEN '-Infinity' THEN -9e999 WHEN '-0' THEN 0 END
      WHEN ${tag} = 'date' THEN ${dateAs}
      WHEN ${tag} = 'obj' THEN ${v} END`
  const undef = `${tag} IS 'undef'`
  const scalar = `(${tag} IN ('bigint', 'num', 'date') OR json_type(${col}, @path) NOT IN ('object', 'array'))`
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
      // A Set's items and a Map's entries are searched as the JSON text of their list, as
      // an array's are; the tag's own name is not.
      cond = `instr(CASE WHEN ${tag} IS NULL THEN CAST(${raw} AS TEXT)
        WHEN ${tag} IN ('bigint', 'num', 'date', 'obj') THEN ${v}
        WHEN ${tag} IN ('set', 'map') AND json_type(${col}, @valuePath) = 'array' THEN CAST(${v} AS TEXT) END, @value) > 0`
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
      cond = `${scalar} AND ${compared} ${pred.op} @value`
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
  private readonly recordByStored: Database.Statement
  private readonly capturesOf: Database.Statement
  private readonly effectsOfRecord: Database.Statement
  private readonly effectsInRange: Database.Statement
  private readonly expectationsOf: Database.Statement
  private readonly anyExpectation: Database.Statement
  private retriesQuery: Database.Statement | undefined

  constructor(opened: OpenedBundle) {
    this.db = opened.db
    this.path = opened.path
    this.sizeBytes = opened.sizeBytes
    this.formatVersion = opened.formatVersion
    this.cleanup = opened.cleanup
    this.recordById = this.db.prepare(`SELECT ${recordColumns} FROM records r WHERE r.id = ?`)
    this.recordByStored = this.db.prepare(`SELECT ${recordColumns} FROM records r WHERE r.id ${inStored}`)
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
    // Effects are keyed (capture_id, seq): the effects of consecutive captures are one run of
    // that key, read without a join or a sort (see readRecord).
    this.effectsInRange = this.db
      .prepare(
        `SELECT capture_id, seq, kind, name, args, result, error
       FROM effects WHERE capture_id BETWEEN ? AND ? ORDER BY capture_id, seq`,
      )
      .raw()
    this.anyExpectation = this.db.prepare('SELECT 1 FROM expectations LIMIT 1').pluck()
    this.expectationsOf = this.db.prepare(
      `SELECT record_id, stage, output, error, note, build, accepted_at FROM expectations WHERE record_id ${inStored}`,
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

  /** The records row an id names: stored as that text (nearly always), else as a BLOB or number. */
  private recordRow(id: string): RawRecord | undefined {
    return (this.recordById.get(id) ?? this.recordByStored.get(...storedForms(id))) as RawRecord | undefined
  }

  /** `storedIn`, guarded, for recordConditions. */
  private readonly stored = (
    column: 'records.key' | 'captures.stage',
    text: string,
    expr: string,
  ): { sql: string; values: unknown[] } => this.guard(() => this.storedIn(column, text, expr))

  /** The stage condition of a `find`, as the stage names are stored (named parameters). */
  private stageIn(pred: FindPredicate, params: Record<string, unknown>): string {
    const stage = this.stored('captures.stage', pred.stage, 'c.stage')
    delete params.stage
    stage.values.forEach((v, i) => {
      params[`stage${i}`] = v
    })
    let i = 0
    return stage.sql.replace(/\?/g, () => `@stage${i++}`)
  }

  /**
   * A condition on a key or stage column (`expr`, as the query names it) for what reads as
   * `text`: `IN` the values the column stores for it, each found through the column's
   * index. Nearly always one value, and then SQLite keeps the index's order (several would
   * cost a sort). `textOf` reads NULL as '', so '' also finds a NULL a hand-made file holds.
   */
  private storedIn(
    column: 'records.key' | 'captures.stage',
    text: string,
    expr: string,
  ): { sql: string; values: unknown[] } {
    const [table, name] = column.split('.') as [string, string]
    const probe = this.db.prepare(`SELECT ${name} FROM ${table} WHERE ${name} = ? LIMIT 1`).pluck()
    const values: unknown[] = []
    for (const form of new Set(storedForms(text))) {
      const stored = probe.get(form)
      if (stored !== undefined && !values.some((v) => sameStored(v, stored))) values.push(stored)
    }
    if (values.length === 0) values.push(text)
    const list = `${expr} IN (${values.map(() => '?').join(', ')})`
    const orNull =
      text === '' &&
      this.db.prepare(`SELECT 1 FROM ${table} WHERE ${name} IS NULL LIMIT 1`).get() !== undefined
    return { sql: orNull ? `(${list} OR ${expr} IS NULL)` : list, values }
  }

  manifest(): Partial<Manifest> & Record<string, unknown> {
    return this.guard(() => {
      const out: Record<string, unknown> = {}
      for (const row of this.db.prepare('SELECT key, value FROM manifest').iterate() as Iterable<{
        key: unknown
        value: unknown
      }>) {
        const key = textOf(row.key)
        if (key === '__proto__') continue
        try {
          out[key] = parseJson(textOf(row.value))
        } catch {
          out[key] = textOf(row.value)
        }
      }
      return out as Partial<Manifest> & Record<string, unknown>
    })
  }

  counts(): BundleCounts {
    return this.guard(() => {
      // A records row with no id is no record: the listing and every read skip it too.
      const one = (sql: string): number => Number(this.db.prepare(sql).pluck().get() ?? 0)
      const range = this.db
        .prepare('SELECT min(started_at) AS lo, max(started_at) AS hi FROM records WHERE id IS NOT NULL')
        .get() as {
        lo: number | null
        hi: number | null
      }
      return {
        records: one('SELECT count(*) FROM records WHERE id IS NOT NULL'),
        captures: one('SELECT count(*) FROM captures'),
        effects: one('SELECT count(*) FROM effects'),
        expectations: one('SELECT count(*) FROM expectations'),
        firstRecordAt: range.lo,
        lastRecordAt: range.hi,
        stages: this.stageCounts(),
        statuses: (
          this.db
            .prepare(
              `SELECT CASE WHEN ${statusIsError} THEN 'error' ELSE 'ok' END AS status, count(*) AS records
               FROM records r WHERE r.id IS NOT NULL GROUP BY 1`,
            )
            .all() as {
            status: string
            records: number
          }[]
        ).map((s) => ({ status: s.status, records: Number(s.records) })),
      }
    })
  }

  /** The stage names the bundle's captures hold, in the order the stages first ran. */
  stageNames(): string[] {
    return this.guard(() => this.stageCounts().map((s) => s.stage))
  }

  /**
   * Captures and errors per stage name, in the order the stages first ran. Grouped by the
   * name `textOf` gives, as every other read names them: SQLite groups a BLOB copy of a text
   * name apart from it.
   */
  private stageCounts(): BundleCounts['stages'] {
    const byName = new Map<string, { stage: string; captures: number; errors: number; first: number }>()
    const groups = this.db
      .prepare(
        `SELECT stage, count(*) AS captures, sum(error IS NOT NULL) AS errors, min(seq) AS first
         FROM captures GROUP BY stage`,
      )
      .all() as { stage: unknown; captures: number; errors: number; first: number | null }[]
    for (const g of groups) {
      const stage = textOf(g.stage)
      const first = Number(g.first ?? 0)
      const seen = byName.get(stage)
      if (seen === undefined) {
        byName.set(stage, { stage, captures: Number(g.captures), errors: Number(g.errors), first })
      } else {
        seen.captures += Number(g.captures)
        seen.errors += Number(g.errors)
        seen.first = Math.min(seen.first, first)
      }
    }
    return [...byName.values()]
      .sort((a, b) => a.first - b.first || Buffer.compare(Buffer.from(a.stage), Buffer.from(b.stage)))
      .map(({ stage, captures, errors }) => ({ stage, captures, errors }))
  }

  /**
   * A record's retries: the repeated calls of each stage always given the same input. A stage
   * given different inputs was called once per item, none of its calls a retry, as `show`
   * and replay read it (calledPerItem in src/compare/handoff.ts).
   */
  private retriesOf(stored: unknown): number {
    this.retriesQuery ??= this.db
      .prepare(
        `SELECT coalesce(sum(CASE WHEN inputs = 1 THEN calls - 1 ELSE 0 END), 0)
         FROM (SELECT count(*) AS calls, count(DISTINCT input) AS inputs
               FROM captures WHERE record_id = ? GROUP BY stage)`,
      )
      .pluck()
    return Number(this.retriesQuery.get(stored) ?? 0)
  }

  /** Records matching the filter, newest first by default, streamed. */
  *records(filter: RecordFilter = {}): Generator<RecordSummary> {
    const { where, params } = recordConditions(filter, this.stored)
    const order = filter.order === 'oldest' ? 'ASC' : 'DESC'
    const sql = `SELECT ${recordColumns},
        ${stagesJson} AS stages,
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
      const stages = stageList(row.stages)
      const captures = Number(row.ncaptures)
      yield {
        ...toRecord(row),
        stages,
        captures,
        // Only a record that called some stage twice is looked at again.
        retries: captures > stages.length ? this.guard(() => this.retriesOf(row.id)) : 0,
        source: this.path,
      }
    }
  }

  /** How many records `records(filter)` would give without a limit: one COUNT. */
  countRecords(filter: RecordFilter = {}): number {
    const { where, params } = recordConditions(filter, this.stored)
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
   * Ids of the records matching the filter (its limit aside) as their bytes, in the order
   * `Buffer.compare` gives (for counting across bundles). Sorted by the bytes, not by the
   * ids' index: SQLite orders every number before every text and every text before every
   * BLOB, which would put one id in different places in different bundles.
   */
  *recordIdBytes(filter: RecordFilter = {}): Generator<Buffer> {
    const { where, params } = recordConditions(filter, this.stored)
    yield* this.stream(
      () =>
        this.db
          .prepare(`SELECT CAST(r.id AS BLOB) AS id FROM records r ${where} ORDER BY id`)
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
      WHERE ${this.stageIn(pred, params)} AND json_valid(${col}) AND ${cond}
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
      const id = textOf(row.recordId)
      // Rows come grouped by record; a retried stage matching twice lists the record once.
      if (id === last) continue
      last = id
      emitted++
      yield { recordId: id, key: textOf(row.key), startedAt: Number(row.startedAt), value: row.value }
    }
  }

  /** How many records `find` would list without a limit: one COUNT over the same condition. */
  countFound(pred: FindPredicate): number {
    const { col, cond, params } = predicateSql(pred)
    const stage = this.stageIn(pred, params)
    return this.guard(() =>
      Number(
        this.db
          .prepare(
            `SELECT count(DISTINCT c.record_id) FROM captures c JOIN records r ON r.id = c.record_id
             WHERE ${stage} AND json_valid(${col}) AND ${cond}`,
          )
          .pluck()
          .get(params) ?? 0,
      ),
    )
  }

  /** Resolves a full id or a unique prefix; throws a usage error otherwise. */
  resolveRecordId(ref: string): string | undefined {
    return this.guard(() => {
      const exact = this.recordRow(ref)
      if (exact !== undefined) return textOf(exact.id)
      if (ref.length < 4) return undefined
      // LIKE never matches a BLOB: an id a recorder stored as one is matched by its text,
      // and one named x'<hex>' (its bytes are not UTF-8) by the start of its hex.
      const escaped = ref.replace(/[\\%_]/g, (m) => `\\${m}`)
      const hex = /^x'([0-9a-f]*)$/i.exec(ref)?.[1]
      const hits = [
        ...new Set(
          (
            this.db
              .prepare(
                `SELECT id FROM records WHERE CAST(id AS TEXT) LIKE ? ESCAPE '\\'
                   OR (typeof(id) = 'blob' AND hex(id) LIKE ?) LIMIT 6`,
              )
              .pluck()
              .all(`${escaped}%`, hex === undefined ? null : `${hex.toUpperCase()}%`) as unknown[]
          )
            .map(textOf)
            .filter((name) => hex === undefined || name.toLowerCase().startsWith(ref.toLowerCase())),
        ),
      ]
      if (hits.length > 1) {
        throw new UsageError(
          `record prefix ${JSON.stringify(ref)} is ambiguous in ${this.path}: ${hits.slice(0, 5).join(', ')}${hits.length > 5 ? ', ...' : ''}`,
          'E_AMBIGUOUS_RECORD',
        )
      }
      return hits[0]
    })
  }

  latestRecordIdForKey(key: string): string | undefined {
    return this.guard(() => {
      const stored = this.storedIn('records.key', key, 'key')
      const id = this.db
        .prepare(
          `SELECT id FROM records WHERE ${stored.sql} AND id IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1`,
        )
        .pluck()
        .get(...stored.values)
      return id === undefined ? undefined : textOf(id)
    })
  }

  /** Whether this bundle holds (part of) the record with this exact id. */
  hasRecord(id: string): boolean {
    return this.guard(() => this.recordRow(id) !== undefined)
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
    const readChunk = this.db.transaction((part: readonly string[]) => {
      // Most bundles pin nothing: one look per chunk saves a query per record.
      const pinned = this.anyExpectation.get() !== undefined
      return part.map((id) => this.readRecord(id, pinned))
    })
    for (let i = 0; i < ids.length; i += chunk) {
      yield* this.guard(() => readChunk(ids.slice(i, i + chunk)))
    }
  }

  private readRecord(id: string, pinned = true): RecordChain | undefined {
    const raw = this.recordRow(id)
    if (raw === undefined) return undefined
    // Captures name their record as it is stored (the recorder writes one value to both).
    const stored = raw.id
    // Rows as arrays (`raw()`): building named objects cost as much as reading the texts.
    const rows = this.capturesOf.all(stored) as unknown[][]
    const effectsByCapture = new Map<number, EffectRow[]>()
    let low = Number.POSITIVE_INFINITY
    let high = Number.NEGATIVE_INFINITY
    for (const c of rows) {
      const captureId = Number(c[0])
      effectsByCapture.set(captureId, [])
      if (captureId < low) low = captureId
      if (captureId > high) high = captureId
    }
    // The recorder writes a record's captures together, so their ids run without a gap, and
    // their effects are one range of the effects key, with no other record's among them. Ids
    // with gaps (captures written some other way) are looked up through the join instead.
    const effectRows =
      rows.length === 0
        ? []
        : high - low + 1 === effectsByCapture.size
          ? (this.effectsInRange.all(low, high) as unknown[][])
          : (this.effectsOfRecord.all(stored) as unknown[][])
    for (const e of effectRows) {
      const list = effectsByCapture.get(Number(e[0]))
      if (list === undefined) continue
      const kind = textOf(e[2])
      list.push({
        seq: Number(e[1]),
        kind: kind === 'now' || kind === 'random' || kind === 'async-effect' ? kind : 'effect',
        name: textOf(e[3]),
        args: str(e[4]),
        result: str(e[5]),
        error: str(e[6]),
      })
    }
    const captures = rows.map((c) => {
      const captureId = Number(c[0])
      return {
        id: captureId,
        recordId: textOf(c[1]),
        seq: Number(c[2]),
        stage: textOf(c[3]),
        attempt: Number(c[4]),
        // NOT NULL in every bundle retrace writes; NULL in a hand-made one reads as JSON null.
        input: c[5] === null ? 'null' : textOf(c[5]),
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
    // Expectations pinned by `accept` name the record by its text.
    const record = toRecord(raw)
    const pins = pinned
      ? (this.expectationsOf.all(...storedForms(record.id)) as Record<string, unknown>[])
      : []
    const expectations = pins.map(
      (x): ExpectationRow => ({
        recordId: textOf(x.record_id),
        stage: textOf(x.stage),
        output: str(x.output),
        error: str(x.error),
        note: str(x.note),
        build: str(x.build),
        acceptedAt: Number(x.accepted_at),
      }),
    )
    return { record, captures, expectations, source: this.path }
  }

  /** All record ids, oldest first, streamed (for replay and test over a whole bundle). */
  *recordIds(): Generator<string> {
    const ids = this.stream(
      () =>
        this.db
          .prepare('SELECT id FROM records WHERE id IS NOT NULL ORDER BY started_at, id')
          .pluck()
          .iterate() as Iterator<unknown>,
    )
    for (const id of ids) yield textOf(id)
  }

  /** Every key with its latest record id, streamed in key order. */
  *latestByKey(): Generator<{ key: string; id: string }> {
    const rows = this.stream(
      () =>
        this.db
          .prepare(
            `SELECT key, (SELECT id FROM records r2 WHERE r2.key = r.key AND r2.id IS NOT NULL
               ORDER BY started_at DESC, id DESC LIMIT 1) AS id
             FROM records r GROUP BY key ORDER BY key`,
          )
          .iterate() as Iterator<{ key: unknown; id: unknown }>,
    )
    for (const row of rows) if (row.id !== null) yield { key: textOf(row.key), id: textOf(row.id) }
  }

  /** Records committed after `rowid`, in commit order (for following a live bundle). */
  recordsAfter(rowid: number, limit = 1000): { rowid: number; id: string }[] {
    return this.guard(() =>
      (
        this.db
          .prepare('SELECT rowid, id FROM records WHERE rowid > ? AND id IS NOT NULL ORDER BY rowid LIMIT ?')
          .all(rowid, limit) as {
          rowid: number
          id: unknown
        }[]
      ).map((r) => ({ rowid: Number(r.rowid), id: textOf(r.id) })),
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
