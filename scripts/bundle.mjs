/**
 * The last step of `npm run build`, after `tsc`: every command, the command_not_found hook
 * and the replay worker are rewritten in place as one file each, holding our modules and
 * the small libraries they use. Node resolves, reads and links each ES module on its own;
 * about 90 of them made up a third of the time `retrace test` took to reach its first
 * record (bench/test-workers.ts), and of every command's start-up (C1.ls in bench/).
 *
 * Left as imports:
 * - packages that are large and loaded only when needed (jiti, typescript), native
 *   (better-sqlite3), or loaded by bin/run.js before any command (@oclif/core: one copy,
 *   so commands extend the Command class oclif runs);
 * - the modules bin/run.js loads itself (src/replay/prestart.ts and what it imports): the
 *   workers it starts early and the watchdog that guards them are state one process holds
 *   once, which a second copy inside a command would not see.
 *
 * Every file rewritten sits one folder below dist/, as the modules it inlines do, so a
 * path a module builds from `import.meta.url` (`../bundle/writer-worker.js`) still points
 * where it did.
 */
import { readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../dist')
const shared = new Set(['replay/prestart.js', 'replay/watchdog.js', 'worker-url.js'].map((p) => join(dist, p)))
const entries = [
  ...readdirSync(join(dist, 'commands'))
    .filter((name) => name.endsWith('.js'))
    .map((name) => join(dist, 'commands', name)),
  join(dist, 'hooks/command-not-found.js'),
  join(dist, 'replay/worker.js'),
]

/** Keeps the shared modules as imports, by their path from the file being written. */
const keepShared = (entry) => ({
  name: 'keep-shared',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path)
      if (!shared.has(target) || target === entry) return undefined
      const path = relative(dirname(entry), target)
      return { path: path.startsWith('.') ? path : `./${path}`, external: true }
    })
  },
})

await Promise.all(
  entries.map((entry) =>
    build({
      entryPoints: [entry],
      outfile: entry,
      allowOverwrite: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
      sourcemap: false,
      external: ['@oclif/*', 'better-sqlite3', 'jiti', 'typescript'],
      // CommonJS libraries inlined into an ES module still call require() for built-ins.
      banner: {
        js: "import { createRequire as __retraceCreateRequire } from 'node:module';\nconst require = __retraceCreateRequire(import.meta.url);",
      },
      plugins: [keepShared(entry)],
    }),
  ),
)
// tsc's source maps describe the files as they were before.
for (const entry of entries) rmSync(`${entry}.map`, { force: true })
