/**
 * Replaying streams records through short-lived garbage at a high rate, and V8 answers by
 * growing its young generation step by step to two 16 MiB semi-spaces: peak RSS then
 * grows with the number of records until the heap settles (C6 in bench/), although what
 * is kept stays flat, and every new page of it is a page fault, which costs ~9 us on the
 * virtual machines the benchmarks run on. Replay holds it at 4 MiB semi-spaces instead:
 * no slower in one process than 8 or 16 MiB, and with 2 MiB the worker spent twice as
 * long in GC (10,000 records of the fixture in bench/fixtures-replay.ts).
 *
 * Held at run time, with `--semi-space-growth-factor=1` once the young generation has
 * grown to that size, not with a node flag: a V8 flag on the command line costs every
 * start-up ~10 ms (the built-in modules' code cache no longer matches), C1 in bench/.
 * The hold is asserted again every few records: V8 puts the growth factor back to 2
 * whenever an isolate is made, and the CLI makes one for its watchdog thread
 * (src/replay/watchdog.ts) when the first stage runs. Unasserted, the CLI's young
 * generation went on to 16 MiB semi-spaces, and `retrace test` took 7% longer.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'

/** Semi-space size replay holds the young generation at, in MiB. */
export const semiSpaceMiB = 4

/** Records between looks at the young generation. */
const lookEvery = 32

let holding = false
let untilLook = 0

/** Holds the young generation of this process at `semiSpaceMiB` (replay and test). */
export function keepYoungGenerationSmall(): void {
  holding = true
  untilLook = 0
  holdYoungGeneration()
}

/**
 * Called once a record: every `lookEvery` records, lets the young generation grow until
 * it reaches `semiSpaceMiB` and holds it there. Does nothing in a process that did not
 * ask for it (a vitest run embedding replay keeps its own heap settings).
 */
export function holdYoungGeneration(): void {
  if (!holding || untilLook-- > 0) return
  untilLook = lookEvery
  try {
    // new_space is both semi-spaces.
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size
    const grown = young === undefined || young >= 2 * semiSpaceMiB * 1024 * 1024
    setFlagsFromString(`--semi-space-growth-factor=${grown ? 1 : 2}`)
  } catch {
    // Only memory is at stake; replay is the same without it.
  }
}
