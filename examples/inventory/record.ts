/**
 * Makes recordings/inventory.sqlite: runs the workload through the PRODUCTION build of
 * the pipeline (prod/compute.ts, every other stage shared) under the retrace recorder,
 * with a simulated clock, seeded randomness and deterministic record ids, so every run
 * writes the same records.
 *
 *     npm run example:record
 */
import { existsSync, rmSync, statSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRecorder, type StageFn } from 'retrace'
import { createPipeline, localStages, type Outcome, RecordFailed } from './pipeline.js'
import { compute as prodCompute } from './prod/compute.js'
import type { Admission, Change, Computed, StoredChange } from './types.js'
import { buildWorkload, START, type Timed } from './workload.js'
import { mulberry32, world } from './world.js'

export const BUILD = 'inventory-prod@2026.03.1+7c1e2a9'
const DLQ_DELAY_MS = 3_000
const here = dirname(fileURLToPath(import.meta.url))
const path = resolve(here, '../../recordings/inventory.sqlite')

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** ULID layout (10 chars of ms time, 16 random), with the randomness from a seed. */
function seededIds(now: () => number, seed: number): () => string {
  const rng = mulberry32(seed)
  return () => {
    let time = ''
    for (let t = Math.floor(now()), i = 0; i < 10; i++, t = Math.floor(t / 32))
      time = CROCKFORD[t % 32] + time
    let rand = ''
    for (let i = 0; i < 16; i++) rand += CROCKFORD[Math.floor(rng() * 32)]
    return time + rand
  }
}

const tally = { computeRetries: 0, degraded: 0, deferred: 0, parked: 0, redelivered: 0 }

/** Production's compute, counted on the way through (the counting is not recorded). */
const countedCompute: StageFn<StoredChange, Computed> = async (input, ctx) => {
  if (ctx.attempt > 1) tally.computeRetries++
  const out = await prodCompute(input, ctx)
  if (out.source === 'local') tally.degraded++
  return out
}
const countedIngest: StageFn<Change, Admission> = async (input, ctx) => {
  const out = await localStages.ingest(input, ctx)
  if (!out.admitted) tally.deferred++
  return out
}

async function main(): Promise<void> {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true })

  const workload = buildWorkload()
  world.reset({ start: START, seed: 7, stock: workload.stock, catalog: workload.catalog })
  const clock = (): number => world.clock.now()
  const recorder = createRecorder({
    path,
    pipeline: 'inventory',
    build: BUILD,
    clock,
    random: mulberry32(11),
    ids: seededIds(clock, 13),
    origin: { host: 'inventory-prod-1', pid: 4242 },
    onError: (err) => console.error(`recorder: ${err.code}: ${err.message}`),
  })
  const run = createPipeline(
    recorder,
    { ...localStages, ingest: countedIngest, compute: countedCompute },
    { sleep: (ms) => world.sleep(ms) },
  )

  // The event queue: the workload in time order, plus dead-letter redeliveries.
  const queue: Timed[] = [...workload.events]
  const enqueue = (t: Timed): void => {
    const i = queue.findIndex((q) => q.at > t.at)
    queue.splice(i < 0 ? queue.length : i, 0, t)
  }
  const outcomes: Outcome[] = []
  const failures: RecordFailed[] = []
  for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
    world.advanceTo(START + t.at)
    try {
      const outcome = await run(t.event)
      outcomes.push(outcome)
      if (outcome.status === 'shed') enqueue({ at: world.elapsed() + DLQ_DELAY_MS, event: t.event })
    } catch (err) {
      if (!(err instanceof RecordFailed)) throw err
      failures.push(err)
      // A malformed event is parked for a human; anything later in the chain is retried.
      if (err.stage === 'binlog') tally.parked++
      else {
        tally.redelivered++
        enqueue({ at: world.elapsed() + DLQ_DELAY_MS, event: t.event })
      }
    }
  }
  await recorder.close()

  const stats = recorder.stats()
  const bad = outcomes.filter((o) => o.key === 'sku:1001').at(-1)
  const shown = bad?.status === 'shown' ? bad.screen : undefined
  const out = (line: string): boolean => process.stdout.write(`${line}\n`)
  out(
    `wrote ${relative(process.cwd(), path)} (${(statSync(path).size / 1024).toFixed(0)} KiB), build ${BUILD}`,
  )
  out(`  records   ${outcomes.length + failures.length} (${failures.length} ended in an error)`)
  out(`  captures  ${stats.written} written, ${stats.dropped} dropped`)
  out(`  compute   ${tally.computeRetries} retries, ${tally.degraded} degraded reads of the local store`)
  out(`  ingest    ${tally.deferred} deferrals`)
  out(`  failures  ${tally.parked} malformed events parked, ${tally.redelivered} redelivered from the DLQ`)
  for (const f of failures)
    out(`            ${f.recordId} ${f.key}: ${f.stage}: ${(f.cause as Error).message}`)
  if (bad !== undefined && shown !== undefined) {
    const kv = world.kvState('sku:1001')
    out(`  the bad record: ${bad.recordId} (${bad.key})`)
    out(`    the page shows ${shown.available} available ("${shown.badge}"); KV says ${kv?.available}`)
    out(`    try: retrace show ${relative(process.cwd(), path)} ${bad.recordId}`)
  }
  if (stats.dropped > 0 || stats.errors > 0 || !existsSync(path)) process.exitCode = 1
}

await main()
