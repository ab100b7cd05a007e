/**
 * Colour for the terminal. Off when stdout is not a TTY, when NO_COLOR is set (chalk on
 * its own ignores NO_COLOR), or with --no-color; FORCE_COLOR turns it on.
 */
import { Chalk, type ChalkInstance } from 'chalk'

export interface Theme {
  ok: (s: string) => string
  bad: (s: string) => string
  warn: (s: string) => string
  dim: (s: string) => string
  bold: (s: string) => string
  stage: (s: string) => string
  added: (s: string) => string
  removed: (s: string) => string
  info: (s: string) => string
}

export interface ColorEnv {
  noColorFlag: boolean
  env: Readonly<Record<string, string | undefined>>
  isTTY: boolean
}

/** Decides whether to colour, from flags, environment and the terminal. */
export function colorEnabled({ noColorFlag, env, isTTY }: ColorEnv): boolean {
  if (noColorFlag) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  return isTTY
}

export function makeTheme(enabled: boolean): Theme {
  const c: ChalkInstance = new Chalk({ level: enabled ? 1 : 0 })
  return {
    ok: c.green,
    bad: c.red,
    warn: c.yellow,
    dim: c.dim,
    bold: c.bold,
    stage: c.cyan.bold,
    added: c.green,
    removed: c.red,
    info: c.blue,
  }
}

export const plain: Theme = makeTheme(false)
