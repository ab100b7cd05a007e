/**
 * JUnit XML stays well-formed whatever the keys, stage names, paths, error messages and
 * payloads hold, and says what they held: parsed back with fast-xml-parser, escaped
 * markup comes back as the original text.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { renderJunit, xmlText } from '../../src/render/junit.js'
import type { RecordResult, StageResult } from '../../src/replay/engine.js'
import type { TestRun } from '../../src/replay/regress.js'

// The XML 1.0 Char production.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const TAG =
  /<(?:\?xml(?:\s+[a-z]+="[^"<&]*")*\s*\?|\/[A-Za-z]+|[A-Za-z]+(?:\s+[A-Za-z]+="(?:[^"<&]|&(?:amp|lt|gt|quot|apos);)*")*\s*\/?)>/g

/** Problems that make `xml` not well-formed (fast-xml-parser's validator misses several). */
function wellFormedProblems(xml: string): string[] {
  const problems: string[] = []
  const v = XMLValidator.validate(xml)
  if (v !== true) problems.push(`validator: ${v.err.msg}`)
  const bad = NOT_XML_CHAR.exec(xml)
  if (bad) problems.push(`not an XML character: U+${bad[0].codePointAt(0)!.toString(16)} at ${bad.index}`)
  if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(xml)) problems.push('bare &')
  const text = xml.replace(TAG, '\u0000')
  if (text.includes('<')) problems.push('< outside a tag or inside an attribute')
  if (text.includes(']]>')) problems.push(']]> in text')
  return problems
}

interface Testcase {
  '@_name': string
  '@_classname': string
  failure?: { '@_message': string; '@_type': string; '#text': string }
  error?: { '@_message': string; '@_type': string; '#text': string }
}
interface Suite {
  '@_name': string
  '@_tests': string
  '@_failures': string
  '@_errors': string
  testcase?: Testcase[]
}
interface Doc {
  testsuites: {
    '@_name': string
    '@_tests': string
    '@_failures': string
    '@_errors': string
    testsuite?: Suite[]
  }
}

function parse(xml: string): Doc {
  return new XMLParser({
    ignoreAttributes: false,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    isArray: (name) => name === 'testsuite' || name === 'testcase',
  }).parse(xml) as Doc
}

function stage(name: string, status: StageResult['status'], extra: Partial<StageResult> = {}): StageResult {
  return { stage: name, status, changes: [], suppressed: [], error: null, attempts: [], ...extra }
}

function rec(
  recordId: string,
  key: string,
  verdict: RecordResult['verdict'],
  stages: StageResult[],
): RecordResult {
  const first = stages.find((s) => s.status === 'diverged' || s.status === 'error')
  return {
    recordId,
    key,
    verdict,
    firstDivergence: first ? { stage: first.stage, status: first.status as 'diverged' | 'error' } : null,
    stages,
    mode: 'cascade',
  }
}

function runOf(bundles: { path: string; results: RecordResult[] }[]): TestRun {
  const tally = (rs: RecordResult[]) => ({
    records: rs.length,
    matched: rs.filter((r) => r.verdict === 'matched').length,
    diverged: rs.filter((r) => r.verdict === 'diverged').length,
    errors: rs.filter((r) => r.verdict === 'error').length,
  })
  return {
    bundles: bundles.map((b) => ({
      path: b.path,
      summary: tally(b.results),
      failures: b.results.filter((r) => r.verdict !== 'matched'),
      updated: new Set<string>(),
      results: b.results,
    })),
    summary: tally(bundles.flatMap((b) => b.results)),
    stale: [],
    updated: 0,
  }
}

/** Every C0 control, DEL, C1, lone surrogates both ways round, non-characters, markup. */
const HOSTILE =
  Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') +
  '\u007f\u0085\u009b \ud800 x\udc00 \udfff\ud800 \ufffe\uffff ]]> <![CDATA[ x ]]> <a href="x">&amp;&#0;</a> \' "' +
  ' \u2028\u2029 😀 end'

describe('xmlText', () => {
  it('leaves nothing XML 1.0 forbids, for every UTF-16 code unit on its own', () => {
    const bad: string[] = []
    for (let c = 0; c <= 0xffff; c++) {
      const out = xmlText(`a${String.fromCharCode(c)}b`)
      if (NOT_XML_CHAR.test(out) || /[<>"']|&(?!(?:amp|lt|gt|quot|apos);)/.test(out)) bad.push(c.toString(16))
    }
    expect(bad).toEqual([])
  })

  it('keeps allowed characters as they are and escapes markup', () => {
    expect(xmlText('tab\there\nline\rcr é ß 漢字 😀 \u2028')).toBe('tab\there\nline\rcr é ß 漢字 😀 \u2028')
    expect(xmlText(`<a b="c">&'`)).toBe('&lt;a b=&quot;c&quot;&gt;&amp;&apos;')
    expect(xmlText(']]>')).toBe(']]&gt;')
  })

  it('shows forbidden characters as \\u escapes, so the report still says what was there', () => {
    expect(xmlText('\u0000\u001b\ud800\uffff')).toBe('\\u0000\\u001b\\ud800\\uffff')
    // A valid surrogate pair is one character, not two lone halves.
    expect(xmlText('\ud83d\ude00')).toBe('😀')
    expect(xmlText('\ude00\ud83d')).toBe('\\ude00\\ud83d')
  })
})

describe('renderJunit', () => {
  const diverged = (id: string, key: string) =>
    rec(id, key, 'diverged', [
      stage('parse', 'matched'),
      stage(`compute${HOSTILE.slice(0, 40)}`, 'diverged', {
        changes: [
          { path: `$.${HOSTILE.slice(20, 60)}`, kind: 'changed', recorded: HOSTILE, local: `${HOSTILE}!` },
        ],
      }),
      stage('store', 'error', {
        error: { name: 'Error', message: `db said: ${HOSTILE}`, code: 'E_STAGE_THREW' },
      }),
    ])
  const errored = (id: string, key: string) =>
    rec(id, key, 'error', [
      stage('fetch', 'error', { error: { name: 'Error', message: HOSTILE, code: 'E_NET' } }),
    ])
  const matched = (id: string, key: string) => rec(id, key, 'matched', [stage('parse', 'matched')])

  it('is well-formed for hostile keys, stage names, paths, error messages and payloads', () => {
    const run = runOf([
      {
        path: `/tmp/${HOSTILE}.sqlite`,
        results: [diverged('R1', HOSTILE), errored('R2', `k${HOSTILE}`), matched('R3', HOSTILE)],
      },
      { path: '/tmp/clean.sqlite', results: [matched('R4', 'sku:1')] },
    ])
    const xml = renderJunit(run)
    expect(wellFormedProblems(xml)).toEqual([])
    const doc = parse(xml)
    expect(doc.testsuites).toMatchObject({
      '@_name': 'retrace',
      '@_tests': '4',
      '@_failures': '1',
      '@_errors': '1',
    })
    const [hostile, clean] = doc.testsuites.testsuite!
    expect(hostile).toMatchObject({ '@_tests': '3', '@_failures': '1', '@_errors': '1' })
    expect(clean).toMatchObject({ '@_tests': '1', '@_failures': '0', '@_errors': '0' })
    expect(hostile!['@_name']).toContain(']]> <![CDATA[ x ]]>')
    expect(hostile!.testcase!.map((t) => t['@_name'].split(' ').at(-1))).toEqual(['R1', 'R2', 'R3'])
    const [d, e, m] = hostile!.testcase!
    expect(d!.failure).toMatchObject({ '@_type': 'diverged' })
    expect(d!.failure!['@_message']).toMatch(/^diverged at stage compute/)
    expect(d!.failure!['#text']).toContain('record R1')
    expect(d!.error).toBeUndefined()
    // A stage that threw is a JUnit error, not a failure.
    expect(e!.failure).toBeUndefined()
    expect(e!.error).toMatchObject({ '@_type': 'error' })
    expect(e!.error!['@_message']).toBe('error at stage fetch')
    expect(e!.error!['#text']).toContain('record R2')
    expect(m!.failure).toBeUndefined()
    expect(m!.error).toBeUndefined()
    expect(clean!.testcase).toEqual([{ '@_classname': '/tmp/clean.sqlite', '@_name': 'sku:1 R4' }])
  })

  it('names round-trip exactly when they hold only allowed characters, markup included', () => {
    const key = `sku:<1001> & "quoted" 'single' ]]> <![CDATA[ é 😀`
    const xml = renderJunit(runOf([{ path: `/tmp/a&b<c>.sqlite`, results: [diverged('R1', key)] }]))
    expect(wellFormedProblems(xml)).toEqual([])
    const suite = parse(xml).testsuites.testsuite![0]!
    expect(suite['@_name']).toBe('/tmp/a&b<c>.sqlite')
    expect(suite.testcase![0]!['@_name']).toBe(`${key} R1`)
    expect(suite.testcase![0]!['@_classname']).toBe('/tmp/a&b<c>.sqlite')
  })

  it('an empty run is a well-formed empty report', () => {
    const xml = renderJunit(runOf([]))
    expect(wellFormedProblems(xml)).toEqual([])
    expect(parse(xml).testsuites).toMatchObject({ '@_tests': '0', '@_failures': '0', '@_errors': '0' })
  })

  it('the well-formedness check itself catches what the validator lets through', () => {
    expect(wellFormedProblems('<a>\u0001</a>')).toEqual(['not an XML character: U+1 at 3'])
    expect(wellFormedProblems('<a>x]]>y</a>')).toEqual([']]> in text'])
    expect(wellFormedProblems('<a b="<"/>')).toContain('< outside a tag or inside an attribute')
    expect(wellFormedProblems('<a>&</a>').length).toBeGreaterThan(0)
    expect(wellFormedProblems('<a b="&lt;">&amp;&gt;</a>')).toEqual([])
  })
})
