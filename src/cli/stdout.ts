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
 *
 * Written to a file or a pipe, retrace's output is gathered into writes of up to 64 KiB,
 * as C's stdio does: one write per line or per record cost `replay --json` a tenth of its
 * time. What is gathered goes out when 64 KiB is reached, with the next write 100 ms after
 * the last, when the event loop next turns, before retrace or a stage writes to stderr,
 * and when the process exits. On a terminal every write goes out at once.
 */

/** The real write, taken when this module loads, before any command code runs. */
const write = process.stdout.write.bind(process.stdout) as (chunk: string | Uint8Array) => boolean
let claimed = false

const gather = process.stdout.isTTY !== true
const highWater = 64 * 1024
/** Nothing waits longer than this once more is written (a replay of synchronous stages may not let the event loop turn for seconds). */
const flushEveryMs = 100
/**
 * What is gathered: bytes `[8, 8 + length)`, `length` at `[0, 4)`, and at `[4, 8)` where
 * the command's --json document stands (`JsonDocument`). Shared memory, so that the
 * watchdog thread can write out what a stage stuck for good kept here, and end the
 * document (src/replay/watchdog.ts): a process killed from outside runs no exit handler.
 */
const shared = new SharedArrayBuffer(8 + (gather ? highWater : 0))
const filled = new Int32Array(shared, 0, 1)
const documentState = new Int32Array(shared, 4, 1)
const bytes = new Uint8Array(shared, 8)

/**
 * Where a --json document on stdout stands: none (no --json), not begun (nothing of it
 * written yet), open (its `records` array begun) or complete.
 */
export const JsonDocument = { none: 0, notBegun: 1, open: 2, complete: 3 } as const

/** Says where the command's --json document stands, for the watchdog thread. */
export function markJsonDocument(state: (typeof JsonDocument)[keyof typeof JsonDocument]): void {
  Atomics.store(documentState, 0, state)
}
const encoder = new TextEncoder()
let scheduled = false
let flushedAt = performance.now()

/** Writes retrace's own output to stdout. */
export function out(chunk: string | Uint8Array): void {
  if (!gather) {
    write(chunk)
    return
  }
  let length = filled[0]!
  if (typeof chunk === 'string') {
    let rest = chunk
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, bytes.subarray(length))
      length += written
      if (read === rest.length) break
      // Full (or the next character does not fit): out with it, and go on.
      Atomics.store(filled, 0, length)
      flushOut()
      length = 0
      rest = rest.slice(read)
      if (rest.length > highWater) {
        // More than the buffer holds even when empty: in one write of its own.
        write(rest)
        rest = ''
        break
      }
    }
  } else if (chunk.length <= highWater - length) {
    bytes.set(chunk, length)
    length += chunk.length
  } else {
    flushOut()
    length = 0
    if (chunk.length >= highWater) write(chunk)
    else {
      bytes.set(chunk, 0)
      length = chunk.length
    }
  }
  Atomics.store(filled, 0, length)
  if (length >= highWater || performance.now() - flushedAt >= flushEveryMs) flushOut()
  else if (length > 0 && !scheduled) {
    scheduled = true
    setImmediate(flushOut)
  }
}

/** Writes out what `out` has gathered. */
export function flushOut(): void {
  scheduled = false
  flushedAt = performance.now()
  const length = filled[0]!
  if (length === 0) return
  // A copy: the stream may hold on to what it is given, and the buffer is reused at once.
  const chunk = Buffer.from(bytes.subarray(0, length))
  Atomics.store(filled, 0, 0)
  write(chunk)
}

/**
 * What `out` has gathered and not yet written, as shared memory laid out as above, for a
 * thread that may have to write it when this one cannot.
 */
export function unsentStdout(): SharedArrayBuffer {
  return shared
}

/** Writes to stderr, after what stdout has gathered, so the two keep their order. */
export function toStderr(text: string): void {
  flushOut()
  process.stderr.write(text)
}

if (gather) process.on('exit', flushOut)

/** From now on, anything else written to process.stdout goes to stderr. */
export function claimStdout(): void {
  if (claimed) return
  claimed = true
  const stderr = process.stderr
  process.stdout.write = ((...args: unknown[]) => {
    // After the report gathered so far, so a stage's lines stay beside its records.
    flushOut()
    return (stderr.write as (...a: unknown[]) => boolean)(...args)
  }) as typeof process.stdout.write
}
