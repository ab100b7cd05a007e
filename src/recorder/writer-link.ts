/**
 * The main-thread end of the writer thread: a bounded queue of whole records, flushed in
 * batches by timer or size, with acknowledgements that let `flush()` and `close()` wait.
 *
 * On `process.exit()` nothing asynchronous runs any more, so the exit hook hands the
 * last batch to the writer thread and blocks on a shared-memory flag (bounded) until the
 * thread has committed it.
 */
import { Worker } from 'node:worker_threads'
import type { RecordUnit } from '../bundle/types.js'
import { BatchBuilder } from '../bundle/wire.js'
import type { FromWriter, ToWriter, WriterInit } from '../bundle/writer-worker.js'
import { workerUrl } from '../worker-url.js'

export interface LinkEvents {
  written(captures: number): void
  failed(captures: number, code: string, message: string): void
  openFailed(code: string, message: string): void
  /** Something the host should know that lost nothing (a bundle made anew at its path). */
  notice(code: string, message: string): void
}

/**
 * The writer thread's young generation: 12 MiB is 4 MiB semi-spaces. It only turns packed
 * batches into bound SQLite parameters, and V8's default lets it grow to 48 MiB: under
 * overload that was most of the recorder's RSS growth (R7 in bench/).
 */
const writerYoungGenerationMb = 12

/** Smallest hand-off buffer, and most bytes of them kept for reuse. */
const minBufferBytes = 256 * 1024
const maxSpareBytes = 4 * 1024 * 1024
/**
 * A batch is sent at 256 captures or at this many packed bytes, whichever comes first, so
 * that hand-off buffers stay near 1 MiB whatever the payload size.
 */
const batchBytesLimit = 512 * 1024

export class WriterLink {
  private readonly worker: Worker
  /** Records waiting to be sent, packed as they come (see bundle/wire.ts). */
  private readonly batch = new BatchBuilder(
    (bytes) => this.takeBuffer(bytes),
    (buffer) => this.giveBack(buffer),
  )
  private queuedCaptures = 0
  private inFlightCaptures = 0
  /** Bytes queued, and sent but not yet written (per batch id). */
  private queuedBytes = 0
  private inFlightBytes = 0
  private readonly batchBytes = new Map<number, number>()
  private nextId = 1
  private lastAcked = 0
  private readonly waiters: { id: number; resolve: () => void }[] = []
  private timer: NodeJS.Timeout | undefined
  private dead = false
  private closing = false
  private refs = 0
  /** Buffers the writer handed back, reused for later batches (see bundle/wire.ts). */
  private spare: ArrayBuffer[] = []
  private spareBytes = 0
  /**
   * [0]: id of the last batch the thread finished, for the exit hook; [1]: set to 1 to make
   * the thread fail every batch it has not begun (`abandon`).
   */
  private readonly done = new Int32Array(new SharedArrayBuffer(8))

  constructor(
    init: WriterInit,
    private readonly maxQueue: { captures: number; bytes: number },
    private readonly batchCaptures: number,
    private readonly flushIntervalMs: number,
    private readonly events: LinkEvents,
  ) {
    this.worker = new Worker(workerUrl(import.meta.url, '../bundle/writer-worker.js'), {
      workerData: { ...init, done: this.done },
      resourceLimits: { maxYoungGenerationSizeMb: writerYoungGenerationMb },
    })
    this.worker.on('message', (msg: FromWriter) => this.onMessage(msg))
    this.worker.on('error', (err) => this.onDeath('E_WRITER_CRASHED', err.message))
    this.worker.on('exit', () => this.onDeath('E_WRITER_EXITED', 'the writer thread exited'))
    // Only after the listeners: adding a 'message' listener refs the worker's port again,
    // which kept a host whose work was done from ever exiting.
    this.worker.unref()
  }

  get pendingCaptures(): number {
    return this.queuedCaptures + this.inFlightCaptures
  }

  get isDead(): boolean {
    return this.dead
  }

  /**
   * Whether `captures` more may fit the queue now: under the capture bound, and with some
   * room under the byte bound (a record's size is known only once it is encoded). One
   * record is always taken when nothing is waiting, whatever its size.
   */
  hasRoom(captures: number): boolean {
    return (
      this.pendingCaptures === 0 ||
      (this.pendingCaptures + captures <= this.maxQueue.captures &&
        this.queuedBytes + this.inFlightBytes < this.maxQueue.bytes)
    )
  }

  /** Queues a whole record; false when it must be dropped (queue full or writer gone). */
  offer(unit: RecordUnit): boolean {
    const n = unit.captures.length
    if (this.dead || this.closing) return false
    if (!this.hasRoom(n)) return false
    let measured: ReturnType<BatchBuilder['measure']>
    try {
      measured = this.batch.measure(unit)
    } catch {
      return false
    }
    const waiting = this.queuedBytes + this.inFlightBytes
    if (waiting > 0 && waiting + measured.bytes > this.maxQueue.bytes) return false
    this.batch.add(unit, measured)
    this.queuedCaptures += n
    this.queuedBytes += measured.bytes
    if (this.queuedCaptures >= this.batchCaptures || this.queuedBytes >= batchBytesLimit) this.send()
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.send()
      }, this.flushIntervalMs)
      this.timer.unref()
    }
    return true
  }

  private send(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.batch.isEmpty || this.dead) return
    const captures = this.queuedCaptures
    this.inFlightCaptures += captures
    this.queuedCaptures = 0
    const id = this.nextId++
    const { packed, units } = this.batch.finish()
    // What the batch holds in memory until it is written: its whole buffer, not only the
    // bytes packed into it.
    const held = Math.max(this.queuedBytes, packed?.data.byteLength ?? 0)
    this.batchBytes.set(id, held)
    this.inFlightBytes += held
    this.queuedBytes = 0
    this.post({ type: 'write', id, captures, packed, units }, packed === undefined ? [] : [packed.data])
  }

  private takeBuffer(bytes: number): ArrayBuffer {
    for (let i = 0; i < this.spare.length; i++) {
      const b = this.spare[i]!
      if (b.byteLength >= bytes) {
        this.spare.splice(i, 1)
        this.spareBytes -= b.byteLength
        return b
      }
    }
    // Sized with room to spare, so batches that grow a little still fit the same buffer.
    return new ArrayBuffer(Math.max(minBufferBytes, 2 ** Math.ceil(Math.log2(bytes))))
  }

  private giveBack(buffer: ArrayBuffer | undefined): void {
    if (buffer === undefined || this.spareBytes + buffer.byteLength > maxSpareBytes) return
    this.spare.push(buffer)
    this.spareBytes += buffer.byteLength
  }

  private post(msg: ToWriter, transfer?: ArrayBuffer[]): void {
    try {
      this.worker.postMessage(msg, transfer)
    } catch (err) {
      this.onDeath('E_WRITER_POST', (err as Error).message)
    }
  }

  private onMessage(msg: FromWriter): void {
    switch (msg.type) {
      case 'opened':
        return
      case 'open-failed':
        // The thread tries again as batches come (writer-worker.ts); until then they fail
        // and are counted.
        if (this.dead) return
        this.events.openFailed(msg.code, msg.message)
        return
      case 'notice':
        if (!this.dead) this.events.notice(msg.code, msg.message)
        return
      case 'written':
        this.giveBack(msg.buffer)
        // Once the writer is dead every pending capture has been counted as lost
        // (dropQueued); a late acknowledgement must not count them a second time.
        if (this.dead) return
        this.inFlightCaptures -= msg.captures
        this.landed(msg.id)
        this.events.written(msg.captures)
        this.release(msg.id)
        return
      case 'write-failed':
        this.giveBack(msg.buffer)
        if (this.dead) return
        this.inFlightCaptures -= msg.captures
        this.landed(msg.id)
        this.events.failed(msg.captures, msg.code, msg.message)
        this.release(msg.id)
        return
      case 'closed':
        this.release(msg.id)
        return
    }
  }

  /** Batch `id` is out of memory: written, or failed and counted. */
  private landed(id: number): void {
    this.inFlightBytes -= this.batchBytes.get(id) ?? 0
    this.batchBytes.delete(id)
  }

  private dropQueued(code: string, message: string): void {
    const lost = this.queuedCaptures + this.inFlightCaptures
    this.batch.finish()
    this.queuedCaptures = 0
    this.inFlightCaptures = 0
    this.queuedBytes = 0
    this.inFlightBytes = 0
    this.batchBytes.clear()
    if (lost > 0) this.events.failed(lost, code, message)
  }

  private onDeath(code: string, message: string): void {
    if (this.dead) return
    this.dead = true
    if (!this.closing) this.dropQueued(code, message)
    this.release(Number.MAX_SAFE_INTEGER)
  }

  private release(id: number): void {
    this.lastAcked = Math.max(this.lastAcked, id)
    while (this.waiters.length > 0 && this.waiters[0]!.id <= this.lastAcked) this.waiters.shift()!.resolve()
  }

  /** Resolves once batch `id` is acknowledged; holds the event loop open meanwhile. */
  private waitFor(id: number): Promise<void> {
    if (id <= this.lastAcked || this.dead) return Promise.resolve()
    this.hold()
    return new Promise<void>((resolve) => {
      this.waiters.push({
        id,
        resolve: () => {
          this.letGo()
          resolve()
        },
      })
    })
  }

  private hold(): void {
    if (this.refs++ === 0) this.worker.ref()
  }

  private letGo(): void {
    if (--this.refs === 0) this.worker.unref()
  }

  /** Sends everything queued and waits until the writer has committed it. */
  flush(): Promise<void> {
    this.send()
    return this.waitFor(this.nextId - 1)
  }

  /** Flushes, then closes the bundle (checkpoint, single-file). */
  async close(): Promise<void> {
    if (this.closing) return
    await this.flush()
    this.closing = true
    if (this.dead) return
    const id = this.nextId++
    this.post({ type: 'close', id })
    await this.waitFor(id)
    await this.worker.terminate()
  }

  /**
   * For a `close()` that ran out of time: the thread finishes the batch it is writing and
   * fails every other one (`E_CLOSED`), so that nothing is written after `close()` has
   * returned and every capture is counted once, as written or as failed. Records not yet
   * sent are dropped here. Returns how many captures were dropped here or are not
   * acknowledged after `graceMs` (the thread is then stopped; a write it was in is rolled
   * back whole with its connection).
   */
  async abandon(graceMs: number): Promise<number> {
    Atomics.store(this.done, 1, 1)
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    const unsent = this.queuedCaptures
    this.batch.finish()
    this.queuedCaptures = 0
    this.queuedBytes = 0
    let timer: NodeJS.Timeout | undefined
    const settled = await Promise.race([
      this.waitFor(this.nextId - 1).then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs)
      }),
    ])
    clearTimeout(timer)
    this.closing = true
    const unacknowledged = this.dead ? 0 : this.inFlightCaptures
    this.dead = true
    this.inFlightCaptures = 0
    this.inFlightBytes = 0
    this.batchBytes.clear()
    this.release(Number.MAX_SAFE_INTEGER)
    if (settled) this.post({ type: 'close', id: this.nextId++ })
    setTimeout(() => this.worker.terminate().catch(() => undefined), settled ? graceMs : 0).unref()
    return unsent + unacknowledged
  }

  /**
   * For the process 'exit' event: send what is queued and block, at most `timeoutMs`,
   * until the writer thread has committed it. Returns false on timeout.
   */
  flushSync(timeoutMs: number): boolean {
    if (this.dead) return this.pendingCaptures === 0
    this.send()
    const target = this.nextId - 1
    const deadline = Date.now() + timeoutMs
    while (Atomics.load(this.done, 0) < target) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      Atomics.wait(this.done, 0, Atomics.load(this.done, 0), Math.min(left, 50))
    }
    return true
  }
}
