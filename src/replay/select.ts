/** Which records a command works on: named ids, a key, a --where predicate, or all. */
import { type BundleSet, keyNotFound } from '../bundle/index.js'
import { parseWhere } from '../compare/where.js'
import { BundleError, UsageError } from '../errors.js'

export interface Selection {
  records?: readonly string[]
  key?: string
  where?: string
}

/** Record ids to visit, streamed (oldest first for keys and whole bundles). */
export function* selectRecords(set: BundleSet, sel: Selection): Generator<string> {
  if (sel.records !== undefined && sel.records.length > 0) {
    // Resolve every ref before the first is yielded, so a typo fails before any output.
    yield* sel.records.map((ref) => set.resolveRecordId(ref))
    return
  }
  if (sel.where !== undefined) {
    const where = parseWhere(sel.where)
    const seen = new Set<string>()
    for (const reader of set.readers) {
      for (const hit of reader.find(where)) {
        // With --key too, the records of that key the predicate matches.
        if (sel.key !== undefined && hit.key !== sel.key) continue
        if (!seen.has(hit.recordId)) {
          seen.add(hit.recordId)
          yield hit.recordId
        }
      }
    }
    return
  }
  if (sel.key !== undefined) {
    for (const r of set.records({ key: sel.key, order: 'oldest' })) yield r.id
    return
  }
  if (set.readers.length === 1) {
    yield* set.readers[0]!.recordIds()
    return
  }
  // Several bundles: each record once, whole, by when its first part started.
  for (const r of set.records({ order: 'oldest' })) yield r.id
}

/**
 * Fails now as `selectRecords` would (an unknown record id, a key no record has, a --where
 * that does not parse), and for a --where that no record matches, before anything is
 * printed about the run.
 */
export function checkSelection(set: BundleSet, sel: Selection): void {
  if (sel.records !== undefined && sel.records.length > 0) {
    // Records named and records selected: which was meant cannot be told.
    if (sel.key !== undefined || sel.where !== undefined) {
      throw new UsageError(
        `name records or select them with ${sel.key !== undefined ? '--key' : '--where'}, not both`,
      )
    }
    for (const ref of sel.records) set.resolveRecordId(ref)
  } else if (sel.where !== undefined) {
    const where = parseWhere(sel.where)
    if (sel.key !== undefined) checkKey(set, sel.key)
    // As for --key: a selection of nothing is most often a typo, not a run to report.
    const found = set.readers.some((reader) => {
      const hits = reader.find(where, sel.key === undefined ? 1 : undefined)
      try {
        for (let hit = hits.next(); hit.done !== true; hit = hits.next()) {
          if (sel.key === undefined || hit.value.key === sel.key) return true
        }
        return false
      } finally {
        // Ends the search's statement, so the bundle can be read (or closed) again.
        hits.return(undefined)
      }
    })
    if (!found) {
      const of = sel.key === undefined ? '' : ` of key ${sel.key}`
      throw new BundleError(
        'E_RECORD_NOT_FOUND',
        `no record${of} where ${sel.where} in ${set.paths.join(', ')}`,
      )
    }
  } else if (sel.key !== undefined) checkKey(set, sel.key)
}

/** A misspelt key is an input error, as it is for `show --key`, not a run of nothing. */
function checkKey(set: BundleSet, key: string): void {
  const first = set.records({ key, limit: 1 })
  try {
    if (first.next().done === true) throw keyNotFound(key, set.paths)
  } finally {
    // Ends the listing's statement, so the bundle can be read (or closed) again.
    first.return(undefined)
  }
}
