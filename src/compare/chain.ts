/**
 * A record's chain as invariants see it, `{ [stage]: { input, output, error, attempt } }`
 * from the last attempt of each stage: as production recorded it, or as replayed.
 */
import type { RecordChain } from '../bundle/types.js'
import type { Chain } from './invariants.js'
import { finalCaptures, readError, readPayload } from './scene.js'

export function recordedChain(chain: RecordChain): Chain {
  const out: Chain = {}
  for (const c of finalCaptures(chain.captures)) {
    const stage: Chain[string] = {
      input: readPayload(c.input),
      output: readPayload(c.output),
      attempt: c.attempt,
    }
    const err = readError(c.error)
    if (err !== undefined) stage.error = err
    Object.defineProperty(out, c.stage, {
      value: stage,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return out
}

/**
 * The chain the local build produced: each stage's local output, and as input the local
 * output of the stage before (cascade) or the recorded input (first stage, isolated).
 * Stages that did not run locally keep their recorded values.
 */
export function replayedChain(
  recorded: Chain,
  order: readonly string[],
  outputs: Readonly<Record<string, string>>,
  cascade: boolean,
): Chain {
  const out: Chain = {}
  let previous: unknown
  let previousLocal = false
  for (const stage of order) {
    const r = recorded[stage]
    if (r === undefined) continue
    const text = outputs[stage]
    const output = text === undefined ? r.output : readPayload(text)
    const input = cascade && previousLocal ? previous : r.input
    Object.defineProperty(out, stage, {
      value: { ...r, input, output },
      enumerable: true,
      writable: true,
      configurable: true,
    })
    previous = output
    previousLocal = text !== undefined
  }
  return out
}
