/**
 * `--workers N` for `retrace test` and `retrace replay`: the CLI process and N-1 worker
 * processes replay a bundle's records together. The workers are started by `bin/run.js`
 * before oclif loads (src/replay/prestart.ts), or else when the pool is made; they load the
 * config and the stage modules while the CLI is still finding bundles and listing records,
 * and they serve every bundle of the run. Records are handed out in chunks as each one asks
 * for more, so a worker slowed by other work on the machine takes fewer of them instead of
 * holding up the end of the run. Every result comes with its position in the list it was
 * handed, so the CLI can report in that order.
 *
 * Processes, not worker threads: on the 2-core machine the benchmarks run on, two threads
 * replaying side by side each ran 50-70% slower than one alone, two processes 5-17%
 * slower (threads share one address space, and every page V8 maps or frees there stalls
 * the other core). A stage that crashes or exits takes only its worker down.
 */
import type { ChildProcess } from 'node:child_process'
import { ExitCode, type ExitCodeValue, RetraceError } from '../errors.js'
import { aliveEveryMs, type ItemOptions, itemSpan, type WorkerItem } from './items.js'
import { forkWorker, takeWorkers } from './prestart.js'
import type { RunOptions } from './run.js'
import { stuckAfterMs } from './watchdog.js'
import type { FromWorker, ToWorker, WorkerInit } from './worker.js'

/** Runs the records of a bundle (or of bundles read as one) on worker processes, reporting each result as it lands. */
export interface ReplayPool {
  /** Bundles with fewer records run in this process alone: a worker costs more than it saves. */
  minRecords: number
  run(
    /** The bundle, or the bundles read as one (a record's parts in several are stitched). */
    paths: readonly string[],
    ids: readonly string[],
    /** Each item, with the position in `ids` of its (first) record; in no particular order. */
    onItem: (item: WorkerItem, position: number) => void,
    /**
     * Replays some of the records in this process (`ids` from position `start`), reporting
     * them itself; it stops between records once `stopped()` (the run has failed).
     */
    replayHere: (ids: readonly string[], start: number, stopped: () => boolean) => Promise<void>,
    /**
     * Positions below which records may be handed out, when results wait to be reported in
     * order: no process runs further ahead of the first unreported record than that.
     */
    horizon?: () => number,
  ): Promise<void>
  /** Stops the workers; the run is over. */
  close(): Promise<void>
}

/**
 * Records per hand-out to a worker: a share of what is left (guided scheduling), so chunks
 * are large while much is left (each costs a message) and small near the end, where a large
 * one would keep the run waiting on a single process.
 */
function chunkSize(left: number, workers: number): number {
  return Math.max(16, Math.min(256, Math.ceil(left / (workers * 4))))
}

/**
 * Chunks a worker holds at once: the one it replays and the next, so it never waits for the
 * CLI (busy with its own records) to answer its ask for more.
 */
const depth = 2

/**
 * Records the CLI replays between looks at its workers' messages: a few milliseconds'
 * worth, so a worker that finished its chunk gets the next one without waiting long.
 */
const ownChunk = 16

interface Chunk {
  ids: readonly string[]
  /** Position of its first record, and how many of its results have come back. */
  start: number
  received: number
}

interface Slot {
  child: ChildProcess
  /** Chunks handed to it and not yet done, in order; the first is the one it replays. */
  chunks: Chunk[]
  /** When it last sent anything, or was given work while idle (performance.now()). */
  heard: number
  /** It has loaded the config and stages: from then on, silence means it is stuck. */
  ready: boolean
  /** Set by `close`: called when the worker has sent all it will send, or has exited. */
  done?: () => void
}

export function workerPool(
  workers: number,
  config: string | undefined,
  cwd: string,
  run: RunOptions,
  options: ItemOptions,
): ReplayPool {
  const init: WorkerInit = { config, cwd, run, ...options }
  const slots: Slot[] = []
  /** The bundle being run, if any. */
  let job:
    | {
        paths: readonly string[]
        /** The paths as a command line names them. */
        label: string
        ids: readonly string[]
        next: number
        horizon: (() => number) | undefined
        /** The CLI has no more of its own chunks to replay. */
        ownDone: boolean
        /** Why the run failed; it settles once the CLI's own share has stopped too. */
        failed: Error | undefined
        onItem: Parameters<ReplayPool['run']>[2]
        resolve: () => void
        reject: (err: Error) => void
      }
    | undefined
  /** A failure no bundle was running to receive (a worker could not load the config). */
  let failure: Error | undefined
  /** A failure after the last bundle had settled, for `close` to throw. */
  let unreported: Error | undefined
  let closing = false

  /**
   * Fails the run: nothing more is handed out or reported, and the bundle's promise rejects
   * once the CLI has stopped replaying its own share (so nothing it replays lands after the
   * error is reported). Later runs fail at once.
   */
  const fail = (err: Error): void => {
    const first = failure === undefined
    failure ??= err
    const j = job
    // The first failure, with no bundle running to fail: `close` reports it (an error a
    // stage's timer threw in a worker after its last records were reported).
    if (j === undefined && first) unreported = err
    if (j === undefined || j.failed !== undefined) return
    j.failed = err
    settle()
  }
  /** A failed send is left to the 'exit' that follows it, which says which records were lost. */
  const send = (slot: Slot, msg: ToWorker): void => {
    if (slot.child.connected) slot.child.send(msg, () => {})
  }
  /** The next `size` records to hand out, and the position of the first. */
  const take = (size: number): { ids: readonly string[]; start: number } => {
    const j = job
    if (j === undefined || j.failed !== undefined) return { ids: [], start: 0 }
    const limit = Math.min(j.ids.length, j.horizon?.() ?? j.ids.length)
    if (j.next >= limit) return { ids: [], start: 0 }
    const start = j.next
    const ids = j.ids.slice(start, Math.min(limit, start + size))
    j.next += ids.length
    return { ids, start }
  }
  /** Settles the bundle once the CLI and every worker are done with it, or it failed. */
  const settle = (): void => {
    const j = job
    if (j === undefined || !j.ownDone) return
    if (j.failed !== undefined) {
      job = undefined
      j.reject(j.failed)
      return
    }
    if (j.next < j.ids.length || slots.some((s) => s.chunks.length > 0)) return
    job = undefined
    j.resolve()
  }
  /** Tops `slot` up to `depth` chunks while records are left. */
  const feed = (slot: Slot): void => {
    const j = job
    while (j !== undefined && slot.chunks.length < depth) {
      const { ids, start } = take(chunkSize(j.ids.length - j.next, workers))
      if (ids.length === 0) break
      if (slot.chunks.length === 0) slot.heard = performance.now()
      slot.chunks.push({ ids, start, received: 0 })
      send(slot, { type: 'records', paths: j.paths, ids })
    }
    settle()
  }

  const children = takeWorkers(workers - 1, cwd)
  while (children.length < workers - 1) children.push(forkWorker(cwd))
  for (const child of children) {
    const slot: Slot = { child, chunks: [], heard: performance.now(), ready: false }
    slots.push(slot)
    child.on('message', (msg: FromWorker) => {
      slot.heard = performance.now()
      if (msg.type === 'ready') slot.ready = true
      else if (msg.type === 'closed') {
        // Exiting now: this process need not wait for it to be gone.
        slot.child.unref()
        slot.child.channel?.unref()
        slot.done?.()
      } else if (msg.type === 'results') {
        const j = job
        const c = slot.chunks[0]
        if (j !== undefined && j.failed === undefined && c !== undefined) {
          for (const item of msg.items) {
            j.onItem(item, c.start + c.received)
            c.received += itemSpan(item)
          }
        }
        if (msg.last) {
          slot.chunks.shift()
          feed(slot)
        }
      } else if (msg.type === 'error') {
        fail(new RetraceError(msg.code, msg.message, msg.exit as ExitCodeValue))
      }
    })
    // Failing to start (sends report through 'exit').
    child.on('error', (err) =>
      fail(new RetraceError('E_WORKER', `a worker process failed: ${err.message}`, ExitCode.internal)),
    )
    child.on('exit', (code, signal) => {
      if (closing) return
      const how = signal ?? `code ${code}`
      const chunk = slot.chunks[0]
      const first = chunk?.ids[chunk.received]
      // A stage that ends its own process fails the run, as it would fail it without workers.
      fail(
        job !== undefined && chunk !== undefined && first !== undefined
          ? new RetraceError(
              'E_WORKER_DIED',
              `a worker process exited (${how}) while replaying ${chunk.ids.length - chunk.received} records of ${job.label} from ${first}; a stage may have ended its process (retrace replay ${job.label} ${first} runs the first of them)`,
              ExitCode.found,
            )
          : new RetraceError(
              'E_WORKER_DIED',
              `a worker process exited (${how}) between records; a stage module may have ended its process (a timer or handler it left running)`,
              ExitCode.found,
            ),
      )
    })
    send(slot, { type: 'init', init })
  }

  /**
   * A worker with records to replay that has said nothing for a stage's timeout plus the
   * grace the CLI's own watchdog allows (src/replay/watchdog.ts) is stuck in code that
   * never yields: it is stopped and the run fails, naming the record.
   */
  const quietLimit = stuckAfterMs(run.timeoutMs) + aliveEveryMs
  const check = (): void => {
    const now = performance.now()
    for (const slot of slots) {
      const chunk = slot.chunks[0]
      const j = job
      if (!slot.ready || chunk === undefined || j === undefined || j.failed !== undefined) continue
      if (now - slot.heard < quietLimit) continue
      const first = chunk.ids[chunk.received]
      fail(
        new RetraceError(
          'E_STAGE_STUCK',
          `a worker process replaying record ${first} of ${j.label} gave no sign of life for ${Math.round(now - slot.heard)} ms (a stage stuck in code that never yields?); retrace stopped it (retrace replay ${j.label} ${first} names the stage)`,
          ExitCode.found,
        ),
      )
      slot.child.kill('SIGKILL')
    }
  }
  // Judged after the messages already waiting are read (the check phase follows the poll).
  const watch = setInterval(() => setImmediate(check), 250)
  watch.unref()

  return {
    minRecords: workers * 50,
    run(paths, ids, onItem, replayHere, horizon) {
      if (failure !== undefined) return Promise.reject(failure)
      return new Promise<void>((resolve, reject) => {
        const j: NonNullable<typeof job> = {
          paths,
          label: paths.join(' '),
          ids,
          next: 0,
          horizon,
          ownDone: false,
          failed: undefined,
          onItem,
          resolve,
          reject,
        }
        job = j
        const stopped = (): boolean => j.failed !== undefined
        const own = async (): Promise<void> => {
          while (!stopped()) {
            // Workers held back by the horizon get their chunks as it moves.
            for (const slot of slots) feed(slot)
            const part = take(ownChunk)
            if (part.ids.length > 0) {
              await replayHere(part.ids, part.start, stopped)
              // Let the workers' messages in: their results, and their asks for more.
              await new Promise<void>((r) => setImmediate(r))
            } else if (j.next >= j.ids.length) break
            // Everything up to the horizon is handed out: wait for the first records to land.
            else await new Promise<void>((r) => setTimeout(r, 2))
          }
        }
        own()
          .catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))))
          .finally(() => {
            j.ownDone = true
            settle()
          })
      })
    },
    async close() {
      if (closing) return
      closing = true
      clearInterval(watch)
      await Promise.all(
        slots.map(
          (slot) =>
            new Promise<void>((resolve) => {
              if (slot.child.exitCode !== null || slot.child.signalCode !== null) return resolve()
              slot.done = resolve
              slot.child.once('exit', () => resolve())
              send(slot, { type: 'close' })
              // A stage module that keeps its worker alive (a timer, an open handle) is stopped.
              setTimeout(() => slot.child.kill('SIGKILL'), 2000).unref()
            }),
        ),
      )
      if (unreported !== undefined) throw unreported
    },
  }
}
