/**
 * Hardened, read-only open of a bundle that may have come from a stranger.
 *
 * Phases: preflight on the raw bytes (regular file, size cap, SQLite header, a file cut
 * short with no WAL to make up for it, application_id, format version) before SQLite
 * parses anything; then an immutable, read-only open that leaves no -wal/-shm beside the
 * file (a bundle with a live WAL, or a -journal a cut-off write left, is read from a private
 * copy, which SQLite rolls back; a journal naming a super-journal, which a rollback would
 * delete, is refused); then `trusted_schema=OFF`, a schema check that refuses views and
 * triggers, and `quick_check`.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  constants as fsConstants,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'

// URI filenames (for `immutable=1`) must be on before the native module first loads.
process.env.SQLITE_USE_URI ??= '1'

import { BundleError, ExitCode, UsageError } from '../errors.js'
import { makeTempDir, removeTemp } from './interrupt.js'
import { APPLICATION_ID, FORMAT_VERSION, REQUIRED_TABLES } from './schema.js'

export interface OpenOptions {
  /** Largest file accepted, in bytes (default 4 GiB). */
  maxBytes?: number
  /** Run `quick_check` on files up to this size (default 256 MiB); larger files skip it. */
  checkUpToBytes?: number
  /**
   * Read a bundle a recorder may still be writing (verify --follow): a normal read-only
   * open that sees new commits, instead of an immutable snapshot.
   */
  live?: boolean
}

export const defaultMaxBytes = 4 * 1024 ** 3
const defaultCheckUpToBytes = 256 * 1024 ** 2
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1')

export interface OpenedBundle {
  db: Database.Database
  path: string
  formatVersion: number
  sizeBytes: number
  /** Removes the private copy, if one was made. */
  cleanup: () => void
}

function fail(code: string, path: string, what: string): never {
  throw new BundleError(code, `${path}: ${what}`)
}

interface Header {
  size: number
  pageSize: number
  /**
   * The database size the header gives, in bytes, when SQLite would trust it (a non-zero
   * page count written with the change counter it is valid for); otherwise undefined.
   */
  declaredSize: number | undefined
  appId: number
  userVersion: number
  wal: boolean
}

function readHeader(path: string, maxBytes: number): Header {
  let fd: number
  try {
    // Non-blocking, so a FIFO named as a bundle is refused below rather than waited on for a
    // writer that never comes (a plain open of a FIFO blocks, and Ctrl-C cannot end it).
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') fail('E_BUNDLE_MISSING', path, 'no such file')
    if (code === 'EISDIR') fail('E_NOT_BUNDLE', path, 'is a directory, not a bundle')
    if (code === 'EACCES' || code === 'EPERM') fail('E_BUNDLE_UNREADABLE', path, 'permission denied')
    fail('E_BUNDLE_UNREADABLE', path, `cannot read (${code ?? (err as Error).message})`)
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) fail('E_NOT_BUNDLE', path, 'is a directory, not a bundle')
    if (!st.isFile()) fail('E_NOT_BUNDLE', path, 'is not a regular file')
    if (st.size === 0) fail('E_NOT_BUNDLE', path, 'is empty (0 bytes), not a bundle')
    if (st.size > maxBytes) {
      fail(
        'E_BUNDLE_TOO_LARGE',
        path,
        `is ${st.size} bytes, over the ${maxBytes} byte limit (set RETRACE_MAX_BUNDLE_BYTES)`,
      )
    }
    const head = Buffer.alloc(100)
    const n = readSync(fd, head, 0, 100, 0)
    if (n < 100 || !head.subarray(0, 16).equals(SQLITE_MAGIC)) {
      fail('E_NOT_BUNDLE', path, 'is not a SQLite file, so not a retrace bundle')
    }
    const pageSizeRaw = head.readUInt16BE(16)
    const pageSize = pageSizeRaw === 1 ? 65536 : pageSizeRaw
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
      fail('E_BUNDLE_CORRUPT', path, 'has a corrupt SQLite header (bad page size)')
    }
    const pages = head.readUInt32BE(28)
    return {
      size: st.size,
      pageSize,
      declaredSize:
        pages > 0 && head.readUInt32BE(24) === head.readUInt32BE(92) ? pages * pageSize : undefined,
      appId: head.readUInt32BE(68),
      userVersion: head.readUInt32BE(60),
      wal: head[18] === 2 || head[19] === 2,
    }
  } finally {
    closeSync(fd)
  }
}

/** Bytes of a WAL file's header, and of each frame's header before its page. */
const WAL_HEADER_BYTES = 32
const WAL_FRAME_HEADER_BYTES = 24

/** Whether SQLite will read pages from a WAL beside the file: one with at least a frame. */
function walHoldsFrames(target: string, header: Header): boolean {
  if (!header.wal) return false
  try {
    return statSync(`${target}-wal`).size >= WAL_HEADER_BYTES + WAL_FRAME_HEADER_BYTES + header.pageSize
  } catch {
    return false
  }
}

/**
 * Refuses a file cut short, as SQLite would (it calls one malformed), in words that say so.
 * Only when no WAL will be read: a checkpoint writes page 1, with the new size, before the
 * pages past the file's end, so a process killed during one leaves a file shorter than its
 * header says, and SQLite takes the size and those pages from the WAL. SQLite judges that
 * pair itself, on open and in `quick_check`.
 */
function checkWhole(path: string, header: Header, walFrames: boolean): void {
  if (walFrames) return
  if (header.declaredSize !== undefined && header.declaredSize > header.size) {
    fail(
      'E_BUNDLE_CORRUPT',
      path,
      `is truncated: the header says ${header.declaredSize} bytes, the file has ${header.size}`,
    )
  }
  if (header.size % header.pageSize !== 0)
    fail('E_BUNDLE_CORRUPT', path, 'is truncated (size is not a whole number of pages)')
}

function checkSchema(db: Database.Database, path: string): void {
  const rows = db.prepare('SELECT type, name, sql FROM sqlite_schema').all() as {
    type: string
    name: string
    sql: string | null
  }[]
  for (const r of rows) {
    if (r.type === 'table' && /^\s*CREATE\s+VIRTUAL\b/i.test(r.sql ?? '')) {
      fail(
        'E_BUNDLE_HOSTILE',
        path,
        `contains a virtual table (${JSON.stringify(r.name)}); bundles never do, refusing to read it`,
      )
    }
    if (r.type === 'view' || r.type === 'trigger') {
      fail(
        'E_BUNDLE_HOSTILE',
        path,
        `contains a ${r.type} (${JSON.stringify(r.name)}); bundles never do, refusing to read it`,
      )
    }
  }
  const tables = new Set(rows.filter((r) => r.type === 'table').map((r) => r.name))
  for (const [table, columns] of Object.entries(REQUIRED_TABLES)) {
    if (!tables.has(table))
      fail('E_BUNDLE_CORRUPT', path, `has no ${table} table; not a complete retrace bundle`)
    const have = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name))
    for (const c of columns) {
      if (!have.has(c)) fail('E_BUNDLE_CORRUPT', path, `table ${table} lacks column ${c}`)
    }
  }
}

/** Turns a SQLite failure into one clear line. */
export function wrapSqliteError(err: unknown, path: string): BundleError {
  if (err instanceof BundleError) return err
  if (
    /bindings file|NODE_MODULE_VERSION|better_sqlite3\.node|invalid ELF/i.test(
      String((err as Error)?.message),
    )
  ) {
    return new BundleError(
      'E_NATIVE',
      'the native SQLite module (better-sqlite3) does not load on this machine; run `npm rebuild better-sqlite3`, then `retrace doctor`',
      ExitCode.native,
      { cause: err },
    )
  }
  const code = (err as { code?: unknown }).code
  const message = (err as Error).message ?? String(err)
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || /malformed|not a database/i.test(message)) {
    return new BundleError('E_BUNDLE_CORRUPT', `${path}: the bundle is corrupt (${message})`, undefined, {
      cause: err,
    })
  }
  return new BundleError('E_BUNDLE_READ', `${path}: cannot read the bundle (${message})`, undefined, {
    cause: err,
  })
}

function immutableUri(path: string): string {
  return `file:${encodeURI(path).replace(/\?/g, '%3f').replace(/#/g, '%23')}?immutable=1`
}

/**
 * Copies the -journal after the file: each page a write changes is in the journal before
 * the file is changed, so the later copy holds every page the file copy needs rolled back.
 * A journal gone by then was a write that committed meanwhile: the file is copied again.
 */
function copyJournal(target: string, copy: string): void {
  try {
    copyFileSync(`${target}-journal`, `${copy}-journal`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    copyFileSync(target, copy)
  }
}

const JOURNAL_MAGIC = Buffer.from('d9d505f920a163d7', 'hex')

/**
 * Whether a -journal ends with the name of a super-journal, as SQLite reads it (length,
 * checksum and magic in its last 16 bytes). Rolling such a journal back deletes the file it
 * names when no other journal still refers to it: a hand-made journal naming any file the
 * user can write would have it deleted. retrace writes one file per transaction, so its
 * journals never name one.
 */
function namesSuperJournal(journal: string): boolean {
  const fd = openSync(journal, 'r')
  try {
    const size = fstatSync(fd).size
    if (size < 16) return false
    const tail = Buffer.alloc(16)
    readSync(fd, tail, 0, 16, size - 16)
    const len = tail.readUInt32BE(0)
    return len > 0 && len <= size - 16 && tail.subarray(8).equals(JOURNAL_MAGIC)
  } finally {
    closeSync(fd)
  }
}

/** A read-write open of the private copy, so SQLite rolls back a hot journal beside it. */
function rollBack(copy: string, path: string): void {
  if (existsSync(`${copy}-journal`) && namesSuperJournal(`${copy}-journal`)) {
    fail(
      'E_BUNDLE_CORRUPT',
      path,
      'has a -journal naming another file to delete once it is rolled back, which retrace never writes; refused (remove the -journal to read the file as it stands)',
    )
  }
  const db = new Database(copy, { fileMustExist: true })
  try {
    db.pragma('trusted_schema = OFF')
    db.pragma('schema_version')
  } finally {
    db.close()
  }
}

let uriProbe: boolean | undefined

/**
 * better-sqlite3 reads SQLITE_USE_URI once, when its native module first loads in the
 * process; an embedding process may have loaded it before us without URIs.
 */
function uriSupported(): boolean {
  if (uriProbe !== undefined) return uriProbe
  let dir: string | undefined
  try {
    dir = mkdtempSync(join(tmpdir(), 'retrace-uri-'))
    const probe = join(dir, 'probe.sqlite')
    new Database(probe).close()
    try {
      new Database(immutableUri(probe), { readonly: true, fileMustExist: true }).close()
      uriProbe = true
    } catch {
      uriProbe = false
    }
  } catch {
    // No temporary directory to probe in: read as if URIs were not understood.
    uriProbe = false
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
  return uriProbe
}

/** The size cap a user set with RETRACE_MAX_BUNDLE_BYTES (the size error names it), if any. */
function maxBytesFromEnv(): number | undefined {
  const text = process.env.RETRACE_MAX_BUNDLE_BYTES?.trim()
  if (text === undefined || text === '') return undefined
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `RETRACE_MAX_BUNDLE_BYTES=${JSON.stringify(text)} is not a number of bytes (e.g. 8589934592 for 8 GiB)`,
    )
  }
  return Number(text)
}

/**
 * A -wal or -journal beside the file is read (copied, rolled back) only if it is a file:
 * reading a FIFO blocks for good, and while a private copy is held Ctrl-C waits for the
 * read; a folder there is not the missing temporary directory it would be reported as.
 */
function checkSidecar(path: string, sidecar: string, suffix: string): void {
  let st: ReturnType<typeof statSync>
  try {
    st = statSync(sidecar)
  } catch {
    return
  }
  if (!st.isFile()) fail('E_BUNDLE_UNREADABLE', path, `has a ${suffix} beside it that is not a file; refused`)
}

/**
 * The private copy holds the file and whatever -wal and -journal is copied with it; all of
 * it together is held to the size cap, as the file alone is, before anything is copied.
 */
function checkCopyBudget(
  path: string,
  target: string,
  size: number,
  maxBytes: number,
  journal: boolean,
): void {
  let total = size
  for (const suffix of journal ? ['-wal', '-journal'] : ['-wal']) {
    let bytes: number
    try {
      bytes = statSync(`${target}${suffix}`).size
    } catch {
      continue
    }
    total += bytes
    if (total > maxBytes) {
      fail(
        'E_BUNDLE_TOO_LARGE',
        path,
        `has a ${suffix} of ${bytes} bytes beside it, which with the rest makes ${total} bytes to copy, over the ${maxBytes} byte limit (set RETRACE_MAX_BUNDLE_BYTES)`,
      )
    }
  }
}

/** The file's absolute path with every symlink followed (the path as given if that fails). */
function realPath(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

export function openBundleFile(path: string, options: OpenOptions = {}): OpenedBundle {
  const maxBytes = options.maxBytes ?? maxBytesFromEnv() ?? defaultMaxBytes
  const header = readHeader(path, maxBytes)
  // SQLite finds -wal and -journal beside the file a symlink points to, not beside the link:
  // every check and copy of them starts from the real path.
  const real = realPath(path)
  for (const suffix of ['-wal', '-journal']) checkSidecar(path, `${real}${suffix}`, suffix)
  // A -journal beside the file: a write was cut off (or is under way), and the file may hold
  // half of it; it is read from a private copy that SQLite rolls back first.
  const journal = !options.live && existsSync(`${real}-journal`)
  checkWhole(path, header, walHoldsFrames(real, header) || journal)
  if (header.appId !== APPLICATION_ID) {
    fail('E_NOT_BUNDLE', path, 'is a SQLite file of another application, not a retrace bundle')
  }
  if (header.userVersion > FORMAT_VERSION) {
    fail(
      'E_NEWER_FORMAT',
      path,
      `is bundle format ${header.userVersion}, newer than this retrace reads (${FORMAT_VERSION}); upgrade retrace`,
    )
  }
  if (header.userVersion < 1)
    fail('E_BUNDLE_CORRUPT', path, 'has no format version; not a complete retrace bundle')

  let target = real
  let cleanup = (): void => {}
  let name = target
  if (!options.live) {
    const walLeft = header.wal && existsSync(`${target}-wal`)
    if (!walLeft && !uriSupported() && !header.wal && !journal) {
      // A rollback-journal file (what a closed recorder leaves) with no journal beside it,
      // opened read-only: SQLite writes nothing next to it, so it needs no copy.
      name = target
    } else if (walLeft || journal || !uriSupported()) {
      // Committed data may still sit in the WAL, or this SQLite cannot open a WAL file
      // immutably: read a private copy so nothing is ever written beside the user's file.
      checkCopyBudget(path, target, header.size, maxBytes, journal)
      let dir: string | undefined
      try {
        // A whole copy of the bundle: removed on Ctrl-C from the moment it exists.
        dir = makeTempDir('retrace-open-')
        const copy = join(dir, 'bundle.sqlite')
        copyFileSync(target, copy)
        if (existsSync(`${target}-wal`)) copyFileSync(`${target}-wal`, `${copy}-wal`)
        if (journal) copyJournal(target, copy)
        target = copy
        name = copy
      } catch (err) {
        if (dir !== undefined) removeTemp(dir)
        const e = err as NodeJS.ErrnoException
        fail(
          'E_BUNDLE_UNREADABLE',
          path,
          `is read from a private copy (so nothing is written beside it), and none could be made in ${tmpdir()} (${e.code ?? e.message}); set TMPDIR to a writable directory with room for it`,
        )
      }
      const made = dir
      cleanup = () => removeTemp(made)
    } else {
      name = immutableUri(target)
    }
  }

  let db: Database.Database
  try {
    if (journal) rollBack(target, path)
    db = new Database(name, { readonly: true, fileMustExist: true })
  } catch (err) {
    cleanup()
    throw wrapSqliteError(err, path)
  }
  try {
    db.pragma('trusted_schema = OFF')
    db.pragma('query_only = ON')
    db.pragma('cell_size_check = ON')
    db.pragma('mmap_size = 0')
    checkSchema(db, path)
    if (header.size <= (options.checkUpToBytes ?? defaultCheckUpToBytes)) {
      const result = db.pragma('quick_check(1)', { simple: true })
      if (result !== 'ok') fail('E_BUNDLE_CORRUPT', path, `failed its integrity check (${String(result)})`)
    }
  } catch (err) {
    db.close()
    cleanup()
    throw wrapSqliteError(err, path)
  }
  return { db, path, formatVersion: header.userVersion, sizeBytes: header.size, cleanup }
}
