/**
 * --watch: run, then run again whenever one of the files the run depends on (or any
 * source file beside them) changes. Debounced; runs never overlap.
 */
import { type FSWatcher, statSync, watch } from 'node:fs'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RetraceError } from '../errors.js'
import { safeJson } from '../render/format.js'

const sourceFile = /\.(?:[cm]?[jt]s|json)$/

/**
 * `files` names what to watch (asked again before every run, so a config that gains a
 * stage is followed); the watchers are armed before `run`, so an edit made while a run
 * is going on starts another one.
 */
export async function watchFiles(
  files: () => Promise<string[]>,
  run: () => Promise<void>,
  note: (message: string) => void,
): Promise<never> {
  let watchers: FSWatcher[] = []
  let timer: NodeJS.Timeout | undefined
  let running = false
  let again = false

  const arm = (files: string[]): void => {
    for (const w of watchers) w.close()
    const dirs = [...new Set(files.map((f) => dirname(f)))]
    watchers = dirs.map((dir) =>
      watch(dir, { recursive: true }, (_event, name) => {
        if (name === null || !sourceFile.test(String(name)) || String(name).includes('node_modules')) return
        clearTimeout(timer)
        timer = setTimeout(() => void cycle(), 120)
      }),
    )
  }

  const cycle = async (): Promise<void> => {
    if (running) {
      again = true
      return
    }
    running = true
    try {
      note(`\n── replay at ${new Date().toISOString()} ──`)
      await armFrom()
      await run()
    } catch (err) {
      note(`retrace: ${(err as Error).message.split('\n')[0]}`)
    } finally {
      running = false
      if (again) {
        again = false
        void cycle()
      }
    }
  }

  const armFrom = async (): Promise<void> => {
    try {
      arm(await files())
    } catch (err) {
      // A config that does not load (a syntax error mid-edit): keep watching its folder.
      note(`retrace: ${(err as Error).message.split('\n')[0]}`)
      if (watchers.length === 0) arm([`${process.cwd()}/.`])
    }
  }

  await armFrom()
  await run()
  return new Promise<never>(() => {})
}

/**
 * One run's `--json` document as one line of NDJSON, for `replay --watch --json`: a
 * program reading the stream takes each line as it comes. A run that left no whole
 * document (it was killed) gives an error document in its place.
 */
export function jsonLine(text: string, exit: { code: number | null; signal: string | null }): string {
  try {
    return `${safeJson(JSON.parse(text))}\n`
  } catch {
    const how = exit.signal !== null ? `was stopped (${exit.signal})` : `ended with exit code ${exit.code}`
    return `${safeJson({ error: { code: 'E_RUN_INCOMPLETE', message: `the replay ${how} without a whole JSON document` } })}\n`
  }
}

export interface WaitOptions {
  intervalMs: number
  /** Said once per path while it is awaited. */
  note: (message: string) => void
  stopped: () => boolean
  /**
   * How long a file that appeared while awaited may still fail to open: a recorder creates
   * the file, then writes its header and schema.
   */
  settleMs?: number
}

/**
 * Opens files that may not exist yet (`verify --follow` on a bundle a recorder has not
 * started writing): waits while one is missing or empty, saying so once, then opens.
 * A file that was there from the start fails to open at once, as it would without the
 * wait. Undefined when stopped before it could open.
 */
export async function openWhenPresent<T>(
  paths: readonly string[],
  open: () => T,
  options: WaitOptions,
): Promise<T | undefined> {
  const said = new Set<string>()
  let appearedAt: number | undefined
  while (!options.stopped()) {
    // Only a missing file or an empty regular one can still become a bundle; anything else
    // (a FIFO, a device: their size is 0 too) is left to open(), which refuses it at once.
    const waiting = paths.filter((p) => {
      const st = statSync(p, { throwIfNoEntry: false })
      return st === undefined || (st.isFile() && st.size === 0)
    })
    for (const p of waiting) {
      if (!said.has(p)) options.note(`waiting for ${p} to appear (Ctrl-C to stop)`)
      said.add(p)
    }
    if (waiting.length === 0) {
      if (said.size > 0) appearedAt ??= Date.now()
      try {
        return open()
      } catch (err) {
        const settling = appearedAt !== undefined && Date.now() - appearedAt < (options.settleMs ?? 5000)
        if (!settling || !(err instanceof RetraceError)) throw err
      }
    }
    await sleep(options.intervalMs)
  }
  return undefined
}
