/**
 * Finding and loading the replay config and the stage modules it names. TypeScript and
 * JavaScript are loaded without a build step: `.mjs` by node itself, the rest through jiti
 * (a maintained loader).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Jiti } from 'jiti'
import { PathSyntaxError, parseJson } from '../codec/index.js'
import { type CompiledRules, noRules } from '../compare/diff.js'
import { compileRules } from '../compare/rules.js'
import type { RetraceConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { StageFn } from '../recorder/recorder.js'
import { unwrapStage } from '../stage-mark.js'
import { installNetworkGuard, whileLoading } from './network-guard.js'

export const configNames = [
  'retrace.config.ts',
  'retrace.config.mts',
  'retrace.config.js',
  'retrace.config.mjs',
  'retrace.config.json',
  // CommonJS, after the names above so a folder holding both keeps the config it had.
  'retrace.config.cjs',
  'retrace.config.cts',
] as const

/** `retrace.config.{ts,mts,...}`, the names above, for messages. */
const configPattern = `retrace.config.{${configNames.map((n) => n.slice('retrace.config.'.length)).join(',')}}`

export interface LoadedConfig {
  /** Absolute path of the config file; undefined when none was found. */
  path: string | undefined
  config: RetraceConfig
  rules: CompiledRules
  /** Files that define this config (the config file and every stage module), for --watch. */
  files: string[]
}

/** The config file in this folder (the first of `configNames` there), if there is one. */
function configIn(dir: string): string | undefined {
  for (const name of configNames) {
    const candidate = join(dir, name)
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return undefined
}

/** Looks for a config file from `start` upward. */
export function findConfig(start: string): string | undefined {
  let dir = resolve(start)
  while (true) {
    const found = configIn(dir)
    if (found !== undefined) return found
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

let jiti: Promise<Jiti> | undefined

/**
 * Imports a config or stage module. An `.mjs` file is standard ES module JavaScript, which
 * node imports as it is; everything else (TypeScript, `.js` of either module kind, `.cjs`)
 * goes through jiti, loaded only then: importing jiti costs every process ~50 ms, twice per
 * `retrace test --workers` run (C3 and test in bench/).
 */
async function importModule(file: string): Promise<unknown> {
  // Its top-level code may not end the process (`process.exit` throws while it loads).
  return whileLoading(`module ${file}`, () =>
    loadedInTime(async () => {
      if (file.endsWith('.mjs')) return import(pathToFileURL(file).href)
      jiti ??= import('jiti').then(({ createJiti }) => createJiti(import.meta.url, { interopDefault: false }))
      return (await jiti).import(pathToFileURL(file).href)
    }),
  )
}

/** How long a config or stage module may take to load: its top-level code may await. */
const loadLimitMs = 30_000

/**
 * `load()`, failed when its top-level code awaits something that never settles: at once
 * when nothing else is left to run (node would end the process with status 13 and no word),
 * after `loadLimitMs` otherwise (replay's worker processes keep the process alive).
 */
async function loadedInTime<T>(load: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onIdle: (() => void) | undefined
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `it has not finished loading after ${loadLimitMs / 1000} s (a top-level await that never settles?)`,
          ),
        ),
      loadLimitMs,
    )
    timer.unref()
    onIdle = () =>
      reject(
        new Error('it never finished loading: its top-level code awaits something that can never settle'),
      )
    process.once('beforeExit', onIdle)
  })
  try {
    return await Promise.race([load(), stuck])
  } finally {
    clearTimeout(timer)
    if (onIdle !== undefined) process.off('beforeExit', onIdle)
  }
}

function validate(raw: unknown, path: string): RetraceConfig {
  const c = (raw as { default?: unknown })?.default ?? raw
  if (typeof c !== 'object' || c === null) throw new ConfigError(`${path}: the config must export an object`)
  const stages = (c as { stages?: unknown }).stages
  if (typeof stages !== 'object' || stages === null || Array.isArray(stages)) {
    throw new ConfigError(
      `${path}: the config needs a "stages" object mapping stage names to "./module.ts#export"`,
    )
  }
  for (const [name, ref] of Object.entries(stages)) {
    if (typeof ref !== 'string' && typeof ref !== 'function') {
      throw new ConfigError(
        `${path}: stage ${JSON.stringify(name)} must be "./module.ts#export" or a function`,
      )
    }
  }
  return c as RetraceConfig
}

/**
 * The config file `explicit` names: a file, or a folder holding one of `configNames` (the
 * first in that order, as the upward search takes them).
 */
function explicitConfig(explicit: string, cwd: string): string {
  const given = resolve(cwd, explicit)
  if (!existsSync(given)) throw new ConfigError(`config ${given} does not exist`, 'E_CONFIG_MISSING')
  if (!statSync(given).isDirectory()) return given
  const found = configIn(given)
  if (found === undefined) {
    throw new ConfigError(`no ${configPattern} in ${given}, the folder --config names`, 'E_CONFIG_MISSING')
  }
  return found
}

/** Loads the config at `explicit` (a file, or a folder holding one), or the one found from `cwd` upward. */
export async function loadConfig(explicit: string | undefined, cwd: string): Promise<LoadedConfig> {
  // Before anything the config imports loads (it may import stage functions itself).
  installNetworkGuard()
  const path = explicit !== undefined ? explicitConfig(explicit, cwd) : findConfig(cwd)
  if (path === undefined) {
    throw new ConfigError(`no ${configPattern} in ${cwd} or above; pass --config FILE`, 'E_CONFIG_MISSING')
  }
  let raw: unknown
  try {
    raw = path.endsWith('.json') ? parseJson(readFileSync(path, 'utf8')) : await importModule(path)
  } catch (err) {
    throw new ConfigError(`cannot load config ${path}: ${loadFailure(err, path)}`, 'E_CONFIG_LOAD', {
      cause: err,
    })
  }
  let config: RetraceConfig
  try {
    config = validate(raw, path)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    // A getter or a Proxy in the config that throws when it is read.
    throw new ConfigError(`${path}: reading the config threw: ${loadFailure(err, path)}`, 'E_CONFIG_LOAD', {
      cause: err,
    })
  }
  let rules: CompiledRules = noRules
  try {
    rules = compileRules(config.diff)
  } catch (err) {
    if (err instanceof PathSyntaxError)
      throw new ConfigError(`${path}: diff rules: ${err.message}`, 'E_CONFIG_PATH')
    if (err instanceof ConfigError) throw new ConfigError(`${path}: ${err.message}`, err.code)
    throw err
  }
  const files = [path]
  for (const ref of Object.values(config.stages)) {
    if (typeof ref === 'string') files.push(resolveModule(ref, dirname(path)).file)
  }
  return { path, config, rules, files }
}

/**
 * Why `file` failed to load, on one line, with the line and column of a syntax error when
 * they can be had: jiti puts them on the message's second line; node's own ESM loader
 * keeps them out of the error, so `node --check` (run only on this failure path) says them.
 */
function loadFailure(err: unknown, file: string): string {
  const lines = ((err as Error)?.message ?? String(err)).split('\n')
  const first = (lines[0] ?? '').trim()
  const at = lines
    .slice(1)
    .map((l) => /^\s*(.*):(\d+):(\d+)\s*$/.exec(l))
    .find((m) => m !== null)
  if (at) return `${first} (${at[1] === file ? '' : `${at[1]} `}line ${at[2]}, column ${at[3]})`
  if (err instanceof SyntaxError && file.endsWith('.mjs')) {
    // Its first line is "<file>:<line>".
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 })
    const line = /:(\d+)\s*$/.exec((check.stderr ?? '').split('\n')[0] ?? '')
    if (line) return `${first} (line ${line[1]})`
  }
  return first
}

function resolveModule(ref: string, base: string): { file: string; exportName: string } {
  const hash = ref.lastIndexOf('#')
  const spec = hash >= 0 ? ref.slice(0, hash) : ref
  const exportName = hash >= 0 ? ref.slice(hash + 1) : 'default'
  return { file: isAbsolute(spec) ? spec : resolve(base, spec), exportName }
}

/** A `class` (which throws when called without `new`), told from a function by its source. */
function isClass(fn: unknown): boolean {
  try {
    return typeof fn === 'function' && /^class\b/.test(Function.prototype.toString.call(fn))
  } catch {
    return false
  }
}

export type LoadedStage = { name: string; fn: StageFn<unknown, unknown> } | { name: string; missing: string }

/**
 * Loads every stage the config names. A stage that cannot be loaded is a ConfigError;
 * a stage the recording has but the config lacks is reported by the engine, not here.
 */
export async function loadStages(loaded: LoadedConfig): Promise<Map<string, StageFn<unknown, unknown>>> {
  installNetworkGuard()
  const out = new Map<string, StageFn<unknown, unknown>>()
  const base = loaded.path === undefined ? process.cwd() : dirname(loaded.path)
  for (const [name, ref] of Object.entries(loaded.config.stages)) {
    if (typeof ref === 'function') {
      const fn = unwrapStage(ref)
      if (isClass(fn))
        throw new ConfigError(
          `stage ${name}: the config gives a class, not a stage function (input, ctx) => output`,
          'E_STAGE_EXPORT',
        )
      out.set(name, fn as StageFn<unknown, unknown>)
      continue
    }
    const { file, exportName } = resolveModule(ref, base)
    if (!existsSync(file)) {
      throw new ConfigError(
        `stage ${name}: module ${file} does not exist (from ${JSON.stringify(ref)})`,
        'E_STAGE_MISSING',
      )
    }
    let mod: Record<string, unknown>
    try {
      mod = (await importModule(file)) as Record<string, unknown>
    } catch (err) {
      throw new ConfigError(`stage ${name}: cannot load ${file}: ${loadFailure(err, file)}`, 'E_STAGE_LOAD', {
        cause: err,
      })
    }
    // A stage the module exports as the recorder wrapped it is run unwrapped.
    const fn = unwrapStage(mod[exportName])
    const names = (): string => {
      const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function' && !isClass(mod[k]))
      return fns.length ? ` (it exports ${fns.join(', ')})` : ''
    }
    if (typeof fn !== 'function') {
      throw new ConfigError(
        `stage ${name}: ${file} has no function export ${JSON.stringify(exportName)}${names()}`,
        'E_STAGE_EXPORT',
      )
    }
    // A class cannot be called as a stage: every record would fail in it with a TypeError,
    // read as a regression, when the config names the wrong thing.
    if (isClass(fn)) {
      throw new ConfigError(
        `stage ${name}: export ${JSON.stringify(exportName)} of ${file} is a class, not a stage function; name a function (input, ctx) => output${names()}`,
        'E_STAGE_EXPORT',
      )
    }
    out.set(name, fn as StageFn<unknown, unknown>)
  }
  return out
}
