#!/usr/bin/env node
// Load benchmark (bench/README.md, "## load"): `baremetal load` vs `redis-benchmark -t set
// --cluster` on the same 9-master cluster (3 local "hosts" × 3 ports, loopback, the system
// redis-server), same clients and value size, at pipeline 1 and at --pipeline/-P N,
// alternating the two tools, median of the rounds; the load average is printed with every
// figure (two cores shared with other work make single figures meaningless).
// baremetal's figure keeps every guarantee: each acknowledged key is remembered (and
// --verify, run once after the timed rounds, reads them all back).
//
//   node bench/load.mjs [--clients 50] [--pipeline 16] [--rounds 3] [--seconds 10] [--port 21400]
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'bin/run.js')
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const CLIENTS = arg('clients', 50)
const PIPE = arg('pipeline', 16)
const ROUNDS = arg('rounds', 3)
const SECONDS = arg('seconds', 10)
const PORT = arg('port', 21400)
const COUNT = 3
const DATA = 80

const work = mkdtempSync(join(tmpdir(), 'bm-bench-load-'))
const inv = join(work, 'inv.yml')
{
  const lines = ['all:', '  vars:', '    redis_firewall: false', '    redis_cluster_name: bench-load', `    redis_count: ${COUNT}`, '    redis_bin_dir: /usr/bin', '    redis_replicas: 0', '  children:', '    redis:', '      hosts:']
  for (let i = 0; i < 3; i++) {
    lines.push(`        l${i + 1}: {ansible_connection: local, ansible_host: 127.0.0.1, redis_bind: 127.0.0.1, redis_port_start: ${PORT + 10 * i}, redis_cluster_dir: ${join(work, `l${i + 1}`)}}`)
  }
  writeFileSync(inv, lines.join('\n') + '\n')
}
const COMMON = ['--skip-tags', 'build', '-e', 'redis_version=7.0.15']

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 1_800_000, ...opts})
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${(r.stdout || '').slice(-3000)}\n${(r.stderr || '').slice(-3000)}`)
  return r
}
const bm = (args, opts) => run(process.execPath, [BIN, ...args], opts)
const log = msg => process.stderr.write(`[load bench] ${msg}\n`)
const la = () => loadavg()[0].toFixed(1)

function baremetal(pipe, verify = false) {
  const r = bm(['load', '-i', inv, '--duration', String(SECONDS), '--clients', String(CLIENTS), '--pipeline', String(pipe), '--data-size', String(DATA), '--json', ...(verify ? ['--verify'] : [])], {allowFail: verify})
  const j = JSON.parse(r.stdout)
  return {opsPerSec: j.load.opsPerSec, p50Ms: j.load.latencyMs.p50, p99Ms: j.load.latencyMs.p99, failed: j.load.failed, verify: j.verify, load: la()}
}
function redisBenchmark(pipe, guess) {
  const n = Math.max(100_000, Math.round(guess * SECONDS))
  const r = run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(PORT), '--cluster', '-t', 'set', '-c', String(CLIENTS), '-P', String(pipe), '-n', String(n), '-d', String(DATA), '-r', '100000000', '--csv'])
  const line = r.stdout.trim().split('\n').find(l => l.startsWith('"SET"'))
  const cols = line.split(',').map(x => Number(x.replace(/"/g, '')))
  return {opsPerSec: cols[1], p50Ms: cols[4], p99Ms: cols[6], load: la()}
}
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const results = {date: new Date().toISOString(), machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GB RAM`, loadAtStart: la(), clients: CLIENTS, dataSize: DATA, seconds: SECONDS, rows: []}
try {
  bm(['up', '-i', inv, ...COMMON, '--json'])
  for (const pipe of [1, PIPE]) {
    const bmRuns = []
    const rbRuns = []
    for (let i = 0; i < ROUNDS; i++) {
      const a = baremetal(pipe)
      bmRuns.push(a)
      log(`pipeline ${pipe} round ${i + 1}: baremetal load ${Math.round(a.opsPerSec)} SET/s (load ${a.load})`)
      const b = redisBenchmark(pipe, a.opsPerSec)
      rbRuns.push(b)
      log(`pipeline ${pipe} round ${i + 1}: redis-benchmark ${Math.round(b.opsPerSec)} SET/s (load ${b.load})`)
    }
    const bmOps = median(bmRuns.map(x => x.opsPerSec))
    const rbOps = median(rbRuns.map(x => x.opsPerSec))
    results.rows.push({pipeline: pipe, baremetal: bmRuns, redisBenchmark: rbRuns, baremetalMedian: bmOps, redisBenchmarkMedian: rbOps, ratio: bmOps / rbOps})
  }
  results.verify = baremetal(PIPE, true).verify
} finally {
  bm(['down', '-i', inv, ...COMMON, '--json'], {allowFail: true})
  rmSync(work, {recursive: true, force: true})
}

const f = n => Math.round(n).toLocaleString('en-US')
console.log(`load benchmark, ${results.date}, ${results.machine}, load average at start ${results.loadAtStart}`)
console.log(`9 masters on loopback, ${CLIENTS} clients, ${DATA}-byte values, ${SECONDS} s per round, median of ${ROUNDS} alternating rounds`)
for (const r of results.rows) {
  const lo = xs => xs.map(x => x.load).join('/')
  console.log(`pipeline ${r.pipeline}: baremetal load ${f(r.baremetalMedian)} SET/s (load ${lo(r.baremetal)}) vs redis-benchmark ${f(r.redisBenchmarkMedian)} SET/s (load ${lo(r.redisBenchmark)}): ${r.ratio.toFixed(2)}×`)
}
const v = results.verify
console.log(`verify after a --pipeline ${PIPE} run: ${f(v.checked)} keys read back, ${v.lost} lost, ${v.wrong} wrong`)
console.log(JSON.stringify(results))
