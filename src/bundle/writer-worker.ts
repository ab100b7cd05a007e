/**
 * The recorder's writer thread: takes batches of whole records and commits each batch in
 * one transaction, off the host's event loop.
 */
import { type Stats, statSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import type { RecordUnit } from './types.js'
import { type PackedUnits, unpackUnits } from './wire.js'
import { BundleWriter, type WriterOptions } from './writer.js'

export interface WriterInit {
  path: string
  options: WriterOptions
  /**
   * Shared flags: [0] is set to the id of each batch once it is finished; [1], once set to
   * 1 by the recorder (a `close()` out of time), makes every batch not yet begun fail as
   * `E_CLOSED` instead of being written.
   */
  done?: Int32Array
}

/**
 * A batch arrives packed (wire.ts), with any record that could not be packed alongside as
 * it is (structured clone).
 */
export type ToWriter =
  | {
      type: 'write'
      id: number
      captures: number
      packed?: PackedUnits | undefined
      units?: RecordUnit[] | undefined
    }
  | { type: 'close'; id: number }

export type FromWriter =
  | { type: 'opened' }
  | { type: 'open-failed'; message: string; code: string }
  | { type: 'notice'; message: string; code: string }
  | { type: 'written'; id: number; captures: number; records: number; buffer?: ArrayBuffer }
  | {
      type: 'write-failed'
      id: number
      captures: number
      message: string
      code: string
      buffer?: ArrayBuffer
    }
  | { type: 'closed'; id: number }

if (parentPort === null) throw new Error('writer-worker must run in a worker thread')
const port = parentPort

const init = workerData as WriterInit
const codeOf = (err: unknown): string => String((err as { code?: unknown }).code ?? 'E_WRITE')
let writer: BundleWriter | undefined
/** The file the writer opened, to notice when it is deleted or replaced under it. */
let opened: Stats | undefined

/**
 * Opens the bundle; undefined, or why not. A failed open is tried again, at most once a
 * second, when the next batch comes: a directory made after the service started, a file
 * moved away by log rotation, a disk that had filled up, are recorded into again once the
 * path can be written, without restarting the service.
 */
function openAtPath(): { code: string; message: string } | undefined {
  lastAttempt = Date.now()
  try {
    writer = BundleWriter.open(init.path, init.options)
    opened = statOrUndefined(init.path)
    return undefined
  } catch (err) {
    writer = undefined
    opened = undefined
    return { code: codeOf(err), message: (err as Error).message }
  }
}
const retryOpenMs = 1_000
let lastAttempt = 0
let openError = openAtPath()
port.postMessage(
  (openError === undefined ? { type: 'opened' } : { type: 'open-failed', ...openError }) satisfies FromWriter,
)

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/**
 * False once the bundle was deleted (its directory removed, a clean-up job) or replaced.
 * SQLite would go on writing into the unlinked file: every capture counted as written
 * while none can ever be read, and the disk space held until the process exits.
 */
function stillAtPath(): boolean {
  if (opened === undefined) return true
  const now = statOrUndefined(init.path)
  return now !== undefined && now.ino === opened.ino && now.dev === opened.dev
}

function finished(id: number): void {
  if (init.done !== undefined) {
    Atomics.store(init.done, 0, id)
    Atomics.notify(init.done, 0)
  }
}

port.on('message', (msg: ToWriter) => {
  handle(msg)
  finished(msg.id)
})

/** Sends a reply, handing a packed batch's buffer back for reuse. */
function reply(msg: FromWriter, from: ToWriter): void {
  if (from.type === 'write' && from.packed !== undefined) {
    port.postMessage({ ...msg, buffer: from.packed.data }, [from.packed.data])
  } else {
    port.postMessage(msg)
  }
}

function handle(msg: ToWriter): void {
  if (msg.type === 'write') {
    const captures = msg.captures
    if (init.done !== undefined && init.done.length > 1 && Atomics.load(init.done, 1) === 1) {
      reply(
        {
          type: 'write-failed',
          id: msg.id,
          captures,
          message: 'the recorder was closed before this was written',
          code: 'E_CLOSED',
        },
        msg,
      )
      return
    }
    let replaced: string | undefined
    if (writer !== undefined && !stillAtPath()) {
      try {
        writer.close()
      } catch {
        // Nothing to keep: the file is gone.
      }
      writer = undefined
      replaced = `the bundle ${init.path} was moved, deleted or replaced while recording`
      lastAttempt = 0
    }
    if (writer === undefined && Date.now() - lastAttempt >= retryOpenMs) {
      openError = openAtPath()
      if (replaced !== undefined && openError === undefined)
        port.postMessage({
          type: 'notice',
          code: 'E_BUNDLE_GONE',
          message: `${replaced}; recording goes on in a new bundle at that path`,
        } satisfies FromWriter)
    }
    if (writer === undefined) {
      reply(
        {
          type: 'write-failed',
          id: msg.id,
          captures,
          message:
            replaced !== undefined
              ? `${replaced}; a new one cannot be made there (${openError?.message ?? 'not open'})`
              : `bundle is not open: ${openError?.message ?? 'not yet tried again'}`,
          code: replaced !== undefined ? 'E_BUNDLE_GONE' : (openError?.code ?? 'E_NOT_OPEN'),
        },
        msg,
      )
      return
    }
    try {
      const units = [
        ...(msg.packed !== undefined ? unpackUnits(msg.packed, 'bytes') : []),
        ...(msg.units ?? []),
      ]
      writer.write(units)
      reply({ type: 'written', id: msg.id, captures, records: units.length }, msg)
    } catch (err) {
      reply(
        { type: 'write-failed', id: msg.id, captures, message: (err as Error).message, code: codeOf(err) },
        msg,
      )
    }
  } else if (msg.type === 'close') {
    try {
      writer?.close()
    } catch {
      // Closing is best effort; the data is already committed.
    }
    writer = undefined
    port.postMessage({ type: 'closed', id: msg.id } satisfies FromWriter)
  }
}
