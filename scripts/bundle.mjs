/**
 * The last step of `npm run build`, after `tsc`: every command, the command_not_found hook
 * and the replay worker are rewritten in place as one file each, holding our modules and
 * the small libraries they use. Node resolves, reads and links each ES module on its own;
 * about 90 of them made up a third of the time `retrace test` took to reach its first
 * record (bench/test-workers.ts), and of every command's start-up (C1.ls in bench/).
 *
 * Left as imports:
 * - packages that are large and loaded only when needed (jiti, typescript) or native
 *   (better-sqlite3);
 * - the modules bin/run.js loads itself, which hold state one process keeps once: oclif
 *   (src/cli/oclif.ts, itself made one file with oclif and its libraries inlined, so the
 *   commands extend the Command class oclif runs), and src/replay/prestart.ts with what it
 *   imports (the workers started early, the watchdog that guards them).
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
const oclif = join(dist, 'cli/oclif.js')
const shared = new Set(
  ['cli/oclif.js', 'replay/prestart.js', 'replay/watchdog.js', 'worker-url.js'].map((p) => join(dist, p)),
)
const entries = [
  oclif,
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
      if (!shared.has(target)) return undefined
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
      // oclif itself is inlined once, into dist/cli/oclif.js; everything else imports that.
      external: [...(entry === oclif ? [] : ['@oclif/*']), 'better-sqlite3', 'jiti', 'typescript'],
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
