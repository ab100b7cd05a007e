/**
 * The one base command: parses flags, sets up colour, owns the error path. Any failure
 * becomes one line on stderr (or a JSON error document with --json) and the documented
 * exit code; stack traces only with --debug or DEBUG=retrace*.
 */

import { format, inspect } from 'node:util'
import type * as Interfaces from '@oclif/core/interfaces'
import { armInterruptCleanup } from '../bundle/interrupt.js'
import { ExitCode, exitCodeOf, RetraceError } from '../errors.js'
import { safeJson, visibleLine } from '../render/format.js'
import { colorEnabled, makeTheme, type Theme } from '../render/theme.js'
import { escapedFromStage, exitProcess } from '../replay/network-guard.js'
import { armWatchdog } from '../replay/watchdog.js'
import { Command, Flags } from './oclif.js'
import { claimStdout, JsonDocument, markJsonDocument, out, toStderr, unsentStdout } from './stdout.js'

/** Ends a --json document begun on stdout with an error. */
type JsonEnd = (error: { code: string; message: string }) => string

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof RetraceCommand)['baseFlags'] & T['flags']
>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class RetraceCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    debug: Flags.boolean({ description: 'Show stack traces for errors.', helpGroup: 'GLOBAL' }),
    'no-color': Flags.boolean({
      description: 'Do not colour the output (NO_COLOR is honoured too).',
      helpGroup: 'GLOBAL',
    }),
  }

  /**
   * Set while a command streams its --json document: the text that ends the document with
   * an error, so a failure midway still leaves one valid JSON document on stdout.
   */
  protected get endJsonWithError(): JsonEnd | undefined {
    return this.jsonEnd
  }

  protected set endJsonWithError(end: JsonEnd | undefined) {
    this.jsonEnd = end
    if (end !== undefined) markJsonDocument(JsonDocument.open)
  }

  private jsonEnd: JsonEnd | undefined

  /**
   * Set once the command's --json document is complete on stdout: a failure after it (an
   * error a stage's leftover timer throws) is said on stderr, not in a second document.
   */
  protected get jsonComplete(): boolean {
    return this.jsonDone
  }

  protected set jsonComplete(done: boolean) {
    this.jsonDone = done
    if (done) markJsonDocument(JsonDocument.complete)
  }

  private jsonDone = false

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  protected theme: Theme = makeTheme(false)

  override async init(): Promise<void> {
    await super.init()
    const ctor = this.ctor as typeof RetraceCommand
    let parsed: Awaited<ReturnType<typeof this.parse>>
    try {
      parsed = await this.parse({
        args: this.ctor.args,
        baseFlags: ctor.baseFlags,
        enableJsonFlag: this.ctor.enableJsonFlag,
        flags: this.ctor.flags,
        strict: this.ctor.strict,
      })
    } finally {
      // A parse that threw (a usage error) still ran; otherwise, with NODE_ENV=development
      // or test, oclif adds a second stderr line: "did not parse its arguments".
      this.parsed = true
    }
    const { args, flags } = parsed
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    this.theme = makeTheme(
      colorEnabled({
        noColorFlag: flags['no-color'],
        env: process.env,
        isTTY: process.stdout.isTTY === true,
      }),
    )
    // Parsed (help and usage errors are printed): from here on stdout is the report's alone.
    claimStdout()
    // An error thrown by work a stage left running (a timer, a callback, a promise nobody
    // awaits) ends the run as one line naming the stage, not as node's stack trace.
    const escaped = (err: unknown): void => {
      // Whatever was thrown (`null` too) fails the run: never an exit 0 from here.
      const e = escapedFromStage(err)
      const error =
        e instanceof Error ? e : new Error(`a value was thrown that is not an Error: ${String(e)}`)
      // The error path writes synchronously; the run stops here, at once.
      this.catch(error).catch(() => toStderr(`retrace: ${oneLine(error)}\n`))
      exitProcess(
        process.exitCode === undefined || process.exitCode === 0
          ? ExitCode.internal
          : Number(process.exitCode),
      )
    }
    process.on('uncaughtException', escaped)
    process.on('unhandledRejection', escaped)
    // A stage stuck in code that never yields cannot hang the command (src/replay/watchdog.ts).
    armWatchdog(unsentStdout())
    if (this.jsonEnabled()) markJsonDocument(JsonDocument.notBegun)
    // Ctrl-C leaves no private copy of a bundle, and cuts no pin in two (src/bundle/interrupt.ts).
    armInterruptCleanup()
  }

  /** A line of output on stdout (nothing with --json), written past the claim on stdout. */
  override log(message = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return
    out(`${format(typeof message === 'string' ? message : inspect(message), ...args)}\n`)
  }

  /** Sets the exit code for a finding (1) without failing the command. */
  protected found(yes: boolean): void {
    if (yes && (process.exitCode === undefined || process.exitCode === 0)) process.exitCode = ExitCode.found
  }

  /** A message for people, on stderr (silent with --json). */
  protected note(message: string): void {
    if (!this.jsonEnabled()) toStderr(`${message}\n`)
  }

  override logJson(json: unknown): void {
    let text: string
    try {
      text = safeJson(json, 2)
    } catch (err) {
      // oclif prints a command's result after its error handling has run: a result that
      // cannot be written as JSON would otherwise end in a stack trace and exit code 1.
      process.exitCode = ExitCode.internal
      toStderr(`retrace: cannot write the result as JSON: ${oneLine(err)}\n`)
      text = safeJson({ error: { code: 'E_INTERNAL', message: oneLine(err) } }, 2)
    }
    out(`${text}\n`)
    this.jsonComplete = true
  }

  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    // `this.exit(n)` and --help/--version travel as errors; let oclif finish them.
    if (err.oclif?.exit === 0 || (err as { code?: unknown }).code === 'EEXIT') throw err
    const code = exitCodeOf(err)
    process.exitCode = code
    const debug = this.argv.includes('--debug') || /(^|,)retrace(\*|,|$)/.test(process.env.DEBUG ?? '')
    const message = oneLine(err)
    if (this.jsonEnabled()) {
      const error = {
        code: err instanceof RetraceError ? err.code : code === ExitCode.input ? 'E_USAGE' : 'E_INTERNAL',
        message,
      }
      if (this.endJsonWithError !== undefined) out(this.endJsonWithError(error))
      else if (!this.jsonComplete) this.logJson({ error })
    }
    toStderr(`retrace: ${message}\n`)
    if (debug && err.stack) toStderr(`${visibleLine(err.stack).replaceAll('\\x0a', '\n')}\n`)
    else if (code === ExitCode.internal)
      toStderr('retrace: this is a bug in retrace; run with --debug for details\n')
  }
}

/** The first line of an error, with control characters made visible. */
export function oneLine(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err)
  const lines = raw
    .split('\n')
    .map((l) => l.trim())
    // oclif's advice on repeatable flags does not hold here: flags may come anywhere.
    .filter(
      (l) =>
        l.length > 0 &&
        !/^See more help with/.test(l) &&
        !/^Note: .* allows multiple values/.test(l) &&
        !/^Alternatively, you can use "--"/.test(l),
    )
  const first = lines[0] ?? 'unknown error'
  const rest = lines.length > 1 ? ` ${lines.slice(1, 3).join('; ')}` : ''
  return visibleLine(`${first}${rest}`)
}
