/**
 * A replay worker process (`retrace test --workers`, `retrace replay --workers`): replays
 * the chunks of records the CLI hands it and sends back their results in order.
 */
import { BundleSet } from '../bundle/index.js'
import { armInterruptCleanup } from '../bundle/interrupt.js'
import { RetraceError } from '../errors.js'
import { loadConfig, loadStages } from './config.js'
import type { ReplayOptions } from './engine.js'
import { keepYoungGenerationSmall } from './heap.js'
import { aliveEveryMs, type DocsItem, type ItemOptions, joinDocs, toItem, type WorkerItem } from './items.js'
import { escapedFromStage, exitProcess } from './network-guard.js'
import { testRecord } from './regress.js'
import { engineOptions, type RunOptions } from './run.js'

export interface WorkerInit extends ItemOptions {
  /** As given with --config (undefined: found upward from `cwd`). */
  config: string | undefined
  cwd: string
  run: RunOptions
}

export type ToWorker =
  | { type: 'init'; init: WorkerInit }
  | { type: 'records'; paths: readonly string[]; ids: readonly string[] }
  | { type: 'close' }

export type FromWorker =
  | {
      type: 'results'
      /** In the order of the chunk's ids (an item may stand for several records: itemSpan). */
      items: WorkerItem[]
      /** The last results of the chunk: the worker is ready for another. */
      last: boolean
    }
  | { type: 'error'; message: string; code: string; exit: number }
  | { type: 'alive' }
  | { type: 'ready' }
  /** Asked to close: everything is sent, and the process exits now. */
  | { type: 'closed' }

/**
 * Results go to the CLI in batches: a message per record cost more than replaying a small
 * record. Bounded, so memory stays flat in the number of records; and kept under the 64 KiB
 * the CLI reads from the channel at once (JSON documents are ~3 KB a record), since node
 * copies a message that spans reads once per read.
 */
const batchSize = 64
const batchChars = 48 * 1024

function main(): void {
  /** When this process last sent anything (a sign of life for the CLI). */
  let sentAt = performance.now()
  const post = (msg: FromWorker): void => {
    sentAt = performance.now()
    process.send?.(msg)
  }
  /** A failure as the CLI takes it (src/replay/pool.ts). */
  const failure = (err: unknown): FromWorker => ({
    type: 'error',
    message: (err as Error)?.message ?? String(err),
    code: err instanceof RetraceError ? err.code : 'E_WORKER',
    exit: err instanceof RetraceError ? err.exit : 5,
  })
  const report = (err: unknown): void => post(failure(err))

  // An error thrown by work a stage left running ends the run as it would in the CLI: one
  // line naming the stage (exit 1), sent before this process exits.
  const escaped = (err: unknown): void => {
    if (process.send === undefined || !process.connected) exitProcess(1)
    else process.send(failure(escapedFromStage(err)), () => exitProcess(1))
  }
  process.on('uncaughtException', escaped)
  process.on('unhandledRejection', escaped)
  // Ctrl-C reaches the workers too: each removes its private copies of a bundle.
  armInterruptCleanup()

  // A sign of life each second the event loop turns: a stage stuck in code that never
  // yields silences it, and the CLI stops this process (src/replay/pool.ts). A watchdog
  // thread of its own, as the CLI has, cost replay ~7% here: both cores are busy.
  setInterval(() => post({ type: 'alive' }), aliveEveryMs).unref()
  keepYoungGenerationSmall()
  /** What the CLI asked for, and the engine made from it; set by the first message. */
  let init: WorkerInit | undefined
  let ready: Promise<ReplayOptions> | undefined
  const start = (given: WorkerInit): void => {
    init = given
    ready = (async () => {
      const config = await loadConfig(given.config, given.cwd)
      return engineOptions(config, await loadStages(config), given.run)
    })()
    // A config that fails to load is reported at once, not with the first chunk. Until it
    // has loaded, the CLI does not take silence for a stuck stage (a slow module load).
    ready.then(() => post({ type: 'ready' }), report)
  }
  /** The bundles of the last chunk, kept open for the next. */
  let open: { key: string; set: BundleSet } | undefined
  /** Chunks run one at a time, in the order they came. */
  let queue: Promise<void> = Promise.resolve()

  const replayChunk = async (paths: readonly string[], ids: readonly string[]): Promise<void> => {
    const given = init
    if (given === undefined || ready === undefined) throw new Error('records came before init')
    const engine = await ready
    // Several bundles are read as one, as the CLI reads them: a record's parts are stitched.
    const key = JSON.stringify(paths)
    if (open?.key !== key) {
      open?.set.close()
      open = undefined
      open = { key, set: BundleSet.open(paths) }
    }
    const source = paths.join(', ')
    let batch: WorkerItem[] = []
    let chars = 0
    /** A batch of JSON entries goes as one item. */
    const send = (last: boolean): void => {
      const items = given.jsonDocs && batch.length > 0 ? [joinDocs(batch as DocsItem[])] : batch
      post({ type: 'results', items, last })
      batch = []
      chars = 0
    }
    for (const chain of open.set.loadRecords(ids)) {
      const { result, stale } = await testRecord(source, chain, engine)
      const item = toItem(result, stale, given)
      if ('docs' in item) chars += item.docs.length
      batch.push(item)
      if (batch.length >= batchSize || chars >= batchChars) send(false)
      // Records of synchronous stages never let the alive timer run: say so between them.
      else if (performance.now() - sentAt >= aliveEveryMs) post({ type: 'alive' })
    }
    send(true)
  }

  process.on('message', (msg: ToWorker) => {
    if (msg.type === 'init') start(msg.init)
    else if (msg.type === 'records') {
      queue = queue.then(() => replayChunk(msg.paths, msg.ids)).catch(report)
    } else if (msg.type === 'close') {
      void queue.finally(() =>
        // A turn of the event loop first: what a stage's timers throw is still reported.
        setTimeout(() => {
          open?.set.close()
          // The CLI goes on when it reads this, not when this process is gone: the kernel
          // takes 10-20 ms to free a replaying process's memory.
          if (process.send === undefined || !process.connected) exitProcess(0)
          else process.send({ type: 'closed' } satisfies FromWorker, () => exitProcess(0))
        }, 1),
      )
    }
  })
  // The CLI is gone (killed, crashed): nothing would read the results.
  process.on('disconnect', () => exitProcess(0))
}

if (process.send === undefined) throw new Error('the replay worker runs as a process forked by the CLI')
main()
