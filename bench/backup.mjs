#!/usr/bin/env node
// Cluster backup and restore throughput: `baremetal backup` / `restore` against `redis-cli --cluster backup` (which has no restore).
//
//   node bench/backup.mjs [--keys 200000] [--value-size 100] [--ports 4] [--replicas 1] [--runs 2]
//                         [--only backup,restore,reshape] [--max-nodes 250] [--fleet NAME]
//
// A 2 hosts × --ports cluster (--replicas each; node timeout 5000, save "") holding --keys keys
// written from here: 3 in 5 strings of --value-size random bytes (2 in 3 of them with a TTL of 1-2 h),
// 1 in 5 hashes (half with a TTL), 1 in 5 lists. Then, --runs times, alternating which tool
// goes first:
//   backup    `baremetal backup --to DIR` (a BGSAVE per shard, the RDB fetched over SSH, a
//             manifest with sha256) and `redis-cli --cluster backup HOST:PORT DIR` (Debian's
//             7.0.15 redis-cli from the controller: one replication SYNC per master, in turn):
//             wall time, MB/s (bytes of the RDB files written), keys/s.
//   restore   `baremetal restore --from DIR` onto a fresh cluster of the same shape (down, up):
//             keys/s, MB/s of DUMP payloads; the key count checked after.
//   reshape   the same backup restored into a 3 × 3 cluster without replicas (9 masters,
//             another cluster name: --from-cluster): keys/s.
// redis-cli has no restore: its side of those rows is "–". Prints a table, ratios and the load
// average; a JSON copy goes to bench/results/backup.json. The clusters and the test hosts are
// removed in the end, also on Ctrl-C.
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {loadavg, median} from './lib/measure.mjs'
import {fmtRatio, fmtS, gitRevision, printTable} from './lib/report.mjs'
import {BENCH, BIN, ROOT, ensurePackages, log, openFleet, redisSource} from './lib/tools.mjs'
import {nodesOf, waitClusterOk} from './lib/redis.mjs'

const {values: opt} = parseArgs({
  options: {
    keys: {type: 'string', default: '200000'},
    'value-size': {type: 'string', default: '100'},
    ports: {type: 'string', default: '4'},
    replicas: {type: 'string', default: '1'},
    runs: {type: 'string', default: '2'},
    only: {type: 'string', default: 'backup,restore,reshape'},
    'max-nodes': {type: 'string', default: '250'},
    fleet: {type: 'string'},
  },
})
const N = Number(opt.keys)
const VSIZE = Number(opt['value-size'])
const P = Number(opt.ports)
const REPLICAS = Number(opt.replicas)
const RUNS = Number(opt.runs)
const ONLY = new Set(opt.only.split(','))
const A = 7100
const B = 7200

ensurePackages({ansible: false})
const {Cluster} = await import(join(ROOT, 'node_modules/ioredis/built/index.js'))
const {sharedRedisBuild} = await import(join(ROOT, 'dist/test/e2e/fault-tools.js'))
const src = redisSource()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// String values from one random text at their own offsets: incompressible, as real values
// mostly are (an RDB's LZF would shrink a padded value to nothing and flatter every MB/s).
const NOISE = randomBytes(Math.ceil(((VSIZE + 65_536) * 3) / 4)).toString('base64')
const work = mkdtempSync(join(tmpdir(), 'bm-bench-backup-'))

// --- cleanup, also on Ctrl-C --------------------------------------------------------------------
const children = new Set()
const live = new Set()
let fleet
let build = {}
let cleaning
async function cleanup() {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL')
    for (const inv of live) await bm(inv, ['down']).catch(() => {})
    if (fleet && !opt.fleet) await fleet.destroy().catch((e) => console.error(`fleet destroy: ${e.message}`))
    rmSync(work, {recursive: true, force: true})
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => {
    console.error(`\n${sig}: removing the clusters and the test hosts`)
    cleanup().finally(() => process.exit(130))
  })

function run(cmd, argv, timeoutS = 1800) {
  const t0 = Date.now()
  return new Promise((resolveRun) => {
    const child = spawn(cmd, argv, {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    children.add(child)
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000)
    child.on('close', (code) => {
      clearTimeout(timer)
      children.delete(child)
      let json
      try {
        json = JSON.parse(out)
      } catch {}
      resolveRun({code, wallS: (Date.now() - t0) / 1000, json, stdout: out, stderr: err})
    })
  })
}
const bm = (inv, args) => {
  const vars = {redis_version: src.version, redis_source: src.tarball, redis_make_args: src.makeArgs, ...build}
  return run(process.execPath, [BIN, ...args, '-i', inv, '--json', ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`])])
}
const why = (r) =>
  `exit ${r.code}: ${
    r.json?.error?.message ??
    (r.json?.tasks ?? [])
      .filter((t) => t.status === 'failed')
      .map((t) => t.msg)
      .join('; ')
  }\n${r.stderr.slice(-1500)}`

// --- clusters and data ------------------------------------------------------------------------------

async function clusterUp(name, hosts, port, count, replicas) {
  const inv = fleet.writeInventory({
    hosts,
    path: join(fleet.dir, `bench-backup-${name}.yml`),
    vars: {redis_port_start: port, redis_count: count, redis_replicas: replicas, redis_cluster_node_timeout: 5000},
  })
  live.add(inv)
  const r = await bm(inv, ['up'])
  if (r.code !== 0) throw new Error(`up ${name} failed, ${why(r)}`)
  const ok = await waitClusterOk(nodesOf(hosts, port, count), {timeoutS: 180})
  if (!ok.ok) throw new Error(`cluster ${name} not ok: ${ok.behind.slice(0, 3).join('; ')}`)
  return inv
}
async function clusterDown(inv) {
  const r = await bm(inv, ['down'])
  if (r.code !== 0) throw new Error(`down failed, ${why(r)}`)
  live.delete(inv)
}

function client(hosts, port) {
  const c = new Cluster(
    hosts.map((h) => ({host: h.ip, port})),
    {enableAutoPipelining: true, redisOptions: {commandTimeout: 30_000}},
  )
  c.on('error', () => {})
  return c
}
const kindOf = (i) => (i % 5 < 3 ? 'string' : i % 5 === 3 ? 'hash' : 'list')
const keyOf = (i) => `bk:${kindOf(i)}:${i}`
const ttlOf = (i) => (kindOf(i) === 'string' ? (i % 3 ? 3_600_000 + (i % 3600) * 1000 : -1) : kindOf(i) === 'hash' && i % 2 ? 5_400_000 : -1)

async function fill(c) {
  for (let from = 0; from < N; from += 5000) {
    const batch = []
    for (let i = from; i < Math.min(N, from + 5000); i++) {
      const k = keyOf(i)
      const ttl = ttlOf(i)
      if (kindOf(i) === 'string') {
        const v = `v${i}:${NOISE.slice(i % 65_536, (i % 65_536) + VSIZE)}`
        batch.push(ttl > 0 ? c.set(k, v, 'PX', ttl) : c.set(k, v))
      } else if (kindOf(i) === 'hash') {
        batch.push(c.hset(k, {a: `${i}`, b: `x${i}`}))
        if (ttl > 0) batch.push(c.pexpire(k, ttl))
      } else batch.push(c.rpush(k, `${i}`, 'l1', 'l2'))
    }
    await Promise.all(batch)
  }
}

async function dbsize(c) {
  if (c.status !== 'ready') await new Promise((r) => c.once('ready', r))
  const sizes = await Promise.all(c.nodes('master').map((n) => n.dbsize()))
  return sizes.reduce((a, b) => a + b, 0)
}
async function countKeys(hosts, port) {
  const c = client(hosts, port)
  try {
    return await dbsize(c)
  } finally {
    c.disconnect()
  }
}

// A sample of keys: type, value and TTL as written (a TTL may have run down by the time since).
async function sampleCheck(hosts, port, writtenAt) {
  const c = client(hosts, port)
  const bad = []
  try {
    for (let i = 0; i < N; i += Math.max(1, Math.floor(N / 2000))) {
      const k = keyOf(i)
      const [type, pttl] = await Promise.all([c.type(k), c.pttl(k)])
      const want = ttlOf(i)
      if (type !== kindOf(i)) bad.push(`${k}: type ${type}`)
      else if (want < 0 ? pttl !== -1 : !(pttl > want - (Date.now() - writtenAt) - 120_000 && pttl <= want)) bad.push(`${k}: pttl ${pttl}, want ${want}`)
    }
  } finally {
    c.disconnect()
  }
  return bad
}

const dirBytes = (d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.rdb'))
    .reduce((s, f) => s + statSync(join(d, f)).size, 0)

// --- the runs ---------------------------------------------------------------------------------------------

const out = {
  benchmark: 'backup',
  date: new Date().toISOString(),
  revision: gitRevision(),
  redis: src.version,
  redisCli: '',
  keys: N,
  valueSize: VSIZE,
  shape: {hosts: 2, ports: P, replicas: REPLICAS},
  backups: [],
  restores: [],
}
let writtenAt = 0
try {
  ;({fleet} = await openFleet({hosts: 3, nodes: 2 * P + 9, maxNodes: Number(opt['max-nodes']), fleet: opt.fleet}))
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  out.redisCli = (await run('/usr/bin/redis-cli', ['--version'])).stdout.trim()
  const two = fleet.hosts.slice(0, 2)
  log(`2 × ${P} (replicas ${REPLICAS}): up and ${N} keys; load ${loadavg().join(' ')}`)
  let inv = await clusterUp('a', two, A, P, REPLICAS)
  const c = client(two, A)
  const t0 = Date.now()
  writtenAt = t0
  try {
    await fill(c)
    out.fillS = (Date.now() - t0) / 1000
    out.dbsize = await dbsize(c)
  } finally {
    c.disconnect()
  }
  if (out.dbsize !== N) throw new Error(`${out.dbsize} keys in the cluster, ${N} written`)
  log(`${N} keys written in ${fmtS(out.fillS)}`)
  let ours
  for (let r = 0; r < RUNS && ONLY.has('backup') | ONLY.has('restore') | ONLY.has('reshape'); r++) {
    const tools = r % 2 ? ['redis-cli', 'baremetal'] : ['baremetal', 'redis-cli']
    for (const tool of ONLY.has('backup') ? tools : ['baremetal']) {
      const dir = join(work, `${tool}-${r}`)
      const load = loadavg()
      let rec
      if (tool === 'baremetal') {
        const b = await bm(inv, ['backup', '--to', dir])
        if (b.code !== 0) throw new Error(`baremetal backup failed, ${why(b)}`)
        rec = {tool, run: r, load, wallS: b.wallS, ms: b.json.ms, bytes: b.json.bytes, keys: b.json.keys, files: b.json.files}
        ours ??= dir
      } else {
        mkdirSync(dir, {recursive: true})
        const b = await run('/usr/bin/redis-cli', ['--cluster', 'backup', `${two[0].ip}:${A}`, dir])
        if (b.code !== 0) throw new Error(`redis-cli --cluster backup failed (exit ${b.code}): ${b.stdout.slice(-1500)}${b.stderr.slice(-1500)}`)
        rec = {tool, run: r, load, wallS: b.wallS, ms: b.wallS * 1000, bytes: dirBytes(dir), keys: N, files: readdirSync(dir).filter((f) => f.endsWith('.rdb')).length}
      }
      out.backups.push(rec)
      log(`${tool} backup ${r + 1}: ${fmtS(rec.wallS)}, ${(rec.bytes / 1e6).toFixed(1)} MB, ${rec.files} files (load ${load.join(' ')})`)
      if (tool === 'redis-cli') rmSync(dir, {recursive: true, force: true})
    }
  }
  if (!ours) throw new Error('no baremetal backup to restore (--only needs backup or restore)')
  for (let r = 0; r < RUNS; r++) {
    if (ONLY.has('restore')) {
      if (live.has(inv)) await clusterDown(inv)
      inv = await clusterUp('a', two, A, P, REPLICAS)
      out.restores.push(await restore('same shape', inv, two, A, r, []))
    }
    if (ONLY.has('reshape')) {
      if (live.has(inv)) await clusterDown(inv)
      const invB = await clusterUp('b', fleet.hosts, B, 3, 0)
      out.restores.push(await restore('3 × 3, no replicas', invB, fleet.hosts, B, r, ['--from-cluster', `redis-${A}`]))
      await clusterDown(invB)
    }
  }

  async function restore(target, invT, hosts, port, r, extra) {
    const load = loadavg()
    const x = await bm(invT, ['restore', '--from', ours, ...extra])
    if (x.code !== 0) throw new Error(`restore (${target}) failed, ${why(x)}`)
    const count = await countKeys(hosts, port)
    const bad = await sampleCheck(hosts, port, writtenAt)
    const rec = {target, run: r, load, wallS: x.wallS, ms: x.json.ms, keys: x.json.keys, bytes: x.json.bytes, mismatches: x.json.mismatches, count, bad: bad.slice(0, 5), badCount: bad.length}
    log(`restore ${target} ${r + 1}: ${fmtS(rec.wallS)}, ${rec.keys} keys, ${count} in the cluster, ${bad.length} sampled keys wrong (load ${load.join(' ')})`)
    return rec
  }
} finally {
  await cleanup()
}

mkdirSync(join(BENCH, 'results'), {recursive: true})
writeFileSync(join(BENCH, 'results', 'backup.json'), JSON.stringify(out, null, 2) + '\n')

const mbs = (bytes, ms) => `${(((bytes / 1e6) * 1000) / ms).toFixed(1)} MB/s`
const kps = (keys, ms) => `${Math.round((keys * 1000) / ms)} keys/s`
console.log(
  `\n# backup and restore, Redis ${src.version} (${out.redisCli}), 2 hosts × ${P} ports (replicas ${REPLICAS}), ${N} keys (strings ${VSIZE} B with TTLs, hashes, lists), rev ${out.revision}, ${new Date().toISOString().slice(0, 16)}Z`,
)
console.log(`# load: ${[...out.backups, ...out.restores].map((r) => r.load.join(' ')).join('; ')}; at the end ${loadavg().join(' ')}\n`)
const rows = []
for (const b of out.backups)
  rows.push([
    `backup (${b.run + 1})`,
    b.tool,
    fmtS(b.wallS),
    b.tool === 'baremetal' ? fmtS(b.ms / 1000) : '',
    `${(b.bytes / 1e6).toFixed(1)} MB in ${b.files} files`,
    mbs(b.bytes, b.wallS * 1000),
    kps(b.keys, b.wallS * 1000),
    '',
  ])
for (const r of out.restores) {
  rows.push([
    `restore ${r.target} (${r.run + 1})`,
    'baremetal',
    fmtS(r.wallS),
    fmtS(r.ms / 1000),
    `${(r.bytes / 1e6).toFixed(1)} MB of DUMP payloads`,
    mbs(r.bytes, r.wallS * 1000),
    kps(r.keys, r.wallS * 1000),
    `${r.count} keys after, ${r.mismatches.length} range mismatches, ${r.badCount} of the sample wrong`,
  ])
  rows.push([`restore ${r.target} (${r.run + 1})`, 'redis-cli', '–', '', 'no restore in redis-cli --cluster', '–', '–', ''])
}
printTable(['step (run)', 'tool', 'wall', 'of which the work', 'data', 'MB/s', 'keys/s', 'check'], rows)
const medOf = (tool, f) => median(out.backups.filter((b) => b.tool === tool).map(f))
if (out.backups.some((b) => b.tool === 'redis-cli')) {
  console.log('')
  printTable(
    ['ratio (baremetal / redis-cli)', 'value'],
    [
      ['backup wall time', fmtRatio(medOf('baremetal', (b) => b.wallS) / medOf('redis-cli', (b) => b.wallS))],
      ['backup MB/s', fmtRatio(medOf('baremetal', (b) => b.bytes / b.wallS) / medOf('redis-cli', (b) => b.bytes / b.wallS))],
      ['bytes written', fmtRatio(medOf('baremetal', (b) => b.bytes) / medOf('redis-cli', (b) => b.bytes))],
    ],
  )
}
console.log(
  '\nwall = the whole command (MB/s and keys/s are over it); "of which the work" = the time baremetal reports itself (backup: from reading the cluster to the manifest written; restore: from the first snapshot loaded to the last key written, before the key-count check). baremetal: SSH connections, inventory, BGSAVE, fetch, sha256, manifest; redis-cli: one SYNC per master from the controller. redis-cli --cluster has no restore.',
)
