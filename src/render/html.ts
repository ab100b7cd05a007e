/**
 * The scene of one record as one self-contained HTML page (`retrace report`): the thing
 * attached to a bug report for people who will not run a CLI.
 *
 * Pure: a model in, a string out. Nothing in the page reaches the network: CSS and the one
 * small script are inline, and a Content-Security-Policy forbids every fetch. Every value
 * from the bundle is untrusted, so the page is rendered here with each interpolation
 * HTML-escaped by the `html` template tag (control and bidi characters made visible
 * first), and the model rides along as a JSON data block with `<`, `>`, `&`, U+2028 and
 * U+2029 escaped, so no payload can close the block or start markup. The page reads the
 * same with scripts off; the script only adds "expand all / collapse all".
 */
import { createHash } from 'node:crypto'
import type { Change, DiffResult, Suppressed } from '../compare/diff.js'
import type { InvariantResult } from '../compare/invariants.js'
import type { Scene, SceneCapture, SceneEffect, SceneError } from '../compare/scene.js'
import type { AttemptResult, RecordResult, StageResult, StageStatus } from '../replay/engine.js'
import {
  changedPair,
  compact,
  formatDuration,
  formatTime,
  pretty,
  safeJson,
  visible,
  visibleLine,
} from './format.js'

/** Everything the page shows. The command gathers it; nothing here reads a file or a clock. */
export interface ReportModel {
  scene: Scene
  /** The bundle as the user named it. */
  bundle: string
  /** The config the record was replayed with; absent when none was found. */
  config?: string
  /** The record through the local build (cascade); absent when it was not replayed. */
  replay?: Omit<RecordResult, 'outputs'>
  /** The config's invariants on the recorded chain, and on the replayed one. */
  invariants?: { recorded: InvariantResult[]; local?: InvariantResult[] }
  /** When the report was made (ms since the epoch) and by which retrace. */
  generatedAt: number
  version: string
}

/** Longest pretty-printed payload shown in full; beyond it the page says what it left out. */
const maxPayloadChars = 200_000
/** Most change rows in one table. */
const maxRows = 200

// ---------------------------------------------------------------------------------------
// Escaping

/** Markup that is already safe; only the `html` tag and `raw` make one. */
class Html {
  constructor(readonly text: string) {}
}

const entities: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text as HTML text or attribute value: control and bidi characters visible, markup escaped. */
export function escapeHtml(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => entities[c]!)
}

function fragment(v: unknown): string {
  if (v instanceof Html) return v.text
  if (Array.isArray(v)) return v.map(fragment).join('')
  if (v === undefined || v === null || v === false) return ''
  return escapeHtml(String(v))
}

/** Template tag: every interpolated value is escaped unless it is already `Html`. */
function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!
  values.forEach((v, i) => {
    out += fragment(v) + strings[i + 1]!
  })
  return new Html(out)
}

/** Trusted markup written in this file (never data). */
function raw(text: string): Html {
  return new Html(text)
}

/**
 * JSON for a `<script type="application/json">` block: nothing in it can end the element
 * (`</script>`), open a comment (`<!--`) or break a line in old parsers.
 */
export function jsonForScript(value: unknown): string {
  return safeJson(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

// ---------------------------------------------------------------------------------------
// Words

type Tone = 'ok' | 'bad' | 'warn' | 'dim' | 'info'

function badge(text: string, tone: Tone): Html {
  return html`<span class="badge ${tone}">${text}</span>`
}

const stageTone: Record<StageStatus, Tone> = {
  matched: 'ok',
  diverged: 'bad',
  inherited: 'warn',
  error: 'bad',
  skipped: 'dim',
}

function errorText(e: SceneError | { name?: string; message: string; code?: string | number }): string {
  const code = e.code !== undefined ? ` [${String(e.code)}]` : ''
  return `${e.name ?? 'Error'}${code}: ${e.message}`
}

/** One value on one line, typed-JSON tags shown as what they stand for. */
function short(value: unknown, max = 120): string {
  return compact(value, max)
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

function isError(v: unknown): v is { name?: unknown; message: unknown } {
  return typeof v === 'object' && v !== null && 'message' in v
}

/** The first difference of a stage, said the way a person would. */
function describeChange(c: Change): string {
  if (c.path === '$error' && isError(c.recorded) && isError(c.local)) {
    return `production threw ${String(c.recorded.message)}, the local build throws ${String(c.local.message)}`
  }
  const recordedError = (c.recorded as { $error?: unknown } | undefined)?.$error
  if (c.path === '$' && isError(recordedError)) {
    return `production threw ${String(recordedError.message)}, the local build returns ${short(c.local, 60)}`
  }
  const at = c.path === '$' ? '' : ` at ${c.path}`
  switch (c.kind) {
    case 'added':
      return `the local build adds ${short(c.local, 60)}${at}, which production did not have`
    case 'removed':
      return `production recorded ${short(c.recorded, 60)}${at}, the local build leaves it out`
    default: {
      const p = changedPair(c.recorded, c.local, 60)
      return `production recorded ${p.recorded}, the local build gives ${p.local}${p.at === undefined ? '' : ` (${p.at})`}`
    }
  }
}

interface Verdict {
  tone: Tone
  title: string
  lines: string[]
}

function verdictOf(m: ReportModel): Verdict {
  const r = m.replay
  const lines: string[] = []
  let tone: Tone = 'info'
  let title: string
  if (r === undefined) {
    title = 'Recorded scene only: this record was not replayed'
    lines.push('No retrace config was found; pass --config to replay it through the local build.')
  } else if (r.firstDivergence === null) {
    tone = 'ok'
    title = 'The local build reproduces production: every stage matches the recording'
  } else {
    tone = 'bad'
    const s = r.stages.find((x) => x.stage === r.firstDivergence!.stage)
    const first = s?.changes[0]
    if (s === undefined) title = `${r.firstDivergence.stage} ${r.firstDivergence.status}`
    else if (s.status === 'error')
      title = `${s.stage} failed under replay: ${s.error === null ? 'error' : errorText(s.error)}`
    else if (first !== undefined) title = `${s.stage} diverged: ${describeChange(first)}`
    else title = `${s.stage} diverged`
    if (s !== undefined && first !== undefined && s.status !== 'error') {
      const more = s.changes.length > 1 ? ` (and ${plural(s.changes.length - 1, 'more difference')})` : ''
      lines.push(`First divergence at ${first.path} in ${s.stage}${more}.`)
    }
    const inherited = r.stages.filter((x) => x.status === 'inherited').map((x) => x.stage)
    if (inherited.length > 0)
      lines.push(
        `${inherited.join(', ')} ${inherited.length === 1 ? 'differs' : 'differ'} only because ${r.firstDivergence.stage} did (inherited).`,
      )
  }
  if (m.scene.error !== undefined) {
    tone = 'bad'
    lines.push(`The record failed in production: ${errorText(m.scene.error)}`)
  }
  for (const inv of m.invariants?.recorded ?? []) {
    if (inv.status !== 'violated') continue
    tone = 'bad'
    const local = m.invariants?.local?.find((x) => x.name === inv.name)
    const now =
      local === undefined
        ? ''
        : local.status === 'ok'
          ? ' The local build satisfies it.'
          : local.status === 'violated'
            ? ' The local build still violates it.'
            : ''
    lines.push(
      `Production data bug: invariant ${inv.name} was already violated in production: ${inv.message ?? ''}.${now}`,
    )
  }
  for (const inv of m.invariants?.local ?? []) {
    const before = m.invariants?.recorded.find((x) => x.name === inv.name)
    if (inv.status === 'violated' && before?.status !== 'violated') {
      tone = 'bad'
      lines.push(`The local build breaks invariant ${inv.name}: ${inv.message ?? ''}`)
    }
  }
  return { tone, title, lines }
}

// ---------------------------------------------------------------------------------------
// Pieces

function payloadText(value: unknown): { text: string; cut: number } {
  const text = pretty(value)
  if (text.length <= maxPayloadChars) return { text, cut: 0 }
  return { text: text.slice(0, maxPayloadChars), cut: text.length - maxPayloadChars }
}

function payloadBlock(label: string, value: unknown, open = false): Html {
  const { text, cut } = payloadText(value)
  return html`<details class="payload"${raw(open ? ' open' : '')}><summary><span class="label">${label}</span> <code class="preview">${short(value, 140)}</code></summary><pre>${text}</pre>${cut > 0 ? html`<p class="note">… ${cut} more characters not shown (the full value is in the JSON data block)</p>` : ''}</details>`
}

function valueCell(text: string | undefined, cls: string): Html {
  return html`<td class="${cls}"><code>${text ?? '—'}</code></td>`
}

function changeRow(c: Change, why?: Html): Html {
  const p = c.kind === 'changed' ? changedPair(c.recorded, c.local, 400) : undefined
  const recorded = c.kind === 'added' ? undefined : (p?.recorded ?? short(c.recorded, 400))
  const local = c.kind === 'removed' ? undefined : (p?.local ?? short(c.local, 400))
  const at = p?.at === undefined ? '' : html`<div class="note">${p.at}</div>`
  return html`<tr><td class="path"><code>${c.path}</code>${at}</td>${valueCell(recorded, 'recorded')}${valueCell(local, 'local')}<td class="why">${why ?? c.kind}</td></tr>`
}

function changeRows(changes: readonly Change[], why?: Html): Html {
  const rows = changes.slice(0, maxRows).map((c) => changeRow(c, why))
  const more =
    changes.length > maxRows
      ? html`<tr><td colspan="4" class="note">… ${changes.length - maxRows} more differences (in the JSON data block)</td></tr>`
      : ''
  return html`${rows}${more}`
}

const suppressedWhy: Record<Suppressed['reason'], string> = {
  ignored: 'noise: ignored by the config',
  'within-tolerance': 'within tolerance',
  redacted: 'redacted at capture',
}

function suppressedRow(s: Suppressed): Html {
  const p = changedPair(s.recorded, s.local, 200)
  const at = p.at === undefined ? '' : html`<div class="note">${p.at}</div>`
  return html`<tr class="suppressed"><td class="path"><code>${s.path}</code>${at}</td><td><code>${s.recorded === undefined ? '—' : p.recorded}</code></td><td><code>${s.local === undefined ? '—' : p.local}</code></td><td class="why">${suppressedWhy[s.reason]}</td></tr>`
}

function suppressedRows(list: readonly Suppressed[]): Html {
  return html`${list.slice(0, maxRows).map((s) => suppressedRow(s))}`
}

function diffTable(
  changes: readonly Change[],
  suppressed: readonly Suppressed[],
  heads: [string, string],
  why?: Html,
): Html {
  return html`<table class="diff"><thead><tr><th>path</th><th>${heads[0]}</th><th>${heads[1]}</th><th>why</th></tr></thead><tbody>${changeRows(changes, why)}${suppressedRows(suppressed)}</tbody></table>`
}

function plainDiff(d: DiffResult, heads: [string, string]): Html {
  const cut = d.truncated
    ? html`<p class="note">Diff cut short (${d.truncated.reason}) after ${d.truncated.compared} values.</p>`
    : ''
  return html`${diffTable(d.changes, d.suppressed, heads)}${cut}`
}

function effectRow(e: SceneEffect): Html {
  const call =
    e.kind === 'now' || e.kind === 'random'
      ? html`<code>${e.kind}()</code>`
      : html`<code><b>${e.name}</b>(${e.args === undefined ? '' : short(e.args, 300)})</code>`
  const result =
    e.error !== undefined
      ? html`<td class="bad-text">✗ ${errorText(e.error)}</td>`
      : html`<td><code>${e.result === undefined ? 'undefined' : short(e.result, 300)}</code></td>`
  return html`<tr><td class="num">#${e.seq}</td><td class="kind">${e.kind}</td><td>${call}</td>${result}</tr>`
}

function effectsTable(effects: readonly SceneEffect[]): Html {
  if (effects.length === 0) return html`<p class="note">No effects: no clock, random or I/O through ctx.</p>`
  return html`<table class="effects"><thead><tr><th>#</th><th>kind</th><th>call</th><th>result</th></tr></thead><tbody>${effects.map(effectRow)}</tbody></table>`
}

function attemptOf(r: RecordResult | Omit<RecordResult, 'outputs'> | undefined, c: SceneCapture) {
  const stage = r?.stages.find((s) => s.stage === c.stage)
  return { stage, attempt: stage?.attempts.find((a) => a.attempt === c.attempt) }
}

function replayBadge(a: AttemptResult | undefined): Html {
  return a === undefined ? html`<span class="dim">—</span>` : badge(a.status, stageTone[a.status])
}

// ---------------------------------------------------------------------------------------
// Sections

function header(m: ReportModel): Html {
  const s = m.scene
  const fields: [string, string][] = [
    ['key', s.key],
    ['record', s.recordId],
    ['status', s.status],
    ['started', formatTime(s.startedAt)],
    ['build', s.build ?? '-'],
    ['host', `${s.host ?? '-'}${s.pid !== null ? ` (pid ${s.pid})` : ''}`],
    ['bundle', m.bundle],
    ['config', m.config ?? 'none (not replayed)'],
  ]
  return html`<header><h1>retrace report <span class="key">${s.key}</span></h1><dl class="meta">${fields.map(
    ([k, v]) =>
      html`<div><dt>${k}</dt><dd>${k === 'status' ? badge(v, v === 'ok' ? 'ok' : 'bad') : html`<code>${v}</code>`}</dd></div>`,
  )}</dl></header>`
}

function banner(m: ReportModel): Html {
  const v = verdictOf(m)
  return html`<section class="verdict ${v.tone}" id="verdict"><h2>${v.title}</h2>${v.lines.map((l) => html`<p>${l}</p>`)}</section>`
}

function timeline(m: ReportModel): Html {
  const s = m.scene
  const t0 = s.startedAt
  let end = s.endedAt ?? t0
  for (const c of s.captures) end = Math.max(end, c.startedAt + c.durationMs)
  const span = Math.max(end - t0, 1)
  const pct = (n: number): string => `${Math.min(100, Math.max(0, (n / span) * 100)).toFixed(2)}%`
  let index = 0
  let last = ''
  const rows = s.captures.map((c) => {
    if (c.stage !== last || c.attempt === 1) index++
    last = c.stage
    const { attempt } = attemptOf(m.replay, c)
    const offset = c.startedAt - t0
    const retry =
      c.perItem !== undefined
        ? html`call ${c.attempt} of ${c.perItem}`
        : c.attempt > 1
          ? badge(`attempt ${c.attempt} (retry)`, 'warn')
          : html`${c.attempt}`
    const superseded = c.final || c.perItem !== undefined ? '' : html` <span class="dim">superseded</span>`
    return html`<tr class="${c.status === 'error' ? 'failed' : ''}"><td class="num">${index}</td><td><a href="#capture-${c.seq}" class="stage">${c.stage}</a></td><td>${retry}</td><td>${badge(c.status, c.status === 'ok' ? 'ok' : 'bad')}${superseded}</td><td class="num">+${formatDuration(offset)}</td><td class="num">${formatDuration(c.durationMs)}</td><td class="track"><span class="bar ${c.status}" style="margin-left:${raw(pct(offset))};width:${raw(pct(Math.max(c.durationMs, span / 400)))}"></span></td><td>${replayBadge(attempt)}</td></tr>`
  })
  const retries = s.retries > 0 ? `, ${plural(s.retries, 'retry', 'retries')}` : ''
  return html`<section id="timeline"><h2>Timeline</h2><p class="note">${plural(s.stages.length, 'stage')}: ${s.stages.join(' → ')}${retries}. Each row is one capture (one attempt of one stage).</p><table class="timeline"><thead><tr><th>#</th><th>stage</th><th>attempt</th><th>status</th><th>started</th><th>duration</th><th class="track">time</th><th>replay</th></tr></thead><tbody>${rows}</tbody></table></section>`
}

function stageDiff(s: StageResult): Html {
  const why =
    s.status === 'inherited'
      ? html`<span class="warn-text">inherited${s.inheritedFrom !== undefined ? ` from ${s.inheritedFrom}` : ''}</span>`
      : html`<span class="bad-text">own divergence</span>`
  const reason = s.reason !== undefined ? html`<p class="note">${s.reason}</p>` : ''
  const error =
    s.error !== null ? html`<p class="bad-text">Local build failed: ${errorText(s.error)} </p>` : ''
  const table =
    s.changes.length + s.suppressed.length > 0
      ? diffTable(s.changes, s.suppressed, ['production recorded', 'local build'], why)
      : ''
  const attempts =
    s.attempts.length > 1
      ? html`<p class="note">${s.attempts.map((a) => `attempt ${a.attempt}: ${a.status}`).join(' · ')}</p>`
      : ''
  return html`<div class="stage-diff"><h3><a href="#stage-${s.stage}" class="stage">${s.stage}</a> ${badge(s.status, stageTone[s.status])}</h3>${reason}${attempts}${error}${table}</div>`
}

function differences(m: ReportModel): Html {
  const r = m.replay
  if (r === undefined) return html``
  const shown = r.stages.filter(
    (s) => s.status === 'diverged' || s.status === 'inherited' || s.status === 'error',
  )
  const quiet = r.stages.filter((s) => s.status === 'matched' && s.suppressed.length > 0)
  const skipped = r.stages.filter((s) => s.status === 'skipped')
  const body =
    shown.length === 0
      ? html`<p class="ok-text">No differences: every stage's local output matches what production recorded.</p>`
      : html`${shown.map(stageDiff)}`
  return html`<section id="differences"><h2>Differences from production</h2><p class="note">The record replayed through the local build in ${r.mode} mode: each stage's local output against what production recorded (red) and what the local build gives (green).</p>${body}${quiet.map(stageDiff)}${
    skipped.length > 0
      ? html`<p class="note">Not replayed: ${skipped.map((s) => `${s.stage} (${s.reason ?? 'skipped'})`).join('; ')}</p>`
      : ''
  }</section>`
}

function invariantCell(r: InvariantResult | undefined): Html {
  if (r === undefined) return html`<td class="dim">not replayed</td>`
  const tone: Tone =
    r.status === 'ok' ? 'ok' : r.status === 'violated' ? 'bad' : r.status === 'error' ? 'warn' : 'dim'
  return html`<td>${badge(r.status, tone)}${r.message !== undefined ? html`<div class="msg"><code>${r.message}</code></div>` : ''}</td>`
}

function invariantVerdict(recorded: InvariantResult, local: InvariantResult | undefined): Html {
  if (recorded.status === 'violated') {
    const tail =
      local?.status === 'ok'
        ? '; the local build fixes it'
        : local?.status === 'violated'
          ? '; the local build still violates it'
          : ''
    return html`<span class="bad-text"><b>production data bug</b>${tail}</span>`
  }
  if (local?.status === 'violated')
    return html`<span class="bad-text"><b>broken by the local build</b></span>`
  if (recorded.status === 'error' || local?.status === 'error')
    return html`<span class="warn-text">the check could not be evaluated</span>`
  if (recorded.status === 'not-applicable')
    return html`<span class="dim">not applicable (a stage it reads is absent)</span>`
  return html`<span class="ok-text">holds</span>`
}

function invariants(m: ReportModel): Html {
  const inv = m.invariants
  if (inv === undefined) return html``
  if (inv.recorded.length === 0)
    return html`<section id="invariants"><h2>Invariants</h2><p class="note">The config defines no invariants.</p></section>`
  const rows = inv.recorded.map((r) => {
    const local = inv.local?.find((x) => x.name === r.name)
    return html`<tr><td><b>${r.name}</b><div class="dim">${r.stages.join(', ')}</div></td>${invariantCell(r)}${invariantCell(local)}<td>${invariantVerdict(r, local)}</td></tr>`
  })
  return html`<section id="invariants"><h2>Invariants</h2><p class="note">The config's checks over the chain as production recorded it and as the local build replayed it. A violation production already had is a production data bug, whatever the replay says.</p><table class="invariants"><thead><tr><th>invariant</th><th>production (recorded)</th><th>local build (replayed)</th><th>verdict</th></tr></thead><tbody>${rows}</tbody></table></section>`
}

function seams(m: ReportModel): Html {
  const list = m.scene.seams
  const loose = m.scene.loose ?? []
  const notHanded =
    loose.length === 0
      ? ''
      : html`<p class="note">Not handed on: ${loose.join(', ')} (called inside or beside another stage, or once per item; the recorded input is what each got).</p>`
  if (list.length === 0)
    return loose.length === 0 ? html`` : html`<section id="seams"><h2>Seams</h2>${notHanded}</section>`
  const broken = list.filter((s) => !s.matches)
  const items = list.map(
    (s) =>
      html`<div class="seam"><h3><span class="stage">${s.from}</span> → <span class="stage">${s.to}</span> ${s.matches ? badge('lines up', 'ok') : badge('changed in transit', 'warn')}</h3>${s.matches ? '' : plainDiff(s.diff, [`${s.from} output`, `${s.to} input`])}</div>`,
  )
  return html`<section id="seams"><h2>Seams</h2><p class="note">Each hand-off: the recorded output of one stage against the recorded input of the next. ${broken.length === 0 ? 'Every seam lines up.' : `${plural(broken.length, 'seam')} changed the data in transit (stale cache, lossy serialisation, another writer).`}</p>${notHanded}${items}</section>`
}

function captureCard(m: ReportModel, c: SceneCapture): Html {
  const { stage, attempt } = attemptOf(m.replay, c)
  const first = m.replay?.firstDivergence?.stage === c.stage && c.final
  const open = first || c.status === 'error' || attempt?.status === 'diverged' || attempt?.status === 'error'
  const retry =
    c.perItem !== undefined
      ? badge(`call ${c.attempt} of ${c.perItem} (once per item)`, 'dim')
      : c.attempt > 1
        ? badge(`attempt ${c.attempt} (retry)`, 'warn')
        : ''
  const superseded = c.final || c.perItem !== undefined ? '' : badge('superseded by a later attempt', 'dim')
  const where: string[] = []
  if (c.build !== null && c.build !== m.scene.build) where.push(`build ${c.build}`)
  if (c.host !== null && c.host !== m.scene.host) where.push(`host ${c.host}`)
  const meta = html`<p class="note">started ${formatTime(c.startedAt)}, ran ${formatDuration(c.durationMs)}${where.length > 0 ? `, ${where.join(', ')}` : ''}</p>`
  const result =
    c.error !== undefined
      ? html`<div class="threw"><b>threw</b> <code>${errorText(c.error)}</code>${c.error.stack !== undefined ? html`<details><summary>stack</summary><pre>${c.error.stack}</pre></details>` : ''}</div>`
      : payloadBlock('output', c.output)
  const transform =
    c.transform !== null && c.transform.changes.length > 0
      ? html`<details class="transform"><summary><span class="label">what it changed</span> <span class="dim">${plural(c.transform.changes.length, 'change')} from input to output</span></summary>${plainDiff(c.transform, ['input', 'output'])}</details>`
      : ''
  return html`<details class="capture" id="capture-${c.seq}"${raw(open ? ' open' : '')}${raw(c.final ? ` data-final="1"` : '')}><summary><span class="stage">${c.stage}</span> ${retry} ${badge(c.status, c.status === 'ok' ? 'ok' : 'bad')} <span class="dim">${formatDuration(c.durationMs)}</span> ${superseded} ${attempt !== undefined ? html`<span class="dim">replay:</span> ${replayBadge(attempt)}` : ''}</summary><div class="body">${meta}${payloadBlock('input', c.input)}<h4>Effects</h4>${effectsTable(c.effects)}${result}${transform}${replayDetail(stage, attempt, c)}</div></details>`
}

function replayDetail(stage: StageResult | undefined, a: AttemptResult | undefined, c: SceneCapture): Html {
  if (a === undefined) return html``
  const parts: Html[] = []
  if (a.reason !== undefined) parts.push(html`<p class="note">${a.reason}</p>`)
  if (a.error !== null) parts.push(html`<p class="bad-text">Local build: ${errorText(a.error)}</p>`)
  if (a.changes.length > 0)
    parts.push(
      html`<p>${plural(a.changes.length, 'difference')} from ${a.oracle === 'expected' ? 'the accepted expectation' : 'the recording'} (listed under <a href="#differences">Differences</a>).</p>`,
    )
  for (const e of a.effectChanges ?? []) {
    parts.push(
      html`<p class="note">The local build called <code>${e.name}</code> (effect #${e.seq}) with other arguments: recorded <code class="recorded">${short(e.recorded, 200)}</code>, local <code class="local">${short(e.local, 200)}</code></p>`,
    )
  }
  if (a.unusedEffects.length > 0)
    parts.push(
      html`<p class="warn-text">Recorded effects the local build did not ask for: ${a.unusedEffects.map((e) => `#${e.seq} ${e.name}`).join(', ')}</p>`,
    )
  if (c.final && stage?.local !== undefined) parts.push(payloadBlock('local output', stage.local))
  if (parts.length === 0) return html``
  return html`<h4>Replay</h4>${parts}`
}

function stages(m: ReportModel): Html {
  const anchors = new Set<string>()
  const cards = m.scene.captures.map((c) => {
    // The first card of each stage is its anchor for links from the differences.
    const anchor = anchors.has(c.stage) ? '' : html`<span id="stage-${c.stage}"></span>`
    anchors.add(c.stage)
    return html`${anchor}${captureCard(m, c)}`
  })
  return html`<section id="stages"><h2>Stages</h2><p class="note">What each stage received, saw and produced in production. Click a stage or a payload to unfold it.</p><div id="toolbar"></div>${cards}</section>`
}

// ---------------------------------------------------------------------------------------
// The page

const css = `
:root{--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--line:#d1d9e0;--ok:#1a7f37;--ok-bg:#dafbe1;--bad:#cf222e;--bad-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--info:#0969da;--info-bg:#ddf4ff;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#151b23;--line:#3d444d;--ok:#3fb950;--ok-bg:#12261e;--bad:#f85149;--bad-bg:#2d1214;--warn:#d29922;--warn-bg:#2b2111;--info:#4493f8;--info-bg:#121d2f}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:22px;margin:0 0 12px}h1 .key{font-family:var(--mono);background:var(--card);border:1px solid var(--line);border-radius:6px;padding:1px 8px;margin-left:6px}
h2{font-size:18px;margin:0 0 8px}h3{font-size:15px;margin:16px 0 6px}h4{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:14px 0 6px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:16px 0}
code,pre{font-family:var(--mono);font-size:13px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin:6px 0;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-word}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:6px 18px;margin:0}
.meta div{display:flex;gap:8px;min-width:0}.meta dt{color:var(--muted);min-width:56px}.meta dd{margin:0;overflow-wrap:anywhere}
.verdict{border-width:1px 1px 1px 6px}.verdict h2{font-size:19px}.verdict p{margin:4px 0}
.verdict.bad{border-color:var(--bad);background:var(--bad-bg)}.verdict.ok{border-color:var(--ok);background:var(--ok-bg)}.verdict.info{border-color:var(--info);background:var(--info-bg)}
.badge{display:inline-block;font-size:12px;font-weight:600;line-height:18px;padding:0 7px;border-radius:9px;border:1px solid currentColor;white-space:nowrap}
.badge.ok,.ok-text{color:var(--ok)}.badge.bad,.bad-text{color:var(--bad)}.badge.warn,.warn-text{color:var(--warn)}.badge.dim,.dim{color:var(--muted)}.badge.info{color:var(--info)}
.note{color:var(--muted);font-size:14px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
table.diff,table.invariants{table-layout:fixed}table.invariants th:nth-child(1){width:22%}table.invariants th:nth-child(2){width:34%}table.invariants th:nth-child(3){width:24%}table.diff th:nth-child(1){width:24%}table.diff th:nth-child(2),table.diff th:nth-child(3){width:30%}table.diff th:nth-child(4){width:16%}
th{text-align:left;font-weight:600;color:var(--muted);border-bottom:1px solid var(--line);padding:4px 8px}
td{border-bottom:1px solid var(--line);padding:4px 8px;vertical-align:top;overflow-wrap:anywhere}
td.kind{white-space:nowrap}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.failed td{background:var(--bad-bg)}
td.recorded,code.recorded{background:var(--bad-bg);color:var(--bad)}td.local,code.local{background:var(--ok-bg);color:var(--ok)}
tr.suppressed td{color:var(--muted)}td.why{font-size:13px}
.stage{font-family:var(--mono);font-weight:600;color:var(--fg)}a.stage{text-decoration:none}a.stage:hover{text-decoration:underline}
.track{width:28%}td.track{padding-top:9px}.bar{display:block;height:8px;border-radius:4px;background:var(--info);min-width:3px}.bar.error{background:var(--bad)}
details.capture{border:1px solid var(--line);border-radius:8px;margin:8px 0;background:var(--card)}
details.capture>summary{padding:8px 12px;cursor:pointer;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
details.capture[open]>summary{border-bottom:1px solid var(--line)}
details.capture .body{padding:4px 14px 12px}
details.payload,details.transform{margin:6px 0}details.payload>summary,details.transform>summary{cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.label{display:inline-block;min-width:86px;font-weight:600;font-size:13px}.preview{color:var(--muted)}
.threw{background:var(--bad-bg);color:var(--bad);border-radius:6px;padding:6px 10px;margin:6px 0}
.msg{margin-top:2px}.seam h3{font-weight:normal}.stage-diff h3{display:flex;gap:8px;align-items:center}
#toolbar{display:flex;gap:8px;margin:4px 0}#toolbar button{font:inherit;font-size:13px;border:1px solid var(--line);background:var(--bg);color:var(--fg);border-radius:6px;padding:2px 10px;cursor:pointer}
footer{color:var(--muted);font-size:13px;text-align:center}
`

// The only script: a toolbar to unfold or fold every section. It reads no data.
const script = `(function(){var bar=document.getElementById('toolbar');if(!bar)return;function all(open){var list=document.querySelectorAll('details');for(var i=0;i<list.length;i++)list[i].open=open}function button(text,open){var b=document.createElement('button');b.type='button';b.textContent=text;b.addEventListener('click',function(){all(open)});bar.appendChild(b)}button('Expand all',true);button('Collapse all',false)})()`

const scriptHash = createHash('sha256').update(script).digest('base64')

/** The Content-Security-Policy of every report: no fetches at all, only the page's own script. */
export const reportCsp = `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; img-src data:; base-uri 'none'; form-action 'none'`

/** The whole report as one HTML document. */
export function renderHtmlReport(m: ReportModel): string {
  const s = m.scene
  const body = html`<main>${header(m)}${banner(m)}${timeline(m)}${differences(m)}${invariants(m)}${seams(m)}${stages(m)}<footer>Made by retrace ${m.version} on ${formatTime(m.generatedAt)}. This file is self-contained: it loads nothing from the network. The data behind it is embedded as JSON (script#retrace-data).</footer></main>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${reportCsp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="retrace ${escapeHtml(m.version)}">
<title>${escapeHtml(visibleLine(`retrace report: ${s.key} (${s.recordId})`))}</title>
<link rel="icon" href="data:,">
<style>${css}</style>
</head>
<body>
${body.text}
<script type="application/json" id="retrace-data">${jsonForScript(m)}</script>
<script>${script}</script>
</body>
</html>
`
}
