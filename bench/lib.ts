/**
 * Shared helpers for benchmarks. A benchmark measures its figure and the floor it is
 * compared with in the same process, interleaved, and prints one JSON line per figure
 * (collected by bench/run.ts) followed by a human line. Absolute times drift on a noisy
 * machine; ratios measured side by side do not drift as much.
 *
 *     import { emit, interleave, median } from './lib.js'
 *     const t = await interleave(9, { retrace: () => timeIt(a), floor: () => timeIt(b) })
 *     emit({ id: 'C1', name: 'cold start', unit: 'ms', value: median(t.retrace),
 *            floor: median(t.floor), floorName: 'node -e 0', target: '<= 2x floor',
 *            pass: median(t.retrace) <= 2 * median(t.floor) })
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

/** One measured figure: what bench/run.ts puts in a row of docs/performance.md. */
export interface Figure {
  /** Target id from the issues: R1, R2, R6, R7, C1, ...; or a free name for side figures. */
  id: string
  /** The case measured, e.g. "2 KB payloads". */
  name: string
  /** Unit of value and floor: "ns", "us", "ms", "captures/s", "MB", ... */
  unit: string
  /** The retrace figure. */
  value: number
  /** What value is compared with, measured in the same run. */
  floor: number
  /** What the floor is, e.g. "JSON.stringify(input) + JSON.stringify(output)". */
  floorName: string
  /** value / floor unless given. */
  ratio?: number
  /** The target as written in the issue, e.g. "<= 1.15x floor + 1 us". */
  target: string
  /** true/false against the target; null for informational figures. */
  pass: boolean | null
  /** Anything else worth recording (rounds, spread, counters). */
  detail?: Record<string, unknown>
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5)
}

/** Largest value (-Infinity for an empty list); safe for lists too long to spread. */
export function max(xs: readonly number[]): number {
  let m = Number.NEGATIVE_INFINITY
  for (const x of xs) if (x > m) m = x
  return m
}

/** Linear-interpolated quantile, q in [0, 1]. NaN for an empty list. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

/** Rounds to `digits` significant digits, for printing; integers (counts) stay exact. */
export function round(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0 || (Number.isInteger(x) && Math.abs(x) < 1e15)) return x
  return Number(x.toPrecision(digits))
}

/** Milliseconds taken by `fn` (high-resolution). */
export function timeMs(fn: () => void): number {
  const t0 = performance.now()
  fn()
  return performance.now() - t0
}

export async function timeMsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

/**
 * Runs each case once per round, rotating the order every round so no case always goes
 * first (warm caches, GC debt), and returns every case's samples.
 */
export async function interleave<K extends string>(
  rounds: number,
  cases: Record<K, () => number | Promise<number>>,
): Promise<Record<K, number[]>> {
  const names = Object.keys(cases) as K[]
  const out = Object.fromEntries(names.map((n) => [n, [] as number[]])) as unknown as Record<K, number[]>
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]!
      out[name].push(await cases[name]())
    }
  }
  return out
}

/** Prints the figure as one JSON line (for bench/run.ts) and one line for people. */
export function emit(fig: Figure): void {
  const ratio = fig.ratio ?? fig.value / fig.floor
  const line = {
    id: fig.id,
    name: fig.name,
    unit: fig.unit,
    value: round(fig.value),
    floor: round(fig.floor),
    floorName: fig.floorName,
    ratio: round(ratio, 3),
    target: fig.target,
    pass: fig.pass,
    ...(fig.detail ? { detail: fig.detail } : {}),
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
  const verdict = fig.pass === null ? 'info' : fig.pass ? 'PASS' : 'MISS'
  process.stdout.write(
    `# ${fig.id} ${fig.name}: ${round(fig.value)} ${fig.unit} vs ${round(fig.floor)} ${fig.unit} ` +
      `(${fig.floorName}); ratio ${round(ratio, 3)}; target ${fig.target}: ${verdict}\n`,
  )
}

/** Prints a progress or context line that run.ts passes through but does not collect. */
export function note(message: string): void {
  process.stdout.write(`# ${message}\n`)
}

/**
 * A numeric option from `--name value`, `--name=value` or the environment variable
 * `BENCH_NAME` (upper case, dashes as underscores), else `fallback`.
 */
export function numberArg(name: string, fallback: number): number {
  const argv = process.argv.slice(2)
  let raw: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === `--${name}`) raw = argv[i + 1]
    else if (a.startsWith(`--${name}=`)) raw = a.slice(name.length + 3)
  }
  raw ??= process.env[`BENCH_${name.toUpperCase().replaceAll('-', '_')}`]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${raw}`)
  return n
}

/** A temporary directory removed when the process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `retrace-bench-${prefix}-`))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Resolves after the event loop has had a turn (lets acks and timers run). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Runs the global GC when node was started with --expose-gc; otherwise does nothing. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc) gc()
}

/**
 * Durations in ms in fixed memory: log-spaced bins 1% wide from 0.1 us up, so a benchmark
 * that times millions of calls does not grow its own heap while it measures memory.
 * Quantiles are within 1% of the true value; count, max and counts over a bound are exact.
 */
export class Histogram {
  private static readonly base = 1e-4
  private static readonly step = Math.log(1.01)
  private readonly bins = new Float64Array(2400)
  count = 0
  max = Number.NEGATIVE_INFINITY
  private readonly over: Map<number, number>

  /** `bounds`: values (ms) to count exactly how many are above. */
  constructor(bounds: readonly number[] = [1]) {
    this.over = new Map(bounds.map((b) => [b, 0]))
  }

  add(ms: number): void {
    this.count++
    if (ms > this.max) this.max = ms
    for (const [b, n] of this.over) if (ms > b) this.over.set(b, n + 1)
    const i = ms <= Histogram.base ? 0 : Math.ceil(Math.log(ms / Histogram.base) / Histogram.step)
    this.bins[Math.min(i, this.bins.length - 1)]!++
  }

  /** The value at quantile q (upper edge of its bin, never above max); NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i]!
      if (seen >= rank) return Math.min(this.max, Histogram.base * Math.exp(i * Histogram.step))
    }
    return this.max
  }

  /** How many values were above `bound` (one of the constructor's bounds). */
  above(bound: number): number {
    return this.over.get(bound) ?? Number.NaN
  }
}
