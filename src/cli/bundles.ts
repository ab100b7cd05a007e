/**
 * Commands that read several bundles as one (`replay`, `show`, `why`, `report`, `extract`)
 * take them as their leading positionals: a word naming an existing file is a bundle, a
 * folder names every bundle under it, and the first word that is neither starts the
 * record ids (and whatever else the command takes after them).
 */
import { realpathSync, statSync } from 'node:fs'
import { BundleSet } from '../bundle/index.js'
import { BundleError, UsageError } from '../errors.js'
import { discoverBundles } from '../replay/regress.js'

export interface BundleWords {
  /** The bundles, in the order given (a folder's in name order), each once. */
  bundles: string[]
  /** The words that named them (files and folders), to say what is being read. */
  named: string[]
  /** The positionals after them. */
  rest: string[]
}

/**
 * Splits positionals into bundles and the rest. The first word is always a bundle, so a
 * single bundle that cannot be read fails as it always has (with the reader's one line). A
 * later word that looks like a path (it holds a `/` or ends in .sqlite or .bundle) is taken
 * for a record id only when no such file is there and it names a record in the bundles
 * before it (an id given to the SDK as `recordId` may hold a `/`); otherwise, missing, it is
 * an input error naming it, and present, it came after a record id.
 */
export function splitBundleWords(words: readonly string[]): BundleWords {
  const bundles: string[] = []
  const seen = new Set<string>()
  const add = (path: string): void => {
    // One file named twice (or by a folder and by name) is read once: its parts would
    // otherwise be stitched into the same record twice.
    const real = realOf(path)
    if (seen.has(real)) return
    seen.add(real)
    bundles.push(path)
  }
  // Opened only to ask about a path-like word no file answers to, and then once.
  let set: BundleSet | null | undefined
  const namesRecord = (word: string): boolean => {
    if (set === undefined) {
      try {
        set = BundleSet.open(bundles)
      } catch {
        // No record to name: the missing path is said first, as before the bundles are read.
        set = null
      }
    }
    if (set === null) return false
    try {
      set.resolveRecordId(word)
      return true
    } catch (err) {
      // A prefix of several records' ids is a record id too, ambiguous: said as such later.
      return err instanceof BundleError && err.code === 'E_AMBIGUOUS_RECORD'
    }
  }
  const missing = (word: string): BundleError => new BundleError('E_BUNDLE_MISSING', `${word}: no such file`)
  try {
    let i = 0
    for (; i < words.length; i++) {
      const word = words[i]!
      const st = statOf(word)
      if (st === undefined) {
        if (i === 0) add(word)
        else if (!looksLikePath(word) || namesRecord(word)) break
        else throw missing(word)
      } else if (st.isDirectory()) {
        const found = discoverBundles([word])
        if (found.length === 0) {
          throw new BundleError(
            'E_NOT_BUNDLE',
            `${word}: is a directory, and no bundle (.sqlite, .bundle) is under it`,
          )
        }
        for (const f of found) add(f)
      } else add(word)
    }
    const named = words.slice(0, i)
    const rest = words.slice(i)
    for (const word of rest) {
      if (!looksLikePath(word)) continue
      if (statOf(word) !== undefined)
        throw new UsageError(`${word}: name every bundle before the first record id`)
      if (!namesRecord(word)) throw missing(word)
    }
    return { bundles, named, rest }
  } finally {
    set?.close()
  }
}

/**
 * For commands whose every positional is a bundle (`ls`, `verify`): a folder names every
 * bundle under it, as for the commands above; each file is read once. A folder with no
 * bundle under it is an input error, unless `emptyFolders` (`verify --follow`, which waits
 * for one to appear).
 */
export function bundlePaths(words: readonly string[], options: { emptyFolders?: boolean } = {}): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const word of words) {
    const found = statOf(word)?.isDirectory() === true ? discoverBundles([word]) : [word]
    if (found.length === 0 && options.emptyFolders !== true)
      throw new BundleError(
        'E_NOT_BUNDLE',
        `${word}: is a directory, and no bundle (.sqlite, .bundle) is under it`,
      )
    for (const path of found) {
      const real = realOf(path)
      if (seen.has(real)) continue
      seen.add(real)
      out.push(path)
    }
  }
  return out
}

function looksLikePath(word: string): boolean {
  return word.includes('/') || word.endsWith('.sqlite') || word.endsWith('.bundle')
}

function statOf(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

function realOf(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/** The words after the bundles, when a command takes at most `most` of them. */
export function atMost(rest: readonly string[], most: number): (string | undefined)[] {
  if (rest.length > most) throw new UsageError(`Unexpected argument: ${rest[most]}`)
  return Array.from({ length: most }, (_, i) => rest[i])
}
