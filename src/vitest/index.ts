/**
 * `retrace/vitest`: recordings as tests in your own vitest suite.
 *
 *     import { describeRecordings } from 'retrace/vitest'
 *     describeRecordings('recordings/', { config: './retrace.config.ts' })
 *
 * One test per record, named by key and record id, failing with the step diff. Run
 * vitest with `-u` to re-pin failing expectations from the local build. For hand-written
 * tests, `expect(await replayOne(bundle, id)).toReplayCleanly()`.
 */
import { relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BundleSet, pinExpectations, type RecordChain } from '../bundle/index.js'
import { renderRecordResult } from '../render/replay.js'
import { plain } from '../render/theme.js'
import { loadConfig, loadStages } from '../replay/config.js'
import { type RecordResult, type ReplayMode, type ReplayOptions, replayRecord } from '../replay/engine.js'
import { discoverBundles, inCI, pinFromResult, pinsMend } from '../replay/regress.js'
import { engineOptions } from '../replay/run.js'
import { version } from '../version.js'

export interface RecordingsOptions {
  /** Config file (default: found upward from the working directory). */
  config?: string
  mode?: ReplayMode
  /** Milliseconds a stage may run (default 10,000). */
  timeoutMs?: number
  /** Allow re-pinning with `vitest -u` when CI is set (as `retrace test --update --force`). */
  force?: boolean
}

interface CustomMatchers<R = unknown> {
  /** Passes when every stage of the replayed record matched its oracle. */
  toReplayCleanly(): R
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: must match vitest's own declaration
  interface Matchers<T = any> extends CustomMatchers<T> {}
}

function isRecordResult(v: unknown): v is RecordResult {
  return typeof v === 'object' && v !== null && 'verdict' in v && 'stages' in v
}

expect.extend({
  toReplayCleanly(received: unknown) {
    if (!isRecordResult(received)) {
      return { pass: false, message: () => 'expected a replay result (from replayOne or replayRecord)' }
    }
    return {
      pass: received.verdict === 'matched',
      message: () =>
        received.verdict === 'matched'
          ? `expected record ${received.recordId} not to replay cleanly`
          : `record ${received.key} ${received.recordId} did not replay cleanly:\n${renderRecordResult(received, plain, { width: 120, verbose: false, maxChanges: 20 })}`,
    }
  },
})

const engines = new Map<string, Promise<ReplayOptions>>()

function engineFor(options: RecordingsOptions): Promise<ReplayOptions> {
  const cacheKey = JSON.stringify(options)
  let engine = engines.get(cacheKey)
  if (engine === undefined) {
    engine = (async () => {
      const config = await loadConfig(options.config, process.cwd())
      const stages = await loadStages(config)
      return engineOptions(config, stages, {
        mode: options.mode ?? 'cascade',
        splice: [],
        allowNet: false,
        timeoutMs: options.timeoutMs ?? 10_000,
      })
    })()
    engines.set(cacheKey, engine)
  }
  return engine
}

/** Replays one record of a bundle through the local build. */
export async function replayOne(
  bundle: string,
  recordId: string,
  options: RecordingsOptions = {},
): Promise<RecordResult> {
  const engine = await engineFor(options)
  return replayRecord(loadChain(bundle, recordId), engine)
}

function loadChain(bundle: string, recordId: string): RecordChain {
  const set = BundleSet.open([bundle])
  try {
    return set.loadRecord(set.resolveRecordId(recordId))
  } finally {
    set.close()
  }
}

/**
 * `vitest -u`: pins the record's failing stages, as `retrace test --update` does, when a
 * replay with the pins shows they make it pass; returns whether it pinned.
 */
async function repin(bundle: string, result: RecordResult, options: RecordingsOptions): Promise<boolean> {
  if (inCI(process.env) && !options.force) {
    throw new Error(
      'refusing to re-pin (vitest -u) in CI (CI is set): expectations are pinned on a workstation; pass force: true to describeRecordings to override',
    )
  }
  const pins = pinFromResult(result, { note: 'vitest -u', build: null, now: Date.now(), onlyFailing: true })
  if (!(await pinsMend(loadChain(bundle, result.recordId), pins, await engineFor(options)))) return false
  pinExpectations(bundle, pins, version)
  return true
}

function updating(): boolean {
  const state = expect.getState().snapshotState as { snapshotUpdateState?: string } | undefined
  return state?.snapshotUpdateState === 'all'
}

/** Declares one vitest test per record of every bundle under `path`. */
export function describeRecordings(path: string, options: RecordingsOptions = {}): void {
  const bundles = discoverBundles([path])
  describe(`recordings in ${path}`, () => {
    if (bundles.length === 0) {
      it.skip(`no bundles under ${path}`, () => {})
      return
    }
    for (const bundle of bundles) {
      const set = BundleSet.open([bundle])
      let records: { id: string; key: string }[]
      try {
        records = [...set.records({ order: 'oldest' })].map((r) => ({ id: r.id, key: r.key }))
      } finally {
        set.close()
      }
      describe(relative(process.cwd(), bundle) || bundle, () => {
        for (const r of records) {
          it(`${r.key} ${r.id}`, async () => {
            const result = await replayOne(bundle, r.id, options)
            // A record its pins would not make pass fails under -u too, as in `retrace test --update`.
            if (result.verdict !== 'matched' && updating() && (await repin(bundle, result, options))) return
            expect(result).toReplayCleanly()
          })
        }
      })
    }
  })
}
