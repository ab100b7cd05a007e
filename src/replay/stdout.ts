/**
 * What the local build writes to stdout under replay goes to stderr: stdout carries
 * retrace's report alone, so a stage that logs cannot break `--json` or a JUnit file read
 * from a pipe. Its lines are still seen, on stderr.
 *
 * `process.stdout.write` (and so `console.log`) is wrapped once; the wrapper sends a write
 * to stderr when it comes from a stage, or from async work a stage started (its async
 * context, src/replay/network-guard.ts), or from other user code retrace runs
 * (`whileDiverted`). retrace's own writes in between (a record reported while another one's
 * stage waits on a timer) still reach stdout. A stage that writes to file descriptor 1
 * itself is not covered in this process; worker processes get stderr as their stdout
 * (src/replay/prestart.ts).
 */
import { inStage } from './network-guard.js'

let installed = false
/** Depth of synchronous user code running under `whileDiverted`. */
let depth = 0

export function divertStageOutput(): void {
  if (installed) return
  installed = true
  const stdout = process.stdout
  const write = stdout.write
  stdout.write = function (this: typeof stdout, ...args: unknown[]) {
    if (depth > 0 || inStage()) return (process.stderr.write as (...a: unknown[]) => boolean)(...args)
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof stdout.write
}

/** Runs synchronous user code (a config's invariants) with its stdout sent to stderr. */
export function whileDiverted<T>(fn: () => T): T {
  depth++
  try {
    return fn()
  } finally {
    depth--
  }
}
