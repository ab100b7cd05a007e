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
  | DocsItem

/**
 * `replay --json` entries of consecutive records: each indented to sit in the `records`
 * array, joined by ",\n". A worker sends a batch as one item, in UTF-8 bytes: the CLI writes
 * them as they are, and never holds them on its V8 heap (where the young generation would
 * copy them at every collection while they wait for the records before them).
 */
export interface DocsItem {
  docs: string | Uint8Array
  /** Each record's verdict, in order. */
  verdicts: Verdict[]
  stale: StaleItem[]
}

/** What is sent for one record; the CLI makes the same of the records it replays itself. */
export function toItem(result: RecordResult, stale: StaleItem[], o: ItemOptions): WorkerItem {
  if (o.jsonDocs) {
    const { outputs: _outputs, ...doc } = result
    return { docs: recordEntry(doc), verdicts: [result.verdict], stale }
  }
  if (result.verdict === 'matched' && !o.keepMatched) return { matched: [result.recordId, result.key], stale }
  if (!(o.keepOutputs && result.verdict !== 'matched')) delete result.outputs
  return { result, stale }
}

/** How many records an item stands for. */
export function itemSpan(item: WorkerItem): number {
  return 'docs' in item ? item.verdicts.length : 1
}

/** Consecutive records' `replay --json` entries as one item, in bytes. */
export function joinDocs(items: readonly DocsItem[]): DocsItem {
  return {
    docs: Buffer.from(items.map((i) => i.docs).join(',\n')),
    verdicts: items.flatMap((i) => i.verdicts),
    stale: items.flatMap((i) => i.stale),
  }
}

/** The record a one-record item is about. */
export function itemRecord(item: Exclude<WorkerItem, DocsItem>): {
  recordId: string
  key: string
  verdict: Verdict
} {
  if ('matched' in item) return { recordId: item.matched[0], key: item.matched[1], verdict: 'matched' }
  return item.result
}

/** How often a worker process says it is alive (src/replay/pool.ts stops one that goes quiet). */
export const aliveEveryMs = 1000

/** What `{ "records": [` holds before an entry, and what follows the last, at indent 2. */
const entryHead = '{\n  "records": [\n'
const entryTail = '\n  ]\n}'

/**
 * A record's entry in `replay --json`, indented as an item of the document's `records`:
 * written inside that array by JSON.stringify itself, not re-indented line by line after.
 */
function recordEntry(doc: unknown): string {
  const text = safeJson({ records: [doc] }, 2)
  return text.slice(entryHead.length, text.length - entryTail.length)
}
