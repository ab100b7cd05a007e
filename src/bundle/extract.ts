/**
 * `extract`: a new standalone bundle holding only the named records. It is built fresh
 * (never by deleting from a copy, so no other record's bytes survive in free pages),
 * written under a temporary name beside the target and renamed into place, in rollback
 * mode so no -wal or -shm is left beside it. Extra redaction rules apply on the way out.
 */
import { existsSync, renameSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { PathPart, PathPattern } from '../codec/index.js'
import {
  decode,
  encode,
  matchPath,
  maxDecodeDepth,
  PathSyntaxError,
  PayloadError,
  parseJson,
  Redactor,
  storedQueryRedacted,
  TAG,
} from '../codec/index.js'
import { BundleError, RetraceError, UsageError } from '../errors.js'
import { holdTemp, releaseTemp, removeTemp } from './interrupt.js'
import type { BundleSet } from './set.js'
import type { CaptureWrite, ExpectationRow, RecordChain, RecordUnit } from './types.js'
import { BundleWriter } from './writer.js'

export interface ExtractOptions {
  /** Extra path rules redacted in every payload on the way out. */
  redact: readonly string[]
  /** Builds of retrace writing the file. */
  recorderVersion: string
  now: () => number
}

export interface ExtractResult {
  path: string
  records: number
  captures: number
  redactedValues: number
  /**
   * Values written as a `too-deep` marker because they nest too deeply to redact; only
   * present when there were some.
   */
  tooDeepValues?: number
}

/**
 * Applies path rules to payload text; returns the text unchanged when nothing matched.
 * The rules name places in the recorded value (a Map entry by its key, as the recorder's
 * `redact` does), so the text is decoded to that value and encoded again through the
 * rules; text that is not JSON (a damaged row) is walked as plain JSON instead. A value
 * nested too deeply to walk is left out, as the marker below.
 */
function redactText(
  text: string | null,
  rules: readonly PathPattern[],
  redactor: Redactor,
  counter: RedactCounter,
): string | null {
  if (text === null || rules.length === 0) return text
  let value: unknown
  try {
    value = decode(text)
  } catch {
    if (!isJson(text)) return redactPlainText(text, redactor, counter)
    // Valid JSON that does not decode nests deeper than maxDecodeDepth.
    return leaveOut(counter)
  }
  let hits = 0
  const counting = new Redactor({
    rules: [
      (path, v) => {
        const hit =
          path.length > 0 &&
          (rules.some((r) => matchPath(r.segments, path)) ||
            // Path rules only: a URL's userinfo is a secret by the default names, which
            // the recorder applied and --redact does not add.
            storedQueryRedacted(path, v, (below) => rules.some((r) => matchPath(r.segments, below)), false))
        if (hit) hits++
        return hit
      },
    ],
    defaults: false,
  })
  let out: string
  try {
    // No caps of its own: whatever decoded is written back (a recorder caps depth at 512,
    // a reader takes up to maxDecodeDepth, and the bundle may come from anywhere).
    out = encode(value, { maxBytes: Number.POSITIVE_INFINITY, maxDepth: maxDecodeDepth + 1 }, counting)
  } catch (err) {
    // A decoded value has no getter, Proxy or cycle: the walk ran out of stack, which a
    // value nested well over a thousand levels does before maxDecodeDepth.
    if (err instanceof PayloadError) return leaveOut(counter)
    throw err
  }
  if (hits === 0) return text
  counter.n += hits
  return out
}

interface RedactCounter {
  /** Values redacted. */
  n: number
  /** Values left out because they nest too deeply to be walked. */
  tooDeep: number
}

function isJson(text: string): boolean {
  try {
    parseJson(text)
    return true
  } catch {
    return false
  }
}

/**
 * The marker written in place of a value too deep to redact: the rules cannot be applied
 * to what cannot be walked, so nothing of it is kept. Readers showed it as unreadable
 * (deeper than maxDecodeDepth) or came within a few hundred levels of that; the recorder
 * writes no value deeper than 512 levels, so only a hand-made bundle has one.
 */
function leaveOut(counter: RedactCounter): string {
  counter.tooDeep++
  return JSON.stringify({
    [TAG]: 'unrecorded',
    reason: 'too-deep',
    message: `payload nests too deeply to redact (up to ${maxDecodeDepth} levels are read); left out by extract --redact`,
  })
}

/**
 * The walk over plain JSON, for text that does not parse (a damaged row): kept as it is
 * when no rule can name a key in it, refused (parseJson throws) when one may.
 */
function redactPlainText(text: string, redactor: Redactor, counter: RedactCounter): string {
  if (!redactor.mayMatch(text)) return text
  const value = parseJson(text)
  let changed = false
  const path: PathPart[] = []
  const walk = (v: unknown): unknown => {
    if (path.length > 0 && redactor.matches(path, v)) {
      changed = true
      counter.n++
      return '[redacted]'
    }
    if (Array.isArray(v)) {
      return v.map((item, i) => {
        path.push(i)
        const out = walk(item)
        path.pop()
        return out
      })
    }
    if (typeof v === 'object' && v !== null) {
      const out: Record<string, unknown> = {}
      for (const [k, item] of Object.entries(v)) {
        path.push(k)
        Object.defineProperty(out, k, {
          value: walk(item),
          enumerable: true,
          writable: true,
          configurable: true,
        })
        path.pop()
      }
      return out
    }
    return v
  }
  const result = walk(value)
  return changed ? JSON.stringify(result) : text
}

export function extractRecords(
  set: BundleSet,
  ids: readonly string[],
  target: string,
  o: ExtractOptions,
): ExtractResult {
  let redactor: Redactor
  try {
    redactor = new Redactor({ rules: [...o.redact], defaults: false })
  } catch (err) {
    if (err instanceof PathSyntaxError) throw new UsageError(`--redact: ${err.message}`, 'E_REDACT_PATH')
    throw err
  }
  const chains: RecordChain[] = ids.map((id) => set.loadRecord(id))
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`)
  rmSync(tmp, { force: true })
  rmSync(`${tmp}-journal`, { force: true })
  // Every record, unredacted until written, in a folder that may be committed: never left
  // behind by Ctrl-C.
  holdTemp(tmp)
  holdTemp(`${tmp}-journal`)
  try {
    return writeExtract(set, chains, tmp, target, redactor, o)
  } finally {
    removeTemp(`${tmp}-journal`)
    releaseTemp(tmp)
  }
}

function writeExtract(
  set: BundleSet,
  chains: RecordChain[],
  tmp: string,
  target: string,
  redactor: Redactor,
  o: ExtractOptions,
): ExtractResult {
  const counter: RedactCounter = { n: 0, tooDeep: 0 }
  const rules = redactor.patterns
  // The bundles that hold part of these records (several, when a record was continued in
  // another process): the extract says it came from them and keeps what their manifests say.
  const from =
    set.readers.length === 1
      ? set.readers
      : set.readers.filter((r) => chains.some((c) => r.hasRecord(c.record.id)))
  const manifests = from.map((r) => r.manifest())
  // A hand-made manifest can hold any JSON in these lists: an item that is not a string is
  // kept as its JSON text (`String()` throws on `{"toString": 1}`).
  const union = (lists: unknown[]): string[] => [
    ...new Set(
      lists.flatMap((l) =>
        Array.isArray(l) ? l.map((x) => (typeof x === 'string' ? x : (JSON.stringify(x) ?? 'null'))) : [],
      ),
    ),
  ]
  const priorRules = union(manifests.map((m) => m.redaction?.rules))
  const pipeline = manifests.map((m) => m.pipeline).find((p) => typeof p === 'string')
  const writer = BundleWriter.open(tmp, {
    journal: 'delete',
    manifest: {
      pipeline: pipeline ?? null,
      recorderVersion: o.recorderVersion,
      builds: union(manifests.map((m) => m.builds)),
      redaction: {
        rules: [...priorRules, ...o.redact.filter((r) => !priorRules.includes(r))],
        // Only if every part was recorded so: a claim one bundle does not make is not made.
        equalityPreserving:
          manifests.length > 0 && manifests.every((m) => m.redaction?.equalityPreserving === true),
      },
      extractedFrom: {
        bundle: from.map((r) => basename(r.path)).join(', ') || basename(set.paths[0] ?? ''),
        records: chains.length,
        at: new Date(o.now()).toISOString(),
      },
    },
  })
  let captures = 0
  try {
    const units: RecordUnit[] = chains.map((chain) => ({
      record: chain.record,
      captures: chain.captures.map(
        (c): CaptureWrite => ({
          seq: c.seq,
          stage: c.stage,
          attempt: c.attempt,
          input: redactText(c.input, rules, redactor, counter) ?? c.input,
          output: redactText(c.output, rules, redactor, counter),
          error: c.error,
          startedAt: c.startedAt,
          durationMs: c.durationMs,
          effects: c.effects.map((e) => ({
            ...e,
            args: redactText(e.args, rules, redactor, counter),
            result: redactText(e.result, rules, redactor, counter),
          })),
        }),
      ),
    }))
    captures = units.reduce((n, u) => n + u.captures.length, 0)
    writer.write(units)
    const expectations: ExpectationRow[] = chains.flatMap((c) =>
      c.expectations.map((x) => ({ ...x, output: redactText(x.output, rules, redactor, counter) })),
    )
    if (expectations.length > 0) writer.writeExpectations(expectations)
    writer.close()
    renameSync(tmp, target)
  } catch (err) {
    writer.close()
    rmSync(tmp, { force: true })
    if (err instanceof RetraceError) throw err
    // What was read cannot be written back (a start time that is not a number, in a bundle
    // made by hand), or the disk refused it.
    throw new BundleError(
      'E_EXTRACT_WRITE',
      `cannot write ${target} (${(err as Error).message})`,
      undefined,
      {
        cause: err,
      },
    )
  }
  if (existsSync(`${target}-journal`)) rmSync(`${target}-journal`, { force: true })
  const result: ExtractResult = { path: target, records: chains.length, captures, redactedValues: counter.n }
  if (counter.tooDeep > 0) result.tooDeepValues = counter.tooDeep
  return result
}

/** A file name safe on every platform, from untrusted text (a key from a bundle). */
export function safeFileName(text: string): string {
  const cleaned = text
    .normalize('NFKC')
    .replace(/[^\w.-]+/g, '_')
    .replace(/^\.+/, '')
    .replace(/_+/g, '_')
    .slice(0, 80)
  return cleaned.length > 0 ? cleaned : 'record'
}
