/** renderHtmlReport as a pure function: escaping, the data block, the policy, the words. */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Scene, SceneCapture } from '../../src/compare/scene.js'
import {
  escapeHtml,
  jsonForScript,
  type ReportModel,
  renderHtmlReport,
  reportCsp,
} from '../../src/render/html.js'
import type { StageResult } from '../../src/replay/engine.js'

const SCRIPT = '</script><script>window.__pwned=1</script>'
const IMG = '<img src=x onerror="window.__pwned=1">'
const ATTR = '" onmouseover="window.__pwned=1'
const COMMENT = '<!-- <script>'
const SEPARATORS = 'line\u2028para\u2029end'
const BIDI = 'abc\u202edcba'

function capture(stage: string, seq: number, over: Partial<SceneCapture> = {}): SceneCapture {
  return {
    seq,
    stage,
    attempt: 1,
    status: 'ok',
    startedAt: 1_000 + seq * 10,
    durationMs: 5,
    build: 'b1',
    host: 'h1',
    pid: 1,
    input: { note: SCRIPT, html: IMG },
    output: { available: 87, attr: ATTR, comment: COMMENT, sep: SEPARATORS },
    effects: [{ seq: 0, kind: 'effect', name: IMG, args: { q: SCRIPT }, result: ATTR }],
    transform: null,
    final: true,
    ...over,
  }
}

function stageResult(stage: string, over: Partial<StageResult> = {}): StageResult {
  return { stage, status: 'matched', changes: [], suppressed: [], error: null, attempts: [], ...over }
}

function hostileModel(): ReportModel {
  const scene: Scene = {
    recordId: `rec-${SCRIPT}`,
    key: `${SCRIPT}${BIDI}`,
    status: 'error',
    error: { name: 'Error', message: IMG },
    startedAt: 1_000,
    endedAt: 1_100,
    build: ATTR,
    host: IMG,
    pid: 1,
    source: 'bundle.sqlite',
    stages: ['parse', 'compute'],
    captures: [
      capture('parse', 0),
      capture('compute', 1, {
        status: 'error',
        error: { name: 'TypeError', message: SCRIPT, stack: `at ${IMG}` },
        final: false,
      }),
      capture('compute', 2, { attempt: 2 }),
    ],
    loose: [],
    seams: [
      {
        from: 'parse',
        to: 'compute',
        matches: false,
        diff: {
          changes: [{ path: `$.${IMG}`, kind: 'changed', recorded: SCRIPT, local: ATTR }],
          suppressed: [],
          truncated: null,
        },
      },
    ],
    retries: 1,
  }
  return {
    scene,
    bundle: `dir/${IMG}.sqlite`,
    config: 'retrace.config.mjs',
    replay: {
      recordId: scene.recordId,
      key: scene.key,
      verdict: 'diverged',
      firstDivergence: { stage: 'compute', status: 'diverged' },
      mode: 'cascade',
      stages: [
        stageResult('parse'),
        stageResult('compute', {
          status: 'diverged',
          changes: [{ path: '$.available', kind: 'changed', recorded: 87, local: 4 }],
          attempts: [
            {
              attempt: 2,
              status: 'diverged',
              oracle: 'recorded',
              changes: [{ path: '$.available', kind: 'changed', recorded: 87, local: 4 }],
              suppressed: [],
              error: null,
              unusedEffects: [{ seq: 3, kind: 'effect', name: SCRIPT }],
            },
          ],
          local: { available: 4, note: SCRIPT },
        }),
      ],
    },
    invariants: {
      recorded: [
        { name: SCRIPT, status: 'violated', message: `left ${IMG}`, stages: ['compute'] },
        { name: 'never-negative', status: 'ok', stages: ['compute'] },
      ],
      local: [
        { name: SCRIPT, status: 'ok', stages: ['compute'] },
        {
          name: 'never-negative',
          status: 'violated',
          message: 'compute.output.available >= 0 is false',
          stages: ['compute'],
        },
      ],
    },
    generatedAt: Date.parse('2026-01-10T12:00:00.000Z'),
    version: '0.1.0',
  }
}

const DATA_OPEN = '<script type="application/json" id="retrace-data">'

function dataBlock(page: string): string {
  const start = page.indexOf(DATA_OPEN)
  expect(start).toBeGreaterThan(0)
  const from = start + DATA_OPEN.length
  return page.slice(from, page.indexOf('</script>', from))
}

describe('escapeHtml', () => {
  it('escapes markup and quotes and makes control and bidi characters visible', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;',
    )
    expect(escapeHtml(`esc\x1b[31m ${BIDI}`)).toBe('esc\\x1b[31m abc\\u202edcba')
  })
})

describe('jsonForScript', () => {
  it('leaves nothing that ends the block, opens a comment or breaks a line, and still parses', () => {
    const value = { s: SCRIPT, c: COMMENT, sep: SEPARATORS, amp: 'a&b' }
    const text = jsonForScript(value)
    expect(text).not.toMatch(/[<>&\u2028\u2029]/)
    expect(text).toContain('\\u003c/script\\u003e')
    expect(JSON.parse(text)).toEqual(value)
  })
})

describe('renderHtmlReport', () => {
  const model = hostileModel()
  const page = renderHtmlReport(model)

  it('has exactly its own two script elements and no markup from the data', () => {
    expect(page.match(/<script\b/gi)).toHaveLength(2)
    expect(page).not.toMatch(/<img\b/i)
    // No tag anywhere carries an event-handler attribute.
    expect(page).not.toMatch(/<[a-z][^>]*\son[a-z]+\s*=/i)
    expect(page).not.toContain('window.__pwned=1</script>')
    expect(page).not.toMatch(/[\u2028\u2029\u202e]/)
  })

  it('shows the hostile strings as escaped text', () => {
    expect(page).toContain('&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;')
    expect(page).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;')
    expect(page).toContain('abc\\u202edcba')
  })

  it('embeds the whole model as a JSON data block that parses back to it', () => {
    const block = dataBlock(page)
    expect(block).not.toMatch(/[<>&]/)
    expect(JSON.parse(block)).toEqual(JSON.parse(JSON.stringify(model)))
  })

  it('forbids every fetch and allows only its own script, by hash', () => {
    expect(reportCsp).toContain("default-src 'none'")
    expect(reportCsp).toContain('img-src data:')
    expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="${reportCsp}">`)
    const inline = /<script>([\s\S]*?)<\/script>/.exec(page)?.[1] ?? ''
    const hash = createHash('sha256').update(inline).digest('base64')
    expect(reportCsp).toContain(`script-src 'sha256-${hash}'`)
    expect(page).not.toMatch(/https?:\/\//)
    for (const m of page.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(m[1]).toMatch(/^(#|data:)/)
  })

  it('names the first divergence and labels a violation production already had', () => {
    expect(page).toContain('compute diverged: production recorded 87, the local build gives 4')
    expect(page).toContain('production data bug')
    expect(page).toContain('the local build fixes it')
    expect(page).toContain('broken by the local build')
    expect(page).toContain('attempt 2 (retry)')
    expect(page).toContain('changed in transit')
  })

  it('says when the record was not replayed', () => {
    const { replay: _r, invariants: _i, config: _c, ...bare } = hostileModel()
    const text = renderHtmlReport(bare)
    expect(text).toContain('Recorded scene only: this record was not replayed')
    expect(text).not.toContain('Differences from production')
  })
})

describe('typed values and long strings in the report', () => {
  const typedScene = (): Scene => ({
    ...hostileModel().scene,
    recordId: 'rec-1',
    key: 'k',
    captures: [
      capture('price', 0, {
        input: { orderId: 'o-6' },
        output: {
          subtotalCents: { $t: 'bigint', v: '5102' },
          receivedAt: { $t: 'date', v: '2026-12-02T00:07:44.640Z' },
          tags: { $t: 'set', v: ['web'] },
          blob: { $t: 'undef' },
        },
        effects: [],
      }),
    ],
    seams: [],
  })

  it('expanded payloads show 5102n, Date(...), Set [...] and undefined, never a tag', () => {
    const page = renderHtmlReport({
      scene: typedScene(),
      bundle: 'b.sqlite',
      generatedAt: 0,
      version: '0.1.0',
    })
    const shown = page.slice(0, page.indexOf(DATA_OPEN))
    expect(shown).toContain('&quot;subtotalCents&quot;: 5102n')
    expect(shown).toContain('&quot;receivedAt&quot;: Date(2026-12-02T00:07:44.640Z)')
    expect(shown).toContain('&quot;tags&quot;: Set [')
    expect(shown).toContain('&quot;blob&quot;: undefined')
    expect(shown).not.toContain('$t')
  })

  it('a long string changed by one character is shown around the change, with where it is', () => {
    const big = 'x'.repeat(100_000)
    const model = hostileModel()
    model.replay!.stages[1] = stageResult('compute', {
      status: 'diverged',
      changes: [{ path: '$.blob', kind: 'changed', recorded: big, local: `${big.slice(0, -1)}y` }],
    })
    const page = renderHtmlReport(model)
    expect(page).toContain('at character 100,000 of 100,000')
    expect(page).toMatch(/<td class="local"><code>&quot;…x+y&quot;<\/code><\/td>/)
    // The page shows the window; the whole value is only in the JSON data block.
    expect(page.slice(0, page.indexOf(DATA_OPEN)).length).toBeLessThan(100_000)
  })
})
