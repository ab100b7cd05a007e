/**
 * Running the built CLI (bin/run.js) from benchmarks: wall time, peak RSS (through
 * GNU time's %M when /usr/bin/time exists), exit code. Shared by c1-, c3-, show- and test-.
 */
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
export const runJs = join(repoRoot, 'bin/run.js')
const gnuTime = '/usr/bin/time'
export const canMeasureRss = existsSync(gnuTime)

export interface CliRun {
  ms: number
  /** Peak resident set size in MiB (NaN without /usr/bin/time). */
  rssMiB: number
  status: number | null
  stdout: string
  stderr: string
}

let seq = 0

/**
 * Runs `node <args>` to completion. stdout goes to /dev/null unless `keepStdout`; the
 * time includes process start and exit (and GNU time's fork, well under 1 ms).
 */
export function runNode(
  args: readonly string[],
  options: { cwd?: string; keepStdout?: boolean; rss?: boolean; env?: NodeJS.ProcessEnv } = {},
): CliRun {
  const rss = options.rss === true && canMeasureRss
  const rssFile = join(tmpdir(), `retrace-bench-rss-${process.pid}-${seq++}`)
  const devNull = options.keepStdout ? undefined : openSync('/dev/null', 'w')
  const [cmd, cmdArgs] = rss
    ? [gnuTime, ['-f', '%M', '-o', rssFile, process.execPath, ...args]]
    : [process.execPath, [...args]]
  try {
    const t0 = performance.now()
    const r = spawnSync(cmd, cmdArgs, {
      cwd: options.cwd ?? repoRoot,
      stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      env: options.env ?? { ...process.env, NO_COLOR: '1' },
    })
    const ms = performance.now() - t0
    let rssMiB = Number.NaN
    if (rss) {
      const text = readFileSync(rssFile, 'utf8').trim().split('\n').at(-1) ?? ''
      rssMiB = Number(text) / 1024
    }
    return { ms, rssMiB, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
  } finally {
    if (devNull !== undefined) closeSync(devNull)
    rmSync(rssFile, { force: true })
  }
}

/**
 * The node flags bin/run.js's shebang (`#!/usr/bin/env -S node ...`) gives it, so that
 * `node <flags> bin/run.js` runs the CLI as `retrace` on a PATH does, with this node.
 */
export const shebangFlags: readonly string[] = (() => {
  const first = readFileSync(runJs, 'utf8').split('\n', 1)[0] ?? ''
  const words = first.replace(/^#!\S*env\s+(-S\s+)?/, '').split(/\s+/)
  return words[0] === 'node' ? words.slice(1).filter((w) => w !== '') : []
})()

/** `retrace <args>` through bin/run.js; throws when the exit code is not `expect`. */
export function retrace(
  args: readonly string[],
  options: { cwd?: string; keepStdout?: boolean; rss?: boolean; expect?: number } = {},
): CliRun {
  const r = runNode([...shebangFlags, runJs, ...args], options)
  const expect = options.expect ?? 0
  if (r.status !== expect) {
    throw new Error(
      `retrace ${args.join(' ')} exited ${r.status} (expected ${expect}): ${r.stderr.trim().slice(0, 2000)}`,
    )
  }
  return r
}

/** Whether /proc lets runTree sum the memory of a process tree. */
export const canMeasureTreeRss = existsSync('/proc/self/status')

/** The process and all its descendants, from /proc (empty once it is gone). */
function processTree(pid: number): number[] {
  const out: number[] = []
  const visit = (p: number): void => {
    out.push(p)
    let tasks: string[]
    try {
      tasks = readdirSync(`/proc/${p}/task`)
    } catch {
      return
    }
    for (const tid of tasks) {
      let children = ''
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8')
      } catch {}
      for (const c of children.split(' ')) if (c.trim() !== '') visit(Number(c))
    }
  }
  visit(pid)
  return out
}

/** The process's peak resident memory so far (VmHWM), in KiB; 0 once it is gone. */
function peakRssKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

/**
 * Runs `retrace <args>` and reads the peak resident memory (VmHWM) of every process of its
 * tree (the CLI and every worker it forks) every 25 ms: the sum of their peaks, which GNU
 * time's %M (the largest single process) understates for a command that forks. The sum of
 * peaks is never below the peak of the sum. Reading /proc every 5 ms for the current RSS
 * instead cost the measured run ~10% of its speed on 2 cores. Throws when the exit code is
 * not `expect`.
 */
export function retraceTree(
  args: readonly string[],
  options: { cwd?: string; keepStdout?: boolean; expect?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [...shebangFlags, runJs, ...args], {
      cwd: options.cwd ?? repoRoot,
      stdio: ['ignore', options.keepStdout ? 'pipe' : 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const peaks = new Map<number, number>()
    const sample = (): void => {
      if (child.pid === undefined) return
      for (const p of processTree(child.pid)) peaks.set(p, Math.max(peaks.get(p) ?? 0, peakRssKiB(p)))
    }
    const timer = setInterval(sample, 25)
    child.on('error', (err) => {
      clearInterval(timer)
      reject(err)
    })
    child.on('close', (status) => {
      clearInterval(timer)
      const ms = performance.now() - t0
      const expect = options.expect ?? 0
      if (status !== expect) {
        reject(
          new Error(
            `retrace ${args.join(' ')} exited ${status} (expected ${expect}): ${stderr.trim().slice(0, 2000)}`,
          ),
        )
        return
      }
      let peakKiB = 0
      for (const kib of peaks.values()) peakKiB += kib
      resolve({ ms, rssMiB: peakKiB / 1024, status, stdout, stderr })
    })
  })
}
