/**
 * Recordings as regression tests: pinning local outputs as expectations (`accept`,
 * `test --update`), finding bundles, sharding, and the `test` run itself.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BundleSet, type ExpectationRow, type RecordChain } from '../bundle/index.js'
import { RetraceError, UsageError } from '../errors.js'
import { appendAll } from '../lists.js'
import { hashKey } from '../recorder/sampling.js'
import {
  addToSummary,
  emptySummary,
  type RecordResult,
  type ReplayOptions,
  type ReplaySummary,
  replayRecord,
  type StageResult,
} from './engine.js'
import { itemRecord, type WorkerItem } from './items.js'
import type { ReplayPool } from './pool.js'
import { missingStages } from './run.js'

/** Expectations that pin what the local build produced for a record. */
export function pinFromResult(
  result: RecordResult,
  options: {
    only?: string
    note: string | null
    build: string | null
    now: number
    onlyFailing?: boolean
    /** Stages left out: called once per item, they have no one output to pin. */
    leave?: ReadonlySet<string> | ReadonlyMap<string, unknown>
  },
): ExpectationRow[] {
  const rows: ExpectationRow[] = []
  for (const s of result.stages) {
    if (options.only !== undefined && s.stage !== options.only) continue
    if (options.leave?.has(s.stage)) continue
    if (s.status === 'skipped') continue
    if (options.onlyFailing && s.status === 'matched') continue
    const output = result.outputs?.[s.stage]
    if (output === undefined && s.error === null) continue
    rows.push({
      recordId: result.recordId,
      stage: s.stage,
      output: output ?? null,
      error:
        output === undefined && s.error !== null
          ? JSON.stringify({ name: s.error.name ?? 'Error', message: s.error.message, code: s.error.code })
          : null,
      note: options.note,
      build: options.build,
      acceptedAt: options.now,
    })
  }
  return rows
}

/** Whether `CI` says this runs in CI, where re-pinning is refused without a force flag. */
export function inCI(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== 'false'
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** Every `.sqlite` bundle under the paths (files as given, folders searched), sorted. */
export function discoverBundles(paths: readonly string[]): string[] {
  const out = new Set<string>()
  // By real path: a symlink back up the tree (`recordings/all -> .`) must not find the
  // same bundles again under ever longer names.
  const seen = new Set<string>()
  const add = (file: string): void => {
    const real = realpathSync(file)
    if (seen.has(real)) return
    seen.add(real)
    out.add(resolve(file))
  }
  // No depth limit: a folder already seen by its real path is not entered again.
  const visit = (p: string): void => {
    let st: ReturnType<typeof statSync>
    try {
      st = statSync(p)
    } catch {
      throw new UsageError(`${p}: no such file or folder`)
    }
    if (st.isFile()) {
      add(p)
      return
    }
    if (!st.isDirectory()) return
    const real = realpathSync(p)
    if (seen.has(real)) return
    seen.add(real)
    for (const name of readdirSync(p).sort()) {
      if (name.startsWith('.') || name === 'node_modules') continue
      const child = join(p, name)
      // A broken link named like a bundle is an input error; anything else unreadable is skipped.
      const cst = statOrUndefined(child)
      if (name.endsWith('.sqlite') || name.endsWith('.bundle')) {
        if (cst === undefined) throw new UsageError(`${child}: cannot read it (a broken link?)`)
        if (cst.isFile()) add(child)
      } else if (cst?.isDirectory()) visit(child)
    }
  }
  for (const p of paths) visit(p)
  return [...out].sort()
}

export interface Shard {
  index: number
  count: number
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim())
  const index = Number(m?.[1])
  const count = Number(m?.[2])
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard ${JSON.stringify(text)}: write i/n with 1 <= i <= n, e.g. 2/4`)
  }
  return { index, count }
}

/** Deterministic: the same record always lands in the same shard, whatever the machine. */
export function inShard(recordId: string, shard: Shard | undefined): boolean {
  return shard === undefined || hashKey(recordId) % shard.count === shard.index - 1
}

export interface StaleItem {
  bundle: string
  recordId: string
  stage: string
  why: 'stage not in config' | 'expectation never exercised' | 'nothing replayed'
}

/** A test run's counts: with `--update`, a failing record whose failures were all re-pinned is `updated`, not a failure. */
export interface TestSummary extends ReplaySummary {
  /** Only with `--update`: failing records re-pinned from the local build, which a replay with the pins passes. */
  updated?: number
}

export interface BundleOutcome {
  path: string
  summary: TestSummary
  /** Records that failed, re-pinned ones (in `updated`) included: what the run found. */
  failures: RecordResult[]
  /** Ids of the failures `--update` re-pinned whole: they pass from now on. */
  updated: Set<string>
  /** Every record's result, kept only when a reporter needs them all (JUnit). */
  results?: RecordResult[]
  /**
   * Why `--update` could not pin into this bundle (read-only, say): its failures stay
   * failures, and the run goes on with the next bundle.
   */
  notUpdated?: string
}

export interface TestRun {
  bundles: BundleOutcome[]
  summary: TestSummary
  stale: StaleItem[]
  /** Expectations (record and stage) written by `--update`. */
  updated: number
}

export interface TestOptions {
  engine: ReplayOptions
  shard?: Shard
  keepAll: boolean
  /** Called with the records each bundle will replay, before it starts (progress). */
  onBundle?: (path: string, records: number) => void
  onRecord?: (result: RecordResult) => void
  /** Worker processes to spread each bundle's records over (`--workers`). */
  pool?: ReplayPool
  /** Re-pin failing stages from the local build (`--update`). */
  update?: (path: string, rows: ExpectationRow[]) => void
  now: () => number
}

function staleExpectations(path: string, chain: RecordChain, result: RecordResult): StaleItem[] {
  const ran = new Set(result.stages.filter((s) => s.status !== 'skipped').map((s) => s.stage))
  return chain.expectations
    .filter((x) => !ran.has(x.stage))
    .map((x) => ({
      bundle: path,
      recordId: x.recordId,
      stage: x.stage,
      why: 'expectation never exercised' as const,
    }))
}

/** Replays one record as a test: its result and what it shows to be stale. */
export async function testRecord(
  path: string,
  chain: RecordChain,
  engine: ReplayOptions,
): Promise<{ result: RecordResult; stale: StaleItem[] }> {
  const stale: StaleItem[] = missingStages(chain, engine.stages).map((stage) => ({
    bundle: path,
    recordId: chain.record.id,
    stage,
    why: 'stage not in config' as const,
  }))
  const result = await replayRecord(chain, engine)
  appendAll(stale, staleExpectations(path, chain, result))
  // It passes, having checked nothing (every stage skipped: inputs that were not recorded).
  const first = result.stages[0]
  if (first !== undefined && result.stages.every((s) => s.status === 'skipped')) {
    stale.push({ bundle: path, recordId: chain.record.id, stage: first.stage, why: 'nothing replayed' })
  }
  return { result, stale }
}

/** A worker's item as the tally takes it: a matched record needs no more than its id and key. */
function fromItem(item: WorkerItem, mode: RecordResult['mode']): RecordResult {
  if ('result' in item) return item.result
  if ('docs' in item) throw new Error('a test run asks for no JSON entries')
  const { recordId, key } = itemRecord(item)
  return { recordId, key, verdict: 'matched', firstDivergence: null, stages: [], mode }
}

/**
 * Whether pins make a failing record pass: it is replayed again with them as its
 * expectations. A failure a pin cannot mend (an effect the local build calls differently,
 * a blocked network call, an attempt before the last that failed) fails again.
 */
export async function pinsMend(
  chain: RecordChain,
  pins: readonly ExpectationRow[],
  engine: ReplayOptions,
): Promise<boolean> {
  if (pins.length === 0) return false
  const again = await replayPinned(chain, pins, engine)
  return again.verdict === 'matched' && !invariantBroken(again)
}

function replayPinned(
  chain: RecordChain,
  pins: readonly ExpectationRow[],
  engine: ReplayOptions,
): Promise<RecordResult> {
  const byStage = new Map(chain.expectations.map((x) => [x.stage, x]))
  for (const p of pins) byStage.set(p.stage, p)
  return replayRecord({ ...chain, expectations: [...byStage.values()] }, engine)
}

/**
 * Each pinned stage that still fails when the record is replayed with the pins, with why
 * (`accept` refuses such pins, as `test --update` leaves such records as failures).
 */
export async function unmendedPins(
  chain: RecordChain,
  pins: readonly ExpectationRow[],
  engine: ReplayOptions,
): Promise<{ stage: string; why: string }[]> {
  const again = await replayPinned(chain, pins, engine)
  const pinned = new Set(pins.map((p) => p.stage))
  return again.stages
    .filter((s) => pinned.has(s.stage) && s.status !== 'matched')
    .map((s) => ({ stage: s.stage, why: whyUnmended(s) }))
}

function whyUnmended(s: StageResult): string {
  const code = s.error?.code
  if (code === 'E_REPLAY_OFFLINE' || code === 'E_EFFECT_DIVERGED' || code === 'E_STAGE_EXIT')
    return `replay stopped it (${s.error!.message}), which no pin stands for`
  const n = s.attempts.length
  const earlier = s.attempts.slice(0, -1).findIndex((a) => a.status !== 'matched' && a.status !== 'skipped')
  if (earlier >= 0)
    return `its attempt ${earlier + 1} of ${n} differs from the recording, and a pin stands for the last attempt only`
  if (s.error !== null) return `${s.status}: ${s.error.message}`
  return s.reason ?? s.status
}

/** Where a test run keeps what each record showed. */
class Tally {
  /** Pins of the records they were shown to mend: what `--update` writes. */
  readonly pins: ExpectationRow[] = []
  /** Records counted as updated until a replay with their pins confirms it. */
  private readonly candidates = new Map<string, { result: RecordResult; pins: ExpectationRow[] }>()
  constructor(
    private readonly run: TestRun,
    readonly outcome: BundleOutcome,
    private readonly o: TestOptions,
  ) {}

  add(result: RecordResult, stale: readonly StaleItem[]): void {
    appendAll(this.run.stale, stale)
    const pins =
      this.o.update && result.verdict !== 'matched'
        ? pinFromResult(result, {
            note: 'retrace test --update',
            build: null,
            now: this.o.now(),
            onlyFailing: true,
          })
        : []
    const updated = repinnedWhole(result, pins)
    if (updated) this.candidates.set(result.recordId, { result, pins })
    for (const summary of [this.outcome.summary, this.run.summary]) {
      if (updated) {
        summary.records++
        summary.updated = (summary.updated ?? 0) + 1
      } else addToSummary(summary, result)
    }
    if (result.verdict !== 'matched') this.outcome.failures.push(result)
    if (updated) this.outcome.updated.add(result.recordId)
    this.outcome.results?.push(result)
    this.o.onRecord?.(result)
  }

  /**
   * Replays each record counted as updated with its pins: the ones they mend keep their
   * pins; the others are counted as the failures they are, and are not pinned.
   */
  async confirm(load: (ids: readonly string[]) => Iterable<RecordChain>): Promise<void> {
    for (const chain of load([...this.candidates.keys()])) {
      const c = this.candidates.get(chain.record.id)
      if (c === undefined) continue
      if (await pinsMend(chain, c.pins, this.o.engine)) appendAll(this.pins, c.pins)
      else this.demote(c.result)
    }
  }

  /** A record counted as updated is counted as it failed. */
  private demote(result: RecordResult): void {
    if (!this.outcome.updated.delete(result.recordId)) return
    for (const summary of [this.outcome.summary, this.run.summary]) {
      summary.records--
      summary.updated = (summary.updated ?? 1) - 1
      addToSummary(summary, result)
    }
  }

  /** The pins could not be written: what was counted as updated is counted as it failed. */
  unpin(): void {
    for (const result of this.outcome.failures) this.demote(result)
  }
}

/**
 * Whether the pins made from a failing record cover all it failed on, so it passes from
 * now on: every stage that diverged, inherited or threw is pinned, and no invariant the
 * local build breaks (pinning outputs does not mend one) is left.
 */
function repinnedWhole(result: RecordResult, pins: readonly ExpectationRow[]): boolean {
  if (pins.length === 0) return false
  const pinned = new Set(pins.map((p) => p.stage))
  const stagesCovered = result.stages.every(
    (s) => s.status === 'matched' || s.status === 'skipped' || pinned.has(s.stage),
  )
  return stagesCovered && !invariantBroken(result)
}

/** An invariant the recording kept and the local build breaks: pinning outputs does not mend it. */
function invariantBroken(result: RecordResult): boolean {
  return (result.invariants ?? []).some((i) => i.recorded === 'ok' && i.local === 'violated')
}

export async function runTests(paths: readonly string[], o: TestOptions): Promise<TestRun> {
  // With --update the summary says how many records were re-pinned, 0 included.
  const summary = (): TestSummary => (o.update ? { ...emptySummary(), updated: 0 } : emptySummary())
  const run: TestRun = { bundles: [], summary: summary(), stale: [], updated: 0 }
  for (const path of paths) {
    const outcome: BundleOutcome = { path, summary: summary(), failures: [], updated: new Set() }
    if (o.keepAll) outcome.results = []
    const tally = new Tally(run, outcome, o)
    const set = BundleSet.open([path])
    try {
      const ids = [...set.readers[0]!.recordIds()].filter((id) => inShard(id, o.shard))
      o.onBundle?.(path, ids.length)
      const replayHere = async (
        part: readonly string[],
        _start = 0,
        stopped = () => false,
      ): Promise<void> => {
        for (const chain of set.loadRecords(part)) {
          if (stopped()) return
          const { result, stale } = await testRecord(path, chain, o.engine)
          tally.add(result, stale)
        }
      }
      if (o.pool === undefined || ids.length < o.pool.minRecords) await replayHere(ids)
      else {
        const staleFrom = run.stale.length
        await o.pool.run(
          [path],
          ids,
          (item) => tally.add(fromItem(item, o.engine.mode), item.stale),
          replayHere,
        )
        // Results land in the order they finish; reports list them in bundle order.
        const position = new Map(ids.map((id, i) => [id, i]))
        const at = (x: { recordId: string }): number => position.get(x.recordId) ?? 0
        outcome.failures.sort((a, b) => at(a) - at(b))
        outcome.results?.sort((a, b) => at(a) - at(b))
        const stale = run.stale.splice(staleFrom).sort((a, b) => at(a) - at(b))
        appendAll(run.stale, stale)
      }
      if (o.update) await tally.confirm((part) => set.loadRecords(part))
    } finally {
      set.close()
    }
    if (o.update && tally.pins.length > 0) {
      try {
        o.update(path, tally.pins)
        run.updated += tally.pins.length
      } catch (err) {
        // One bundle that cannot be written is reported with its failures; the others
        // are still tested and pinned.
        if (!(err instanceof RetraceError)) throw err
        outcome.notUpdated = err.message
        tally.unpin()
      }
    }
    run.bundles.push(outcome)
  }
  return run
}
