/**
 * Replay isolation: every way a stage can reach the network from Node, tried by a local
 * build under `retrace replay` (spawned as a user runs it) against servers on loopback that
 * count what arrives. A way is covered when the stage fails with E_REPLAY_OFFLINE and no
 * server saw anything; the ways Node offers that the guard does not cover are listed in
 * docs/reliability.md, and this test keeps that list true.
 *
 * test/e2e/replay-playback.test.ts checks fetch, http and a socket, and --allow-net; this
 * is the whole list.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { parseReplayJson, record, runChain, type Workspace, workspace } from '../replay/fixture.js'
import { childrenDir, reportFault, requireBuild } from './kit.js'

const udpWays = [
  'dns.resolve4 (c-ares)',
  'dns.promises.Resolver',
  'dns.resolve4 on the module',
  'dns.promises.resolveTxt on the module',
  'dgram.createSocket + send',
  'dgram.createSocket saved at load',
]
/** Ways that open nothing a server could count: judged by the refusal alone. */
const localOnly = ['dns.lookup', 'dns.promises.lookup', 'dns.lookup saved at load']

/** Not covered, by design or by Node: see docs/reliability.md. */
const notCovered = new Set([
  // A worker has its own copies of net, dns, dgram and child_process.
  'a worker thread',
  // Module loading runs outside any stage: the guard only refuses while a stage runs.
  'a connection opened while the stage module loads',
])

const atLoad = 'a connection opened while the stage module loads'
const atLoadStage = `import net from 'node:net'
const ports = JSON.parse(process.env.RETRACE_FAULT_PORTS ?? '{}')
net.connect(ports.tcp[${JSON.stringify(atLoad)}], '127.0.0.1').on('connect', function () { this.end() }).on('error', () => {})
export function reachAtLoad(input) {
  return { via: input.via, reached: false }
}
`

/** A TypeScript stage loaded through jiti, whose named imports bind when the module loads. */
const tsStage = `import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'

const ports = JSON.parse(process.env.RETRACE_FAULT_PORTS ?? '{}')
const script = (port: number): string =>
  \`require('node:net').connect(\${port}, '127.0.0.1').on('connect', function () { this.end() }).on('error', () => {})\`

export async function reachTs(input: { via: string }): Promise<{ via: string; reached: boolean }> {
  await new Promise<void>((resolve, reject) => {
    if (input.via === 'TS stage: import { spawn }') {
      spawn(process.execPath, ['-e', script(ports.tcp[input.via])]).on('exit', () => resolve()).on('error', reject)
    } else if (input.via === 'TS stage: import { connect }') {
      connect(ports.tcp[input.via], '127.0.0.1').on('connect', () => resolve()).on('error', reject)
    } else {
      const s = createSocket('udp4')
      s.send(Buffer.from('x'), ports.udp[input.via], '127.0.0.1', (err) => (s.close(), err ? reject(err) : resolve()))
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  return { via: input.via, reached: true }
}
`
const tsWays = [
  'TS stage: import { spawn }',
  'TS stage: import { connect }',
  'TS stage: import { createSocket }',
]

let ws: Workspace
const tcpServers: Server[] = []
const udpSockets: UdpSocket[] = []
const hits = new Map<string, number>()
const ports: { tcp: Record<string, number>; udp: Record<string, number> } = { tcp: {}, udp: {} }
let ways: string[] = []

beforeAll(async () => {
  requireBuild()
  ways = ((await import(join(childrenDir, 'reach.mjs'))) as { wayNames: string[] }).wayNames
  for (const via of [...ways, ...tsWays, atLoad]) {
    hits.set(via, 0)
    if (udpWays.includes(via) || via === 'TS stage: import { createSocket }') {
      const s = createSocket('udp4')
      s.on('message', () => hits.set(via, hits.get(via)! + 1))
      await new Promise<void>((done) => s.bind(0, '127.0.0.1', done))
      ports.udp[via] = s.address().port
      udpSockets.push(s)
    } else if (!localOnly.includes(via)) {
      const server = createServer((sock) => {
        hits.set(via, hits.get(via)! + 1)
        sock.destroy()
      })
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
      ports.tcp[via] = (server.address() as { port: number }).port
      tcpServers.push(server)
    }
  }
  ws = workspace('retrace-faults-isolation-')
  ws.write('reach-ts.ts', tsStage)
  ws.write('reach-at-load.mjs', atLoadStage)
  ws.write(
    'retrace.config.mjs',
    `export default { stages: { reach: ${JSON.stringify(`${join(childrenDir, 'reach.mjs')}#reach`)}, ` +
      `reachTs: './reach-ts.ts#reachTs', reachAtLoad: './reach-at-load.mjs#reachAtLoad' } }\n`,
  )
})

afterAll(async () => {
  ws?.remove()
  for (const s of udpSockets) s.close()
  await Promise.all(tcpServers.map((s) => new Promise((done) => s.close(done))))
})

describe('replay isolation', () => {
  it('refuses every covered way to the network, and the servers see nothing', {
    timeout: 10 * 60_000,
  }, async () => {
    const bundle = ws.path('prod.sqlite')
    const production = async (input: unknown) => ({ via: (input as { via: string }).via, reached: false })
    const ids = new Map<string, string>()
    await record(bundle, async (recorder) => {
      for (const via of ways)
        ids.set(via, (await runChain(recorder, via, { via }, [['reach', production]])).recordId)
      for (const via of tsWays)
        ids.set(via, (await runChain(recorder, via, { via }, [['reachTs', production]])).recordId)
      ids.set(
        atLoad,
        (await runChain(recorder, atLoad, { via: atLoad }, [['reachAtLoad', production]])).recordId,
      )
    })
    const r = await runCli(['replay', bundle, '--json', '--timeout', '5000'], {
      cwd: ws.dir,
      env: { RETRACE_FAULT_PORTS: JSON.stringify(ports) },
      timeoutMs: 5 * 60_000,
    })
    expect(r.signal, r.stderr).toBeNull()
    const doc = parseReplayJson(r)
    // Let late arrivals (a child process, a worker) land before counting.
    await new Promise((resolve) => setTimeout(resolve, 500))

    const verdicts = new Map<string, string>()
    for (const rec of doc.records) {
      const stage = rec.stages[0]!
      const via = rec.key
      const refused = stage.status === 'error' && stage.error?.code === 'E_REPLAY_OFFLINE'
      // The load-time stage itself matches; only the server can tell that it connected.
      const reached = (hits.get(via) ?? 0) > 0 || (stage.status !== 'error' && via !== atLoad)
      verdicts.set(
        via,
        refused && !reached ? 'refused' : reached ? 'reached' : `failed otherwise (${stage.error?.code})`,
      )
    }
    const all = [...ways, ...tsWays, atLoad]
    const covered = all.filter((w) => !notCovered.has(w))
    const got = Object.fromEntries(all.map((w) => [w, verdicts.get(w)]))
    expect(got).toEqual(Object.fromEntries(all.map((w) => [w, notCovered.has(w) ? 'reached' : 'refused'])))
    reportFault(
      'isolation',
      `${all.length} ways to the network tried by stages under replay: ${covered.length} refused with ` +
        `E_REPLAY_OFFLINE and nothing arriving at the loopback servers (${covered.join(', ')}); ` +
        `${notCovered.size} not covered, as documented (${[...notCovered].join(', ')})`,
    )
  })
})
