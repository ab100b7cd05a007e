/**
 * While the local build runs under replay, what it writes to stdout goes to stderr:
 * stdout carries retrace's report alone, so a stage that logs cannot break `--json` or a
 * JUnit file read from a pipe. Its lines are still seen, on stderr.
 *
 * This covers `process.stdout.write` and `console.log` (which writes through it); a stage
 * that writes to file descriptor 1 itself is not covered in this process. Worker processes
 * get stderr as their stdout (src/replay/prestart.ts).
 */

/** Points process.stdout.write at stderr; returns the function that puts it back. */
export function divertStdout(): () => void {
  const stdout = process.stdout
  const own = Object.getOwnPropertyDescriptor(stdout, 'write')
  const stderr = process.stderr
  Object.defineProperty(stdout, 'write', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: (...args: Parameters<typeof stderr.write>) => stderr.write(...args),
  })
  return () => {
    if (own !== undefined) Object.defineProperty(stdout, 'write', own)
    else delete (stdout as { write?: unknown }).write
  }
}
