/**
 * Replay never reaches production. While a stage runs under replay, opening a socket
 * (net, tls, http, https, fetch), a DNS lookup or query, a UDP socket or a child process
 * fails at once with an error that names the host and port. `--allow-net` leaves them alone.
 *
 * Not covered (see docs/reliability.md): native addons opening sockets themselves, and
 * worker threads a stage starts (they get their own copies of these modules).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { ExitCode, RetraceError } from '../errors.js'

// The CommonJS module objects are the mutable ones; ESM named imports follow them after
// syncBuiltinESMExports().
const require = createRequire(import.meta.url)
const childProcess = require('node:child_process') as typeof import('node:child_process')
const dgram = require('node:dgram') as typeof import('node:dgram')
const dns = require('node:dns') as typeof import('node:dns')
const net = require('node:net') as typeof import('node:net')

export class NetworkBlocked extends Error {
  override readonly name = 'NetworkBlocked'
  readonly code = 'E_REPLAY_OFFLINE'
  constructor(
    readonly stage: string,
    readonly target: string,
  ) {
    super(
      `replay is offline: stage ${stage} tried to reach ${target}; recorded effects are played back instead (only retrace replay --allow-net lets it through)`,
    )
  }
}

/**
 * A stage that calls `process.exit()` under replay: the call throws this instead, so the
 * stage fails with it rather than ending the replay (a stage exiting 0 would otherwise
 * turn a run into a silent pass).
 */
export class StageExited extends Error {
  override readonly name = 'StageExited'
  readonly code = 'E_STAGE_EXIT'
  constructor(where: string, exitCode: unknown) {
    super(
      `${where} called process.exit(${exitCode === undefined ? '' : String(exitCode)}) under replay; retrace does not let the local build end the run`,
    )
  }
}

/**
 * What an uncaught error or unhandled rejection means: thrown by work a stage left running
 * (a timer, a callback, a promise nobody awaits), it fails the run naming the stage
 * (exit 1); anything else is returned as it is. Call from the handler, where the stage's
 * async context is still the current one.
 */
export function escapedFromStage(err: unknown): unknown {
  const stage = running.getStore()?.stage
  if (stage === undefined) return err
  const message = (((err as Error)?.message ?? String(err)).split('\n')[0] ?? '').trim()
  return new RetraceError(
    'E_STAGE_ESCAPED',
    `stage ${stage}: an error escaped its call (from a timer, callback or promise it left running): ${message}`,
    ExitCode.found,
  )
}

/** `process.exit` as node made it, for retrace's own exits. */
const nodeExit = process.exit.bind(process)

/** Ends the process with `code`, wherever it is called from (a stage's async context too). */
export function exitProcess(code?: number): never {
  // Passing undefined would reset process.exitCode to 0.
  return code === undefined ? nodeExit() : nodeExit(code)
}

/** Set while a config or stage module loads: its top-level code runs then. */
let loadingModule: string | undefined

/** Runs `load` (an import of `file`) with `process.exit` from its top-level code refused. */
export async function whileLoading<T>(file: string, load: () => Promise<T>): Promise<T> {
  installNetworkGuard()
  loadingModule = file
  try {
    return await load()
  } finally {
    loadingModule = undefined
  }
}

/**
 * The stage whose code is running, carried through its async work: a stage that timed
 * out and goes on in the background is still refused, and blamed by name.
 */
const running = new AsyncLocalStorage<{ stage: string; blocked: NetworkBlocked[]; allowNet: boolean }>()
let installed = false

/** Whether the code running now is a stage's with the network closed. */
function closed(): boolean {
  const scope = running.getStore()
  return scope !== undefined && !scope.allowNet
}

function targetOf(args: unknown[]): string {
  const [a, b] = args
  if (typeof a === 'object' && a !== null) {
    const o = a as { host?: unknown; hostname?: unknown; port?: unknown; path?: unknown }
    if (typeof o.path === 'string') return o.path
    return `${String(o.host ?? o.hostname ?? 'localhost')}:${String(o.port ?? '?')}`
  }
  if (typeof a === 'string' && !/^\d+$/.test(a)) return a
  return `${typeof b === 'string' ? b : 'localhost'}:${String(a)}`
}

function block(target: string): NetworkBlocked {
  const scope = running.getStore()
  const err = new NetworkBlocked(scope?.stage ?? '?', target)
  scope?.blocked.push(err)
  return err
}

/**
 * Patches the network entry points once per process; they check the running stage on each
 * call, so outside a stage nothing changes. Called before the config and the stage modules
 * load: a module that keeps a reference while it loads (`const { spawn } =
 * require('node:child_process')`, `const lookup = dns.lookup`) keeps the guarded one.
 */
export function installNetworkGuard(): void {
  if (installed) return
  installed = true
  const exit = process.exit
  process.exit = function (this: unknown, ...args: unknown[]) {
    const stage = running.getStore()?.stage
    if (stage !== undefined) throw new StageExited(`stage ${stage}`, args[0])
    if (loadingModule !== undefined) throw new StageExited(loadingModule, args[0])
    // As called: `process.exit()` keeps process.exitCode, `process.exit(undefined)` does not.
    return (exit as (...a: unknown[]) => never).apply(process, args)
  } as typeof process.exit
  const connect = net.Socket.prototype.connect
  net.Socket.prototype.connect = function (this: import('node:net').Socket, ...args: unknown[]) {
    if (closed()) throw block(targetOf(Array.isArray(args[0]) ? (args[0] as unknown[]) : args))
    return (connect as (...a: unknown[]) => unknown).apply(this, args)
  } as typeof connect
  const realFetch = globalThis.fetch
  if (typeof realFetch === 'function') {
    globalThis.fetch = ((input: unknown, init?: unknown) => {
      if (closed()) {
        let target = String(input)
        try {
          const u = new URL(input instanceof Request ? input.url : String(input))
          target = `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`
        } catch {}
        return Promise.reject(block(target))
      }
      return realFetch(input as Parameters<typeof fetch>[0], init as Parameters<typeof fetch>[1])
    }) as typeof fetch
  }
  const lookup = dns.lookup
  dns.lookup = ((hostname: string, ...rest: unknown[]) => {
    if (closed()) throw block(`${hostname} (DNS lookup)`)
    return (lookup as (...a: unknown[]) => unknown)(hostname, ...rest)
  }) as typeof dns.lookup
  const plookup = dns.promises.lookup
  dns.promises.lookup = ((hostname: string, ...rest: unknown[]) => {
    if (closed()) return Promise.reject(block(`${hostname} (DNS lookup)`))
    return (plookup as (...a: unknown[]) => unknown)(hostname, ...rest)
  }) as typeof dns.promises.lookup
  guardResolvers()
  const createSocket = dgram.createSocket
  dgram.createSocket = ((...args: unknown[]) => {
    if (closed()) throw block('a UDP socket')
    return (createSocket as (...a: unknown[]) => unknown)(...args)
  }) as typeof dgram.createSocket
  for (const name of [
    'spawn',
    'exec',
    'execFile',
    'fork',
    'spawnSync',
    'execSync',
    'execFileSync',
  ] as const) {
    const real = childProcess[name] as (...a: unknown[]) => unknown
    ;(childProcess as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      if (closed()) throw block(`a child process (${String(args[0])})`)
      return real(...args)
    }
  }
  syncBuiltinESMExports()
}

/**
 * `dns.resolve*`, `dns.reverse` and `dns.lookupService`, on the module (callback and
 * promises) and on `Resolver` objects a stage makes: c-ares sends these queries from C++,
 * past the patched `dgram`, to whatever DNS server the stage names.
 */
function guardResolvers(): void {
  const names = (o: object): string[] =>
    Object.keys(o).filter(
      (n) =>
        /^(resolve|reverse$|lookupService$)/.test(n) &&
        typeof (o as Record<string, unknown>)[n] === 'function',
    )
  const what = (name: string, args: unknown[]): string => `${String(args[0])} (DNS ${name})`
  const patch = (target: object, promised: boolean): void => {
    const o = target as Record<string, unknown>
    for (const name of names(target)) {
      const real = o[name] as (...a: unknown[]) => unknown
      o[name] = function (this: unknown, ...args: unknown[]) {
        if (closed()) {
          const err = block(what(name, args))
          if (promised) return Promise.reject(err)
          throw err
        }
        return real.apply(this, args)
      }
    }
  }
  patch(dns, false)
  patch(dns.promises, true)
  patch(dns.Resolver.prototype, false)
  patch(dns.promises.Resolver.prototype, true)
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown }

/**
 * Runs `fn` with the network closed for `stage` and waits for it. Never throws: returns the
 * outcome and every attempt the guard refused (even ones the stage caught).
 */
export async function offline<T>(
  stage: string,
  fn: () => Promise<T>,
): Promise<{ outcome: Outcome<T>; blocked: NetworkBlocked[] }> {
  const r = callStage(stage, fn, false)
  let outcome: Outcome<T>
  try {
    outcome = r.outcome.ok ? { ok: true, value: await r.outcome.value } : r.outcome
  } catch (error) {
    outcome = { ok: false, error }
  }
  return { outcome, blocked: [...r.blocked] }
}

/**
 * Calls `fn` at once as `stage`, for it and for any async work it starts, with the network
 * closed unless `allowNet`. Does not wait for a promise it returns. Never throws: a throw is
 * the outcome. `blocked` keeps collecting while that async work runs.
 */
export function callStage<T>(
  stage: string,
  fn: () => T,
  allowNet: boolean,
): { outcome: Outcome<T>; blocked: NetworkBlocked[] } {
  installNetworkGuard()
  const scope = { stage, blocked: [] as NetworkBlocked[], allowNet }
  let outcome: Outcome<T>
  try {
    outcome = { ok: true, value: running.run(scope, fn) }
  } catch (error) {
    outcome = { ok: false, error }
  }
  return { outcome, blocked: scope.blocked }
}
