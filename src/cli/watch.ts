/**
 * --watch: run, then run again whenever one of the files the run depends on (or any
 * source file beside them) changes. Debounced; runs never overlap.
 */
import { type FSWatcher, watch } from 'node:fs'
import { dirname } from 'node:path'

const sourceFile = /\.(?:[cm]?[jt]s|json)$/

export async function watchFiles(
  run: () => Promise<string[]>,
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
      arm(await run())
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

  try {
    arm(await run())
  } catch (err) {
    // The first run failing (a syntax error mid-edit) still watches the config's folder.
    note(`retrace: ${(err as Error).message.split('\n')[0]}`)
    arm([process.cwd() + '/.'])
  }
  return new Promise<never>(() => {})
}
