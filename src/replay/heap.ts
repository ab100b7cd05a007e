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

export function keepYoungGenerationSmall(): void {
  try {
    setFlagsFromString('--semi-space-growth-factor=1')
  } catch {
    // Only memory is at stake; replay is the same without it.
  }
}
