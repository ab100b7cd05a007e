/**
 * The inventory pipeline runner: one binlog event through
 * binlog -> ingest -> kv -> compute -> store -> query, as one recorded record keyed by SKU.
 *
 * Ingest may defer a change (the runner waits the retry-after and asks again); compute
 * may fail on a KV read (the runner backs off and retries, up to three attempts). Each
 * retry is a new capture of the same stage with the next attempt number.
 */
import type { Recorder, StageFn } from 'retrace'
import { binlog } from './stages/binlog.js'
import { compute } from './stages/compute.js'
import { ingest } from './stages/ingest.js'
import { kv } from './stages/kv.js'
import { query } from './stages/query.js'
import { store } from './stages/store.js'
import type { Admission, BinlogEvent, Change, Computed, Screen, StoredChange, Written } from './types.js'

export interface InventoryStages {
  binlog: StageFn<BinlogEvent, Change>
  ingest: StageFn<Change, Admission>
  kv: StageFn<Admission, StoredChange>
  compute: StageFn<StoredChange, Computed>
  store: StageFn<Computed, Written>
  query: StageFn<Written, Screen>
}

/** The stages of this checkout (the fixed local build). */
export const localStages: InventoryStages = { binlog, ingest, kv, compute, store, query }

export const INGEST_ATTEMPTS = 3
export const COMPUTE_ATTEMPTS = 3
/** Backoff before compute attempt n + 1: 100 ms, then 200 ms. */
export const computeBackoffMs = (attempt: number): number => 100 * 2 ** (attempt - 1)

export type Outcome =
  | { recordId: string; key: string; status: 'shown'; screen: Screen }
  | { recordId: string; key: string; status: 'shed'; admission: Admission }

/** A record that ended in an error, with the stage that threw. */
export class RecordFailed extends Error {
  override readonly name = 'RecordFailed'
  constructor(
    readonly recordId: string,
    readonly key: string,
    readonly stage: keyof InventoryStages,
    options: { cause: unknown },
  ) {
    super(`record ${recordId} (${key}) failed in ${stage}: ${(options.cause as Error)?.message}`, options)
  }
}

/** The record key: the row's SKU, or the binlog position when the event has none. */
export function keyOf(event: BinlogEvent): string {
  const i = event.columns?.indexOf('sku') ?? -1
  const row = event.rows?.[0]
  const sku = i < 0 ? undefined : (row?.after?.[i] ?? row?.before?.[i])
  return typeof sku === 'string' ? sku : `binlog:${event.header.file}:${event.header.pos}`
}

export interface PipelineOptions {
  /** Waits between retries; the record script passes the simulated clock's. */
  sleep: (ms: number) => Promise<void>
}

/** Wraps the stages with the recorder and returns a function that runs one event. */
export function createPipeline(
  recorder: Recorder,
  stages: InventoryStages,
  options: PipelineOptions,
): (event: BinlogEvent) => Promise<Outcome> {
  const s = {
    binlog: recorder.stage('binlog', stages.binlog),
    ingest: recorder.stage('ingest', stages.ingest),
    kv: recorder.stage('kv', stages.kv),
    compute: recorder.stage('compute', stages.compute),
    store: recorder.stage('store', stages.store),
    query: recorder.stage('query', stages.query),
  }

  async function computeWithRetries(stored: StoredChange): Promise<Computed> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await s.compute(stored)
      } catch (err) {
        if (attempt >= COMPUTE_ATTEMPTS) throw err
        await options.sleep(computeBackoffMs(attempt))
      }
    }
  }

  return async (event) => {
    const key = keyOf(event)
    let recordId = ''
    let stage: keyof InventoryStages = 'binlog'
    const step = <T>(name: keyof InventoryStages, run: () => Promise<T>): Promise<T> => {
      stage = name
      return run()
    }
    try {
      return await recorder.record(key, async (): Promise<Outcome> => {
        recordId = recorder.current()?.recordId ?? ''
        const change = await step('binlog', () => s.binlog(event))
        let admission = await step('ingest', () => s.ingest(change))
        for (let attempt = 1; !admission.admitted && attempt < INGEST_ATTEMPTS; attempt++) {
          await options.sleep(admission.retryAfterMs ?? 0)
          admission = await s.ingest(change)
        }
        if (!admission.admitted) return { recordId, key, status: 'shed', admission }
        const stored = await step('kv', () => s.kv(admission))
        const computed = await step('compute', () => computeWithRetries(stored))
        const written = await step('store', () => s.store(computed))
        const screen = await step('query', () => s.query(written))
        return { recordId, key, status: 'shown', screen }
      })
    } catch (err) {
      throw new RecordFailed(recordId, key, stage, { cause: err })
    }
  }
}
