/**
 * A stage that throws a plain object in an Error's place (`throw {code, message}`, as some
 * HTTP and printer clients do): what `show` and `replay` say about it, and how a replay
 * matches it. Recorded by the SDK in a temp dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  importStage,
  parseReplayJson,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const labelSrc = (message: string): string => `export function label(order) {
  if (order.tray === 2) throw { code: 'E_PRINTER', message: ${JSON.stringify(message)}, request: { apiKey: 'sk-live-canary' } }
  if (order.tray === 3) throw { code: 'E_JAMMED' }
  return { printed: order.id }
}
`

let ws: Workspace
const ids: Record<'empty' | 'jammed', string> = { empty: '', jammed: '' }

beforeAll(async () => {
  ws = workspace('retrace-thrown-objects-')
  const label = await importStage(ws.write('stages/label.mjs', labelSrc('tray 2 is empty')), 'label')
  ws.write('local/label.mjs', labelSrc('tray 2 is out of paper'))
  ws.write('retrace.config.json', JSON.stringify({ stages: { label: './stages/label.mjs#label' } }))
  ws.write('changed.config.json', JSON.stringify({ stages: { label: './local/label.mjs#label' } }))
  await record(ws.path('labels.sqlite'), async (recorder) => {
    ids.empty = (await runChain(recorder, 'order:2', { id: 'o-2', tray: 2 }, [['label', label]])).recordId
    ids.jammed = (await runChain(recorder, 'order:3', { id: 'o-3', tray: 3 }, [['label', label]])).recordId
  })
})
afterAll(() => ws.remove())

describe('a stage that throws a plain object', () => {
  it('show gives its message and code, and nothing else of it', async () => {
    const [empty, jammed] = await Promise.all([
      runCli(['show', 'labels.sqlite', ids.empty], ws.dir),
      runCli(['show', 'labels.sqlite', ids.jammed], ws.dir),
    ])
    expect(empty.code).toBe(0)
    expect(empty.stdout).toContain('threw NonError [E_PRINTER]: tray 2 is empty')
    expect(empty.stdout).not.toContain('sk-live-canary')
    expect(jammed.stdout).toContain('[E_JAMMED]')
  })

  it('replay matches the same throw, and names the message that changed', async () => {
    const same = await runCli(['replay', 'labels.sqlite', '--json'], ws.dir)
    expect(same.code).toBe(0)
    expect(parseReplayJson(same).records.map((r) => r.verdict)).toEqual(['matched', 'matched'])
    const changed = await runCli(['replay', 'labels.sqlite', ids.empty, '-c', 'changed.config.json'], ws.dir)
    expect(changed.code).toBe(1)
    expect(changed.stdout).toContain('tray 2 is empty')
    expect(changed.stdout).toContain('tray 2 is out of paper')
    expect(changed.stdout).not.toContain('[object Object]')
  })
})
