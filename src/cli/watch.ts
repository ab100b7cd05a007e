/**
 * --watch: run, then run again whenever one of the files the run depends on (or any
 * source file beside them) changes. Debounced; runs never overlap.
 */
import { type FSWatcher, watch } from 'node:fs'
import { dirname } from 'node:path'

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
