/**
 * Several bundles read as one (one file per process is the recommended layout): record
 * listings are merged newest first, and a record continued in another process is
 * stitched together from every bundle that holds part of it.
 */
import { BundleError } from '../errors.js'
import { appendAll } from '../lists.js'
import type { OpenOptions } from './open.js'
import { BundleReader, keyNotFound, openBundle, type RecordFilter, recordNotFound, textOf } from './reader.js'
import type { RecordChain, RecordRow, RecordSummary } from './types.js'

export class BundleSet {
  private constructor(readonly readers: readonly BundleReader[]) {}

  /** Opens every path; if one fails, the ones already open are closed. */
  static open(paths: readonly string[], options?: OpenOptions): BundleSet {
    const readers: BundleReader[] = []
    try {
      for (const p of paths) readers.push(openBundle(p, options))
    } catch (err) {
      for (const r of readers) r.close()
      throw err
    }
    return new BundleSet(readers)
  }

  get paths(): string[] {
    return this.readers.map((r) => r.path)
  }

  /**
   * Records of all bundles, merged in the filter's order, streamed. A record continued in
   * another bundle is listed once, whole, and the status, time and order are those of the
   * whole: it started when its first part did and ended in error if any part did.
   *
   * Each bundle streams its parts in order, and each new id is stitched from every bundle
   * (one lookup per bundle). A whole record can start before the part that brought it, so it
   * waits in a buffer, sorted, until no record still unread can come before it: newest
   * first, until the streams have passed its start; oldest first, the same when every
   * record's earliest part is in the streams (no --key or --stage), else until they end.
   * The buffer keeps only the best `limit` records, so with a limit it stays that small;
   * without one it holds every record that started before a part read later (in the worst
   * case, a first bundle older than every part of another: all of them). The ids seen are
   * kept to list each record once, as before.
   */
  *records(filter: RecordFilter = {}): Generator<RecordSummary> {
    if (this.readers.length === 1) {
      yield* this.readers[0]!.records(filter)
      return
    }
    const newest = filter.order !== 'oldest'
    const { limit, ...rest } = filter
    const its = this.readers.map((r) => r.records(partFilter(rest, newest)))
    try {
      yield* this.merge(its, rest, newest, limit)
    } finally {
      for (const it of its) it.return(undefined)
    }
  }

  private *merge(
    its: Generator<RecordSummary>[],
    filter: RecordFilter,
    newest: boolean,
    limit: number | undefined,
  ): Generator<RecordSummary> {
    const heads = its.map((it) => it.next())
    const before = (a: RecordSummary, b: RecordSummary): boolean => {
      const t = a.startedAt - b.startedAt || Buffer.compare(Buffer.from(a.id), Buffer.from(b.id))
      return newest ? t > 0 : t < 0
    }
    const sure = newest || (filter.key === undefined && filter.stage === undefined)
    const ready: RecordSummary[] = []
    const seen = new Set<string>()
    let emitted = 0
    while (limit === undefined || emitted < limit) {
      let best = -1
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!
        if (h.done) continue
        if (best < 0) {
          best = i
          continue
        }
        const b = (heads[best] as IteratorYieldResult<RecordSummary>).value
        const t = h.value.startedAt - b.startedAt
        if (newest ? t > 0 : t < 0) best = i
      }
      const next = best < 0 ? undefined : (heads[best] as IteratorYieldResult<RecordSummary>).value
      // Records no unread one can come before: unread records start no later (newest
      // first) or no earlier (oldest first) than the part about to be read.
      while (
        ready.length > 0 &&
        (next === undefined ||
          (sure && (newest ? ready[0]!.startedAt > next.startedAt : ready[0]!.startedAt < next.startedAt)))
      ) {
        yield ready.shift()!
        emitted++
        if (limit !== undefined && emitted >= limit) return
      }
      if (next === undefined) return
      heads[best] = its[best]!.next()
      // A record continued in another process has a row in each bundle: list it once,
      // whole.
      if (seen.has(next.id)) continue
      seen.add(next.id)
      const whole = this.stitchSummary(next, best)
      if (!holdsWhole(whole, filter)) continue
      let at = ready.length
      while (at > 0 && before(whole, ready[at - 1]!)) at--
      ready.splice(at, 0, whole)
      if (limit !== undefined && ready.length > limit - emitted) ready.pop()
    }
  }

  /**
   * `summary` (from reader `from`) with the parts other bundles hold of the same record:
   * its stages in the order they ran, every capture counted, the span of all its parts.
   */
  private stitchSummary(summary: RecordSummary, from: number): RecordSummary {
    const parts = [summary]
    this.readers.forEach((r, i) => {
      if (i !== from) appendAll(parts, r.records({ id: summary.id }))
    })
    return stitchParts(parts)
  }

  /** The whole record with this id, from every bundle that holds part of it. */
  private stitchById(id: string): RecordSummary | undefined {
    const parts = this.readers.flatMap((r) => [...r.records({ id })])
    return parts.length === 0 ? undefined : stitchParts(parts)
  }

  /**
   * How many records `records(filter)` would give without its limit. One bundle: one
   * COUNT. Several: a record continued in another process has a row in each and is listed
   * once, so the ids (only they) are streamed from each in order and merged, counting each
   * once, without holding them. A status or time filter applies to the whole record, so
   * then each id is stitched (one lookup per bundle) before it counts.
   */
  countRecords(filter: RecordFilter = {}): number {
    const { limit: _limit, order: _order, ...rest } = filter
    if (this.readers.length === 1) return this.readers[0]!.countRecords(rest)
    const whole = rest.status !== undefined || rest.since !== undefined || rest.until !== undefined
    const its = this.readers.map((r) => r.recordIdBytes(whole ? partFilter(rest, true) : rest))
    try {
      const heads = its.map((it) => it.next())
      let count = 0
      while (true) {
        let least: Buffer | undefined
        for (const h of heads) {
          if (h.done !== true && (least === undefined || Buffer.compare(h.value, least) < 0)) least = h.value
        }
        if (least === undefined) return count
        if (!whole) count++
        else {
          const record = this.stitchById(textOf(least))
          if (record !== undefined && holdsWhole(record, rest)) count++
        }
        for (let i = 0; i < heads.length; i++) {
          const h = heads[i]!
          if (h.done !== true && Buffer.compare(h.value, least) === 0) heads[i] = its[i]!.next()
        }
      }
    } finally {
      for (const it of its) it.return(undefined)
    }
  }

  /** Resolves a record id or unique prefix across the set. */
  resolveRecordId(ref: string): string {
    const found = new Set<string>()
    for (const r of this.readers) {
      const id = r.resolveRecordId(ref)
      if (id !== undefined) found.add(id)
    }
    if (found.size > 1) {
      throw new BundleError(
        'E_AMBIGUOUS_RECORD',
        `record prefix ${JSON.stringify(ref)} is ambiguous: ${[...found].join(', ')}`,
      )
    }
    const [id] = found
    if (id === undefined) throw recordNotFound(ref, this.paths)
    return id
  }

  latestRecordIdForKey(key: string): string {
    let best: { id: string; at: number } | undefined
    for (const r of this.readers) {
      const [rec] = r.records({ key, limit: 1 })
      if (rec !== undefined && (best === undefined || rec.startedAt > best.at))
        best = { id: rec.id, at: rec.startedAt }
    }
    if (best === undefined) throw keyNotFound(key, this.paths)
    return best.id
  }

  /** One record, stitched from every bundle that holds part of it. */
  loadRecord(id: string): RecordChain {
    const parts = this.readers.map((r) => r.loadRecord(id)).filter((c): c is RecordChain => c !== undefined)
    if (parts.length === 0) throw recordNotFound(id, this.paths)
    if (parts.length === 1) return parts[0]!
    const captures = parts
      .flatMap((p) => p.captures)
      .sort((a, b) => a.startedAt - b.startedAt || a.seq - b.seq)
    return {
      record: wholeRow(parts.map((p) => p.record)),
      captures: captures.map((c, seq) => ({ ...c, seq })),
      expectations: parts.flatMap((p) => p.expectations),
      source: parts.map((p) => p.source).join(', '),
    }
  }

  /**
   * The records with these ids, in order, streamed. From one bundle they are read in
   * chunks, a read transaction each (see BundleReader.loadRecords); not for use while one
   * of the set's listings is being iterated.
   */
  *loadRecords(ids: readonly string[]): Generator<RecordChain> {
    if (this.readers.length !== 1) {
      for (const id of ids) yield this.loadRecord(id)
      return
    }
    let i = 0
    for (const chain of this.readers[0]!.loadRecords(ids)) {
      if (chain === undefined) throw recordNotFound(ids[i]!, this.paths)
      i++
      yield chain
    }
  }

  close(): void {
    for (const r of this.readers) r.close()
  }
}

/**
 * The record row of a record continued in other processes, from its parts' rows: the part
 * that started it gives its start, host, pid and build; it ends when its last part did, and
 * in error, with that part's error, if any part did.
 */
function wholeRow<T extends RecordRow>(parts: readonly T[]): T {
  const first = [...parts].sort((a, b) => a.startedAt - b.startedAt)[0]!
  const failed = parts.find((p) => p.status === 'error')
  return {
    ...first,
    endedAt: parts.reduce((max, p) => Math.max(max, p.endedAt ?? 0), Number.NEGATIVE_INFINITY),
    status: failed !== undefined ? 'error' : 'ok',
    error: failed !== undefined ? failed.error : null,
  }
}

/** One record's parts (one per bundle holding it) as the whole record. */
function stitchParts(parts: RecordSummary[]): RecordSummary {
  if (parts.length === 1) return parts[0]!
  const sorted = [...parts].sort((a, b) => a.startedAt - b.startedAt)
  return {
    ...wholeRow(parts),
    stages: [...new Set(sorted.flatMap((p) => p.stages))],
    captures: parts.reduce((n, p) => n + p.captures, 0),
    retries: parts.reduce((n, p) => n + p.retries, 0),
    source: sorted.map((p) => p.source).join(', '),
  }
}

/** Whether a whole record passes the filter's status and times (its key and stage, any part). */
function holdsWhole(record: RecordSummary, filter: RecordFilter): boolean {
  if (filter.status !== undefined && record.status !== filter.status) return false
  if (filter.since !== undefined && record.startedAt < filter.since) return false
  if (filter.until !== undefined && record.startedAt > filter.until) return false
  return true
}

/**
 * What each bundle may filter its parts on before they are stitched, so that no record the
 * whole would pass loses the part that brings it. A condition every part of a passing
 * record meets (started since, ended ok) always; one some part meets (started until, ended
 * in error) only when the streams hold every part (no key or stage filter). Oldest first,
 * the error part may not be the earliest, which the merge needs first.
 */
function partFilter(filter: RecordFilter, newest: boolean): RecordFilter {
  const { status, until, ...part } = filter
  const everyPart = filter.key === undefined && filter.stage === undefined
  return {
    ...part,
    ...(status === 'ok' || (status === 'error' && everyPart && newest) ? { status } : {}),
    ...(until !== undefined && everyPart ? { until } : {}),
  }
}

export { BundleReader }
