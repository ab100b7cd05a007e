/**
 * Shared pieces of the fault suite: how many times each scenario runs, the count line it
 * reports, child processes, and a bounded worker pool.
 *
 * `FAULTS=full` (set by `npm run test:faults`) runs the counts published in
 * docs/reliability.md; without it each scenario runs a bounded CI size inside `npm test`.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const full = process.env.FAULTS === 'full'

/** The full-run count or the bounded CI count. */
export function scale(fullCount: number, ciCount: number): number {
  return full ? fullCount : ciCount
}

/**
 * Prints one count line for docs/reliability.md: `FAULT <scenario>: <figures>`. Console
 * output is the point here: a run's lines are copied into the report.
 */
export function reportFault(scenario: string, figures: string): void {
  console.log(`FAULT ${scenario}: ${figures}${full ? '' : ' [bounded CI run]'}`)
}

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const childrenDir = join(repoRoot, 'test', 'faults', 'children')
export const distIndex = join(repoRoot, 'dist', 'index.js')

/** Fails early with the fix when the SDK has not been built (children import dist/). */
export function requireBuild(): void {
  if (!existsSync(distIndex)) throw new Error('dist/ is missing: run `npm run build` first')
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** True when the deadline killed it. */
  timedOut: boolean
  ms: number
}

export interface ChildOptions {
  timeoutMs?: number
  env?: Record<string, string>
  cwd?: string
  /** Run through `bash -c` with this prefix before `exec node ...` (e.g. `ulimit -f 512;`). */
  shellPrefix?: string
}

/** Runs `node <script> ...args` (a file in test/faults/children unless absolute). */
export function runNode(
  script: string,
  args: readonly string[],
  opts: ChildOptions = {},
): Promise<ChildResult> {
  const file = script.startsWith('/') ? script : join(childrenDir, script)
  const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`
  const [cmd, argv] =
    opts.shellPrefix === undefined
      ? [process.execPath, [file, ...args]]
      : ['bash', ['-c', `${opts.shellPrefix} exec ${[process.execPath, file, ...args].map(quote).join(' ')}`]]
  const started = Date.now()
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolvePromise({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        ms: Date.now() - started,
      })
    })
  })
}

/** Maps `items` through `fn`, at most `limit` at a time, results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return out
}

/** A small seeded PRNG (mulberry32), so a failing corpus or schedule can be reproduced. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed for this run: FAULTS_SEED if set, else the time; printed with each report. */
export const faultSeed = Number(process.env.FAULTS_SEED ?? Date.now() % 1_000_000)

export const percent = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`)
