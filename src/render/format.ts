/**
 * Printing for people: payload values (typed JSON shown as what it stands for, control and
 * bidi characters made visible; src/codec/display.ts), times, durations and sizes.
 */
export {
  brief,
  briefPair,
  changedPair,
  commonHead,
  commonTail,
  compact,
  count,
  type PairText,
  pretty,
  safeJson,
  visible,
  visibleLine,
} from '../codec/display.js'

export function formatTime(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-'
  try {
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', 'Z')
  } catch {
    return String(ms)
  }
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}
