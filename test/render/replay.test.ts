/** The human replay report: what it says about a record's invariants and first divergence. */
import { describe, expect, it } from 'vitest'
import { displayWidth } from '../../src/render/format.js'
import { renderRecordResult } from '../../src/render/replay.js'
import { plain } from '../../src/render/theme.js'
import type { InvariantCheck, RecordResult, StageResult } from '../../src/replay/engine.js'

const stage = (name: string, status: StageResult['status']): StageResult => ({
  stage: name,
  status,
  changes: [],
  suppressed: [],
  error: null,
  attempts: [],
})

function result(invariants: InvariantCheck[], diverged: boolean): RecordResult {
  return {
    recordId: 'R1',
    key: 'sku:1',
    verdict: diverged ? 'diverged' : 'matched',
    firstDivergence: diverged ? { stage: 'store', status: 'diverged' } : null,
    stages: [stage('compute', 'matched'), stage('store', 'matched')],
    mode: 'cascade',
    invariants,
  }
}

const render = (r: RecordResult): string =>
  renderRecordResult(r, plain, { width: 120, verbose: false, maxChanges: 8 })

describe('renderRecordResult', () => {
  it('a record that diverges only by an invariant says which, not "(matched)"', () => {
    const text = render(
      result(
        [
          {
            name: 'never-negative',
            recorded: 'ok',
            local: 'violated',
            productionBug: false,
            stage: 'store',
            message: 'store.output.available >= 0 is false: left -1, right 0',
          },
        ],
        true,
      ),
    )
    expect(text).toContain('invariant broken by the local build: never-negative')
    expect(text).toContain(
      'first divergence: store (diverged): the local build breaks invariant never-negative, which production passed',
    )
    expect(text).not.toContain('(matched)')
  })

  it('a check that cannot be evaluated is said to be so, not blamed on the local build', () => {
    const text = render(
      result(
        [
          {
            name: 'uses-frobnicate',
            recorded: 'error',
            local: 'error',
            productionBug: false,
            stage: 'store',
            message: 'unknown function frobnicate',
          },
        ],
        false,
      ),
    )
    expect(text).toContain('invariant could not be checked: uses-frobnicate unknown function frobnicate')
    expect(text).not.toContain('broken by the local build')
  })
})

describe('renderRecordResult: what changed, said plainly', () => {
  const diverged = (s: StageResult): RecordResult => ({
    recordId: 'R1',
    key: 'sku:1',
    verdict: s.status === 'error' ? 'error' : 'diverged',
    firstDivergence: { stage: s.stage, status: s.status === 'error' ? 'error' : 'diverged' },
    stages: [s],
    mode: 'cascade',
  })

  it('a long string changed by one character shows the characters around it, and where it is', () => {
    const big = 'x'.repeat(5 * 1024 * 1024)
    const text = render(
      diverged({
        ...stage('parse', 'diverged'),
        changes: [{ path: '$.blob', kind: 'changed', recorded: big, local: `${big.slice(0, -1)}y` }],
      }),
    )
    const [line] = text.split('\n').filter((l) => l.includes('~ $.blob'))
    expect(line).toMatch(/~ \$\.blob "…x+" → "…x+y" \(at character 5,242,880 of 5,242,880\)$/)
    expect(text).toMatch(
      /first divergence: parse \(diverged\): production recorded "…x+" at \$\.blob, the local build gives "…x+y" \(at character 5,242,880 of 5,242,880\)/,
    )
  })

  it('a stage whose local output is undefined says what production recorded and that it is now undefined', () => {
    const text = render(
      diverged({
        ...stage('discount', 'diverged'),
        changes: [{ path: '$', kind: 'changed', recorded: { total: 41.96 }, local: { $t: 'undef' } }],
      }),
    )
    expect(text).toContain('~ $ {"total":41.96} → undefined')
    expect(text).toContain(
      'first divergence: discount (diverged): production recorded {"total":41.96} at $, the local build gives undefined',
    )
  })

  it('names the oracle of the call that differs: production for an earlier call, when only the last is pinned', () => {
    const change = { path: '$.c', kind: 'changed' as const, recorded: 100, local: 200 }
    const attempt = (n: number, status: StageResult['status'], oracle: 'recorded' | 'expected') => ({
      attempt: n,
      status,
      oracle,
      changes: status === 'matched' ? [] : [change],
      suppressed: [],
      error: null,
      unusedEffects: [],
    })
    const text = render(
      diverged({
        ...stage('each', 'diverged'),
        changes: [change],
        attempts: [attempt(1, 'diverged', 'recorded'), attempt(2, 'matched', 'expected')],
      }),
    )
    expect(text).toContain(
      'first divergence: each (diverged): production recorded 100 at $.c, the local build gives 200',
    )
  })

  it('a {} production recorded where the local build gives text says an older recorder may have written it', () => {
    const hint =
      'production recorded {} where the local build gives text: a RegExp or URLSearchParams recorded by an older recorder is stored as {}; record again, or pin the local output with accept'
    const text = render(
      diverged({
        ...stage('route', 'diverged'),
        changes: [
          { path: '$.n', kind: 'changed', recorded: 1, local: 2 },
          { path: '$.pattern', kind: 'changed', recorded: {}, local: '/ab+c/i' },
        ],
      }),
    )
    expect(text.split('\n')).toContain(`  ${hint}`)
    // An empty object become another object, or text where something else was, is not that.
    const other = render(
      diverged({
        ...stage('route', 'diverged'),
        changes: [
          { path: '$.a', kind: 'changed', recorded: {}, local: { b: 1 } },
          { path: '$.c', kind: 'changed', recorded: [], local: 'x' },
        ],
      }),
    )
    expect(other).not.toContain(hint)
  })

  it('a field the local build adds or leaves out is explained too', () => {
    const added = render(
      diverged({
        ...stage('price', 'diverged'),
        changes: [{ path: '$.tags[2]', kind: 'added', local: 'new' }],
      }),
    )
    expect(added).toContain(
      'first divergence: price (diverged): the local build adds "new" at $.tags[2], an item production does not have',
    )
    const removed = render(
      diverged({
        ...stage('price', 'diverged'),
        changes: [
          { path: '$.receivedAt', kind: 'removed', recorded: { $t: 'date', v: '2026-01-01T00:00:00.000Z' } },
        ],
      }),
    )
    expect(removed).toContain(
      'first divergence: price (diverged): production recorded Date(2026-01-01T00:00:00.000Z) at $.receivedAt, the local build leaves it out',
    )
  })

  it('an error is named by its class unless it is a plain Error', () => {
    const text = render(
      diverged({
        ...stage('fx', 'error'),
        error: { name: 'TypeError', message: 'boom', code: 'E_STAGE_THREW' },
      }),
    )
    expect(text).toContain('TypeError: boom [E_STAGE_THREW]')
    expect(text).toContain('first divergence: fx (error): TypeError: boom')
    const plainError = render(
      diverged({ ...stage('fx', 'error'), error: { name: 'Error', message: 'boom', code: 'E_STAGE_THREW' } }),
    )
    expect(plainError).toContain('       boom [E_STAGE_THREW]')
  })

  it('lines stage names up by the columns they take, wide characters counted twice', () => {
    const text = render({
      ...diverged(stage('日本語', 'diverged')),
      stages: [stage('日本語', 'diverged'), stage('parse', 'matched')],
    })
    const rows = text.split('\n').filter((l) => /^ {3}\d /.test(l))
    // The column (not the character index) where the status starts.
    const column = (line: string, mark: string): number => displayWidth(line.slice(0, line.indexOf(mark)))
    expect(rows).toHaveLength(2)
    expect(column(rows[0]!, '✗')).toBe(column(rows[1]!, '✓'))
  })
})

describe('renderRecordResult: a diff cut short', () => {
  const cutShort = (changes: number): RecordResult => {
    const s: StageResult = {
      ...stage('store', 'diverged'),
      changes: Array.from({ length: changes }, (_, i) => ({
        path: `$.items[${i}]`,
        kind: 'changed' as const,
        recorded: i,
        local: -i - 1,
      })),
      attempts: [
        {
          attempt: 1,
          status: 'diverged',
          oracle: 'recorded',
          changes: [],
          suppressed: [],
          error: null,
          unusedEffects: [],
          truncated: true,
        },
      ],
    }
    return { ...result([], true), stages: [stage('compute', 'matched'), s] }
  }

  it('says it stopped, and does not promise all changes in --json', () => {
    const text = render(cutShort(500))
    expect(text).toContain('… 492 more changes (--json for those)')
    expect(text).toContain('diff cut short after 500 changes: there are more')
    expect(text).not.toContain('--json for all')
  })

  it('says why a stage diverged when the diff ran out of time before placing a difference', () => {
    expect(render(cutShort(0))).toContain(
      'diff cut short (out of time) before it placed a difference: the outputs differ as recorded text',
    )
  })
})

describe('renderRecordResult: a stage that threw on one side', () => {
  const thrown = { $error: { name: 'RangeError', message: 'amount must be positive', code: 'E_AMOUNT' } }
  const diverged = (recorded: unknown, local: unknown): string => {
    const s: StageResult = {
      ...stage('check', 'diverged'),
      changes: [{ path: '$', kind: 'changed', recorded, local }],
    }
    return render({
      recordId: 'R1',
      key: 'tx:1',
      verdict: 'diverged',
      firstDivergence: { stage: 'check', status: 'diverged' },
      stages: [s],
      mode: 'cascade',
    })
  }

  it('says what production threw, not the typed JSON that holds it', () => {
    const text = diverged(thrown, { ok: true })
    expect(text).toContain('~ $ threw RangeError [E_AMOUNT]: amount must be positive → {"ok":true}')
    expect(text).toContain(
      'first divergence: check (diverged): production threw RangeError [E_AMOUNT]: amount must be positive, the local build gives {"ok":true}',
    )
    expect(text).not.toContain('$error')
  })

  it('and what the local build threw where production returned', () => {
    const text = diverged({ ok: true }, thrown)
    expect(text).toContain('~ $ {"ok":true} → threw RangeError [E_AMOUNT]: amount must be positive')
    expect(text).toContain(
      'production recorded {"ok":true} at $, the local build threw RangeError [E_AMOUNT]: amount must be positive',
    )
  })
})
