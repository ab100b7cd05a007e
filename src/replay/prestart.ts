/**
 * Replay worker processes (src/replay/worker.ts), forked from the CLI.
 *
 * `bin/run.js` starts them before it loads oclif when the command line asks for workers:
 * a node process takes ~0.2 s to boot and load the replay modules, and the CLI's own
 * start-up (oclif, the command, the config) takes as long, so started first they are
 * ready when the first records are handed out instead of that much later. Until a pool
 * takes them they hold no reference on the event loop: a run that never gets that far (a
 * usage error) exits at once, and the workers exit when their channel closes.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { workerUrl } from '../worker-url.js'
import { watchChild } from './watchdog.js'

/** Started early, not yet taken by a pool. */
let waiting: ChildProcess[] = []

/** Forks one worker; it waits for its `init` message. */
export function forkWorker(cwd?: string): ChildProcess {
  const script = fileURLToPath(workerUrl(import.meta.url, './worker.js'))
  const child = fork(script, ['--retrace-worker'], {
    ...(cwd !== undefined ? { cwd } : {}),
    // Not the CLI's own node flags (an --inspect port, a profiler): a worker runs plain.
    execArgv: [],
    serialization: 'advanced',
    // Results travel over IPC; whatever a stage prints goes to stderr, never into the report.
    stdio: ['ignore', 2, 'inherit', 'ipc'],
  })
  watchChild(child)
  return child
}

/** Starts `count` workers now for a pool made later in this process. */
export function prestartWorkers(count: number): void {
  for (let i = 0; i < count; i++) {
    const child = forkWorker()
    // A worker that fails to start is simply not taken; the pool forks another.
    child.on('error', () => {})
    child.unref()
    child.channel?.unref()
    waiting.push(child)
  }
}

/**
 * Up to `count` workers started early in `cwd` and still running, referenced again; the
 * caller forks the rest. Workers left over are let go (they exit with their channel).
 */
export function takeWorkers(count: number, cwd: string): ChildProcess[] {
  const alive = waiting.filter((c) => c.exitCode === null && c.signalCode === null && c.connected)
  waiting = []
  // Prestarted workers run in the directory the CLI started in; a pool elsewhere forks its own.
  const usable = cwd === process.cwd() ? alive.slice(0, count) : []
  for (const c of alive) if (!usable.includes(c)) c.disconnect()
  for (const c of usable) {
    c.removeAllListeners('error')
    c.ref()
    c.channel?.ref()
  }
  return usable
}
