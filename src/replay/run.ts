/**
 * Replays a selection of records from a bundle set, streaming: each record is loaded,
 * replayed and handed to `onRecord` before the next is read, so memory stays flat in the
 * number of records.
 */
import { performance } from 'node:perf_hooks'
import type { BundleSet, RecordChain } from '../bundle/index.js'
import { compileInvariants } from '../compare/invariants.js'
import { UsageError } from '../errors.js'
import type { StageFn } from '../recorder/recorder.js'
import type { LoadedConfig } from './config.js'
import {
  addToSummary,
  emptySummary,
  type RecordResult,
  type ReplayMode,
  type ReplayOptions,
  type ReplaySummary,
  replayRecord,
} from './engine.js'
import { type Selection, selectRecords } from './select.js'

export interface RunOptions {
  mode: ReplayMode
  splice: string[]
  only?: string
  allowNet: boolean
  timeoutMs: number
}

export function engineOptions(
  config: LoadedConfig,
  stages: ReadonlyMap<string, StageFn<unknown, unknown>>,
  run: RunOptions,
): ReplayOptions {
  // A misspelt --stage or --splice would otherwise skip or splice nothing and report a match.
  const named = [
    ...run.splice.map((s) => ['--splice', s] as const),
    ...(run.only !== undefined ? [['--stage', run.only] as const] : []),
  ]
  // Replaying one stage while using its recorded output instead would compare nothing.
  if (run.only !== undefined && run.splice.includes(run.only)) {
    throw new UsageError(
      `--stage ${JSON.stringify(run.only)} and --splice ${JSON.stringify(run.only)} together replay nothing: use one of them`,
    )
  }
  for (const [flag, name] of named) {
    if (!stages.has(name)) {
      throw new UsageError(
        `${flag} ${JSON.stringify(name)}: the config has no such stage (it has ${[...stages.keys()].join(', ')})`,
      )
    }
  }
  const o: ReplayOptions = {
    mode: run.mode,
    stages,
    rules: config.rules,
    splice: new Set(run.splice),
    allowNet: run.allowNet,
    timeoutMs: run.timeoutMs,
    now: () => performance.now(),
  }
  if (run.only !== undefined) o.only = run.only
  const invariants = compileInvariants(config.config.invariants)
  if (invariants.length > 0) o.invariants = invariants
  return o
}

/** Stage names in recordings that the config does not define. */
export function missingStages(chain: RecordChain, stages: ReadonlyMap<string, unknown>): string[] {
  return [...new Set(chain.captures.map((c) => c.stage))].filter((s) => !stages.has(s))
}

export async function replaySelection(
  set: BundleSet,
  selection: Selection,
  options: ReplayOptions,
  onRecord: (result: RecordResult, chain: RecordChain) => void | Promise<void>,
): Promise<{ summary: ReplaySummary; missing: string[] }> {
  const summary = emptySummary()
  const missing = new Set<string>()
  for (const id of selectRecords(set, selection)) {
    const chain = set.loadRecord(id)
    for (const s of missingStages(chain, options.stages)) missing.add(s)
    const result = await replayRecord(chain, options)
    addToSummary(summary, result)
    await onRecord(result, chain)
  }
  return { summary, missing: [...missing] }
}
