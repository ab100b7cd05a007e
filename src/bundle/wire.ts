/**
 * How the recorder hands batches of records to its writer thread: packed into an
 * ArrayBuffer that is transferred there and back, not cloned. Structured clone walks every
 * record and capture object on the host's thread and writes them into freshly allocated
 * memory, and first touches of fresh pages cost as much as encoding the payloads on some
 * hosts; packing writes the same strings and numbers in one flat pass into a buffer that
 * is reused batch after batch. Each record is packed as it finishes (BatchBuilder), and a
 * record with a field of the wrong type (a host's clock returning a BigInt) goes beside the
 * buffer as it is, for structured clone, which carries it faithfully.
 *
 * Layout, little-endian: per record its fields in RecordRow order, the number of its
 * captures, then each capture (CaptureWrite order, the number of its effects, then each
 * effect in EffectRow order). A string is an int32 byte length (-1 for null) and its
 * UTF-8 bytes; a number is a float64, a nullable number a byte (0: null) before it.
 */
import type { CaptureWrite, EffectKind, EffectRow, RecordStatus, RecordUnit, StoredText } from './types.js'

/** A batch packed by BatchBuilder: `length` bytes at the start of `data`. */
export interface PackedUnits {
  data: ArrayBuffer
  length: number
  records: number
}

/** A field the packed layout cannot carry (the caller falls back to structured clone). */
class Unpackable extends Error {}

function strSize(s: string | null): number {
  if (s === null) return 4
  if (typeof s !== 'string') throw new Unpackable()
  return 4 + Buffer.byteLength(s, 'utf8')
}

function num(v: number): number {
  if (typeof v !== 'number') throw new Unpackable()
  return v
}

/** Bytes `unit` takes packed; throws Unpackable for a field of the wrong type. */
function unitSize(u: RecordUnit): number {
  const r = u.record
  num(r.startedAt)
  if (r.endedAt !== null) num(r.endedAt)
  if (r.pid !== null) num(r.pid)
  let size = strSize(r.id) + strSize(r.key) + 8 + 9 + strSize(r.status) + strSize(r.error)
  size += strSize(r.host) + 9 + strSize(r.build) + 4
  for (const c of u.captures) {
    num(c.seq)
    num(c.attempt)
    num(c.startedAt)
    num(c.durationMs)
    size += 8 + strSize(c.stage) + 8 + strSize(c.input) + strSize(c.output) + strSize(c.error)
    size += 8 + 8 + 4
    for (const e of c.effects) {
      num(e.seq)
      size += 8 + strSize(e.kind) + strSize(e.name) + strSize(e.args) + strSize(e.result)
      size += strSize(e.error)
    }
  }
  return size
}

/** Writes `u` at `at` (unitSize(u) bytes of room checked by the caller); returns the end. */
function writeUnit(u: RecordUnit, data: ArrayBuffer, start: number, size: number): number {
  const buf = Buffer.from(data, start, size)
  const view = new DataView(data, start, size)
  let at = 0
  const str = (s: string | null): void => {
    if (s === null) {
      view.setInt32(at, -1, true)
      at += 4
      return
    }
    const n = buf.write(s, at + 4, 'utf8')
    view.setInt32(at, n, true)
    at += 4 + n
  }
  const f64 = (v: number): void => {
    view.setFloat64(at, v, true)
    at += 8
  }
  const nullableF64 = (v: number | null): void => {
    if (v === null) {
      view.setUint8(at, 0)
      at += 9
      return
    }
    view.setUint8(at, 1)
    view.setFloat64(at + 1, v, true)
    at += 9
  }
  const r = u.record
  str(r.id)
  str(r.key)
  f64(r.startedAt)
  nullableF64(r.endedAt)
  str(r.status)
  str(r.error)
  str(r.host)
  nullableF64(r.pid)
  str(r.build)
  view.setUint32(at, u.captures.length, true)
  at += 4
  for (const c of u.captures) {
    f64(c.seq)
    str(c.stage)
    f64(c.attempt)
    str(c.input)
    str(c.output)
    str(c.error)
    f64(c.startedAt)
    f64(c.durationMs)
    view.setUint32(at, c.effects.length, true)
    at += 4
    for (const e of c.effects) {
      f64(e.seq)
      str(e.kind)
      str(e.name)
      str(e.args)
      str(e.result)
      str(e.error)
    }
  }
  return start + at
}

export interface Measured {
  bytes: number
  packable: boolean
}

/**
 * A batch packed record by record as records finish, so their strings die young instead
 * of waiting on the host's heap (and being copied by its GC) until the batch is sent. A
 * record that cannot be packed is kept as it is, for structured clone.
 */
export class BatchBuilder {
  private data: ArrayBuffer | undefined
  private at = 0
  private packedRecords = 0
  private kept: RecordUnit[] = []

  constructor(
    private readonly take: (bytes: number) => ArrayBuffer,
    private readonly giveBack: (buffer: ArrayBuffer) => void,
  ) {}

  get isEmpty(): boolean {
    return this.packedRecords === 0 && this.kept.length === 0
  }

  /** What `unit` would take in the batch: packed bytes, or its string lengths if kept as is. */
  measure(unit: RecordUnit): Measured {
    try {
      return { bytes: unitSize(unit), packable: true }
    } catch (err) {
      if (!(err instanceof Unpackable)) throw err
      return { bytes: textLength(unit), packable: false }
    }
  }

  /** Adds a record measured by `measure`. */
  add(unit: RecordUnit, m: Measured): void {
    if (!m.packable) {
      this.kept.push(unit)
      return
    }
    if (this.data === undefined || this.data.byteLength - this.at < m.bytes) this.grow(m.bytes)
    this.at = writeUnit(unit, this.data!, this.at, m.bytes)
    this.packedRecords++
  }

  private grow(size: number): void {
    const next = this.take(this.at + size)
    if (this.data !== undefined) {
      new Uint8Array(next).set(new Uint8Array(this.data, 0, this.at))
      this.giveBack(this.data)
    }
    this.data = next
  }

  /** The batch so far, and a fresh start. */
  finish(): { packed?: PackedUnits; units?: RecordUnit[] } {
    const out: { packed?: PackedUnits; units?: RecordUnit[] } = {}
    if (this.data !== undefined && this.packedRecords > 0) {
      out.packed = { data: this.data, length: this.at, records: this.packedRecords }
    } else if (this.data !== undefined) this.giveBack(this.data)
    if (this.kept.length > 0) out.units = this.kept
    this.data = undefined
    this.at = 0
    this.packedRecords = 0
    this.kept = []
    return out
  }
}

/** The string lengths of a record: what it holds in memory, near enough. */
function textLength(u: RecordUnit): number {
  let n = 256 + (u.record.error?.length ?? 0)
  for (const c of u.captures) {
    n += 128 + (typeof c.input === 'string' ? c.input.length : 0) + (c.output?.length ?? 0)
    n += c.error?.length ?? 0
    for (const e of c.effects)
      n += 64 + (e.args?.length ?? 0) + (e.result?.length ?? 0) + (e.error?.length ?? 0)
  }
  return n
}

/**
 * The records a BatchBuilder packed. With `payloads: 'bytes'` (the writer thread), each
 * payload text (inputs, outputs, errors, effect args and results) comes as a view of its
 * UTF-8 bytes in `packed.data`, valid until the buffer is handed back: decoding it only
 * for SQLite to encode it again cost the writer about a third of its CPU time.
 */
export function unpackUnits(packed: PackedUnits): RecordUnit[]
export function unpackUnits(packed: PackedUnits, payloads: 'bytes'): RecordUnit<StoredText>[]
export function unpackUnits(packed: PackedUnits, payloads?: 'bytes'): RecordUnit<StoredText>[] {
  const buf = Buffer.from(packed.data, 0, packed.length)
  const view = new DataView(packed.data, 0, packed.length)
  let at = 0
  /** A length-prefixed field: its decoded text, or a view of its bytes. */
  const field = <T>(read: (start: number, end: number) => T): T | null => {
    const n = view.getInt32(at, true)
    at += 4
    if (n < 0) return null
    at += n
    return read(at - n, at)
  }
  const decode = (start: number, end: number): string => buf.toString('utf8', start, end)
  const str = (): string | null => field(decode)
  const slice = payloads === 'bytes' ? (start: number, end: number) => buf.subarray(start, end) : decode
  const payload = (): StoredText | null => field<StoredText>(slice)
  // Fields declared as strings were packed from strings; null only where the row allows it.
  const text = (): string => str() as string
  const f64 = (): number => {
    const v = view.getFloat64(at, true)
    at += 8
    return v
  }
  const nullableF64 = (): number | null => {
    const present = view.getUint8(at) === 1
    const v = view.getFloat64(at + 1, true)
    at += 9
    return present ? v : null
  }
  const u32 = (): number => {
    const v = view.getUint32(at, true)
    at += 4
    return v
  }
  const units: RecordUnit<StoredText>[] = []
  for (let i = 0; i < packed.records; i++) {
    const record = {
      id: text(),
      key: text(),
      startedAt: f64(),
      endedAt: nullableF64(),
      status: text() as RecordStatus,
      error: str(),
      host: str(),
      pid: nullableF64(),
      build: str(),
    }
    const captures: CaptureWrite<StoredText>[] = new Array(u32())
    for (let c = 0; c < captures.length; c++) {
      const seq = f64()
      const stage = text()
      const attempt = f64()
      const input = payload() as StoredText
      const output = payload()
      const error = payload()
      const startedAt = f64()
      const durationMs = f64()
      const effects: EffectRow<StoredText>[] = new Array(u32())
      for (let e = 0; e < effects.length; e++) {
        effects[e] = {
          seq: f64(),
          kind: text() as EffectKind,
          name: text(),
          args: payload(),
          result: payload(),
          error: payload(),
        }
      }
      captures[c] = { seq, stage, attempt, input, output, error, startedAt, durationMs, effects }
    }
    units.push({ record, captures })
  }
  return units
}
