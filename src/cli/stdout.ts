/**
 * stdout carries retrace's report and nothing else. Once a command's arguments are parsed,
 * `process.stdout.write` (and so `console.log`) goes to stderr, and retrace writes its own
 * output through `out`. Whatever the local build prints, while a stage runs, while its
 * module loads, or from a timer it left behind, is still seen, on stderr, and cannot break
 * `--json` or a JUnit report read from a pipe. Replay worker processes get stderr as their
 * stdout (src/replay/prestart.ts).
 *
 * Not covered: code that writes to file descriptor 1 itself, or that kept a reference to
 * `process.stdout.write` from before the command started.
 */

/** The real write, taken when this module loads, before any command code runs. */
const write = process.stdout.write.bind(process.stdout) as (chunk: string | Uint8Array) => boolean
let claimed = false

/** Writes retrace's own output to stdout. */
export function out(chunk: string | Uint8Array): boolean {
  return write(chunk)
}

/** From now on, anything else written to process.stdout goes to stderr. */
export function claimStdout(): void {
  if (claimed) return
  claimed = true
  const stderr = process.stderr
  process.stdout.write = ((...args: unknown[]) =>
    (stderr.write as (...a: unknown[]) => boolean)(...args)) as typeof process.stdout.write
}
