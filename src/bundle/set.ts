/**
 * Several bundles read as one (one file per process is the recommended layout): record
 * listings are merged newest first, and a record continued in another process is
 * stitched together from every bundle that holds part of it.
 */
import { BundleError } from '../errors.js'
import type { OpenOptions } from './open.js'
import { BundleReader, keyNotFound, openBundle, type RecordFilter, recordNotFound } from './reader.js'
import type { RecordChain, RecordSummary } from './types.js'

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

  /** Records of all bundles, merged in the filter's order, streamed. */
  *records(filter: RecordFilter = {}): Generator<RecordSummary> {
    const { limit, ...rest } = filter
    if (this.readers.length === 1) {
      yield* this.readers[0]!.records(filter)
      return
    }
    const newest = filter.order !== 'oldest'
    const its = this.readers.map((r) => r.records(rest))
    const heads = its.map((it) => it.next())
    const emitted = 0
    try {
      yield* this.merge(its, heads, newest, limit, emitted)
    } finally {
      for (const it of its) it.return(undefined)
    }
  }

  private *merge(
    its: Generator<RecordSummary>[],
    heads: IteratorResult<RecordSummary>[],
    newest: boolean,
    limit: number | undefined,
    emitted: number,
  ): Generator<RecordSummary> {
    const seen = new Set<string>()
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
      if (best < 0) return
      const next = (heads[best] as IteratorYieldResult<RecordSummary>).value
      heads[best] = its[best]!.next()
      // A record continued in another process has a row in each bundle: list it once,
      // whole.
      if (seen.has(next.id)) continue
      seen.add(next.id)
      yield this.stitchSummary(next, best)
      emitted++
    }
  }

  /**
   * `summary` (from reader `from`) with the parts other bundles hold of the same record:
   * its stages in the order they ran, every capture counted, the span of all its parts.
   */
  private stitchSummary(summary: RecordSummary, from: number): RecordSummary {
    const parts = [summary]
    this.readers.forEach((r, i) => {
      if (i !== from) parts.push(...r.records({ id: summary.id }))
    })
    if (parts.length === 1) return summary
    parts.sort((a, b) => a.startedAt - b.startedAt)
    const ended = parts.map((p) => p.endedAt ?? 0)
    return {
      ...summary,
      startedAt: parts[0]!.startedAt,
      endedAt: Math.max(...ended),
      status: parts.some((p) => p.status === 'error') ? 'error' : 'ok',
      stages: [...new Set(parts.flatMap((p) => p.stages))],
      captures: parts.reduce((n, p) => n + p.captures, 0),
      source: parts.map((p) => p.source).join(', '),
    }
  }

  /**
   * How many records `records(filter)` would give without its limit. One bundle: one
   * COUNT. Several: a record continued in another process has a row in each and is listed
   * once, so the ids (only they) are streamed from each in order and merged, counting each
   * once, without holding them.
   */
  countRecords(filter: RecordFilter = {}): number {
    const { limit: _limit, ...rest } = filter
    if (this.readers.length === 1) return this.readers[0]!.countRecords(rest)
    const its = this.readers.map((r) => r.recordIdBytes(rest))
    try {
      const heads = its.map((it) => it.next())
      let count = 0
      while (true) {
        let least: Buffer | undefined
        for (const h of heads) {
          if (h.done !== true && (least === undefined || Buffer.compare(h.value, least) < 0)) least = h.value
        }
        if (least === undefined) return count
        count++
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
    const [first, ...others] = parts
    if (first === undefined) throw recordNotFound(id, this.paths)
    if (others.length === 0) return first
    const captures = parts
      .flatMap((p) => p.captures)
      .sort((a, b) => a.startedAt - b.startedAt || a.seq - b.seq)
    const ended = parts.map((p) => p.record.endedAt ?? 0)
    return {
      record: {
        ...first.record,
        startedAt: Math.min(...parts.map((p) => p.record.startedAt)),
        endedAt: Math.max(...ended),
        status: parts.some((p) => p.record.status === 'error') ? 'error' : 'ok',
      },
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

export { BundleReader }
