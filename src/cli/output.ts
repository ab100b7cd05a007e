/**
 * Files a command writes where `-o`/`--output` says: `test --output`, `report -o` and
 * `extract -o` take the same paths and fail the same way. The path is made ready before
 * the command's work starts, so a path that cannot be written fails at once, in one line
 * (exit 2), instead of after a whole run whose result is then lost.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, resolve, sep } from 'node:path'
import { UsageError } from '../errors.js'

export interface PreparedOutput {
  /** Absolute path of the file to write. */
  path: string
  /** The path as the user wrote it (with the file name added when they named a folder). */
  shown: string
}

/**
 * The file to write for an `--output` value, ready to be written: a path that is an
 * existing folder, or ends with `/`, names a folder (created if missing) to write
 * `nameInFolder` into; any other path names the file, whose missing parent folders are
 * created. Throws a UsageError (`E_OUTPUT`) naming the path when the folder cannot be made
 * or written, or the file is a folder or cannot be written.
 */
export function prepareOutput(given: string, nameInFolder: () => string): PreparedOutput {
  const asFolder = given.endsWith('/') || given.endsWith(sep) || isFolder(given)
  const name = asFolder ? nameInFolder() : undefined
  const path = name !== undefined ? join(resolve(given), name) : resolve(given)
  const shown = name !== undefined ? join(given, name) : given
  const folder = dirname(path)
  try {
    mkdirSync(folder, { recursive: true })
    accessSync(folder, constants.W_OK)
  } catch (err) {
    throw outputError(path, err)
  }
  if (isFolder(path)) throw new UsageError(`cannot write ${path}: it is a folder`, 'E_OUTPUT')
  if (existsSync(path)) {
    try {
      accessSync(path, constants.W_OK)
    } catch (err) {
      throw outputError(path, err)
    }
  }
  return { path, shown }
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1')

/**
 * Refuses an output path that would write over a bundle: one of the bundles the command
 * reads (the same file, by any name: a symlink or a hard link to it), or any other file
 * that is a SQLite database. A report written there is a recording lost for good, where
 * the user meant to name the report beside it.
 */
export function refuseBundleOutput(path: string, shown: string, inputs: readonly string[]): void {
  let target: ReturnType<typeof statSync>
  try {
    target = statSync(path)
  } catch {
    return
  }
  const same = inputs.some((p) => {
    try {
      const st = statSync(p)
      return st.dev === target.dev && st.ino === target.ino
    } catch {
      return false
    }
  })
  if (same)
    throw new UsageError(
      `cannot write ${shown}: it is the input bundle, which the report would overwrite`,
      'E_OUTPUT',
    )
  if (target.isFile() && startsWithSqliteMagic(path)) {
    throw new UsageError(
      `cannot write ${shown}: it is a SQLite file (a bundle?), which the report would overwrite`,
      'E_OUTPUT',
    )
  }
}

function startsWithSqliteMagic(path: string): boolean {
  let fd: number | undefined
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
    const head = Buffer.alloc(SQLITE_MAGIC.length)
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_MAGIC)
  } catch {
    return false
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Writes a prepared output file; a failure is one line naming it (exit 2). */
export function writeOutput(path: string, text: string): void {
  try {
    writeFileSync(path, text)
  } catch (err) {
    throw outputError(path, err)
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

const reasons: Record<string, string> = {
  EACCES: 'permission denied',
  EEXIST: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  ENOSPC: 'no space left on the device',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
}

/** What went wrong, in words, without node's `ENOENT: ..., open '...'` wrapping. */
function outputError(path: string, err: unknown): UsageError {
  const code = (err as { code?: unknown }).code
  const reason =
    (typeof code === 'string' && Object.hasOwn(reasons, code) ? reasons[code] : undefined) ??
    (err instanceof Error ? err.message : String(err))
  return new UsageError(`cannot write ${path}: ${reason}`, 'E_OUTPUT')
}
