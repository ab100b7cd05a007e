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
 * output of the stage that handed it its input in production (cascade), else the recorded
 * input (the first stage, a stage nothing handed its input, isolated mode). Stages that did
 * not run locally keep their recorded values.
 */
export function replayedChain(
  recorded: Chain,
  feeders: ReadonlyMap<string, string | undefined>,
  outputs: Readonly<Record<string, string>>,
  cascade: boolean,
): Chain {
  const out: Chain = {}
  const local = new Map<string, unknown>()
  for (const [stage, feeder] of feeders) {
    const r = recorded[stage]
    if (r === undefined) continue
    const text = outputs[stage]
    const output = text === undefined ? r.output : readPayload(text)
    const input = cascade && feeder !== undefined && local.has(feeder) ? local.get(feeder) : r.input
    Object.defineProperty(out, stage, {
      value: { ...r, input, output },
      enumerable: true,
      writable: true,
      configurable: true,
    })
    if (text !== undefined) local.set(stage, output)
  }
  return out
}
