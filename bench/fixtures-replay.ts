/**
 * Shared fixtures for the CLI benchmarks (C3, C6, test, show): a six-stage pipeline whose
 * stages transform ~2 KB payloads deterministically and read the clock and one effect
 * through `ctx`, written as a stage module (.mjs) with a replay config beside it, and
 * bundles of N records recorded through the real recorder (dist/index.js). Replaying such
 * a bundle through the same module reproduces every output: no divergence.
 *
 * Bundles are cached under `<tmpdir>/retrace-bench-cache/` (or `--cache DIR`), named by a
 * hash of the stage source, the payload size and the bundle format version, because
 * recording 10,000 records takes a while; `--fresh` (or BENCH_FRESH=1) records anew.
 *
 *     const fx = await replayFixture(10_000)   // { bundle, config, records, ... }
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { FORMAT_VERSION } from '../dist/bundle/schema.js'
import type { CaptureWrite, EffectRow } from '../dist/bundle/types.js'
import { createRecorder, type StageContext, type StageFn } from '../dist/index.js'
import { note, sleep } from './lib.js'
import { makePayload, type Payload } from './payloads.js'

/** Stage names, in pipeline order. */
export const STAGES = ['binlog', 'ingest', 'kv', 'compute', 'store', 'query'] as const
/** Approximate JSON size of every stage's input and output. */
export const PAYLOAD_BYTES = 2048
/** Bump when the fixture changes in a way the hash below does not see. */
const FIXTURE_VERSION = 1

/**
 * The stage module. Each stage reads `ctx.now()` and one `ctx.effect` (a KV read), then
 * returns its input with a few fields recomputed and every item touched: a realistic
 * amount of work for a pipeline stage, and an output about as large as its input.
 */
export const STAGE_SOURCE = `// Written by bench/fixtures-replay.ts: six deterministic stages for retrace benchmarks.
function lookup(sku, salt) {
  let h = salt
  for (let i = 0; i < sku.length; i++) h = (Math.imul(h, 31) + sku.charCodeAt(i)) | 0
  return { reserved: (h >>> 0) % 7, shard: (h >>> 3) % 16 }
}

function step(name, salt) {
  return (input, ctx) => {
    const at = ctx.now()
    const kv = ctx.effect('kv.get', { sku: input.sku, stage: name }, () => lookup(input.sku, salt))
    return {
      ...input,
      stage: name,
      available: input.available - kv.reserved,
      shard: kv.shard,
      checkedAt: at,
      items: input.items.map((it) => ({ ...it, qty: it.qty + 1 })),
    }
  }
}

${STAGES.map((s, i) => `export const ${s} = step('${s}', ${i + 1})`).join('\n')}
`

const CONFIG_SOURCE = `// Written by bench/fixtures-replay.ts.
export default {
  stages: {
${STAGES.map((s) => `    ${s}: './stages.mjs#${s}',`).join('\n')}
  },
}
`

export interface ReplayFixture {
  /** Folder holding stages.mjs, retrace.config.mjs and the bundles. */
  dir: string
  bundle: string
  config: string
  records: number
  bytes: number
  /** Seconds it took to record (0 when taken from the cache). */
  recordedS: number
}

function flagValue(name: string): string | undefined {
  const argv = process.argv.slice(2)
  const i = argv.indexOf(`--${name}`)
  if (i >= 0) return argv[i + 1]
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
}

/** Where generated bundles are cached: `--cache DIR`, BENCH_CACHE, or the temp dir. */
export function cacheRoot(): string {
  const dir = flagValue('cache') ?? process.env.BENCH_CACHE ?? join(tmpdir(), 'retrace-bench-cache')
  mkdirSync(dir, { recursive: true })
  return dir
}

export function freshRequested(): boolean {
  return process.argv.includes('--fresh') || process.env.BENCH_FRESH === '1'
}

/** The folder with stages.mjs and retrace.config.mjs (written if missing). */
export function fixtureDir(): string {
  const hash = createHash('sha256')
    .update(`${FIXTURE_VERSION}\n${FORMAT_VERSION}\n${PAYLOAD_BYTES}\n${STAGE_SOURCE}`)
    .digest('hex')
    .slice(0, 10)
  const dir = join(cacheRoot(), `replay-${hash}`)
  mkdirSync(dir, { recursive: true })
  const stages = join(dir, 'stages.mjs')
  const config = join(dir, 'retrace.config.mjs')
  if (!existsSync(stages)) writeFileSync(stages, STAGE_SOURCE)
  if (!existsSync(config)) writeFileSync(config, CONFIG_SOURCE)
  return dir
}

type StageModule = Record<(typeof STAGES)[number], StageFn<Payload, Payload>>

export async function loadStageModule(): Promise<StageModule> {
  return (await import(pathToFileURL(join(fixtureDir(), 'stages.mjs')).href)) as StageModule
}

/** The input of record `i`'s first stage. */
export function firstInput(i: number): Payload {
  return makePayload(PAYLOAD_BYTES, 7_000_003 + i)
}

/** Records `records` records through the recorder into `path` (replaced if present). */
async function record(path: string, records: number): Promise<void> {
  const mod = await loadStageModule()
  rmSync(path, { force: true })
  let now = 1_760_000_000_000
  const recorder = createRecorder({
    path,
    pipeline: 'bench-inventory',
    build: 'bench',
    // A deterministic clock: the same records every time, and ctx.now() plays back exactly.
    clock: () => (now += 3),
    maxQueue: 50_000,
    maxQueueBytes: 512 * 1024 * 1024,
    flushIntervalMs: 50,
  })
  const stages = STAGES.map((s) => recorder.stage(s, mod[s]))
  for (let r = 0; r < records; r++) {
    const input = firstInput(r)
    await recorder.record(String(input.sku), async () => {
      let v = input
      for (const stage of stages) v = await stage(v)
    })
    if ((r & 15) === 0) {
      // Keep the writer's queue short, so nothing is dropped.
      while (true) {
        const st = recorder.stats()
        if (st.captured - st.written - st.dropped <= 4096) break
        await sleep(2)
      }
    }
  }
  await recorder.close()
  const st = recorder.stats()
  const expected = records * STAGES.length
  if (st.dropped > 0 || st.written !== expected) {
    throw new Error(
      `recording the fixture lost captures: written ${st.written} of ${expected}, dropped ${st.dropped}`,
    )
  }
}

/** A bundle of `records` records x 6 stages, recorded once and cached. */
export async function replayFixture(records: number): Promise<ReplayFixture> {
  const dir = fixtureDir()
  const bundle = join(dir, `bundle-${records}.sqlite`)
  let recordedS = 0
  if (freshRequested() || !existsSync(bundle)) {
    note(`recording ${records.toLocaleString('en-US')} records x ${STAGES.length} stages into ${bundle}`)
    const partial = `${bundle}.partial`
    const t0 = performance.now()
    await record(partial, records)
    renameSync(partial, bundle)
    recordedS = (performance.now() - t0) / 1000
    note(`recorded in ${recordedS.toFixed(1)} s (${(statSync(bundle).size / 1024 ** 2).toFixed(0)} MiB)`)
  }
  return {
    dir,
    bundle,
    config: join(dir, 'retrace.config.mjs'),
    records,
    bytes: statSync(bundle).size,
    recordedS,
  }
}

/** One recorded chain as the recorder would write it, for raw-SQL bundle generators. */
export interface ChainTexts {
  key: string
  captures: CaptureWrite[]
}

/**
 * Runs record `i` through the stages with a recording context, without a recorder:
 * payload texts and effect rows exactly as the recorder writes plain-JSON payloads.
 */
export function chainTexts(mod: StageModule, i: number, startedAt: number): ChainTexts {
  let v = firstInput(i)
  const captures: CaptureWrite[] = []
  let t = startedAt
  STAGES.forEach((stage, seq) => {
    const effects: EffectRow[] = []
    const ctx: StageContext = {
      key: String(v.sku),
      recordId: '',
      stage,
      attempt: 1,
      now() {
        t += 3
        effects.push({
          seq: effects.length,
          kind: 'now',
          name: 'now',
          args: null,
          result: String(t),
          error: null,
        })
        return t
      },
      random() {
        effects.push({
          seq: effects.length,
          kind: 'random',
          name: 'random',
          args: null,
          result: '0.5',
          error: null,
        })
        return 0.5
      },
      effect<T>(name: string, args: unknown, fn: () => T): T {
        const out = fn()
        effects.push({
          seq: effects.length,
          kind: 'effect',
          name,
          args: JSON.stringify(args),
          result: JSON.stringify(out),
          error: null,
        })
        return out
      },
    }
    const input = JSON.stringify(v)
    const out = mod[stage](v, ctx) as Payload
    captures.push({
      seq,
      stage,
      attempt: 1,
      input,
      output: JSON.stringify(out),
      error: null,
      startedAt: t,
      durationMs: 0.05,
      effects,
    })
    v = out
  })
  return { key: String(firstInput(i).sku), captures }
}

export const PARSE_FLOOR =
  'read every capture input/output text from the bundle (better-sqlite3) + JSON.parse + JSON.stringify each'

/**
 * The replay floor: every capture's input and output text read from the bundle in one
 * scan with better-sqlite3, each put through JSON.parse + JSON.stringify. What "just
 * parsing and re-serialising those payloads" costs.
 */
export function parseFloor(bundle: string): { ms: number; captures: number; bytes: number } {
  const db = new Database(bundle, { readonly: true, fileMustExist: true })
  try {
    const stmt = db.prepare('SELECT input, output FROM captures')
    let captures = 0
    let bytes = 0
    const t0 = performance.now()
    for (const row of stmt.iterate() as Iterable<{ input: string; output: string | null }>) {
      bytes += JSON.stringify(JSON.parse(row.input)).length
      if (row.output !== null) bytes += JSON.stringify(JSON.parse(row.output)).length
      captures++
    }
    return { ms: performance.now() - t0, captures, bytes }
  } finally {
    db.close()
  }
}
