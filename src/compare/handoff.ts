/**
 * Which stage handed each stage its input in production: the hand-offs replay's cascade
 * follows and the seam checks (`show`, `verify`, `why`, the report) compare.
 *
 * A pipeline is not always a line. A stage may run inside another (called by it), beside
 * another (under `Promise.all`), or once per item of what the stage before gave. None of
 * those is a hand-off: the stage's input came from the code around it, and comparing it
 * with the output of the stage that happened to run before would report a seam that was
 * never there, and feed replay's cascade the wrong value.
 *
 * Captures from recorders since format note "precise starts" (docs/bundle-format.md) start
 * on one monotonic clock per process, to the microsecond, so the calls of one process can be
 * ordered, in one part of a record or across parts continued in the same process:
 * - a stage that started while another capture of its process was still running was called
 *   inside or beside it: nothing hands it its input;
 * - else its feeder is the capture of its process that ended last before it started. When
 *   another capture ran while that one did, the times cannot tell a call made inside it
 *   from one made beside it (whose outputs were gathered: a fan-in), so the hand-off is
 *   taken only when the recorded texts show it (the feeder's output is the input);
 * - the first stage a process ran in a record continued from another process is fed by the
 *   process that ran just before it: by its call that ended last (the outer one, not a stage
 *   called inside it), taken as above; the two processes' clocks are never compared.
 * Older captures start on whole milliseconds, too coarse to order fast stages: each stage is
 * fed by the stage first run before it. So are times the recorder cannot have written (not
 * a number, a negative duration, a later call starting before an earlier one): a hand-made
 * or damaged row is read as a line, not as calls inside calls.
 * A stage fed by one that failed in production on the same input (a fallback) is fed by
 * what fed the failed one, when something did: the value went past the failed stage to it.
 * Either way, a stage called more than once with different inputs (once per item) neither
 * receives nor gives a hand-off, and neither does one called with a part of what the stage
 * before gave (its one item, a field), nor one given that output as a part of its input (a
 * list of one, a field): the code between them picked or gathered it.
 */
import type { CaptureRow } from '../bundle/types.js'
import { parseJson } from '../codec/index.js'
import { childrenOf } from './typed.js'

type Timed = Pick<
  CaptureRow,
  'stage' | 'seq' | 'input' | 'output' | 'startedAt' | 'durationMs' | 'host' | 'pid'
>

/** Starts and durations are stored to the microsecond; ends may be off by that twice. */
const slackMs = 0.0015

function endOf(c: Timed): number {
  return c.startedAt + (Number.isFinite(c.durationMs) && c.durationMs > 0 ? c.durationMs : 0)
}

function processOf(c: Timed): string {
  return `${c.host ?? ''}\u0000${c.pid ?? ''}`
}

/**
 * The stages called more than once in a record with different inputs (once per item), each
 * with how many times; a retry (the same input again) is not one.
 */
export function calledPerItem(captures: readonly Pick<Timed, 'stage' | 'input'>[]): Map<string, number> {
  const firstInput = new Map<string, string>()
  const calls = new Map<string, number>()
  const out = new Map<string, number>()
  for (const c of captures) {
    calls.set(c.stage, (calls.get(c.stage) ?? 0) + 1)
    const head = firstInput.get(c.stage)
    if (head === undefined) firstInput.set(c.stage, c.input)
    else if (head !== c.input) out.set(c.stage, 0)
  }
  for (const stage of out.keys()) out.set(stage, calls.get(stage)!)
  return out
}

/**
 * For each stage (in the order stages first ran), the stage whose output production handed
 * it as its input, or undefined when none did (the first stage, a stage called inside or
 * beside another, a stage called per item, or one fed by a gathering of parallel calls).
 */
export function handoffs(captures: readonly Timed[]): Map<string, string | undefined> {
  // One pass in call order: what each stage is fed by is read from the calls before its
  // first one, kept as it goes (a hostile record of 200,000 stages costs no more than one
  // of 200,000 calls of one stage).
  const sorted = inCallOrder(captures)
  const order: string[] = []
  const first = new Map<string, Timed>()
  /** Each stage's last call: the output it handed on. */
  const last = new Map<string, Timed>()
  const perItem = calledPerItem(sorted)
  const byProcess = new Map<string, Timed[]>()
  const precise = new Set<string>()
  for (const c of sorted) {
    if (!first.has(c.stage)) {
      first.set(c.stage, c)
      order.push(c.stage)
    }
    last.set(c.stage, c)
    const proc = processOf(c)
    let list = byProcess.get(proc)
    if (list === undefined) {
      list = []
      byProcess.set(proc, list)
    }
    list.push(c)
  }
  for (const [proc, list] of byProcess) if (timesUsable(list)) precise.add(proc)
  const out = new Map<string, string | undefined>()
  /** Each process's calls so far. */
  const before = new Map<string, CallsBefore>()
  /** The calls so far, of every process, by recorded output text when asked (`gaveLast`). */
  const all: TextIndex = { calls: [], indexed: 0, gave: new Map() }
  let previous: Timed | undefined
  let i = -1
  for (const c of sorted) {
    const proc = processOf(c)
    if (first.get(c.stage) === c) {
      i++
      const stage = c.stage
      let from: string | undefined = order[i - 1]
      /** Fed by the times of its process, not read as a line. */
      let timed = false
      const own = before.get(proc)
      if (i > 0 && precise.has(proc) && own !== undefined) {
        // Still running when it started: it was called inside that one, or beside it.
        timed = true
        from = own.maxEnd > c.startedAt + slackMs ? undefined : lastEnded(c, own)
      } else if (i > 0 && own === undefined) {
        // The first stage this process ran in a record continued from another: the process
        // that ran just before handed it on, from the call of it that ended last (the outer
        // one, not a stage called inside it). Clocks of two processes are not compared.
        const other = previous === undefined ? undefined : processOf(previous)
        if (other !== undefined && other !== proc && precise.has(other)) {
          timed = true
          from = lastEnded(c, before.get(other)!)
        }
      }
      if (!timed && i > 0 && from !== undefined && last.get(from)!.output !== c.input) {
        // Read as a line: one output given to two stages in turn still feeds the second.
        from = gaveLast(all, c.input, (g) => g.seq)?.stage ?? from
      }
      if (from !== undefined) {
        // A fallback: the stage before failed in production on the very input this one got.
        // It handed nothing on; what this one got is what was handed to that one.
        const failed = last.get(from)!
        const fedFailed = out.get(from)
        if (failed.output === null && failed.input === c.input && fedFailed !== undefined) from = fedFailed
      }
      if (from !== undefined && (perItem.has(from) || perItem.has(stage))) from = undefined
      if (from !== undefined && handedPart(last.get(from)!.output, c.input)) from = undefined
      out.set(stage, from)
    }
    let calls = before.get(proc)
    if (calls === undefined) {
      calls = { maxEnd: Number.NEGATIVE_INFINITY, calls: [], indexed: 0, gave: new Map() }
      before.set(proc, calls)
    }
    addCall(calls, c)
    all.calls.push(c)
    previous = c
  }
  return out
}

/** The captures in call order (by seq): as given when they already are, as a record's are. */
function inCallOrder(captures: readonly Timed[]): readonly Timed[] {
  for (let i = 1; i < captures.length; i++)
    if (captures[i]!.seq < captures[i - 1]!.seq) return [...captures].sort((a, b) => a.seq - b.seq)
  return captures
}

/**
 * Calls, and by recorded output text the one that gave it last, indexed only when a stage's
 * input is not what the call before it gave: most records never hash a payload's text.
 */
interface TextIndex {
  calls: Timed[]
  /** How many of `calls` are in `gave`. */
  indexed: number
  gave: Map<string, Timed>
}

/** The call in `index` that gave `text` and is latest by `rank` (of equals, the later call). */
function gaveLast(index: TextIndex, text: string, rank: (g: Timed) => number): Timed | undefined {
  for (; index.indexed < index.calls.length; index.indexed++) {
    const c = index.calls[index.indexed]!
    if (c.output === null) continue
    const gave = index.gave.get(c.output)
    if (gave === undefined || rank(c) >= rank(gave)) index.gave.set(c.output, c)
  }
  return index.gave.get(text)
}

/** A process's calls before the one looked at, as far as hand-offs need them. */
interface CallsBefore extends TextIndex {
  /** The latest end. */
  maxEnd: number
  /** The call that ended last (of two that ended together, the later call). */
  latest?: Timed | undefined
  /** The call that ended last of the others. */
  runnerUp?: Timed | undefined
}

function addCall(calls: CallsBefore, c: Timed): void {
  const end = endOf(c)
  calls.maxEnd = Math.max(calls.maxEnd, end)
  if (calls.latest === undefined || end >= endOf(calls.latest)) {
    calls.runnerUp = calls.latest
    calls.latest = c
  } else if (calls.runnerUp === undefined || end > endOf(calls.runnerUp)) calls.runnerUp = c
  calls.calls.push(c)
}

/**
 * True when a process's captures carry times the recorder can have written, to the
 * microsecond: finite starts that never go back in call order, finite durations of 0 or
 * more, and a start that is not on a whole millisecond. Anything else (whole milliseconds,
 * a hand-edited or damaged row) is read as a line.
 */
function timesUsable(list: readonly Timed[]): boolean {
  let fraction = false
  let last = Number.NEGATIVE_INFINITY
  for (const c of list) {
    const start = c.startedAt
    if (!Number.isFinite(start) || !Number.isFinite(c.durationMs) || c.durationMs < 0) return false
    if (!Number.isFinite(start + c.durationMs)) return false
    if (start < last - slackMs) return false
    last = Math.max(last, start)
    if (!Number.isInteger(start)) fraction = true
  }
  return fraction
}

/** How deep below a payload's top a part handed on by itself is looked for. */
const partDepth = 3

/**
 * True when one of the two recorded texts is a part of the other (an item, a field, an item
 * of a field), not the whole: the stage got one item of what the feeder gave (a stage called
 * once per item, with one item), or the feeder's output gathered with others (`[out]`,
 * `{price: out, stock}`). Either way it was the code around them that handed it over.
 */
function handedPart(output: string | null, input: string): boolean {
  if (output === null || output === input) return false
  return holdsPart(output, input) || holdsPart(input, output)
}

function holdsPart(whole: string, part: string): boolean {
  // A part's text is a piece of the whole's text: most pairs stop here, unparsed.
  if (part.length >= whole.length || !whole.includes(part)) return false
  try {
    let level: unknown[] = [parseJson(whole)]
    for (let depth = 1; depth <= partDepth && level.length > 0; depth++) {
      const next: unknown[] = []
      for (const node of level) {
        for (const [, child] of childrenOf(node)) {
          if (JSON.stringify(child) === part) return true
          next.push(child)
        }
      }
      level = next
    }
  } catch {
    // Unreadable, or nested too deep to write back: no part is shown.
  }
  return false
}

/**
 * The feeder of `c` among captures of one process that ended before it started: the one that
 * ended last, unless another ran while it did and the texts do not show the hand-off.
 */
function lastEnded(c: Timed, calls: CallsBefore): string | undefined {
  const feeder = calls.latest!
  if (feeder.output === c.input) return feeder.stage
  // One output given to two stages in turn (`t = tax(p); s = ship(p)`): the second is fed by
  // the stage whose output it got, not by the first, which ended last.
  const given = gaveLast(calls, c.input, endOf)
  if (given !== undefined) return given.stage
  // Another capture that ran while the feeder did, inside it or beside it.
  const overlapped = calls.runnerUp !== undefined && endOf(calls.runnerUp) > feeder.startedAt + slackMs
  return overlapped ? undefined : feeder.stage
}
