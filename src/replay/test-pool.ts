/** Spreads one bundle's records over worker threads for `retrace test --workers`. */
import { Worker } from 'node:worker_threads'
import { type ExitCodeValue, RetraceError } from '../errors.js'
import { workerUrl } from '../worker-url.js'
import type { TestPool } from './regress.js'
import type { RunOptions } from './run.js'
import type { FromTestWorker, TestWorkerInit } from './test-worker.js'

export function threadPool(
  workers: number,
  config: string | undefined,
  run: RunOptions,
  keepOutputs: boolean,
): TestPool {
  return {
    minRecords: workers * 50,
    run(path, ids, onResult) {
      const url = workerUrl(import.meta.url, './test-worker.js')
      const shares: string[][] = Array.from({ length: workers }, () => [])
      for (const [i, id] of ids.entries()) shares[i % workers]!.push(id)
      return new Promise<void>((resolve, reject) => {
        let running = 0
        let failed = false
        const threads: Worker[] = []
        for (const share of shares) {
          if (share.length === 0) continue
          const init: TestWorkerInit = { path, ids: share, config, cwd: process.cwd(), run, keepOutputs }
          const w = new Worker(url, { workerData: init })
          threads.push(w)
          running++
          w.on('message', (msg: FromTestWorker) => {
            if (msg.type === 'results') for (const r of msg.items) onResult(r.result, r.stale)
            else if (msg.type === 'error' && !failed) {
              failed = true
              for (const t of threads) void t.terminate()
              reject(new RetraceError(msg.code, msg.message, msg.exit as ExitCodeValue))
            }
          })
          w.on('error', (err) => {
            if (failed) return
            failed = true
            for (const t of threads) void t.terminate()
            reject(new RetraceError('E_WORKER', `a test worker failed: ${err.message}`, 5))
          })
          w.on('exit', () => {
            if (--running === 0 && !failed) resolve()
          })
        }
        if (running === 0) resolve()
      })
    },
  }
}
