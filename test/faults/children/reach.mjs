// A "local build" stage for the replay-isolation scenario: it tries to reach the network
// one way, named by its input, and says whether it got through. Ports come from the
// environment (RETRACE_FAULT_PORTS, JSON), written by the test that starts the servers.
import cp, { spawn as importedSpawn } from 'node:child_process'
import dgram from 'node:dgram'
import dns from 'node:dns'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net, { connect as importedConnect } from 'node:net'
import tls from 'node:tls'
import { Worker } from 'node:worker_threads'

const ports = JSON.parse(process.env.RETRACE_FAULT_PORTS ?? '{}')
const tcp = (via) => ports.tcp[via]
const host = '127.0.0.1'

// Captured while the module loads, as CommonJS-style code (`const { spawn } = require(...)`)
// and some libraries do: these keep the functions as they were at import time.
const saved = {
  spawn: cp.spawn,
  createSocket: dgram.createSocket,
  lookup: dns.lookup,
  connect: net.connect,
  fetch: globalThis.fetch,
}

const connectScript = (port) =>
  `require('node:net').connect(${port}, '${host}').on('connect', function () { this.end() }).on('error', () => {})`

function settle(emitter, okEvent = 'connect') {
  return new Promise((resolve, reject) => {
    emitter.once(okEvent, () => {
      emitter.destroy?.()
      resolve(true)
    })
    emitter.once('error', reject)
  })
}

function udpSend(createSocket, port) {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4')
    s.send(Buffer.from('hello'), port, host, (err) => {
      s.close()
      if (err) reject(err)
      else resolve(true)
    })
  })
}

function exited(child) {
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', () => resolve(true))
  })
}

const ways = {
  'net.connect': () => settle(net.connect(tcp('net.connect'), host)),
  'net.createConnection': () => settle(net.createConnection({ port: tcp('net.createConnection'), host })),
  'new net.Socket().connect': () => settle(new net.Socket().connect(tcp('new net.Socket().connect'), host)),
  'import { connect } from net': () => settle(importedConnect(tcp('import { connect } from net'), host)),
  'net.connect saved at load': () => settle(saved.connect(tcp('net.connect saved at load'), host)),
  'tls.connect': () =>
    settle(tls.connect({ port: tcp('tls.connect'), host, rejectUnauthorized: false }), 'secureConnect'),
  'http.get': () => settle(http.get({ port: tcp('http.get'), host }), 'response'),
  'http.request': () =>
    settle(http.request({ port: tcp('http.request'), host, method: 'POST' }).end(), 'response'),
  'https.get': () =>
    settle(https.get({ port: tcp('https.get'), host, rejectUnauthorized: false }), 'response'),
  'http2.connect': () => settle(http2.connect(`http://${host}:${tcp('http2.connect')}`)),
  fetch: async () => Boolean(await fetch(`http://${host}:${tcp('fetch')}/`)),
  'fetch saved at load': async () =>
    Boolean(await saved.fetch(`http://${host}:${tcp('fetch saved at load')}/`)),
  'dns.lookup': () =>
    new Promise((resolve, reject) => dns.lookup('localhost', (err) => (err ? reject(err) : resolve(true)))),
  'dns.promises.lookup': async () => Boolean(await dns.promises.lookup('localhost')),
  'dns.lookup saved at load': () =>
    new Promise((resolve, reject) => saved.lookup('localhost', (err) => (err ? reject(err) : resolve(true)))),
  'dns.resolve4 (c-ares)': () => {
    const r = new dns.Resolver({ timeout: 300, tries: 1 })
    r.setServers([`${host}:${ports.udp['dns.resolve4 (c-ares)']}`])
    return new Promise((resolve) => r.resolve4('example.test', () => resolve(true)))
  },
  'dns.promises.Resolver': async () => {
    const r = new dns.promises.Resolver({ timeout: 300, tries: 1 })
    r.setServers([`${host}:${ports.udp['dns.promises.Resolver']}`])
    await r.resolve4('example.test').catch(() => undefined)
    return true
  },
  'dns.resolve4 on the module': () => {
    dns.setServers([`${host}:${ports.udp['dns.resolve4 on the module']}`])
    return new Promise((resolve) => dns.resolve4('example.test', () => resolve(true)))
  },
  'dns.promises.resolveTxt on the module': async () => {
    dns.promises.setServers([`${host}:${ports.udp['dns.promises.resolveTxt on the module']}`])
    await dns.promises.resolveTxt('example.test').catch(() => undefined)
    return true
  },
  'dgram.createSocket + send': () => udpSend(dgram.createSocket, ports.udp['dgram.createSocket + send']),
  'dgram.createSocket saved at load': () =>
    udpSend(saved.createSocket, ports.udp['dgram.createSocket saved at load']),
  'child_process.spawn': () =>
    exited(cp.spawn(process.execPath, ['-e', connectScript(tcp('child_process.spawn'))])),
  'import { spawn } from child_process': () =>
    exited(
      importedSpawn(process.execPath, ['-e', connectScript(tcp('import { spawn } from child_process'))]),
    ),
  'child_process.spawn saved at load': () =>
    exited(saved.spawn(process.execPath, ['-e', connectScript(tcp('child_process.spawn saved at load'))])),
  'child_process.exec': () =>
    exited(
      cp.exec(
        `"${process.execPath}" -e "${connectScript(tcp('child_process.exec')).replaceAll('"', '\\"')}"`,
      ),
    ),
  'child_process.execFile': () =>
    exited(cp.execFile(process.execPath, ['-e', connectScript(tcp('child_process.execFile'))])),
  'child_process.fork': () =>
    exited(
      cp.fork(new URL('./connect.cjs', import.meta.url).pathname, [String(tcp('child_process.fork'))], {
        stdio: 'ignore',
      }),
    ),
  'child_process.spawnSync': () =>
    Boolean(cp.spawnSync(process.execPath, ['-e', connectScript(tcp('child_process.spawnSync'))])),
  'child_process.execSync': () =>
    Boolean(
      cp.execSync(
        `"${process.execPath}" -e "${connectScript(tcp('child_process.execSync')).replaceAll('"', '\\"')}"`,
      ),
    ),
  'child_process.execFileSync': () =>
    Boolean(cp.execFileSync(process.execPath, ['-e', connectScript(tcp('child_process.execFileSync'))])),
  'a worker thread': () =>
    new Promise((resolve, reject) => {
      const w = new Worker(connectScript(tcp('a worker thread')), { eval: true })
      w.once('error', reject)
      w.once('exit', () => resolve(true))
    }),
}

export const wayNames = Object.keys(ways)

/** The stage: production recorded `{ via, reached: false }` (it used ctx.effect instead). */
export async function reach(input) {
  const attempt = ways[input.via]
  if (attempt === undefined) throw new Error(`no way ${input.via}`)
  await attempt()
  // Give a child process or worker a moment to connect before the stage returns.
  await new Promise((resolve) => setTimeout(resolve, 300))
  return { via: input.via, reached: true }
}
