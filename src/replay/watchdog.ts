/**
 * `--timeout` for a stage that never yields. A stage stuck in synchronous code (a loop
 * that never ends) holds the thread the timeout's timer would run on, so it can never
 * fire: replay would hang. A watchdog thread watches the stage calls instead; when neither
 * the call nor the event loop has moved for the stage's timeout plus a grace period (the
 * timer's chance to fail it normally), it writes one line on stderr naming the stage and
 * kills the process (exit status 137): JavaScript that never yields cannot be interrupted
 * any other way.
 *
 * Armed by the CLI only. Its worker processes instead say they are alive and the CLI
 * stops one that goes silent for as long (src/replay/pool.ts); a process that embeds
 * replay (the vitest integration) keeps its own way of dealing with a test that hangs.
 */
import type { ChildProcess } from 'node:child_process'
import { Worker } from 'node:worker_threads'

/** How long a stage allowed `timeoutMs` may go without returning or yielding. */
export function stuckAfterMs(timeoutMs: number): number {
  return Math.min(2 ** 31 - 1, timeoutMs + Math.max(1000, timeoutMs / 2))
}

let armed = false
/** The CLI's gathered stdout (src/cli/stdout.ts), written out before the process is killed. */
let unsent: SharedArrayBuffer | undefined
let watcher: { state: Int32Array; worker: Worker; names: Map<string, number> } | undefined
let seq = 0

/**
 * Lets stage calls in this process be watched (the thread starts with the first one).
 * `stdout`: output gathered and not yet written, laid out as src/cli/stdout.ts keeps it;
 * written out before the process is killed, so the report of the records before the
 * stuck one is not lost with it.
 */
export function armWatchdog(stdout?: SharedArrayBuffer): void {
  armed = true
  unsent = stdout
}

// [0]: the call being watched (0: none), [1]: its stage (index into the names sent),
// [2]: its limit in milliseconds, [3]: a count the main thread's event loop moves on each
// turn of a timer. A call is stuck when it has lasted its limit and the event loop has not
// turned for as long: a stage that awaits (a timer, I/O) lets it turn and is left to the
// timeout's own timer. [4, 4 + maxChildren): pids of the replay worker processes this
// process started (0: a free slot), killed with it: a worker is busy in stage code and
// would never see its parent go, and one spinning in a stage would run on for good.
const maxChildren = 64
const state = new Int32Array(new SharedArrayBuffer((4 + maxChildren) * Int32Array.BYTES_PER_ELEMENT))
const watcherSource = `
const { workerData: { state, unsent }, parentPort } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const names = []
parentPort.on('message', (m) => { names[m.index] = m.name })
let seen = 0
let since = 0
let tick = -1
let tickSince = 0
setInterval(() => {
  const now = Date.now()
  const t = Atomics.load(state, 3)
  if (t !== tick) {
    tick = t
    tickSince = now
  }
  const call = Atomics.load(state, 0)
  if (call === 0 || call !== seen) {
    seen = call
    since = now
    return
  }
  const limit = Atomics.load(state, 2)
  const ran = now - Math.max(since, tickSince)
  if (ran < limit) return
  const stage = names[Atomics.load(state, 1)] ?? '?'
  const message = 'stage ' + stage + ' has run for ' + (now - since) + ' ms without returning or yielding (a loop that never ends?); --timeout cannot interrupt synchronous code, so retrace stopped the process (E_STAGE_STUCK)'
  if (unsent !== undefined) {
    const length = Atomics.load(new Int32Array(unsent, 0, 1), 0)
    // A --json document is ended with the error, as one that fails midway is (base-command.ts).
    const doc = Atomics.load(new Int32Array(unsent, 4, 1), 0)
    const error = { code: 'E_STAGE_STUCK', message }
    const end =
      doc === 1 ? JSON.stringify({ error }, null, 2) + '\\n'
      : doc === 2 ? '\\n  ],\\n  "error": ' + JSON.stringify(error) + '\\n}\\n'
      : ''
    try {
      for (let at = 0; at < length; ) at += writeSync(1, new Uint8Array(unsent, 8, length), at, length - at)
      if (end !== '') writeSync(1, end)
    } catch {}
  }
  for (let i = 4; i < state.length; i++) {
    const pid = Atomics.load(state, i)
    if (pid > 0) try { process.kill(pid, 'SIGKILL') } catch {}
  }
  writeSync(2, 'retrace: ' + message + '\\n')
  process.kill(process.pid, 'SIGKILL')
}, 100)
`

/** A replay worker process this one started: stopped with it if a stage here is stuck. */
export function watchChild(child: ChildProcess): void {
  const pid = child.pid
  if (pid === undefined) return
  for (let i = 4; i < state.length; i++) {
    if (Atomics.compareExchange(state, i, 0, pid) === 0) {
      child.once('exit', () => Atomics.compareExchange(state, i, pid, 0))
      return
    }
  }
}

function start(): NonNullable<typeof watcher> {
  // The event loop's pulse; never what keeps the process alive.
  setInterval(() => Atomics.add(state, 3, 1), 250).unref()
  const worker = new Worker(watcherSource, {
    eval: true,
    workerData: { state, unsent },
    stdout: false,
    stderr: false,
  })
  // Never what keeps the process alive.
  worker.unref()
  worker.on('error', () => {
    watcher = undefined
    armed = false
  })
  return { state, worker, names: new Map() }
}

/**
 * Marks the start of a stage call allowed `timeoutMs`; returns what `stageEnded` takes.
 * Does nothing unless armed.
 */
export function stageStarted(stage: string, timeoutMs: number): number {
  if (!armed) return 0
  watcher ??= start()
  let index = watcher.names.get(stage)
  if (index === undefined) {
    index = watcher.names.size
    watcher.names.set(stage, index)
    watcher.worker.postMessage({ index, name: stage })
  }
  const call = ++seq
  Atomics.store(watcher.state, 1, index)
  Atomics.store(watcher.state, 2, stuckAfterMs(timeoutMs))
  Atomics.store(watcher.state, 0, call)
  return call
}

/** The stage call `call` has returned or settled. */
export function stageEnded(call: number): void {
  if (call !== 0 && watcher !== undefined) Atomics.compareExchange(watcher.state, 0, call, 0)
}
