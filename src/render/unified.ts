/** `--format unified`: a text diff (jsdiff) of the pretty-printed payloads of each stage that differs. */
import { createTwoFilesPatch } from 'diff'
import type { RecordChain } from '../bundle/types.js'
import { readPayload } from '../compare/scene.js'
import type { RecordResult } from '../replay/engine.js'
import { pretty, visible } from './format.js'
import type { Theme } from './theme.js'

/** Longest jsdiff may work on one pair before it gives up (C5 in bench/). */
export const unifiedTimeoutMs = 50

export function unifiedDiff(recorded: string, local: string, label: string): string | undefined {
  const patch = createTwoFilesPatch(
    `recorded/${label}`,
    `local/${label}`,
    recorded,
    local,
    undefined,
    undefined,
    {
      context: 3,
      timeout: unifiedTimeoutMs,
    },
  )
  return patch === undefined ? undefined : patch
}

export function renderUnified(result: RecordResult, chain: RecordChain, t: Theme): string {
  const out: string[] = []
  for (const s of result.stages) {
    if (s.status !== 'diverged' && s.status !== 'inherited') continue
    const capture = [...chain.captures].reverse().find((c) => c.stage === s.stage)
    const expectation = chain.expectations.find((x) => x.stage === s.stage)
    const recordedText = expectation?.output ?? capture?.output ?? null
    const localText = result.outputs?.[s.stage]
    if (recordedText === null || localText === undefined) continue
    const a = pretty(readPayload(recordedText))
    const b = pretty(readPayload(localText))
    const patch = unifiedDiff(a, b, s.stage)
    if (patch === undefined) {
      out.push(
        t.warn(
          `${s.stage}: payloads too different to diff within ${unifiedTimeoutMs} ms; see the structural changes above`,
        ),
      )
      continue
    }
    for (const line of visible(patch).split('\n')) {
      if (line.startsWith('+') && !line.startsWith('+++')) out.push(t.added(line))
      else if (line.startsWith('-') && !line.startsWith('---')) out.push(t.removed(line))
      else if (line.startsWith('@@')) out.push(t.info(line))
      else out.push(line)
    }
  }
  return out.join('\n')
}
