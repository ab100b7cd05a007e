import { statSync } from 'node:fs'
import { BundleError, RetraceError } from '../errors.js'
import { withoutInterrupts } from './interrupt.js'
import { openBundle } from './reader.js'
import type { ExpectationRow } from './types.js'
import { BundleWriter } from './writer.js'

/**
 * Writes expectations into an existing bundle. The file is first opened the hardened way
 * (it may have come from a bug report), and a read-only file is refused, not forced.
 */
export function pinExpectations(
  path: string,
  rows: readonly ExpectationRow[],
  recorderVersion: string,
): void {
  openBundle(path).close()
  const st = statSync(path)
  if ((st.mode & 0o222) === 0) {
    throw new BundleError(
      'E_BUNDLE_READONLY',
      `${path} is read-only; make it writable (chmod u+w) to pin expectations in it`,
    )
  }
  // One transaction: a write cut off by a kill leaves a -journal, which the next open rolls
  // back (readers roll back a private copy, src/bundle/open.ts); Ctrl-C waits for it.
  withoutInterrupts(() => {
    const writer = BundleWriter.open(path, {
      journal: 'delete',
      manifest: {
        pipeline: null,
        recorderVersion,
        builds: [],
        redaction: { rules: [], equalityPreserving: false },
      },
    })
    try {
      writer.writeExpectations(rows)
    } catch (err) {
      throw pinFailed(path, err)
    } finally {
      writer.close()
    }
  })
}

/** A write of pins SQLite refused, as one line: most often another process writing the bundle. */
function pinFailed(path: string, err: unknown): RetraceError {
  if (err instanceof RetraceError) return err
  const code = (err as { code?: unknown }).code
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new BundleError(
      'E_BUNDLE_BUSY',
      `${path} is being written by another process (a recorder, accept or test --update); nothing pinned, pin again once it has finished`,
      undefined,
      { cause: err },
    )
  }
  return new BundleError(
    'E_PIN_WRITE',
    `cannot pin expectations in ${path}: ${(err as Error)?.message ?? String(err)}; nothing pinned`,
    undefined,
    { cause: err },
  )
}
