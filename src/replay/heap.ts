/**
 * Replaying streams records through short-lived garbage at a high rate, and V8 answers by
 * growing its young generation step by step to two 16 MiB semi-spaces: peak RSS then
 * grows with the number of records until the heap settles (C6 in bench/), although what
 * is kept stays flat. Held at their starting size, the semi-spaces made replay no slower
 * here (often faster) and peak RSS flat from 1,000 records on.
 *
 * Set at run time, not as a node flag: a V8 flag on the command line costs every start-up
 * ~10 ms (the built-in modules' code cache no longer matches), C1 in bench/.
 */
import { setFlagsFromString } from 'node:v8'

/**
 * The young generation a worker process starts with, in MiB per semi-space (node's
 * `--min-semi-space-size`). Held at whatever it had grown to when it was frozen, its size
 * was an accident of how much loading the modules allocated: 2 MiB once the worker was one
 * file (scripts/bundle.mjs), against 4 MiB before. At 2 MiB the worker spent twice as long
 * in GC and took ~10% fewer of a run's records than the CLI beside it; at 4 MiB replay in
 * one process was as fast as at 8 and its RSS 7 MiB smaller (10,000 records of the
 * fixture in bench/fixtures-replay.ts). The flag costs the worker ~7 ms of start-up,
 * while the CLI is still loading.
 */
export const workerSemiSpaceMiB = 4

export function keepYoungGenerationSmall(): void {
  try {
    setFlagsFromString('--semi-space-growth-factor=1')
  } catch {
    // Only memory is at stake; replay is the same without it.
  }
}
