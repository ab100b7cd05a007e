import { statSync } from 'node:fs'
import { BundleError } from '../errors.js'
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
    } finally {
      writer.close()
    }
  })
}
