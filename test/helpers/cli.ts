/**
 * End-to-end helpers: run `bin/run.js` exactly as a user types it, and make small
 * bundles with the real recorder. Needs `npm run build` first (bin/run.js runs dist/,
 * and the recorder's writer thread loads dist/bundle/writer-worker.js).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect } from 'vitest'
import { createRecorder, type RecorderError, type StageContext } from '../../src/index.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const binPath = join(repoRoot, 'bin', 'run.js')

export interface CliResult {
  stdout: string
  stderr: string
  /** Exit code; null only if the process was killed (see `signal`). */
  code: number | null
  signal: NodeJS.Signals | null
}

export interface CliOptions {
  cwd?: string
  /** Merged over the inherited environment; a key set to undefined is removed. */
  env?: Record<string, string | undefined>
  /** Written to stdin, which is then closed. */
  input?: string
  /** Kill the process after this long (default 20 s). */
  timeoutMs?: number
  /** Start it in a process group of its own, to signal the group as Ctrl-C does. */
  detached?: boolean
  /** Called with the child once it is spawned (to signal it while it runs). */
  onSpawn?: (child: ChildProcess) => void
}

/**
 * Spawns `node bin/run.js ...args`. The environment is the test's, with NO_COLOR=1 and
 * without DEBUG/FORCE_COLOR (so no stack traces or colour leak in), unless `env` says
 * otherwise. Never rejects for a non-zero exit; rejects only if node cannot be spawned.
 */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  delete env.DEBUG
  delete env.FORCE_COLOR
  env.NO_COLOR = '1'
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolvePromise({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code,
        signal,
      })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
    opts.onSpawn?.(child)
  })
}

/** Parses stdout as exactly one JSON document (throws if there is anything else). */
export function parseJsonOut<T = unknown>(r: CliResult): T {
  return JSON.parse(r.stdout) as T
}

/**
 * A temp dir shared by the tests of one file (bundles made once in `beforeAll`), removed
 * after the last of them. Call at the top level of a file or `describe`; the returned
 * function gives the path once `beforeAll` has run.
 */
export function sharedTempDir(prefix = 'retrace-e2e-'): () => string {
  let dir: string | undefined
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix))
  })
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })
  return () => {
    if (dir === undefined) throw new Error('sharedTempDir() used before beforeAll ran')
    return dir
  }
}

/**
 * Asserts the CLI failed as the design says a user error must: the exit code, exactly one
 * line on stderr starting `retrace: `, no stack trace, nothing on stdout. Returns the line.
 */
export function expectUsageFailure(r: CliResult, code = 2): string {
  expect(r.signal).toBeNull()
  expect(r.stderr).toMatch(/^retrace: [^\n]+\n$/)
  expect(r.stderr).not.toContain('    at ')
  expect(r.stdout).toBe('')
  expect(r.code).toBe(code)
  return r.stderr.trimEnd()
}

/** The file names in a directory, sorted (to show that a read wrote nothing beside a file). */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort()
}

/** Start time of the sample bundle's first record; later ones are a minute apart. */
export const SAMPLE_T0 = Date.parse('2026-01-10T12:00:00.000Z')

export interface SampleRecord {
  id: string
  key: string
  startedAt: number
  status: 'ok' | 'error'
}

export interface SampleBundle {
  path: string
  /** In recording order (oldest first). */
  records: SampleRecord[]
  /** Problems the recorder reported while recording (expected: none). */
  recorderErrors: RecorderError[]
}

export interface SampleOptions {
  /** Time of the first record (default SAMPLE_T0); records are `stepMs` apart. */
  t0?: number
  stepMs?: number
  /** Keys of the records, one record each, in order. */
  keys?: readonly string[]
  /** Indices (into keys) of records whose `store` stage throws, making the record fail. */
  failAt?: readonly number[]
  /** Indices of records whose `price` stage fails once and is retried. */
  retryAt?: readonly number[]
  /** Indices of records the pipeline defers after `parse` (they never reach price or store). */
  deferAt?: readonly number[]
  pipeline?: string
  build?: string
}

interface Order {
  sku: string
  qty: number
  note: string
}
interface Priced extends Order {
  unit: number
  total: number
  tags: string[]
}
interface Stored extends Priced {
  available: number
  storedAt: number
}

class TransientError extends Error {
  override readonly name = 'TransientError'
  readonly code = 'ETIMEDOUT'
}

/**
 * Records a 3-stage pipeline (parse -> price -> store) into `path` with the real
 * recorder: `price` reads through `ctx.effect('kv.get', ...)` and is retried once where
 * asked; `store` calls `ctx.now()` and a `db.put` effect and throws where asked. Between
 * `price` and `store` the pipeline adds a `channel` field, so every record has a seam
 * that does not line up. Defaults: keys sku:1001, sku:2002, sku:1001, sku:3003, sku:1001,
 * sku:4004; record 1 retried, record 3 failing in store, record 5 deferred after parse.
 */
export async function makeSampleBundle(path: string, options: SampleOptions = {}): Promise<SampleBundle> {
  const t0 = options.t0 ?? SAMPLE_T0
  const step = options.stepMs ?? 60_000
  const keys = options.keys ?? ['sku:1001', 'sku:2002', 'sku:1001', 'sku:3003', 'sku:1001', 'sku:4004']
  const failAt = new Set(options.failAt ?? [3])
  const retryAt = new Set(options.retryAt ?? [1])
  const deferAt = new Set(options.deferAt ?? [5])
  let now = t0
  const recorderErrors: RecorderError[] = []
  const recorder = createRecorder({
    path,
    pipeline: options.pipeline ?? 'orders',
    build: options.build ?? 'build-abc123',
    redact: ['$.card'],
    clock: () => now,
    random: () => 0.25,
    origin: { host: 'test-host', pid: 4242 },
    flushIntervalMs: 5,
    onError: (e) => recorderErrors.push(e),
  })
  const stock: Record<string, number> = { 'sku:1001': 4, 'sku:2002': 10, 'sku:3003': 0 }
  const records: SampleRecord[] = []
  try {
    for (const [i, key] of keys.entries()) {
      now = t0 + i * step
      const failing = { pending: retryAt.has(i) }
      const parse = recorder.stage('parse', (raw: string): Order => {
        const [sku, qty] = raw.split('|')
        return { sku: sku ?? '', qty: Number(qty), note: `order ${i}` }
      })
      const price = recorder.stage('price', (o: Order, ctx: StageContext): Priced => {
        const unit = ctx.effect('kv.get', { key: `price:${o.sku}` }, () => 250 + i)
        if (failing.pending) {
          failing.pending = false
          throw new TransientError('kv timeout while pricing')
        }
        return { ...o, unit, total: unit * o.qty, tags: ['priced'] }
      })
      const store = recorder.stage('store', (p: Priced & { channel: string }, ctx: StageContext): Stored => {
        const storedAt = ctx.now()
        const available = ctx.effect('db.put', { sku: p.sku, qty: p.qty }, () => (stock[p.sku] ?? 0) - p.qty)
        if (failAt.has(i)) throw new Error(`db rejected ${p.sku}: constraint failed`)
        return { ...p, available, storedAt }
      })
      let id = ''
      let status: 'ok' | 'error' = 'ok'
      try {
        await recorder.record(key, async () => {
          id = recorder.current()?.recordId ?? ''
          const order = await parse(`${key}|${i + 1}`)
          if (deferAt.has(i)) return
          let priced: Priced
          try {
            priced = await price(order)
          } catch {
            priced = await price(order)
          }
          // The hand-off changes the value: price's recorded output is not store's input.
          await store({ ...priced, channel: 'web' })
        })
      } catch {
        status = 'error'
      }
      records.push({ id, key, startedAt: now, status })
    }
  } finally {
    await recorder.close()
  }
  return { path, records, recorderErrors }
}

/** Records arbitrary stages for one key: each entry is a stage name and what it returns. */
export async function recordPayloads(
  path: string,
  key: string,
  stages: readonly { name: string; output: unknown }[],
  input: unknown = { start: true },
  startedAt = SAMPLE_T0,
): Promise<string> {
  const recorder = createRecorder({ path, pipeline: 'payloads', clock: () => startedAt, flushIntervalMs: 5 })
  let id = ''
  try {
    await recorder.record(key, async () => {
      id = recorder.current()?.recordId ?? ''
      let value = input
      for (const s of stages) {
        const out = s.output
        value = await recorder.stage(s.name, (_in: unknown) => out)(value)
      }
    })
  } finally {
    await recorder.close()
  }
  return id
}

/** Ids of the two records `makeTypedBundle` writes. */
export interface TypedBundle {
  path: string
  /** Tags {web}, received at SAMPLE_T0. */
  first: string
  /** Tags {web, vip}, received a minute later, priced 5102n. */
  second: string
}

/**
 * Records the values JSON loses through a 3-stage pipeline: `parse` returns a Date, a Set
 * and a field holding undefined, `price` adds a Map and a BigInt, `audit` returns
 * undefined. Two records for one key, a minute apart, the second with one more tag.
 */
export async function makeTypedBundle(path: string): Promise<TypedBundle> {
  let now = SAMPLE_T0
  const recorder = createRecorder({ path, pipeline: 'typed', clock: () => now, flushIntervalMs: 5 })
  const parse = recorder.stage('parse', (raw: { id: string; tags: string[] }) => ({
    orderId: raw.id,
    receivedAt: new Date(now),
    tags: new Set(raw.tags),
    blob: undefined,
  }))
  const price = recorder.stage('price', (o: Record<string, unknown>) => ({
    ...o,
    unit: new Map([['SKU-42', 8.49]]),
    subtotalCents: o.orderId === 'o-1' ? 2401n : 5102n,
  }))
  const audit = recorder.stage('audit', (_o: unknown): undefined => undefined)
  const ids: string[] = []
  try {
    for (const [i, tags] of [['web'], ['web', 'vip']].entries()) {
      now = SAMPLE_T0 + i * 60_000
      await recorder.record('order:1', async () => {
        ids.push(recorder.current()?.recordId ?? '')
        await audit(await price(await parse({ id: `o-${i + 1}`, tags })))
      })
    }
  } finally {
    await recorder.close()
  }
  return { path, first: ids[0]!, second: ids[1]! }
}
