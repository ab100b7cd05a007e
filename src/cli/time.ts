import { UsageError } from '../errors.js'

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Parses `--since`/`--until`: an ISO date/time, epoch ms, or an age like `30m`, `2h`, `7d`. */
export function parseTime(text: string, now: number, flag: string): number {
  const rel = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim())
  if (rel) return now - Number(rel[1]) * units[rel[2]!]!
  if (/^\d{10,}$/.test(text.trim())) return Number(text.trim())
  const t = Date.parse(text)
  if (Number.isNaN(t))
    throw new UsageError(
      `${flag} ${JSON.stringify(text)} is not a time: use ISO (2026-01-31T12:00Z), epoch ms, or an age like 2h`,
    )
  return t
}
