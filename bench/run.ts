/**
 * `npm run bench`: runs every benchmark below in its own child process, one after the
 * other, collects the JSON lines they print (see bench/lib.ts) and writes
 * docs/performance.md.
 *
 *     npm run build && npm run bench                   all, writes docs/performance.md
 *     npm run bench -- --quick                         shorter runs (R7 for 10 s)
 *     npm run bench -- --only R1,R7                    some, prints only (add --out to write)
 *     npm run bench -- --out /tmp/perf.md
 *     npm run bench -- --nice -10                      run benchmarks at this nice level (a
 *                                                      negative one needs root) on a shared box
 *     npm run bench -- --wait-quiet 600                before each benchmark, wait up to 600 s
 *                                                      for the 1-minute load average to fall
 *                                                      below half the core count
 *
 * To add a benchmark: write bench/<name>.ts that prints figures with emit() from
 * bench/lib.ts, and add an entry to `benchmarks`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Figure } from './lib.js'

interface Benchmark {
  /** Script path relative to the repository root. */
  file: string
  /** The target ids it reports (for --only). */
  ids: string[]
  args?: string[]
  /** Arguments replacing `args` under --quick. */
  quickArgs?: string[]
  /** Node flags, e.g. --expose-gc. */
  nodeArgs?: string[]
  /** What it measures and against what, one or two sentences for the report. */
  about: string
  /** Longest the run may take before it is killed (default 10 minutes). */
  timeoutS?: number
}

const benchmarks: Benchmark[] = [
  {
    file: 'bench/page-size.ts',
    ids: ['page-size'],
    quickArgs: ['--rounds', '3', '--captures', '10000'],
    about:
      'Inserts the same capture rows into the bundle schema with page_size 16384 and 4096 (WAL, synchronous NORMAL, 256 captures per transaction), interleaved; checks the claim in src/bundle/schema.ts.',
  },
  {
    file: 'bench/r1-capture-cost.ts',
    ids: ['R1', 'R1.codec'],
    quickArgs: ['--rounds', '7'],
    about:
      'Main-thread cost per capture: a record of wrapped async stages minus the same bare calls, per capture, against JSON.stringify of the same input and output. The writer commits each 256-capture chunk between timed chunks, so nothing is dropped and the timed part never waits on it.',
  },
  {
    file: 'bench/r2-sampled-out.ts',
    ids: ['R2', 'R2.als'],
    args: ['--sample', '0'],
    quickArgs: ['--sample', '0', '--rounds', '11'],
    about:
      'A wrapped async stage inside a record that is not sampled (sample: 0) against `await fn(x, ctx)` in the same async context; R2.als is what the async context itself costs every promise of the host.',
  },
  {
    file: 'bench/r2-sampled-out.ts',
    ids: ['R2', 'R2.als'],
    args: ['--sample', '0.01'],
    quickArgs: ['--sample', '0.01', '--rounds', '11'],
    about: 'As above with sample: 0.01 and a key that hashes out of the sample.',
  },
  {
    file: 'bench/r6-throughput.ts',
    ids: ['R6'],
    quickArgs: ['--rounds', '3', '--captures', '20000'],
    about:
      'Captures written per second through the recorder (4 async stages per record, producer paused while 4,096 captures wait) against raw better-sqlite3 inserting the same rows, same schema, pragmas and batch size, alternating.',
  },
  {
    file: 'bench/writer-rows.ts',
    ids: ['W1'],
    quickArgs: ['--rounds', '5', '--captures', '20000'],
    about:
      "CPU time per capture row of the recorder's writer (BundleWriter: open, 256-capture transactions, close) against raw better-sqlite3 inserting the same rows with the same schema and pragmas, alternating on one thread; a guard for the writer's own overhead.",
  },
  {
    file: 'bench/r7-overload.ts',
    ids: ['R7'],
    args: ['--payload', '512'],
    quickArgs: ['--payload', '512', '--duration', '10'],
    nodeArgs: ['--expose-gc'],
    about:
      'Measures the writer capacity, then produces at 2x it for 60 s with the default queue: RSS growth, the longest record() call, the longest gap of the producer loop (against the same loop calling bare functions), and drop accounting checked against the rows in the bundle.',
  },
  {
    file: 'bench/r7-overload.ts',
    ids: ['R7'],
    args: ['--payload', '2048'],
    quickArgs: ['--payload', '2048', '--duration', '10'],
    nodeArgs: ['--expose-gc'],
    about: 'As above with 2 KB payloads.',
  },
  {
    file: 'bench/c1-cold-start.ts',
    ids: ['C1', 'C1.ls'],
    quickArgs: ['--rounds', '15'],
    about:
      'Wall time from spawn to exit of `retrace --version` and `retrace --help` against bare `node -e 0`, interleaved; `retrace ls` on the shipped bundle (oclif, the command, better-sqlite3, the hardened open) alongside, for information.',
  },
  {
    file: 'bench/show-1gb.ts',
    ids: ['show', 'show.checked'],
    quickArgs: ['--rounds', '5'],
    timeoutS: 1800,
    about:
      'Time to the first byte on stdout of `retrace show` on one record of a 1 GB bundle (generated once and cached) against bare `node -e 0`; show.checked is a bundle just under the 256 MiB quick_check limit.',
  },
  {
    file: 'bench/c3-replay.ts',
    ids: ['C3', 'C6'],
    quickArgs: ['--rounds', '2', '--large-rounds', '0'],
    nodeArgs: ['--expose-gc'],
    timeoutS: 900,
    about:
      'Replays 10,000 records x 6 stages with 2 KB payloads, all matching, in process and through the CLI, against reading the same payload texts from the bundle and putting them through JSON.parse + JSON.stringify; C6 is the peak RSS of the CLI run at 10,000 records against 1,000 and 30,000.',
  },
  {
    file: 'bench/test-workers.ts',
    ids: ['test', 'test.w1', 'test.rss'],
    quickArgs: ['--rounds', '2'],
    timeoutS: 900,
    about:
      '`retrace test --workers 2` over the C3 fixture (10,000 records), wall time and peak RSS, against the same replay floor; --workers 1 and 1,000 records alongside.',
  },
  {
    file: 'bench/c5-diff.ts',
    ids: ['C5'],
    quickArgs: ['--rounds', '5'],
    about:
      'Time to a result or the fallback of the worst single diffs (2,000 all-different lines; a 5 MB JSON pair differing throughout): structural and unified, on values and as replay runs them, against the 50 ms budget.',
  },
]

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = flag('quick')
const only = option('only')
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const waitQuietS = Number(option('wait-quiet') ?? 0)
const niceLevel = option('nice')
const out = option('out') ?? (only === undefined ? 'docs/performance.md' : undefined)
/** Lines after this marker in docs/performance.md are kept when the report is rewritten. */
const notesMarker = '<!-- notes below this line are kept by bench/run.ts -->'

interface Run {
  bench: Benchmark
  command: string
  figures: Figure[]
  exitCode: number | null
  seconds: number
  loadBefore: number[]
  loadAfter: number[]
  error?: string
}

function checkBuild(): void {
  const worker = join(root, 'dist/bundle/writer-worker.js')
  if (!existsSync(worker)) {
    process.stderr.write(
      'dist/ is missing: run `npm run build` first (the recorder runs dist/bundle/writer-worker.js).\n',
    )
    process.exit(2)
  }
  const built = statSync(join(root, 'dist/index.js')).mtimeMs
  const newer = spawnSync('find', ['src', '-newermt', new Date(built).toISOString(), '-name', '*.ts'], {
    cwd: root,
    encoding: 'utf8',
  }).stdout.trim()
  if (newer !== '')
    process.stderr.write(`warning: src/ changed since the last build; run \`npm run build\`:\n${newer}\n`)
}

/** Waits (bounded) for other work on the machine to calm down; returns the load seen. */
async function waitForQuiet(): Promise<void> {
  const threshold = cpus().length / 2
  const deadline = Date.now() + waitQuietS * 1000
  while ((loadavg()[0] ?? 0) >= threshold && Date.now() < deadline) {
    process.stdout.write(`# load average ${fmt(loadavg()[0])}; waiting for < ${threshold}\n`)
    await new Promise((resolve) => setTimeout(resolve, 15_000))
  }
}

async function runOne(bench: Benchmark): Promise<Run> {
  if (waitQuietS > 0) await waitForQuiet()
  const args = quick && bench.quickArgs ? bench.quickArgs : (bench.args ?? [])
  const nodeArgs = [...(bench.nodeArgs ?? []), '--import', 'tsx', bench.file, ...args]
  process.stdout.write(`\n== ${commandFor(bench, args)}\n`)
  const loadBefore = loadavg()
  const t0 = performance.now()
  return new Promise((resolve) => {
    // `nice` before exec, so every thread of the benchmark (the writer thread too) inherits it.
    const [cmd, cmdArgs] =
      niceLevel === undefined
        ? [process.execPath, nodeArgs]
        : ['nice', ['-n', niceLevel, process.execPath, ...nodeArgs]]
    const child = spawn(cmd, cmdArgs, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    const figures: Figure[] = []
    let buffered = ''
    let error: string | undefined
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk
      let nl = buffered.indexOf('\n')
      while (nl >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.startsWith('{"id":')) {
          try {
            figures.push(JSON.parse(line) as Figure)
          } catch {
            process.stdout.write(`(unparsable figure line) ${line}\n`)
          }
        } else process.stdout.write(`${line}\n`)
        nl = buffered.indexOf('\n')
      }
    })
    const timer = setTimeout(
      () => {
        error = `killed after ${bench.timeoutS ?? 600} s`
        child.kill('SIGKILL')
      },
      (bench.timeoutS ?? 600) * 1000,
    )
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code !== 0 && error === undefined) error = `exited with code ${code}`
      resolve({
        bench,
        command: commandFor(bench, args),
        figures,
        exitCode: code,
        seconds: (performance.now() - t0) / 1000,
        loadBefore,
        loadAfter: loadavg(),
        ...(error === undefined ? {} : { error }),
      })
    })
  })
}

/** The command a person types to run one benchmark by hand. */
function commandFor(bench: Benchmark, args: readonly string[]): string {
  const runner = bench.nodeArgs?.length ? `node ${bench.nodeArgs.join(' ')} --import tsx` : 'npx tsx'
  return `${runner} ${bench.file}${args.length ? ` ${args.join(' ')}` : ''}`
}

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : 'unknown'
}

async function environment(): Promise<Record<string, string>> {
  const { sqliteVersion, WRITER_PRAGMAS } = await import('./raw-sqlite.js')
  const { PAGE_SIZE } = await import('../dist/bundle/schema.js')
  const pkg = (name: string): string =>
    (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string
      }
    ).version
  const dirty = git(['status', '--porcelain', '--', 'src']) === '' ? '' : ' (src/ has uncommitted changes)'
  return {
    CPU: `${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores`,
    Memory: `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    Node: `${process.version} (V8 ${process.versions.v8})`,
    SQLite: `${sqliteVersion()} via better-sqlite3 ${pkg('better-sqlite3')}`,
    'Bundle pragmas': `page_size=${PAGE_SIZE}, ${WRITER_PRAGMAS.join(', ')}; 256 captures per transaction`,
    Commit: `${git(['rev-parse', '--short', 'HEAD'])}${dirty}`,
    Priority: niceLevel === undefined ? 'default (nice 0)' : `nice ${niceLevel} (bench/run.ts --nice)`,
    Date: new Date().toISOString(),
  }
}

const fmt = (x: number | null | undefined): string => {
  if (x === null || x === undefined || Number.isNaN(x)) return '-'
  if (Number.isInteger(x)) return x.toLocaleString('en-US')
  return String(Number(x.toPrecision(4)))
}

function verdict(pass: boolean | null): string {
  return pass === null ? 'info' : pass ? 'pass' : '**MISS**'
}

function render(runs: Run[], env: Record<string, string>, notes: string): string {
  const lines: string[] = []
  lines.push('# Performance', '')
  lines.push(
    `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` (bench/run.ts) on this machine; do not edit above the notes marker.`,
    'Every figure is compared with a floor measured in the same process run, interleaved with it, as the',
    'median of several rounds, because absolute times drift on a shared machine and ratios drift less.',
    '',
  )
  lines.push('| Target | Case | Value | Floor (same run) | Ratio | Target | Result |')
  lines.push('|---|---|---|---|---|---|---|')
  for (const run of runs) {
    for (const f of run.figures) {
      lines.push(
        `| ${f.id} | ${f.name} | ${fmt(f.value)} ${f.unit} | ${fmt(f.floor)} ${f.unit}: ${f.floorName} | ${fmt(
          f.ratio,
        )} | ${f.target} | ${verdict(f.pass)} |`,
      )
    }
    if (run.error !== undefined) {
      lines.push(
        `| ${run.bench.ids.join(', ')} | ${run.bench.file} | - | - | - | - | **failed: ${run.error}** |`,
      )
    }
  }
  lines.push('', '## Machine', '')
  for (const [k, v] of Object.entries(env)) lines.push(`- ${k}: ${v}`)
  lines.push(
    '',
    'Load average (1 min) before and after each benchmark is listed below: other work on the machine',
    "during a run shows up there, and in the spread of the rounds in each figure's details.",
    '',
    '## Benchmarks',
    '',
  )
  for (const run of runs) {
    const args = quick && run.bench.quickArgs ? run.bench.quickArgs : (run.bench.args ?? [])
    lines.push(`### ${run.bench.file}${args.length ? ` ${args.join(' ')}` : ''}`, '')
    lines.push(run.bench.about, '')
    lines.push(`- Command: \`npm run build && ${run.command}\``)
    lines.push(
      `- Took ${fmt(run.seconds)} s; load average ${fmt(run.loadBefore[0])} before, ${fmt(run.loadAfter[0])} after`,
    )
    if (run.error !== undefined) lines.push(`- Failed: ${run.error}`)
    for (const f of run.figures) {
      if (f.detail) lines.push(`- ${f.id} ${f.name}: \`${JSON.stringify(f.detail)}\``)
    }
    lines.push('')
  }
  lines.push(notesMarker)
  lines.push(notes)
  return `${lines.join('\n').trimEnd()}\n`
}

checkBuild()
const selected = benchmarks.filter(
  (b) => only === undefined || only.some((o) => b.ids.includes(o) || b.file.includes(o)),
)
if (selected.length === 0) {
  process.stderr.write(`no benchmark matches --only ${only?.join(',')}\n`)
  process.exit(2)
}
const runs: Run[] = []
for (const bench of selected) runs.push(await runOne(bench))

process.stdout.write('\n== summary\n')
for (const run of runs) {
  for (const f of run.figures) {
    process.stdout.write(
      `${verdict(f.pass).replaceAll('*', '').padEnd(5)} ${f.id.padEnd(9)} ${f.name}: ${fmt(f.value)} ${f.unit} vs ${fmt(
        f.floor,
      )} (ratio ${fmt(f.ratio)}; target ${f.target})\n`,
    )
  }
  if (run.error !== undefined) process.stdout.write(`FAIL  ${run.bench.file}: ${run.error}\n`)
}

if (out !== undefined) {
  const path = join(root, out)
  let notes = ''
  if (existsSync(path)) {
    const old = readFileSync(path, 'utf8')
    const at = old.indexOf(notesMarker)
    if (at >= 0) notes = old.slice(at + notesMarker.length).replace(/^\n/, '')
  }
  writeFileSync(path, render(runs, await environment(), notes))
  process.stdout.write(`\nwrote ${relative(process.cwd(), path)}\n`)
}
if (runs.some((r) => r.error !== undefined)) process.exitCode = 1
