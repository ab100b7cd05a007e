/**
 * Temp dirs for tests that clean themselves up. Call inside a test or a `beforeEach`:
 * the directory is removed when that test finishes, pass or fail. (`onTestFinished`
 * callbacks run in reverse order, so anything registered after the dir, such as a
 * recorder's close, runs before the dir goes.)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'

/** Creates a fresh directory under the OS temp dir, removed when the current test ends. */
export function tempDir(prefix = 'retrace-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onTestFinished(() => {
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** A path named `name` inside a fresh self-cleaning temp dir (the file is not created). */
export function tempPath(name = 'bundle.sqlite', prefix?: string): string {
  return join(tempDir(prefix), name)
}
