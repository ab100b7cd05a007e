/** A `retrace test --workers` process: replays the chunks of records the CLI hands it. */
import { BundleSet } from '../bundle/index.js'
import { RetraceError } from '../errors.js'
import { loadConfig, loadStages } from './config.js'
import type { RecordResult, ReplayOptions } from './engine.js'
import { keepYoungGenerationSmall } from './heap.js'
import { type StaleItem, testRecord } from './regress.js'
import { engineOptions, type RunOptions } from './run.js'

export interface TestWorkerInit {
  /** As given with --config (undefined: found upward from `cwd`). */
  config: string | undefined
  cwd: string
  run: RunOptions
  /** Keep the local outputs of failing records (for --update). */
  keepOutputs: boolean
  /** Send every result whole (a reporter lists them all); else a matched one is its id and key. */
  keepMatched: boolean
}

/**
 * One record's result. A matched record, when nothing lists it, is sent as its id and key:
 * sending and reading back whole results cost the CLI a fifth of a core.
 */
export type WorkerResult =
  | { result: RecordResult; stale: StaleItem[] }
  | { matched: [recordId: string, key: string]; stale: StaleItem[] }

export type ToTestWorker =
  | { type: 'init'; init: TestWorkerInit }
  | { type: 'records'; path: string; ids: readonly string[] }
  | { type: 'close' }

export type FromTestWorker =
  | {
      type: 'results'
      items: WorkerResult[]
      /** The last results of the chunk: the worker is ready for another. */
      last: boolean
    }
  | { type: 'error'; message: string; code: string; exit: number }

if (process.send === undefined) throw new Error('test-worker must run as a forked process')
const post = (msg: FromTestWorker): void => {
  process.send?.(msg)
}

/**
 * Results go to the CLI in batches: a message per record cost more than
 * replaying a small record. Bounded, so memory stays flat in the number of records.
 */
const batchSize = 64

function report(err: unknown): void {
  const e = err as Error
  post({
    type: 'error',
    message: e?.message ?? String(err),
    code: err instanceof RetraceError ? err.code : 'E_WORKER',
    exit: err instanceof RetraceError ? err.exit : 5,
  })
}

keepYoungGenerationSmall()
/** What the CLI asked for, and the engine made from it; set by the first message. */
let init: TestWorkerInit | undefined
let ready: Promise<ReplayOptions> | undefined

function start(given: TestWorkerInit): void {
  init = given
  ready = (async () => {
    const config = await loadConfig(given.config, given.cwd)
    return engineOptions(config, await loadStages(config), given.run)
  })()
  // A config that fails to load is reported at once, not with the first chunk.
  ready.catch(report)
}
/** The bundle of the last chunk, kept open for the next. */
let open: { path: string; set: BundleSet } | undefined
/** Chunks run one at a time, in the order they came. */
let queue: Promise<void> = Promise.resolve()

async function replayChunk(path: string, ids: readonly string[]): Promise<void> {
  const given = init
  if (given === undefined || ready === undefined) throw new Error('records came before init')
  const engine = await ready
  if (open?.path !== path) {
    open?.set.close()
    open = undefined
    open = { path, set: BundleSet.open([path]) }
  }
  let batch: WorkerResult[] = []
  for (const chain of open.set.loadRecords(ids)) {
    const { result, stale } = await testRecord(path, chain, engine)
    if (result.verdict === 'matched' && !given.keepMatched) {
      batch.push({ matched: [result.recordId, result.key], stale })
    } else {
      if (!(given.keepOutputs && result.verdict !== 'matched')) delete result.outputs
      batch.push({ result, stale })
    }
    if (batch.length >= batchSize) {
      post({ type: 'results', items: batch, last: false })
      batch = []
    }
  }
  post({ type: 'results', items: batch, last: true })
}

process.on('message', (msg: ToTestWorker) => {
  if (msg.type === 'init') start(msg.init)
  else if (msg.type === 'records') {
    queue = queue.then(() => replayChunk(msg.path, msg.ids)).catch(report)
  } else if (msg.type === 'close') {
    void queue.finally(() => {
      open?.set.close()
      process.exit(0)
    })
  }
})
// The CLI is gone (killed, crashed): nothing would read the results.
process.on('disconnect', () => process.exit(0))
