import { createInterface } from 'node:readline/promises'
import { BundleSet, type ExpectationRow, pinExpectations } from '../bundle/index.js'
import { RetraceCommand } from '../cli/base-command.js'
import { configFlag } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { flushOut, toStderr } from '../cli/stdout.js'
import { visibleName } from '../codec/display.js'
import { calledPerItem } from '../compare/handoff.js'
import { ExitCode, RetraceError, UsageError } from '../errors.js'
import { renderRecordResult } from '../render/replay.js'
import { loadConfig, loadStages } from '../replay/config.js'
import type { RecordResult } from '../replay/engine.js'
import { replayRecord } from '../replay/engine.js'
import { pinFromResult, unmendedPins } from '../replay/regress.js'
import { engineOptions } from '../replay/run.js'
import { version } from '../version.js'

export interface AcceptResult {
  recordId: string
  pinned: { stage: string; note: string | null; build: string | null }[]
  replay: Omit<RecordResult, 'outputs'>
}

export default class Accept extends RetraceCommand<typeof Accept> {
  static override args = {
    bundle: Args.string({ description: 'Bundle file (.sqlite).', required: true }),
    record: Args.string({ description: 'Record id or unique prefix.', required: true }),
  }
  static override description =
    `Replays the record through the local build, shows what differs from the recording, and pins the local outputs as the expected outputs of the record (all stages, or --stage). From then on the expectation, not the production recording, is the oracle for that stage in replay and test. A stage called more than once with different inputs in the record (once per item) is pinned only when its last call differs and every call before it matches: a pin holds one output per stage, held against its last call. Otherwise it is not pinned, and --stage naming it is a usage error. Nor is anything pinned when a pinned stage would still fail with its pin: an error replay itself raised (a blocked network call, an effect called otherwise than recorded) or an attempt before the last that differs.

It asks first, on a terminal (--yes pins without asking; off a terminal, or with --json, --yes is needed). Exit codes: 0 pinned, or declined at the question (n, or Ctrl-D: the bundle is unchanged); 2 usage or input error, --yes missing off a terminal included; 3 the config or a stage module could not be loaded; 130 stopped with Ctrl-C at the question.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite 01KJPWGBP --note BUG-4211 --config examples/inventory/retrace.config.ts',
    '<%= config.bin %> <%= command.id %> bug.sqlite 01JD3Q --stage compute --yes',
  ]
  static override flags = {
    build: Flags.string({ description: 'Build id recorded with the expectation.', default: 'local' }),
    config: configFlag,
    note: Flags.string({ char: 'm', description: 'Why it is pinned (a bug id).' }),
    stage: Flags.string({ char: 's', description: 'Pin this stage only.' }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation.' }),
  }
  static override summary = "Pin the local build's output as the expected output of a record."

  async run(): Promise<AcceptResult> {
    const f = this.flags
    const config = await loadConfig(f.config, process.cwd())
    const stages = await loadStages(config)
    const set = BundleSet.open([this.args.bundle])
    let result: RecordResult
    let perItem: Map<string, number>
    let rows: ExpectationRow[]
    try {
      const chain = set.loadRecord(set.resolveRecordId(this.args.record))
      if (f.stage !== undefined && !chain.captures.some((c) => c.stage === f.stage)) {
        throw new UsageError(`record ${chain.record.id} has no stage ${JSON.stringify(f.stage)}`)
      }
      const engine = engineOptions(config, stages, {
        mode: 'cascade',
        splice: [],
        allowNet: false,
        timeoutMs: 10_000,
      })
      result = await replayRecord(chain, engine)
      // A pin holds one output per stage, and replay holds it against the stage's last call.
      perItem = unpinnable(calledPerItem(chain.captures), result)
      const calls = f.stage === undefined ? undefined : perItem.get(f.stage)
      if (calls !== undefined) {
        throw new UsageError(
          `cannot pin ${f.stage}: it was called ${calls} times with different inputs in record ${chain.record.id} (once per item), and a pin holds one output per stage`,
        )
      }
      rows = pinFromResult(result, {
        ...(f.stage !== undefined ? { only: f.stage } : {}),
        note: f.note ?? null,
        build: f.build,
        now: Date.now(),
        leave: perItem,
      })
      // A pin that the record would still fail with is refused, not written: `test` would
      // fail on it from then on, whatever the local build does.
      const unmended = rows.length === 0 ? [] : await unmendedPins(chain, rows, engine)
      if (unmended.length > 0) {
        const [first, ...more] = unmended
        throw new RetraceError(
          'E_UNPINNABLE',
          `not pinned: with its pin, ${visibleName(first!.stage)} still fails: ${first!.why}${more.length > 0 ? ` (and ${more.map((u) => visibleName(u.stage)).join(', ')})` : ''}; the bundle is unchanged`,
          ExitCode.input,
        )
      }
    } finally {
      set.close()
    }
    const left = f.stage === undefined ? [...perItem.keys()] : []
    if (left.length > 0)
      this.note(
        `not pinned: ${left.map(visibleName).join(', ')} (called once per item: a pin holds one output per stage)`,
      )
    if (rows.length === 0) throw new UsageError('nothing to pin: no stage of this record ran locally')
    if (!this.jsonEnabled()) {
      this.log(renderRecordResult(result, this.theme, { width: 120, verbose: false, maxChanges: 20 }))
      this.log(
        `\nabout to pin ${rows.length} stage${rows.length === 1 ? '' : 's'} (${rows.map((r) => visibleName(r.stage)).join(', ')}) of ${result.recordId}${f.note ? ` with note ${JSON.stringify(f.note)}` : ''}`,
      )
    }
    const answer = f.yes ? 'yes' : await this.confirm()
    if (answer === 'unasked') {
      throw new UsageError(
        'not pinned: pass --yes to pin without asking (needed when stdin is not a terminal)',
      )
    }
    if (answer === 'interrupted') {
      throw new RetraceError('E_INTERRUPTED', 'not pinned: stopped with Ctrl-C', ExitCode.interrupted)
    }
    const { outputs: _o, ...replay } = result
    if (answer === 'no') {
      // Declining is an answer, not a failure: exit 0, the bundle untouched.
      this.note('not pinned: the bundle is unchanged')
      return { recordId: result.recordId, pinned: [], replay }
    }
    pinExpectations(this.args.bundle, rows, version)
    this.note(
      this.theme.ok(
        `pinned ${rows.length} expectation${rows.length === 1 ? '' : 's'} in ${this.args.bundle}`,
      ),
    )
    return {
      recordId: result.recordId,
      pinned: rows.map((r) => ({ stage: r.stage, note: r.note, build: r.build })),
      replay,
    }
  }

  /**
   * Asks on the terminal. Anything but y or yes is no, end of input (Ctrl-D) too; Ctrl-C
   * stops the command. `unasked` when nobody can answer (stdin is no terminal, or --json).
   */
  private async confirm(): Promise<'yes' | 'no' | 'interrupted' | 'unasked'> {
    if (!process.stdin.isTTY || this.jsonEnabled()) return 'unasked'
    // The diff goes out before the question about it.
    flushOut()
    const rl = createInterface({ input: process.stdin, output: process.stderr })
    // With a listener of its own, Ctrl-C is told apart from Ctrl-D (both would otherwise
    // abort the question alike); the question is then aborted through its signal.
    const stop = new AbortController()
    let interrupted = false
    rl.on('SIGINT', () => {
      interrupted = true
      stop.abort()
    })
    try {
      const text = await rl.question('pin these outputs? [y/N] ', { signal: stop.signal })
      return /^y(es)?$/i.test(text.trim()) ? 'yes' : 'no'
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
      // The prompt's line is left unended.
      toStderr('\n')
      return interrupted ? 'interrupted' : 'no'
    } finally {
      rl.close()
    }
  }
}

/**
 * The stages called once per item that a pin cannot stand for, each with its number of
 * calls. A pin is held against a stage's last call only: it stands for one whose last call
 * differs while every call before it matches (`test --update` pins such a stage too). One
 * whose calls all match needs no pin; one with an earlier call that differs cannot be pinned.
 */
function unpinnable(perItem: ReadonlyMap<string, number>, result: RecordResult): Map<string, number> {
  const left = new Map(perItem)
  for (const s of result.stages) {
    if (!left.has(s.stage)) continue
    const last = s.attempts.at(-1)
    const passes = (status: string): boolean => status === 'matched' || status === 'skipped'
    if (last !== undefined && !passes(last.status) && s.attempts.slice(0, -1).every((a) => passes(a.status)))
      left.delete(s.stage)
  }
  return left
}
