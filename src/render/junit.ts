/**
 * JUnit XML for `retrace test --reporter junit`. Stays well-formed whatever bytes the
 * payloads hold: characters XML 1.0 forbids are replaced, markup is escaped.
 *
 * As JUnit counts them, a diverged record is a `<failure>` (the local build answered, with
 * another value) and a record whose stage threw, broke effect playback or was refused the
 * network is an `<error>` (it did not get as far as an answer); `failures` and `errors`
 * count them apart, as CI servers show them.
 */
import type { RecordResult } from '../replay/engine.js'
import type { TestRun } from '../replay/regress.js'
import { renderRecordResult } from './replay.js'
import { plain } from './theme.js'

// XML 1.0 allows tab, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and astral characters only.
const FORBIDDEN = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu

export function xmlText(text: string): string {
  return text
    .replace(FORBIDDEN, (ch) => `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

function testcase(r: RecordResult, suite: string, updated: boolean): string {
  const name = xmlText(`${r.key} ${r.recordId}`)
  if (r.verdict === 'matched') return `    <testcase classname="${xmlText(suite)}" name="${name}"/>`
  if (updated) {
    // Re-pinned by --update: it passes from now on; what changed goes along as output.
    const body = xmlText(
      `updated: re-pinned from the local build\n${renderRecordResult(r, plain, { width: 120, verbose: false, maxChanges: 20 })}`,
    )
    return `    <testcase classname="${xmlText(suite)}" name="${name}">\n      <system-out>${body}</system-out>\n    </testcase>`
  }
  const first = r.firstDivergence
  const message = xmlText(first ? `${first.status} at stage ${first.stage}` : r.verdict)
  const body = xmlText(renderRecordResult(r, plain, { width: 120, verbose: false, maxChanges: 20 }))
  const tag = r.verdict === 'error' ? 'error' : 'failure'
  return `    <testcase classname="${xmlText(suite)}" name="${name}">\n      <${tag} message="${message}" type="${r.verdict}">${body}</${tag}>\n    </testcase>`
}

export function renderJunit(run: TestRun): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>']
  lines.push(
    `<testsuites name="retrace" tests="${run.summary.records}" failures="${run.summary.diverged}" errors="${run.summary.errors}">`,
  )
  for (const b of run.bundles) {
    const s = b.summary
    lines.push(
      `  <testsuite name="${xmlText(b.path)}" tests="${s.records}" failures="${s.diverged}" errors="${s.errors}">`,
    )
    for (const r of b.results ?? b.failures) lines.push(testcase(r, b.path, b.updated.has(r.recordId)))
    lines.push('  </testsuite>')
  }
  lines.push('</testsuites>')
  return `${lines.join('\n')}\n`
}
