/**
 * Running the built CLI (bin/run.js) from benchmarks: wall time, peak RSS (through
 * GNU time's %M when /usr/bin/time exists), exit code. Shared by c1-, c3-, show- and test-.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs'
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
