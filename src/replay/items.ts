/**
 * What a replayed record comes back as, from a worker process or from the CLI's own share
 * of a `--workers` run: as little as the report needs.
 */
import { safeJson } from '../render/format.js'
import type { RecordResult, Verdict } from './engine.js'
import type { StaleItem } from './regress.js'

/** How results travel back: what the CLI will do with them. */
export interface ItemOptions {
  /** Keep the local outputs of failing records (for --update). */
  keepOutputs: boolean
  /** Send every result whole (a reporter lists them all); else a matched one is its id and key. */
  keepMatched: boolean
  /** Send each result as its `replay --json` text (see `doc`), written where it is replayed. */
  jsonDocs: boolean
}

/**
 * One record's result. A matched record, when nothing lists it, is sent as its id and key:
 * sending and reading back whole results cost the CLI a fifth of a core.
 */
export type WorkerItem =
  | { result: RecordResult; stale: StaleItem[] }
  | { matched: [recordId: string, key: string]; stale: StaleItem[] }
  | {
      /**
       * The record's entry in `replay --json`'s `records` array, indented to sit there; as
       * UTF-8 bytes while it waits for the records before it (outside V8's heap, where the
       * young generation would copy it at every collection).
       */
      doc: string | Uint8Array
      recordId: string
      key: string
      verdict: Verdict
      stale: StaleItem[]
    }

/** What is sent for one record; the CLI makes the same of the records it replays itself. */
export function toItem(result: RecordResult, stale: StaleItem[], o: ItemOptions): WorkerItem {
  if (o.jsonDocs) {
    const { outputs: _outputs, ...doc } = result
    return {
      doc: `    ${safeJson(doc, 2).replaceAll('\n', '\n    ')}`,
      recordId: result.recordId,
      key: result.key,
      verdict: result.verdict,
      stale,
    }
  }
  if (result.verdict === 'matched' && !o.keepMatched) return { matched: [result.recordId, result.key], stale }
  if (!(o.keepOutputs && result.verdict !== 'matched')) delete result.outputs
  return { result, stale }
}

/** The record an item is about. */
export function itemRecord(item: WorkerItem): { recordId: string; key: string; verdict: Verdict } {
  if ('matched' in item) return { recordId: item.matched[0], key: item.matched[1], verdict: 'matched' }
  if ('doc' in item) return item
  return item.result
}
