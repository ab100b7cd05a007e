/**
 * The replay-side config, `retrace.config.ts|mts|js|mjs|json|cjs|cts`. Types only here, so the SDK
 * entry can export `defineConfig` without loading any CLI code.
 */
import type { StageFn } from './recorder/recorder.js'

/** A stage as `./path/to/module.ts#exportName` (relative to the config file) or a function. */
export type StageRef = string | StageFn<never, unknown>

export interface DiffRules {
  /** Paths whose differences are ignored (counted and labelled, never silently dropped). */
  ignore?: string[]
  /** Numeric paths compared within an absolute tolerance. */
  tolerance?: Record<string, number>
  /** Arrays matched by an identity field instead of by position. */
  arrayKeys?: Record<string, string>
}

/** An invariant over one record's chain: a function that returns true or a message. */
export type InvariantFn = (chain: Record<string, { input: unknown; output: unknown }>) => true | string

export interface InvariantDef {
  name: string
  /** An expression such as `store.output.available >= 0`, or a function. */
  check: string | InvariantFn
}

export interface RetraceConfig {
  /** The pipeline's stages in order, by the names the recorder used. */
  stages: Record<string, StageRef>
  diff?: DiffRules
  invariants?: (string | InvariantDef)[]
}

/** Types a config file; returns it unchanged. */
export function defineConfig(config: RetraceConfig): RetraceConfig {
  return config
}
