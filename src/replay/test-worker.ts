/** A `retrace test --workers` thread: replays its share of one bundle's records. */
import { parentPort, workerData } from 'node:worker_threads'
import { BundleSet } from '../bundle/index.js'
import { RetraceError } from '../errors.js'
import { loadConfig, loadStages } from './config.js'
import type { RecordResult } from './engine.js'
import { type StaleItem, testRecord } from './regress.js'
import { engineOptions, type RunOptions } from './run.js'

export interface TestWorkerInit {
  path: string
  ids: string[]
  config: string | undefined
  cwd: string
  run: RunOptions
  /** Keep the local outputs of failing records (for --update). */
  keepOutputs: boolean
}

export type FromTestWorker =
  | { type: 'results'; items: { result: RecordResult; stale: StaleItem[] }[] }
  | { type: 'done' }
  | { type: 'error'; message: string; code: string; exit: number }

if (parentPort === null) throw new Error('test-worker must run in a worker thread')
const port = parentPort
const init = workerData as TestWorkerInit

/**
 * Results go to the main thread in batches: a message per record cost more than
 * replaying a small record. Bounded, so memory stays flat in the number of records.
 */
const batchSize = 64

async function main(): Promise<void> {
  const config = await loadConfig(init.config, init.cwd)
  const engine = engineOptions(config, await loadStages(config), init.run)
  const set = BundleSet.open([init.path])
  let batch: { result: RecordResult; stale: StaleItem[] }[] = []
  const flush = (): void => {
    if (batch.length === 0) return
    port.postMessage({ type: 'results', items: batch } satisfies FromTestWorker)
    batch = []
  }
  try {
    for (const chain of set.loadRecords(init.ids)) {
      const { result, stale } = await testRecord(init.path, chain, engine)
      if (!(init.keepOutputs && result.verdict !== 'matched')) delete result.outputs
      batch.push({ result, stale })
      if (batch.length >= batchSize) flush()
    }
    flush()
  } finally {
    set.close()
  }
  port.postMessage({ type: 'done' } satisfies FromTestWorker)
}

main().catch((err: unknown) => {
  const e = err as Error
  port.postMessage({
    type: 'error',
    message: e?.message ?? String(err),
    code: err instanceof RetraceError ? err.code : 'E_WORKER',
    exit: err instanceof RetraceError ? err.exit : 5,
  } satisfies FromTestWorker)
})
