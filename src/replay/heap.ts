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

/**
 * Node flags for replay worker processes: a young generation of two fixed 4 MiB
 * semi-spaces. At the 1 MiB V8 starts with (and keeps, above), replay scavenged four times
 * as often and page-faulted on freshly mapped memory (~4 faults a record, dear on a
 * virtual machine); at 4 MiB a worker replayed 3-12% faster across runs here (2 and 8 MiB
 * no better), and its memory is flat in the number of records from the start
 * (bench/worker-heap.ts). The CLI
 * itself goes without: heap flags on node's command line cost every start-up ~15 ms (the
 * built-in code cache no longer matches), which `--version` and `--help` would pay too.
 */
export const workerNodeFlags: readonly string[] = ['--min-semi-space-size=4', '--max-semi-space-size=4']
