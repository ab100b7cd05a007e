/**
 * Exit codes and the typed errors that carry them. Every failure a user can cause has a
 * stable `code`, an exit number and a message that says what happened and what to do.
 */

export const ExitCode = {
  /** Everything matched or passed. */
  ok: 0,
  /** A divergence, a failed check or a failed test was found. */
  found: 1,
  /** Usage or input error: bad flag, missing, corrupt or newer bundle. */
  input: 2,
  /** The config or a stage module could not be loaded. */
  config: 3,
  /** The native SQLite module does not load on this machine. */
  native: 4,
  /** A bug in retrace itself. */
  internal: 5,
  /** Stopped by Ctrl-C at a question (as a shell reports a process SIGINT ended). */
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class RetraceError extends Error {
  override readonly name: string = 'RetraceError'
  constructor(
    readonly code: string,
    message: string,
    readonly exit: ExitCodeValue = ExitCode.input,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** The bundle is missing, unreadable, corrupt, hostile or of a newer format. */
export class BundleError extends RetraceError {
  override readonly name = 'BundleError'
}

/** A flag, argument or path expression is wrong. */
export class UsageError extends RetraceError {
  override readonly name = 'UsageError'
  constructor(message: string, code = 'E_USAGE') {
    super(code, message, ExitCode.input)
  }
}

/** The config or a stage module is wrong. */
export class ConfigError extends RetraceError {
  override readonly name = 'ConfigError'
  constructor(message: string, code = 'E_CONFIG', options?: { cause?: unknown }) {
    super(code, message, ExitCode.config, options)
  }
}

/** Maps any thrown value to the exit code the process should end with. */
export function exitCodeOf(err: unknown): ExitCodeValue {
  if (err instanceof RetraceError) return err.exit
  const oclifExit = (err as { oclif?: { exit?: unknown } } | undefined)?.oclif?.exit
  if (typeof oclifExit === 'number') return oclifExit === 0 ? ExitCode.ok : ExitCode.input
  return ExitCode.internal
}
