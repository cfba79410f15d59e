#!/usr/bin/env node
// Where the time of forming 1000 simulated masters goes: the product's own formCluster
// (dist/), in-process, over 10 test hosts × 100 ports answered by bench/lib/sim-redis.mjs,
// every progress line timestamped, with the controller's CPU and peak RSS.
//   node bench/lib/sim-form.mjs [--hosts 10] [--ports 100]
import {spawn} from 'node:child_process'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {BENCH, ROOT, loadHarness, log} from './tools.mjs'

const {values: o} = parseArgs({options: {hosts: {type: 'string', default: '10'}, ports: {type: 'string', default: '100'}}})
const H = Number(o.hosts)
const P = Number(o.ports)
const harness = await loadHarness()
const fleet = await harness.createFleet(H)
const sims = []
try {
  const hostArg = fleet.hosts.map((h) => `${h.name}=${h.ip}`).join(',')
  await Promise.all(
    fleet.hosts.map(
      (h) =>
        new Promise((resolve, reject) => {
          const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, join(BENCH, 'lib/sim-redis.mjs'), '--ip', h.ip, '--hosts', hostArg, '--port-start', '6379', '--count', String(P)], {stdio: ['ignore', 'pipe', 'inherit']})
          sims.push(child)
          child.stdout.on('data', (d) => String(d).includes('ready') && resolve())
          child.once('exit', (code) => reject(new Error(`simulator on ${h.name} exited (${code})`)))
        }),
    ),
  )
  const {profileFormation} = await import(join(BENCH, 'lib/form-profile.mjs'))
  const nodes = fleet.hosts.flatMap((h) => Array.from({length: P}, (_, i) => ({host: h.name, ip: h.ip, port: 6379 + i})))
  let peak = 0
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50)
  const p = await profileFormation(nodes, {timeoutMs: 600_000})
  clearInterval(t)
  for (const ph of p.phases) console.log(`${(ph.startMs / 1000).toFixed(2).padStart(7)} s  +${(ph.ms / 1000).toFixed(2)} s  ${ph.phase}`)
  console.log(`formation ${(p.ms / 1000).toFixed(2)} s, controller CPU ${(p.cpuMs / 1000).toFixed(2)} s, peak RSS ${(peak / 2 ** 20).toFixed(0)} MB, ${p.commands} commands (ROOT ${ROOT})`)
} finally {
  for (const s of sims) s.kill('SIGTERM')
  await fleet.destroy()
}
