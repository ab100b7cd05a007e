import { probeSqlite } from '../bundle/probe.js'
import { RetraceCommand } from '../cli/base-command.js'
import { ExitCode } from '../errors.js'
import { version } from '../version.js'

export interface DoctorResult {
  ok: boolean
  retrace: string
  node: string
  platform: string
  sqlite: Awaited<ReturnType<typeof probeSqlite>>
  fix: string | null
}

export default class Doctor extends RetraceCommand<typeof Doctor> {
  static override description =
    'Loads the native SQLite module (better-sqlite3) and runs a query. When it fails, says how to fix it. Exit code 4 when the module does not load.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]
  static override summary = 'Check that this machine can read and write bundles.'

  async run(): Promise<DoctorResult> {
    const sqlite = await probeSqlite()
    const ok = sqlite.ok && sqlite.json === true
    const result: DoctorResult = {
      ok,
      retrace: version,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      sqlite,
      fix: ok
        ? null
        : 'run `npm rebuild better-sqlite3` (needs python3, make and a C++ compiler), then `retrace doctor` again',
    }
    if (!this.jsonEnabled()) {
      const t = this.theme
      this.log(`retrace ${version} on node ${process.version} (${result.platform})`)
      if (ok)
        this.log(`${t.ok('✓')} better-sqlite3 loads; SQLite ${sqlite.sqliteVersion} with JSON functions`)
      else {
        this.log(`${t.bad('✗')} better-sqlite3 does not work: ${sqlite.error ?? 'JSON functions missing'}`)
        this.log(`  fix: ${result.fix}`)
      }
    }
    if (!ok) process.exitCode = ExitCode.native
    return result
  }
}
