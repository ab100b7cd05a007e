import { statSync } from 'node:fs'
import {
  decode,
  encode,
  maxDecodeDepth,
  type PathPart,
  Redactor,
  storedQueryRedacted,
} from '../codec/index.js'
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
  const reader = openBundle(path)
  let redactor: Redactor | undefined
  try {
    redactor = pinRedactor(reader.manifest().redaction?.rules)
  } finally {
    reader.close()
  }
  const pins =
    redactor === undefined ? rows : rows.map((r) => ({ ...r, output: redactPin(r.output, redactor) }))
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
      writer.writeExpectations(pins)
    } catch (err) {
      throw pinFailed(path, err)
    } finally {
      writer.close()
    }
  })
}

/**
 * The bundle's own redaction rules, as its manifest lists them (`defaults` and path rules),
 * for the outputs pinned in it: a local build's output holds what production's was
 * redacted of (an `authorization` header, a token read from the local environment), and
 * an expectation is stored next to the recording, extracted and committed with it. A
 * recording whose rules could not be used (every payload a token) gets pins that are one
 * token each. Any other function rule ran in the recorder and is not in the bundle, and a
 * rule that does not parse (a manifest written by hand) cannot be applied; both are passed
 * over.
 */
function pinRedactor(rules: unknown): Redactor | undefined {
  if (!Array.isArray(rules)) return undefined
  const paths: string[] = []
  let defaults = false
  for (const rule of rules) {
    if (rule === 'defaults') defaults = true
    // The recorder's stand-in for rules it could not use: every payload was kept whole.
    else if (rule === 'fn:redactEverything') return new Redactor({ rules: [() => true] })
    else if (typeof rule === 'string' && rule.startsWith('$')) {
      try {
        new Redactor({ rules: [rule], defaults: false })
        paths.push(rule)
      } catch {}
    }
  }
  if (!defaults && paths.length === 0) return undefined
  const rulesOnly = new Redactor({ rules: paths, defaults })
  // A query string and a URL are stored as text: a parameter the rules name redacts it
  // whole, as the recorder did with the URLSearchParams or URL it was, and so does a
  // password in a URL's userinfo when the default names are on.
  const query = (path: readonly PathPart[], v: unknown): boolean =>
    storedQueryRedacted(path, v, (below) => rulesOnly.matches(below, ''), defaults)
  return new Redactor({ rules: [...paths, query], defaults })
}

/**
 * A pinned output through the bundle's rules. One that cannot be walked is pinned as a
 * whole token, as the recorder does with a payload it cannot redact.
 */
function redactPin(text: string | null, redactor: Redactor): string | null {
  if (text === null || !redactor.mayMatch(text)) return text
  try {
    return encode(
      decode(text),
      { maxBytes: Number.POSITIVE_INFINITY, maxDepth: maxDecodeDepth + 1 },
      redactor,
    )
  } catch {
    return JSON.stringify('[redacted]')
  }
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
