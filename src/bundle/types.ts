/** Row shapes of a bundle. Payload columns are typed-JSON text (see src/codec). */

export type RecordStatus = 'ok' | 'error'

export interface RecordRow {
  id: string
  key: string
  startedAt: number
  endedAt: number | null
  status: RecordStatus
  error: string | null
  host: string | null
  pid: number | null
  build: string | null
}

/** `async-effect`: an effect whose function returned a promise (replay returns one too). */
export type EffectKind = 'now' | 'random' | 'effect' | 'async-effect'

/**
 * A stored JSON text. The writer thread also takes it as its UTF-8 bytes (`Uint8Array`,
 * bundle/wire.ts), which SQLite stores as the same TEXT without a round trip through a
 * JavaScript string.
 */
export type StoredText = string | Uint8Array

export interface EffectRow<T extends StoredText = string> {
  seq: number
  kind: EffectKind
  name: string
  args: T | null
  result: T | null
  error: T | null
}

export interface CaptureRow {
  id: number
  recordId: string
  seq: number
  stage: string
  attempt: number
  input: string
  output: string | null
  error: string | null
  startedAt: number
  durationMs: number
  build: string | null
  host: string | null
  pid: number | null
}

export interface ExpectationRow {
  recordId: string
  stage: string
  output: string | null
  error: string | null
  note: string | null
  build: string | null
  acceptedAt: number
}

/** What the recorder hands the writer: one whole record, committed atomically. */
export interface RecordUnit<T extends StoredText = string> {
  record: RecordRow
  captures: CaptureWrite<T>[]
}

export interface CaptureWrite<T extends StoredText = string> {
  seq: number
  stage: string
  attempt: number
  input: T
  output: T | null
  error: T | null
  startedAt: number
  durationMs: number
  effects: EffectRow<T>[]
}

/** A record with everything recorded about it, as read back. */
export interface RecordChain {
  record: RecordRow
  captures: (CaptureRow & { effects: EffectRow[] })[]
  expectations: ExpectationRow[]
  /** The bundle file the record was read from. */
  source: string
}

export interface RecordSummary extends RecordRow {
  stages: string[]
  captures: number
  /** Repeated calls of a stage with the same input; calls once per item are not counted. */
  retries: number
  source: string
}
