/**
 * What an interrupt (Ctrl-C, SIGTERM) must not leave behind: the private copies a read
 * makes of a bundle (whole, unredacted) and the temporary file `extract` builds, and a
 * pin cut in two. Files registered here are removed on SIGINT and SIGTERM, and at exit.
 *
 * Only a process that arms it (the CLI and its replay workers) listens for signals: a
 * process that embeds retrace (vitest) keeps its own handling of Ctrl-C. While nothing is
 * registered no listener is installed, so Ctrl-C keeps its default effect; while one is,
 * a signal is taken between turns of the event loop, which also means a synchronous
 * write (a pin, an extract) finishes before the process goes.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const temps = new Set<string>()
/** Synchronous writes running now (nested ones included). */
let writing = 0
let armed = false
let listening = false
let removal: NodeJS.Immediate | undefined

function removeTemps(): void {
  for (const path of temps) {
    try {
      rmSync(path, { recursive: true, force: true })
    } catch {
      // Best effort on the way out: the next file is still removed.
    }
  }
  temps.clear()
}

function stopListening(): void {
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  listening = false
}

function onSignal(signal: NodeJS.Signals): void {
  removeTemps()
  stopListening()
  // With no other listener, the signal ends the process as it would have (exit status 130
  // for SIGINT); a command that handles it itself (verify --follow) still does.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function update(): void {
  if (!armed) return
  if (temps.size > 0 || writing > 0) {
    if (removal !== undefined) clearImmediate(removal)
    removal = undefined
    if (!listening) {
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
      listening = true
    }
  } else if (listening && removal === undefined) {
    // A signal that came during the synchronous work that just ended waits to be taken in
    // the event loop's next poll: stop listening only after one (two check phases have a
    // poll between them; one may not, and the signal would be lost).
    removal = setImmediate(() => {
      removal = setImmediate(() => {
        removal = undefined
        if (temps.size === 0 && writing === 0 && listening) stopListening()
      })
    })
  }
}

/** Lets this process remove registered files when interrupted and at exit. */
export function armInterruptCleanup(): void {
  if (armed) return
  armed = true
  process.on('exit', removeTemps)
  update()
}

/** A file or folder to remove if the process is interrupted before `releaseTemp`. */
export function holdTemp(path: string): void {
  temps.add(path)
  update()
}

/** The file is gone or kept on purpose: no longer removed on an interrupt. */
export function releaseTemp(path: string): void {
  temps.delete(path)
  update()
}

/**
 * A new folder in the temporary directory, held from the moment it exists: no signal can
 * come between making it and holding it. Give it back with `removeTemp`.
 */
export function makeTempDir(prefix: string): string {
  return withoutInterrupts(() => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    holdTemp(dir)
    return dir
  })
}

/** Removes a held file or folder, and no longer holds it. */
export function removeTemp(path: string): void {
  rmSync(path, { recursive: true, force: true })
  releaseTemp(path)
}

/**
 * Runs a synchronous write so an interrupt cannot cut it in two: in an armed process a
 * SIGINT or SIGTERM that comes during it is taken after it.
 */
export function withoutInterrupts<T>(write: () => T): T {
  writing++
  update()
  try {
    return write()
  } finally {
    writing--
    update()
  }
}
