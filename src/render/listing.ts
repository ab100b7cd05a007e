/** Terminal rendering of `ls`, `find` and `inspect`. */
import type { RecordSummary } from '../bundle/types.js'
import {
  compact,
  displayWidth,
  formatBytes,
  formatTime,
  padEndColumns,
  visibleLine,
  visibleName,
} from './format.js'
import type { Theme } from './theme.js'

/** A listing cut short by --limit: the records shown and how many match in all. */
export interface Listing<T> {
  records: readonly T[]
  total: number
}

/** The line under a listing that --limit cut short: how many more, and how to see them. */
function moreLine(shown: number, total: number, t: Theme): string[] {
  if (total <= shown) return []
  return [t.dim(`… ${total - shown} more (${total} in all); --limit 0 lists them all`)]
}

export function renderRecordList(listing: Listing<RecordSummary>, t: Theme, showSource: boolean): string {
  const { records } = listing
  if (records.length === 0) return t.dim('no records match')
  let keyWidth = 3
  for (const r of records) keyWidth = Math.min(32, Math.max(keyWidth, displayWidth(visibleName(r.key))))
  const lines = [
    t.dim(`${'RECORD'.padEnd(26)}  ${'KEY'.padEnd(keyWidth)}  STATUS  STARTED                   STAGES`),
  ]
  for (const r of records) {
    const status = r.status === 'ok' ? t.ok('ok    ') : t.bad('error ')
    const retries = r.retries
    const stages = `${r.stages.map(visibleName).join(',')}${retries > 0 ? t.warn(` (+${retries} ${retries === 1 ? 'retry' : 'retries'})`) : ''}`
    const source = showSource ? t.dim(`  ${visibleLine(r.source)}`) : ''
    lines.push(
      `${visibleLine(r.id).padEnd(26)}  ${padEndColumns(visibleName(r.key), keyWidth)}  ${status}  ${formatTime(r.startedAt).padEnd(24)}  ${stages}${source}`,
    )
  }
  lines.push(...moreLine(records.length, listing.total, t))
  return lines.join('\n')
}

export interface FindRow {
  recordId: string
  key: string
  startedAt: number
  value: unknown
  source: string
}

export function renderFind(listing: Listing<FindRow>, where: string, t: Theme): string {
  const rows = listing.records
  if (rows.length === 0) return t.dim(`no records where ${visibleLine(where)}`)
  const count = listing.total > rows.length ? `${rows.length} of ${listing.total}` : `${rows.length}`
  const lines = [t.dim(`${count} record${listing.total === 1 ? '' : 's'} where ${visibleLine(where)}`)]
  for (const r of rows) {
    lines.push(
      `${visibleLine(r.recordId).padEnd(26)}  ${padEndColumns(visibleName(r.key), 16)}  ${formatTime(r.startedAt)}  ${t.bold(compact(r.value, 60))}`,
    )
  }
  lines.push(...moreLine(rows.length, listing.total, t))
  return lines.join('\n')
}

export interface InspectView {
  path: string
  sizeBytes: number
  formatVersion: number
  manifest: Record<string, unknown>
  records: number
  captures: number
  effects: number
  expectations: number
  firstRecordAt: number | null
  lastRecordAt: number | null
  stages: { stage: string; captures: number; errors: number }[]
  statuses: { status: string; records: number }[]
}

/**
 * A manifest value as text. A hand-made manifest can hold any JSON where the format says
 * text: an object is shown as its JSON (`String()` would print `[object Object]`, or throw
 * on `{"toString": 1}`).
 */
function manifestText(value: unknown): string {
  if (value === undefined || value === null) return '-'
  return typeof value === 'string' ? value : compact(value, 100)
}

export function renderInspect(v: InspectView, t: Theme): string {
  const m = v.manifest
  const redaction = (m.redaction ?? {}) as { rules?: unknown; equalityPreserving?: unknown }
  const rules = Array.isArray(redaction.rules) ? redaction.rules.map(manifestText) : []
  const builds = Array.isArray(m.builds) ? m.builds.map(manifestText) : []
  const lines = [
    `${t.bold('bundle')}    ${visibleLine(v.path)} (${formatBytes(v.sizeBytes)})`,
    `${t.bold('format')}    retrace bundle v${v.formatVersion}, recorder ${visibleLine(manifestText(m.recorderVersion))}, created ${visibleLine(manifestText(m.created))}`,
    `${t.bold('pipeline')}  ${visibleLine(manifestText(m.pipeline))}`,
    `${t.bold('builds')}    ${builds.length > 0 ? visibleLine(builds.join(', ')) : '-'}`,
    `${t.bold('records')}   ${v.records} (${v.statuses.map((s) => `${s.records} ${visibleLine(s.status)}`).join(', ') || 'none'}), ${v.captures} captures, ${v.effects} effects, ${v.expectations} expectations`,
    `${t.bold('time')}      ${formatTime(v.firstRecordAt)} .. ${formatTime(v.lastRecordAt)}`,
    `${t.bold('redaction')} ${rules.length > 0 ? visibleLine(rules.join(', ')) : 'none'}${redaction.equalityPreserving ? ' (equality-preserving)' : ''}`,
  ]
  if (m.extractedFrom !== undefined) lines.push(`${t.bold('extracted')} ${compact(m.extractedFrom, 100)}`)
  lines.push(t.bold('stages'))
  for (const s of v.stages) {
    const errors = s.errors > 0 ? t.bad(`, ${s.errors} error${s.errors === 1 ? '' : 's'}`) : ''
    lines.push(`  ${t.stage(padEndColumns(visibleName(s.stage), 16))} ${s.captures} captures${errors}`)
  }
  return lines.join('\n')
}
