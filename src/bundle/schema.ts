/**
 * Bundle format v1. See docs/bundle-format.md for the reader's view of it.
 *
 * `application_id` marks the file as a retrace bundle; `user_version` is the format
 * version. A reader refuses a newer version and reads every older one (migrations run on
 * a private copy, never on the user's file).
 */

/** 'RTRC' as a big-endian 32-bit integer. */
export const APPLICATION_ID = 0x52545243
export const FORMAT_VERSION = 1
/** 16 KiB pages: 1.5-2x faster than 4 KiB for 2 KB and mixed payload rows, ~1.1x for 1 KB rows (bench/page-size.ts). */
export const PAGE_SIZE = 16384

export const REQUIRED_TABLES: Readonly<Record<string, readonly string[]>> = {
  manifest: ['key', 'value'],
  records: ['id', 'key', 'started_at', 'ended_at', 'status', 'error', 'host', 'pid', 'build'],
  captures: [
    'id',
    'record_id',
    'seq',
    'stage',
    'attempt',
    'input',
    'output',
    'error',
    'started_at',
    'duration_ms',
    'build',
    'host',
    'pid',
  ],
  effects: ['capture_id', 'seq', 'kind', 'name', 'args', 'result', 'error'],
  expectations: ['record_id', 'stage', 'output', 'error', 'note', 'build', 'accepted_at'],
}

export const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS manifest (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
  id         TEXT PRIMARY KEY,
  key        TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  status     TEXT NOT NULL,
  error      TEXT,
  host       TEXT,
  pid        INTEGER,
  build      TEXT
);
CREATE INDEX IF NOT EXISTS records_by_key ON records (key, started_at);
CREATE INDEX IF NOT EXISTS records_by_time ON records (started_at);
CREATE TABLE IF NOT EXISTS captures (
  id          INTEGER PRIMARY KEY,
  record_id   TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  stage       TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  input       TEXT NOT NULL,
  output      TEXT,
  error       TEXT,
  started_at  REAL NOT NULL,
  duration_ms REAL NOT NULL,
  build       TEXT,
  host        TEXT,
  pid         INTEGER
);
CREATE INDEX IF NOT EXISTS captures_by_record ON captures (record_id, seq);
CREATE INDEX IF NOT EXISTS captures_by_stage ON captures (stage);
CREATE TABLE IF NOT EXISTS effects (
  capture_id INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  args       TEXT,
  result     TEXT,
  error      TEXT,
  PRIMARY KEY (capture_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expectations (
  record_id   TEXT NOT NULL,
  stage       TEXT NOT NULL,
  output      TEXT,
  error       TEXT,
  note        TEXT,
  build       TEXT,
  accepted_at INTEGER NOT NULL,
  PRIMARY KEY (record_id, stage)
);
`

/** Manifest keys, each stored as JSON text in `manifest.value`. */
export interface Manifest {
  format: 'retrace-bundle'
  formatVersion: number
  pipeline: string | null
  recorderVersion: string
  created: string
  builds: string[]
  redaction: { rules: string[]; equalityPreserving: boolean }
  /** Set on bundles written by `extract`: where the records came from. */
  extractedFrom?: { bundle: string; records: number; at: string }
}
