#!/usr/bin/env node
// Scaling benchmark (bench/README.md, "## scaling"): on one machine, a 6-master cluster
// (2 local "hosts" × 3 ports) holding 1M keys gains a third host (3 more masters).
//   1. keys/s migrated by `baremetal up` (its batched, pipelined mover) vs
//      `redis-cli --cluster add-node` ×3 + `redis-cli --cluster rebalance
//      --cluster-use-empty-masters` on the same data (same key count and value size);
//   2. write throughput of `baremetal load` vs `redis-benchmark -t set --cluster` on the
//      same 9-master cluster, same number of clients and value size.
// Uses the system redis-server/redis-cli/redis-benchmark (Debian's redis-tools) and
// loopback only; stops only the instances it started (`baremetal down`).
//
//   node bench/scaling.mjs [--keys 1000000] [--clients 50] [--port 21300]
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'bin/run.js')
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const KEYS = arg('keys', 1_000_000)
const CLIENTS = arg('clients', 50)
const PORT = arg('port', 21300)
const COUNT = 3
// `load` writes the key twice by default (~80 bytes); both tools get the same size here.
const DATA = 80

const work = mkdtempSync(join(tmpdir(), 'bm-bench-scaling-'))
const hostsOf = n => Array.from({length: n}, (_, i) => `b${i + 1}`)
function inventory(n) {
  const lines = ['all:', '  vars:', '    redis_firewall: false', '    redis_cluster_name: bench-scaling', `    redis_count: ${COUNT}`, '    redis_bin_dir: /usr/bin', '    redis_replicas: 0', '  children:', '    redis:', '      hosts:']
  hostsOf(n).forEach((h, i) => {
    lines.push(`        ${h}: {ansible_connection: local, ansible_host: 127.0.0.1, redis_bind: 127.0.0.1, redis_port_start: ${PORT + 10 * i}, redis_cluster_dir: ${join(work, h)}}`)
  })
  const path = join(work, `inv${n}.yml`)
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}
const inv2 = inventory(2)
const inv3 = inventory(3)
const newPorts = Array.from({length: COUNT}, (_, i) => PORT + 20 + i)
const VERSION = ['-e', 'redis_version=7.0.15']
const COMMON = ['--skip-tags', 'build', ...VERSION]

function run(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 1_800_000, ...opts})
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${(r.stdout || '').slice(-3000)}\n${(r.stderr || '').slice(-3000)}`)
  }
  return {...r, ms}
}
const bm = (args, opts) => run(process.execPath, [BIN, ...args], opts)
const cliRedis = (port, ...args) => run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])
const dbsize = ports => ports.reduce((n, p) => n + Number(cliRedis(p, 'DBSIZE').stdout.trim()), 0)
const log = msg => process.stderr.write(`[scaling bench] ${msg}\n`)

function fill() {
  log(`writing ${KEYS.toLocaleString('en-US')} keys with baremetal load (${CLIENTS} clients, ${DATA}-byte values)`)
  const r = bm(['load', '-i', inv2, '--requests', String(KEYS), '--clients', String(CLIENTS), '--data-size', String(DATA), '--json'])
  return JSON.parse(r.stdout).load
}

const results = {date: new Date().toISOString(), machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GB RAM, load average at start ${(await import('node:os')).loadavg()[0].toFixed(1)}`, keys: KEYS, dataSize: DATA, clients: CLIENTS}
try {
  // 1a. baremetal: 6 masters with 1M keys, then up with the third host.
  bm(['up', '-i', inv2, ...COMMON, '--json'])
  results.fillOps = fill().opsPerSec
  log('scale-out with baremetal up')
  const up = bm(['up', '-i', inv3, ...COMMON, '--json'])
  const task = JSON.parse(up.stdout).tasks.find(t => t.task === 'Cluster formed')
  const s = task.data.scaling
  results.baremetal = {
    upWallS: up.ms / 1000,
    slots: s.moved.slots,
    keys: s.moved.keys,
    keysOnNewNodes: dbsize(newPorts),
    moveS: s.moved.elapsedMs / 1000,
    keysPerSec: s.moved.keys / (s.moved.elapsedMs / 1000),
    keysPerSecWholeUp: s.moved.keys / (up.ms / 1000),
  }
  log(`baremetal: ${JSON.stringify(results.baremetal)}`)
  bm(['down', '-i', inv3, ...COMMON, '--json'])

  // 1b. redis-cli: same cluster, same data, then add-node ×3 + rebalance.
  bm(['up', '-i', inv2, ...COMMON, '--json'])
  fill()
  // Start the third host's instances without the cluster step.
  bm(['up', '-i', inv3, '--skip-tags', 'build,cluster', ...VERSION, '--json'])
  log('scale-out with redis-cli --cluster add-node + rebalance')
  const t0 = process.hrtime.bigint()
  // add-node refuses to run while nodes disagree: wait for `--cluster check`, as a person would.
  const allPorts = [0, 1, 2].flatMap(h => Array.from({length: COUNT}, (_, i) => PORT + 10 * h + i))
  // Every node knows all the others and says cluster_state:ok (a node that just joined says
  // fail for a moment, and refuses MIGRATE meanwhile).
  const knows = (port, n) => {
    const info = cliRedis(port, 'CLUSTER', 'INFO').stdout
    return Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1]) === n && /cluster_state:ok/.test(info)
  }
  const settle = members => {
    for (let i = 0; i < 600; i++) {
      if (members.every(p => knows(p, members.length)) && run('redis-cli', ['--cluster', 'check', `127.0.0.1:${PORT}`], {allowFail: true}).status === 0) return
      run('sleep', ['0.1'])
    }
    throw new Error('the cluster did not settle after add-node')
  }
  for (const [k, p] of newPorts.entries()) {
    run('redis-cli', ['--cluster', 'add-node', `127.0.0.1:${p}`, `127.0.0.1:${PORT}`])
    settle(allPorts.slice(0, 2 * COUNT + k + 1))
  }
  const added = Number(process.hrtime.bigint() - t0) / 1e6
  const reb = run('redis-cli', ['--cluster', 'rebalance', `127.0.0.1:${PORT}`, '--cluster-use-empty-masters'])
  const total = added + reb.ms
  const moved = dbsize(newPorts)
  results.redisCli = {addNodeS: added / 1000, rebalanceS: reb.ms / 1000, keys: moved, keysPerSec: moved / (reb.ms / 1000), keysPerSecWhole: moved / (total / 1000)}
  const st = bm(['status', '-i', inv3, '--json'], {allowFail: true})
  results.redisCli.clusterOk = JSON.parse(st.stdout).ok
  log(`redis-cli: ${JSON.stringify(results.redisCli)}`)

  // 2. Write throughput on the same 9-master cluster.
  log('write throughput: baremetal load vs redis-benchmark')
  const load = JSON.parse(bm(['load', '-i', inv3, '--duration', '20', '--clients', String(CLIENTS), '--data-size', String(DATA), '--json']).stdout).load
  results.load = {opsPerSec: load.opsPerSec, p50Ms: load.latencyMs.p50, p99Ms: load.latencyMs.p99, errors: load.errors}
  const rb = run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(PORT), '--cluster', '-t', 'set', '-c', String(CLIENTS), '-n', String(Math.max(200_000, Math.round(load.opsPerSec * 20))), '-d', String(DATA), '-r', '100000000', '--csv'])
  const line = rb.stdout.trim().split('\n').find(l => l.startsWith('"SET"'))
  const cols = line.split(',').map(x => Number(x.replace(/"/g, '')))
  results.redisBenchmark = {opsPerSec: cols[1], p50Ms: cols[4], p99Ms: cols[6]}
} finally {
  bm(['down', '-i', inv3, ...COMMON, '--json'], {allowFail: true})
  rmSync(work, {recursive: true, force: true})
}

const f = n => Math.round(n).toLocaleString('en-US')
const b = results.baremetal
const c = results.redisCli
console.log(`scaling benchmark, ${results.date}, ${results.machine}`)
console.log(`cluster: 6 masters (2 hosts × 3) with ${f(KEYS)} keys of ${DATA} bytes → 9 masters (third host added)`)
console.log(`fill (baremetal load, ${CLIENTS} clients): ${f(results.fillOps)} SET/s`)
console.log(`baremetal up:            ${f(b.keys)} keys (${f(b.slots)} slots) moved in ${b.moveS.toFixed(1)} s = ${f(b.keysPerSec)} keys/s; whole up ${b.upWallS.toFixed(1)} s (${f(b.keysPerSecWholeUp)} keys/s)`)
console.log(`redis-cli add-node+rebalance: ${f(c.keys)} keys moved, add-node ${c.addNodeS.toFixed(1)} s + rebalance ${c.rebalanceS.toFixed(1)} s = ${f(c.keysPerSec)} keys/s (rebalance), ${f(c.keysPerSecWhole)} keys/s (whole)`)
console.log(`speed-up (migration): ${(b.keysPerSec / c.keysPerSec).toFixed(1)}×`)
console.log(`write throughput, 9 masters, ${CLIENTS} clients, ${DATA}-byte values: baremetal load ${f(results.load.opsPerSec)} SET/s (p50 ${results.load.p50Ms} ms, p99 ${results.load.p99Ms} ms) vs redis-benchmark --cluster ${f(results.redisBenchmark.opsPerSec)} SET/s (p50 ${results.redisBenchmark.p50Ms} ms, p99 ${results.redisBenchmark.p99Ms} ms)`)
mkdirSync(join(ROOT, 'bench/results'), {recursive: true})
writeFileSync(join(ROOT, 'bench/results', `scaling-${results.date.slice(0, 19).replace(/:/g, '')}.json`), JSON.stringify(results, null, 2) + '\n')
