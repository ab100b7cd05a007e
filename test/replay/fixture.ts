/**
 * Fixtures for replay tests: a temp workspace holding stage modules and a config, a
 * recording made by the real SDK, and the CLI spawned as a user types it (through the
 * shared test/helpers/cli.ts).
 *
 * Workspaces are made in `beforeAll` and shared by the tests of a file, so they are
 * removed by an explicit `remove()` in `afterAll` rather than per test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createRecorder, type Recorder, type RecorderOptions, type StageFn } from '../../src/index.js'
import { type CliResult, runCli as spawnCli } from '../helpers/cli.js'

export type { CliResult }

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export interface Workspace {
  dir: string
  /** Writes `text` to `name` (relative to the workspace), creating folders; returns the path. */
  write(name: string, text: string): string
  path(name: string): string
  remove(): void
}

export function workspace(prefix = 'retrace-replay-'): Workspace {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    write(name, text) {
      const file = join(dir, name)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, text)
      return file
    },
    path: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** Imports one export of a module written into a workspace (the "production build"). */
export async function importStage(file: string, name: string): Promise<StageFn> {
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
  const fn = mod[name]
  if (typeof fn !== 'function') throw new Error(`${file} has no export ${name}`)
  return fn as StageFn
}

/**
 * Records with the SDK into `path`, runs `body`, and closes the recorder so every
 * capture is on disk. Throws when the recorder reported a problem (other than the codes
 * in `tolerate`), so a broken fixture cannot pass as a replay result.
 */
export async function record(
  path: string,
  body: (recorder: Recorder) => Promise<void>,
  options: Partial<RecorderOptions> = {},
  tolerate: readonly string[] = [],
): Promise<void> {
  const problems: string[] = []
  const recorder = createRecorder({
    pipeline: 'replay-test',
    build: 'prod-1',
    flushIntervalMs: 10,
    onError: (err) => {
      if (!tolerate.includes(err.code)) problems.push(`${err.code}: ${err.message}`)
    },
    ...options,
    path,
  })
  try {
    await body(recorder)
  } finally {
    await recorder.close()
  }
  const stats = recorder.stats()
  if (problems.length > 0 || stats.dropped > 0 || stats.written !== stats.captured) {
    throw new Error(`recording incomplete: ${JSON.stringify(stats)} ${problems.join('; ')}`)
  }
}

/**
 * Runs each stage in order through the recorder for one record, feeding each the output
 * of the one before. Returns the record id and the last output (or the error thrown).
 */
export async function runChain(
  recorder: Recorder,
  key: string,
  input: unknown,
  stages: readonly (readonly [string, StageFn])[],
): Promise<{ recordId: string; output?: unknown; error?: unknown }> {
  const wrapped = stages.map(([name, fn]) => recorder.stage(name, fn))
  let recordId = ''
  try {
    const output = await recorder.record(key, async () => {
      recordId = recorder.current()!.recordId
      let v = input
      for (const stage of wrapped) v = await stage(v)
      return v
    })
    return { recordId, output }
  } catch (error) {
    return { recordId, error }
  }
}

/** Spawns `node bin/run.js ...args` in `cwd`, as a user types it, without colour. */
export function runCli(args: readonly string[], cwd: string): Promise<CliResult> {
  return spawnCli(args, { cwd })
}

/** The `--json` document of a replay, as tests outside the repo read it. */
export interface ReplayJson {
  records: {
    recordId: string
    key: string
    verdict: 'matched' | 'diverged' | 'error'
    firstDivergence: { stage: string; status: string } | null
    stages: {
      stage: string
      status: string
      changes: { path: string; kind: string; recorded?: unknown; local?: unknown }[]
      suppressed: { path: string; reason: string }[]
      error: { message: string; code: string } | null
      [extra: string]: unknown
    }[]
    [extra: string]: unknown
  }[]
  summary: { records: number; matched: number; diverged: number; errors: number }
  [extra: string]: unknown
}

/** Parses stdout of `replay --json`; fails the test with stdout and stderr when it is not JSON. */
export function parseReplayJson(r: CliResult): ReplayJson {
  try {
    return JSON.parse(r.stdout) as ReplayJson
  } catch {
    throw new Error(`stdout is not one JSON document:\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
}

/** Status of each stage of a record, by name. */
export function statuses(rec: ReplayJson['records'][number]): Record<string, string> {
  return Object.fromEntries(rec.stages.map((s) => [s.stage, s.status]))
}

/**
 * The three-stage inventory chain the regression tests record and replay (parse, compute,
 * format), as module sources, with `compute` counting one unit as damaged in `computeOffByOne`
 * (a later local build under which every record diverges at compute).
 */
export const inventorySources = {
  parse: `export function parse(event) {
  return { sku: event.sku, onHand: event.onHand, reserved: event.reserved }
}
`,
  compute: `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`,
  computeOffByOne: `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved - 1 }
}
`,
  format: `export function format(item) {
  return { sku: item.sku, display: item.available + ' in stock' }
}
`,
}

/**
 * Writes the inventory chain to stages/{parse,compute,format}.mjs in `ws` and imports it:
 * the production build to record with `runChain`.
 */
export async function inventoryChain(ws: Workspace): Promise<(readonly [string, StageFn])[]> {
  const chain: (readonly [string, StageFn])[] = []
  for (const name of ['parse', 'compute', 'format'] as const) {
    const file = ws.write(`stages/${name}.mjs`, inventorySources[name])
    chain.push([name, await importStage(file, name)])
  }
  return chain
}
