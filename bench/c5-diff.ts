/**
 * C5: the worst single diff (2,000 all-different lines; a 5 MB JSON pair) <= 50 ms before
 * it falls back to a summary.
 *
 * Time until a result or the fallback, for:
 * - the structural diff (dist/compare/diff.js diffValues) with the limits the replay engine
 *   gives it (500 changes, a deadline 50 ms out), on values already decoded, and as the
 *   engine runs it (src/replay/engine.ts judge(): the deadline is set, then both typed-JSON
 *   texts are decoded, the recorded one depth-bounded, then diffed);
 * - the unified diff (dist/render/unified.js unifiedDiff: the differing span checked, then
 *   jsdiff with the rest of the 50 ms budget) on pretty-printed texts, and as
 *   `replay --format unified` runs it (unifiedFromPayloads: from the stored texts).
 * - (c) a one-character change at the end of a 5 MB string, the pair as
 *   `replay --format unified` renders it: it must give a patch, not a fallback.
 * The target is absolute, so each figure is reported against floor = 50 ms (ratio =
 * value / 50); the pass mark allows 10% over for the check interval. The judged case
 * includes decoding both texts, which replay needs to say whether the stage matched at all
 * (rules may explain every difference): it is held to the decoding floor measured in the
 * same rounds plus the 50 ms. Rendering (c) decodes and pretty-prints both texts before
 * the diff's clock starts (the work grows with the payloads, not with how they differ): it
 * is held to that floor, measured in the same rounds, plus the 50 ms. JSON.parse +
 * JSON.stringify of the same pair is measured in the same rounds, for scale (detail).
 *
 *     npm run build && npx tsx bench/c5-diff.ts [--rounds 15] [--mb 5]
 */
import { performance } from 'node:perf_hooks'
import { decodeRaw } from '../dist/codec/index.js'
import { type DiffLimits, type DiffResult, diffValues, noRules } from '../dist/compare/diff.js'
import { boundPayloadDepth, readPayload } from '../dist/compare/scene.js'
import { pretty } from '../dist/render/format.js'
import { unifiedDiff, unifiedFromPayloads, unifiedTimeoutMs } from '../dist/render/unified.js'
import { emit, interleave, median, note, numberArg, quantile, round, timeMs } from './lib.js'
import { makePayload, prng } from './payloads.js'

const rounds = numberArg('rounds', 15)
const mb = numberArg('mb', 5)
const budgetMs = 50
const passMs = budgetMs * 1.1

/** The limits src/replay/engine.ts judge() passes (maxChanges 500, diffBudgetMs 50). */
function engineLimits(): DiffLimits {
  const now = (): number => performance.now()
  return { maxChanges: 500, deadline: now() + budgetMs, now }
}

// (a) 2,000 lines, every one different: text lines, and the same as JSON arrays of strings.
const rnd = prng(42)
const word = (): string => Math.floor(rnd() * 36 ** 8).toString(36)
const linesA = Array.from({ length: 2000 }, (_, i) => `recorded line ${i} ${word()} ${word()} ${word()}`)
const linesB = Array.from({ length: 2000 }, (_, i) => `local ${word()} line ${i} ${word()} ${word()}`)
const textA = `${linesA.join('\n')}\n`
const textB = `${linesB.join('\n')}\n`
const jsonA = JSON.stringify(linesA)
const jsonB = JSON.stringify(linesB)

// (b) a ~5 MB JSON pair: an array of ~2 KB order payloads; the local side changes one value
// in every payload (and every 7th gains a field), so the differences run through the file.
const payloads: Record<string, unknown>[] = []
let size = 2
for (let i = 0; size < mb * 1e6; i++) {
  const p = makePayload(2048, 9_000_000 + i)
  payloads.push(p)
  size += JSON.stringify(p).length + 1
}
const bigA = JSON.stringify(payloads)
const bigB = JSON.stringify(
  payloads.map((p, i) => ({
    ...p,
    available: (p.available as number) + 1 + (i % 3),
    ...(i % 7 === 0 ? { flagged: true } : {}),
  })),
)
const bigValA = JSON.parse(bigA) as unknown
const bigValB = JSON.parse(bigB) as unknown
const prettyA = pretty(bigValA)
const prettyB = pretty(bigValB)
// (c) a 5 MB string whose last character changed, inside a small payload.
const longString = 'x'.repeat(mb * 1024 * 1024)
const oneA = JSON.stringify({ orderId: 'o-3', tags: ['web', 'vip'], blob: longString, lines: 4 })
const oneB = JSON.stringify({
  orderId: 'o-3',
  tags: ['web', 'vip'],
  blob: `${longString.slice(0, -1)}y`,
  lines: 4,
})

note(
  `C5: (a) 2,000 different lines (${round(textA.length / 1024)} KiB per side); (b) ${round(bigA.length / 1e6)} MB JSON per side, ${payloads.length} payloads, ${prettyA.split('\n').length.toLocaleString('en-US')} lines pretty-printed; ${rounds} rounds`,
)

const outcomes = new Map<string, string>()
function structural(a: unknown, b: unknown, label: string): () => number {
  return () => {
    let r: DiffResult | undefined
    const ms = timeMs(() => {
      r = diffValues(a, b, noRules, engineLimits())
    })
    outcomes.set(
      label,
      r!.truncated ? `fallback (${r!.truncated.reason})` : `result (${r!.changes.length} changes)`,
    )
    return ms
  }
}
/** As judge() does: deadline first, then decode both texts (the recorded one depth-bounded), then diff. */
function judged(a: string, b: string, label: string): () => number {
  return () => {
    let r: DiffResult | undefined
    const ms = timeMs(() => {
      const limits = engineLimits()
      r = diffValues(boundPayloadDepth(decodeRaw(a)), decodeRaw(b), noRules, limits)
    })
    outcomes.set(
      label,
      r!.truncated ? `fallback (${r!.truncated.reason})` : `result (${r!.changes.length} changes)`,
    )
    return ms
  }
}
function unified(a: string, b: string, label: string): () => number {
  return () => {
    let patch: string | undefined
    const ms = timeMs(() => {
      patch = unifiedDiff(a, b, 'stage')
    })
    outcomes.set(
      label,
      patch === undefined ? 'fallback (timeout)' : `result (${patch.split('\n').length} lines)`,
    )
    return ms
  }
}
/** As renderUnified does: from the stored texts (checked, decoded, pretty-printed, diffed). */
function rendered(a: string, b: string, label: string): () => number {
  return () => {
    let r: ReturnType<typeof unifiedFromPayloads> | undefined
    const ms = timeMs(() => {
      r = unifiedFromPayloads(a, b, 'stage')
    })
    outcomes.set(
      label,
      'fallback' in r! ? `fallback (${r!.fallback})` : `result (${r!.patch.split('\n').length} lines)`,
    )
    return ms
  }
}
/** What judged() pays before it can diff: decoding both texts. */
const decodeBoth =
  (a: string, b: string): (() => number) =>
  () =>
    timeMs(() => {
      decodeRaw(a)
      decodeRaw(b)
    })
/** What rendering (c) pays before its diff: decoding and pretty-printing both texts. */
const preparePair =
  (a: string, b: string): (() => number) =>
  () =>
    timeMs(() => {
      pretty(readPayload(a))
      pretty(readPayload(b))
    })
const parseStringify =
  (a: string, b: string): (() => number) =>
  () =>
    timeMs(() => {
      JSON.stringify(JSON.parse(a))
      JSON.stringify(JSON.parse(b))
    })

const cases = {
  aStructural: structural(linesA, linesB, 'aStructural'),
  aJudged: judged(jsonA, jsonB, 'aJudged'),
  aUnified: unified(textA, textB, 'aUnified'),
  aRendered: rendered(jsonA, jsonB, 'aRendered'),
  aDecode: decodeBoth(jsonA, jsonB),
  aFloor: parseStringify(jsonA, jsonB),
  bStructural: structural(bigValA, bigValB, 'bStructural'),
  bJudged: judged(bigA, bigB, 'bJudged'),
  bUnified: unified(prettyA, prettyB, 'bUnified'),
  bRendered: rendered(bigA, bigB, 'bRendered'),
  bDecode: decodeBoth(bigA, bigB),
  bFloor: parseStringify(bigA, bigB),
  cRendered: rendered(oneA, oneB, 'cRendered'),
  cPrepare: preparePair(oneA, oneB),
  cFloor: parseStringify(oneA, oneB),
}
for (const c of Object.values(cases)) c()
const t = await interleave(rounds, cases)

const figures: [keyof typeof cases, 'a' | 'b' | 'c', string][] = [
  [
    'aStructural',
    'a',
    'structural diff (diffValues, engine limits), 2,000 all-different lines as string arrays',
  ],
  [
    'aJudged',
    'a',
    'structural diff as replay judges it (decode both texts + diffValues), 2,000 all-different lines',
  ],
  ['aUnified', 'a', `unified diff (jsdiff, ${unifiedTimeoutMs} ms timeout), 2,000 all-different lines`],
  [
    'aRendered',
    'a',
    'unified diff as `replay --format unified` renders it (from the stored texts), 2,000 lines',
  ],
  ['bStructural', 'b', `structural diff (diffValues, engine limits), ${mb} MB JSON pair, values decoded`],
  [
    'bJudged',
    'b',
    `structural diff as replay judges it (decode both texts + diffValues), ${mb} MB JSON pair`,
  ],
  [
    'bUnified',
    'b',
    `unified diff (jsdiff, ${unifiedTimeoutMs} ms timeout), ${mb} MB JSON pair pretty-printed`,
  ],
  [
    'bRendered',
    'b',
    `unified diff as \`replay --format unified\` renders it (from the stored texts), ${mb} MB pair`,
  ],
  [
    'cRendered',
    'c',
    `unified diff as \`replay --format unified\` renders it, one character changed at the end of a ${mb} MiB string`,
  ],
]
for (const [key, pair, name] of figures) {
  const value = median(t[key])
  const floorKey = pair === 'a' ? 'aFloor' : pair === 'b' ? 'bFloor' : 'cFloor'
  const judgedCase = key === 'aJudged' || key === 'bJudged'
  const preparedCase = key === 'cRendered'
  const decodeMs = median(t[pair === 'a' ? 'aDecode' : pair === 'b' ? 'bDecode' : 'cPrepare'])
  const floored = judgedCase || preparedCase
  emit({
    id: 'C5',
    name,
    unit: 'ms',
    value,
    floor: floored ? decodeMs : budgetMs,
    floorName: judgedCase
      ? 'decoding both texts (decodeRaw), which judging needs before any diff'
      : preparedCase
        ? 'decoding and pretty-printing both texts, before the diff clock starts'
        : `the ${budgetMs} ms budget (absolute target)`,
    ratio: value / (floored ? decodeMs : budgetMs),
    target: judgedCase
      ? `<= decoding + ${budgetMs} ms to result or fallback (+10%)`
      : preparedCase
        ? `<= decoding and pretty-printing + ${budgetMs} ms to a patch (+10%)`
        : `<= ${budgetMs} ms to result or fallback (+10%)`,
    pass: preparedCase
      ? value - decodeMs <= passMs && outcomes.get(key)?.startsWith('result') === true
      : judgedCase
        ? value - decodeMs <= passMs
        : value <= passMs,
    detail: {
      outcome: outcomes.get(key),
      p25p75: [round(quantile(t[key], 0.25)), round(quantile(t[key], 0.75))],
      max: round(Math.max(...t[key])),
      parseStringifyPairMs: round(median(t[floorKey])),
      rounds,
    },
  })
}
