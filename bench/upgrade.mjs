#!/usr/bin/env node
// Redis version upgrade 5.0.3 → 7.0.15 under a WAIT-1 writer: `up`'s rolling upgrade vs a stop-all/start-all upgrade, and --allow-downtime without replicas.
//
//   node bench/upgrade.mjs [--hosts 3] [--ports 10] [--keys 50000] [--value-size 1000] [--writers 2]
//                          [--runs 2] [--only rolling,stopall,downtime] [--max-nodes 250] [--fleet NAME]
//
// Each side starts from a fresh 5.0.3 cluster (hosts × ports, node timeout 5000, save "",
// appendonly no) holding the same --keys seed keys (--value-size random bytes each), with --writers
// cluster clients writing throughout, each write counted only when WAIT 1 acknowledges it
// (SET + WAIT in one pipeline to the slot's master, as test/e2e/acked.ts does; on MOVED the
// client refreshes its slot map). Sides, alternated run by run:
//   rolling   replicas 1: `up` with 7.0.15 (replicas first, CLUSTER FAILOVER per shard, old
//             masters last): the upgrade task's time and the run's.
//   stopall   replicas 1, the anchor, as a user does it by hand: stop every node saving its
//             data (`down --keep-data`: SHUTDOWN SAVE everywhere), switch the binaries, start
//             them all (`up` with 7.0.15 on the kept directories).
//   downtime  replicas 0 (the legacy shape): `up` with 7.0.15 --allow-downtime (each master
//             restarted in place): per-master unavailability (a probe per master SETs a key of
//             its own slots every 50 ms over a direct connection; writes acknowledged by the
//             master's OK).
// For each: failed requests by kind (what reaches the application: CLUSTERDOWN, MOVED,
// CONNREFUSED, NOREPLICAS, TIMEOUT, NOT_REPLICATED…), redirections the client followed by
// itself, the longest time without an acknowledged write (up to the first one after the
// command ended), acknowledged writes and seed keys lost (read back at the end), every
// node's version after. Prints a table and ratios and the load average; a JSON copy goes to
// bench/results/upgrade.json. Fleets and clusters are removed in the end, also on Ctrl-C.
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {parseArgs} from 'node:util'
import {loadavg} from './lib/measure.mjs'
import {fmtRatio, fmtS, gitRevision, printTable} from './lib/report.mjs'
import {BENCH, BIN, ROOT, log, openFleet, redisSource} from './lib/tools.mjs'
import {nodesOf, waitClusterOk} from './lib/redis.mjs'

const {values: opt} = parseArgs({
  options: {
    hosts: {type: 'string', default: '3'},
    ports: {type: 'string', default: '10'},
    keys: {type: 'string', default: '50000'},
    'value-size': {type: 'string', default: '1000'},
    writers: {type: 'string', default: '2'},
    runs: {type: 'string', default: '2'},
    only: {type: 'string', default: 'rolling,stopall,downtime'},
    'max-nodes': {type: 'string', default: '250'},
    fleet: {type: 'string'},
  },
})
const H = Number(opt.hosts)
const P = Number(opt.ports)
const SEED = Number(opt.keys)
const VSIZE = Number(opt['value-size'])
const WRITERS = Number(opt.writers)
const RUNS = Number(opt.runs)
const ONLY = new Set(opt.only.split(','))
const PORT = 7000
if (H * P > 30) console.error(`note: ${H * P} nodes`)

const {Cluster, Redis} = await import(join(ROOT, 'node_modules/ioredis/built/index.js'))
const {default: keySlot} = await import(join(ROOT, 'node_modules/cluster-key-slot/lib/index.js'))
const {sharedRedisBuild} = await import(join(ROOT, 'dist/test/e2e/fault-tools.js'))
const {errorKind} = await import(join(ROOT, 'dist/test/e2e/acked.js'))
const {compareVersions} = await import(join(ROOT, 'dist/src/redis/upgrade.js'))

const NEW = {tarball: redisSource().tarball, version: redisSource().version}
const OLD = {tarball: resolve(ROOT, '../shared/redis/redis-5.0.3.tar.gz'), version: '5.0.3'}
if (compareVersions(NEW.version, OLD.version) <= 0) throw new Error(`Redis ${NEW.version} is not newer than ${OLD.version}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Seed values from one random text, each at its own offset: incompressible (an RDB's LZF would
// shrink a padded value to nothing), and the same for every side of one run.
const NOISE = randomBytes(Math.ceil(((VSIZE + 65_536) * 3) / 4)).toString('base64')
const value = (i) => `${i}:${NOISE.slice(i % 65_536, (i % 65_536) + VSIZE)}`

// --- cleanup, also on Ctrl-C -----------------------------------------------------------------
const children = new Set()
let fleet
let liveInv
let cleaning
async function cleanup() {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL')
    if (liveInv) await bm(liveInv, ['down'], NEW).catch(() => {})
    if (fleet && !opt.fleet) await fleet.destroy().catch((e) => console.error(`fleet destroy: ${e.message}`))
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => {
    console.error(`\n${sig}: removing the clusters and the test hosts`)
    cleanup().finally(() => process.exit(130))
  })

// `baremetal ARGS -i INV --json` with a version's source and shared build; {code, wallS, json}.
function bm(inv, args, ver, timeoutS = 1800) {
  const b = builds[ver.version]
  const vars = {redis_version: ver.version, redis_source: ver.tarball, redis_make_args: 'MALLOC=libc BUILD_TLS=no', ...b}
  const argv = [BIN, ...args, '-i', inv, '--json', ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`])]
  const t0 = Date.now()
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, argv, {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
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
      resolveRun({code, wallS: (Date.now() - t0) / 1000, json, stdout: out, stderr: err, tasks: json?.tasks ?? []})
    })
  })
}
const failedTasks = (r) => r.tasks.filter((t) => t.status === 'failed').map((t) => `${t.task} ${t.host ?? ''}: ${String(t.msg).split('\n').slice(0, 3).join(' / ')}`)

// --- the writer --------------------------------------------------------------------------------

// The kind of a failed request as the application sees it; the first message of each kind is kept.
const samples = {}
function kindOf(e) {
  const k = kindOnly(e)
  samples[k] ??= String(e instanceof Error ? e.message : e).slice(0, 160)
  return k
}
function kindOnly(e) {
  const m = e instanceof Error ? e.message : String(e)
  if (/ECONNREFUSED/.test(m)) return 'CONNREFUSED'
  if (/Command aborted due to connection close|Stream isn't writeable|max retries per request/.test(m)) return 'CONNECTION_CLOSED'
  if (/None of startup nodes|Failed to refresh slots cache/.test(m)) return 'NO_NODE_REACHABLE'
  if (/Too many Cluster redirections/.test(m)) return `REDIRECTIONS(${/Last error: \w*Error: (\w+)|Last error: (\w+)/.exec(m)?.slice(1).find(Boolean) ?? '?'})`
  return errorKind(e)
}

// ioredis follows MOVED/ASK/TRYAGAIN/CLUSTERDOWN/closed connections by itself for plain
// commands: counted here as "followed", they cost time but never reach the application.
class CountingCluster extends Cluster {
  followed = {}
  handleError(error, ttl, handlers) {
    const m = String(error.message)
    const k = m === 'Connection is closed.' ? 'CONNECTION_CLOSED' : m.split(' ')[0]
    this.followed[k] = (this.followed[k] ?? 0) + 1
    return super.handleError(error, ttl, handlers)
  }
}

function clusterClient(seeds, cls = Cluster) {
  const c = new cls(seeds, {
    redisOptions: {connectTimeout: 2000, maxRetriesPerRequest: 3, commandTimeout: 5000},
    // Never give up: a stop-all keeps every node away for a while.
    clusterRetryStrategy: () => 200,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 32,
    enableAutoPipelining: cls === Cluster,
  })
  c.on('error', () => {})
  return c
}

async function attempt(c, key, value, replicas) {
  let timer
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`write of ${key} timed out`)), 8000)))
  try {
    if (replicas === 0) return (await Promise.race([c.set(key, value), timeout])) === 'OK' || 'NOT_OK'
    const res = await Promise.race([c.pipeline().set(key, value).call('WAIT', '1', '2000').exec(), timeout])
    if (!res) return 'NO_REPLY'
    const err = res[0][0] ?? res[1][0]
    if (err) return kindOf(err)
    return Number(res[1][1]) >= 1 || 'NOT_REPLICATED'
  } finally {
    clearTimeout(timer)
  }
}

/** One writer until stop(): acknowledged keys (with times), failures by kind, redirections followed. */
function writer(seeds, prefix, replicas, acked) {
  let running = true
  const st = {acked: 0, failed: 0, kinds: {}, followed: {}, clients: 1, times: []}
  let c = clusterClient(seeds, CountingCluster)
  const merge = () => {
    for (const [k, n] of Object.entries(c.followed)) st.followed[k] = (st.followed[k] ?? 0) + n
  }
  const loop = (async () => {
    for (let i = 0; running; i++) {
      if (c.status === 'end') {
        merge()
        c.disconnect()
        c = clusterClient(seeds, CountingCluster)
        st.clients++
      }
      const k = `${prefix}:${i}`
      const v = `w${i}`
      let r
      try {
        r = await attempt(c, k, v, replicas)
      } catch (e) {
        r = kindOf(e)
      }
      if (r === true) {
        acked.set(k, v)
        st.acked++
        st.times.push(Date.now())
      } else {
        st.failed++
        st.kinds[r] = (st.kinds[r] ?? 0) + 1
        // A pipeline is not redirected by ioredis: the slot map is refreshed as an application would.
        if (/^(MOVED|ASK)/.test(r)) c.refreshSlotsCache()
        await sleep(r === 'MOVED' ? 5 : 50)
      }
    }
  })()
  return {
    st,
    async stop() {
      running = false
      await loop
      merge()
      c.disconnect()
      return st
    },
  }
}

// --- per-master probes (the downtime side) -----------------------------------------------------

async function slotOwners(seed) {
  const r = new Redis({...seed, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null})
  r.on('error', () => {})
  await r.connect()
  try {
    return (await r.call('CLUSTER', 'SLOTS')).map(([from, to, m]) => ({from, to, host: m[0], port: m[1]}))
  } finally {
    r.disconnect()
  }
}

/** A key per master, SET every 50 ms over a direct connection: the windows each master refused or missed writes. */
async function startProbes(seed) {
  const ranges = await slotOwners(seed)
  const masters = [...new Map(ranges.map((x) => [`${x.host}:${x.port}`, x])).values()]
  const probes = masters.map((m) => {
    const mine = ranges.filter((x) => x.host === m.host && x.port === m.port)
    let key
    for (let i = 0; !key; i++) {
      const s = keySlot(`probe:${i}`)
      if (mine.some((x) => s >= x.from && s <= x.to)) key = `probe:${i}`
    }
    const r = new Redis({host: m.host, port: m.port, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 500, commandTimeout: 1000, retryStrategy: () => 50})
    r.on('error', () => {})
    const p = {addr: `${m.host}:${m.port}`, windows: [], kinds: {}, downSince: 0, lastOk: 0, failed: 0, running: true}
    p.loop = (async () => {
      while (p.running) {
        const t = Date.now()
        let ok = false
        try {
          ok = (await r.set(key, String(t))) === 'OK'
        } catch (e) {
          // Until its first write the probe is only connecting: not the master's downtime.
          if (p.lastOk) {
            const k = kindOf(e)
            p.kinds[k] = (p.kinds[k] ?? 0) + 1
          }
        }
        if (!ok && !p.lastOk) {
          await sleep(20)
          continue
        }
        if (ok) {
          if (p.downSince) p.windows.push(Date.now() - p.lastOk)
          p.downSince = 0
          p.lastOk = Date.now()
        } else {
          p.failed++
          p.downSince ||= t
        }
        await sleep(Math.max(0, 50 - (Date.now() - t)))
      }
      r.disconnect()
    })()
    return p
  })
  return {
    async stop() {
      for (const p of probes) p.running = false
      await Promise.all(probes.map((p) => p.loop))
      return probes.map((p) => ({addr: p.addr, windows: p.windows, kinds: p.kinds, failed: p.failed, stillDown: p.downSince > 0}))
    },
  }
}

// --- cluster helpers ----------------------------------------------------------------------------

async function direct(n, fn) {
  const r = new Redis({host: n.ip, port: n.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, commandTimeout: 5000})
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}
const infoOf = (n, section = '') =>
  direct(n, async (r) =>
    Object.fromEntries(
      String(await r.call('INFO', ...(section ? [section] : [])))
        .split(/\r?\n/)
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    ),
  )

async function versions(nodes) {
  const out = {}
  for (const n of nodes) {
    const v = await infoOf(n, 'server').then(
      (i) => i.redis_version,
      () => 'down',
    )
    out[v] = (out[v] ?? 0) + 1
  }
  return out
}

// Every master's replicas at its offset: the seed is on both copies before the upgrade starts.
async function waitInSync(nodes, ms = 120_000) {
  const end = Date.now() + ms
  for (;;) {
    const infos = await Promise.all(nodes.map((n) => infoOf(n, 'replication').catch(() => ({}))))
    const behind = infos.filter(
      (i) => i.role === 'master' && Number(i.connected_slaves) > 0 && Object.keys(i).some((k) => /^slave\d+$/.test(k) && Number(/offset=(\d+)/.exec(i[k])?.[1]) < Number(i.master_repl_offset) - 1000),
    )
    if (behind.length === 0) return
    if (Date.now() > end) throw new Error(`${behind.length} master(s) whose replica is behind`)
    await sleep(500)
  }
}

async function seed(seeds) {
  const c = clusterClient(seeds)
  try {
    for (let from = 0; from < SEED; from += 2000) {
      await Promise.all(Array.from({length: Math.min(2000, SEED - from)}, (_, j) => c.set(`seed:${from + j}`, value(from + j))))
    }
  } finally {
    c.disconnect()
  }
}

/** Seed keys and acknowledged writes that do not read back with their value. */
async function lost(seeds, acked) {
  const c = clusterClient(seeds)
  let seedLost = 0
  let ackLost = 0
  const sample = []
  try {
    for (let from = 0; from < SEED; from += 2000) {
      const vals = await Promise.all(Array.from({length: Math.min(2000, SEED - from)}, (_, j) => c.get(`seed:${from + j}`).catch(() => null)))
      vals.forEach((v, j) => {
        if (v !== value(from + j)) {
          seedLost++
          if (sample.length < 5) sample.push(`seed:${from + j}`)
        }
      })
    }
    const keys = [...acked.keys()]
    for (let from = 0; from < keys.length; from += 2000) {
      const part = keys.slice(from, from + 2000)
      const vals = await Promise.all(part.map((k) => c.get(k).catch(() => null)))
      vals.forEach((v, j) => {
        if (v !== acked.get(part[j])) {
          ackLost++
          if (sample.length < 10) sample.push(part[j])
        }
      })
    }
  } finally {
    c.disconnect()
  }
  return {seedLost, ackLost, ackedTotal: acked.size, sample}
}

// --- one side -------------------------------------------------------------------------------------

const builds = {}
async function side(name, run) {
  const replicas = name === 'downtime' ? 0 : 1
  const hosts = fleet.hosts.slice(0, H)
  const nodes = nodesOf(hosts, PORT, P)
  const seeds = hosts.map((h) => ({host: h.ip, port: PORT}))
  const inv = fleet.writeInventory({
    hosts,
    path: join(fleet.dir, `bench-upgrade-${name}.yml`),
    vars: {redis_port_start: PORT, redis_count: P, redis_replicas: replicas, redis_cluster_node_timeout: 5000},
  })
  liveInv = inv
  log(`${name} (run ${run + 1}): up on ${OLD.version}, ${H} × ${P}, replicas ${replicas}; load ${loadavg().join(' ')}`)
  const u = await bm(inv, ['up'], OLD)
  if (u.code !== 0) throw new Error(`up on ${OLD.version} failed (exit ${u.code}): ${failedTasks(u).join('; ')}\n${u.stderr.slice(-1500)}`)
  const ok0 = await waitClusterOk(nodes, {timeoutS: 180})
  if (!ok0.ok) throw new Error(`cluster not ok on ${OLD.version}: ${ok0.behind.slice(0, 3).join('; ')}`)
  await seed(seeds)
  if (replicas) await waitInSync(nodes)
  const before = await versions(nodes)
  const acked = new Map()
  const ws = Array.from({length: WRITERS}, (_, i) => writer(seeds, `${name}-${run}-w${i}`, replicas, acked))
  const probes = name === 'downtime' ? await startProbes({host: hosts[0].ip, port: PORT}) : undefined
  await sleep(2000)
  const load = loadavg()
  const t0 = Date.now()
  const steps = []
  if (name === 'stopall') {
    const d = await bm(inv, ['down', '--keep-data'], OLD)
    steps.push({step: 'down --keep-data', ...pick(d)})
    if (d.code !== 0) throw new Error(`down --keep-data failed: ${failedTasks(d).join('; ')}`)
  }
  const r = await bm(inv, ['up', ...(name === 'downtime' ? ['--allow-downtime'] : [])], NEW)
  steps.push({step: 'up', ...pick(r)})
  const cmdEnd = Date.now()
  const ut = r.tasks.find((t) => /^Instances run Redis/.test(t.task))
  if (r.code !== 0) console.error(`${name}: up exit ${r.code}: ${failedTasks(r).join('; ')}`)
  const ok = await waitClusterOk(nodes, {timeoutS: 180})
  // Until each writer has an acknowledged write after the command: a gap past its end counts in full.
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && ws.some((w) => !w.st.times.some((t) => t > cmdEnd))) await sleep(20)
  await sleep(500)
  const st = await Promise.all(ws.map((w) => w.stop()))
  const pr = probes ? await probes.stop() : undefined
  let maxGap = 0
  for (const s of st) {
    const ts = [t0, ...s.times.filter((t) => t > t0)]
    for (let i = 1; i < ts.length; i++) maxGap = Math.max(maxGap, ts[i] - ts[i - 1])
    if (!s.times.some((t) => t > cmdEnd)) maxGap = Math.max(maxGap, Date.now() - ts[ts.length - 1])
  }
  const sum = (key) =>
    st.reduce((acc, s) => {
      for (const [k, n] of Object.entries(s[key])) acc[k] = (acc[k] ?? 0) + n
      return acc
    }, {})
  const after = await versions(nodes)
  const l = await lost(seeds, acked)
  const rec = {
    side: name,
    run,
    replicas,
    load,
    loadAfter: loadavg(),
    before,
    after,
    clusterOk: ok.ok,
    totalS: (cmdEnd - t0) / 1000,
    steps,
    code: r.code,
    failed: failedTasks(r),
    upgradeTaskS: ut?.data?.ms != null ? ut.data.ms / 1000 : undefined,
    upgradeMsg: ut?.msg,
    acked: st.reduce((a, s) => a + s.acked, 0),
    failedWrites: st.reduce((a, s) => a + s.failed, 0),
    kinds: sum('kinds'),
    followed: sum('followed'),
    clients: st.reduce((a, s) => a + s.clients, 0),
    maxGapS: maxGap / 1000,
    ...l,
    probes: pr && {
      masters: pr.length,
      maxWindowS: Math.max(0, ...pr.flatMap((p) => p.windows)) / 1000,
      medianWindowS: median(pr.map((p) => Math.max(0, ...p.windows))) / 1000,
      failed: pr.reduce((a, p) => a + p.failed, 0),
      kinds: pr.reduce((acc, p) => {
        for (const [k, n] of Object.entries(p.kinds)) acc[k] = (acc[k] ?? 0) + n
        return acc
      }, {}),
      windowsPerMaster: pr.map((p) => p.windows.length),
      windows: pr.map((p) => p.windows),
      stillDown: pr.filter((p) => p.stillDown).length,
    },
  }
  log(
    `${name}: ${fmtS(rec.totalS)}, ${rec.acked} acked, ${rec.failedWrites} failed ${JSON.stringify(rec.kinds)}, gap ${fmtS(rec.maxGapS)}, lost ${rec.ackLost}+${rec.seedLost}, after ${JSON.stringify(after)}`,
  )
  const d = await bm(inv, ['down'], NEW)
  if (d.code !== 0) throw new Error(`down failed: ${failedTasks(d).join('; ')}`)
  liveInv = undefined
  return rec
}
const pick = (r) => ({code: r.code, wallS: r.wallS})
function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN
}

// --- the runs ---------------------------------------------------------------------------------------

const out = {
  benchmark: 'upgrade',
  date: new Date().toISOString(),
  revision: gitRevision(),
  from: OLD.version,
  to: NEW.version,
  shape: {hosts: H, ports: P},
  seed: {keys: SEED, valueSize: VSIZE},
  writers: WRITERS,
  runs: [],
}
try {
  ;({fleet} = await openFleet({hosts: H, nodes: H * P, maxNodes: Number(opt['max-nodes']), fleet: opt.fleet}))
  builds[OLD.version] = await sharedRedisBuild(fleet, fleet.hosts[0], OLD)
  builds[NEW.version] = await sharedRedisBuild(fleet, fleet.hosts[0], NEW)
  for (let run = 0; run < RUNS; run++) {
    const pair = ['rolling', 'stopall'].filter((s) => ONLY.has(s))
    if (run % 2) pair.reverse()
    for (const s of [...pair, ...(ONLY.has('downtime') ? ['downtime'] : [])]) out.runs.push(await side(s, run))
  }
} finally {
  await cleanup()
}

out.samples = samples
mkdirSync(join(BENCH, 'results'), {recursive: true})
writeFileSync(join(BENCH, 'results', 'upgrade.json'), JSON.stringify(out, null, 2) + '\n')

const kinds = (o) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '0'
const of = (name) => out.runs.filter((r) => r.side === name)
const med = (name, f) => median(of(name).map(f).filter(Number.isFinite))
console.log(`\n# upgrade ${OLD.version} → ${NEW.version}, ${H} hosts × ${P} nodes, rev ${out.revision}, ${new Date().toISOString().slice(0, 16)}Z`)
console.log(`# seed ${SEED} keys × ${VSIZE} B, ${WRITERS} WAIT-1 writers throughout; load ${out.runs.map((r) => `${r.side}: ${r.load.join(' ')}`).join('; ')}; at the end ${loadavg().join(' ')}\n`)
printTable(
  ['side (run)', 'upgrade task', 'whole', 'acked', 'failed writes by kind', 'followed by the client', 'longest write gap', 'acked lost', 'seed lost', 'versions after'],
  out.runs.map((r) => [
    `${r.side} (${r.run + 1})${r.code ? ` exit ${r.code}` : ''}`,
    r.side === 'stopall' ? `down ${fmtS(r.steps[0].wallS)} + up ${fmtS(r.steps[1].wallS)}` : fmtS(r.upgradeTaskS),
    fmtS(r.totalS),
    r.acked,
    `${r.failedWrites}: ${kinds(r.kinds)}`,
    kinds(r.followed),
    fmtS(r.maxGapS),
    `${r.ackLost} of ${r.ackedTotal}`,
    `${r.seedLost} of ${SEED}`,
    Object.entries(r.after)
      .map(([v, n]) => `${n}× ${v}`)
      .join(' '),
  ]),
)
if (of('rolling').length && of('stopall').length) {
  console.log('')
  printTable(
    ['ratio (stop-all / rolling)', 'value'],
    [
      ['whole upgrade time', fmtRatio(med('stopall', (r) => r.totalS) / med('rolling', (r) => r.totalS))],
      ['longest write gap', fmtRatio(med('stopall', (r) => r.maxGapS) / med('rolling', (r) => r.maxGapS))],
      ['failed writes', fmtRatio(med('stopall', (r) => r.failedWrites) / med('rolling', (r) => r.failedWrites))],
      ['acknowledged writes', fmtRatio(med('stopall', (r) => r.acked) / med('rolling', (r) => r.acked))],
    ],
  )
}
for (const r of of('downtime')) {
  console.log(
    `\n--allow-downtime, replicas 0 (${r.probes.masters} masters restarted in place): per-master unavailability median ${fmtS(r.probes.medianWindowS)}, longest ${fmtS(r.probes.maxWindowS)}; ${r.probes.failed} probe writes failed (${kinds(r.probes.kinds)}); windows per master ${[...new Set(r.probes.windowsPerMaster)].join('/')} (${r.probes.windows[0].map((w) => fmtS(w / 1000)).join(' + ')} for ${r.probes.masters > 0 ? 'the first' : '–'})${r.probes.stillDown ? `; ${r.probes.stillDown} still down at the end` : ''}`,
  )
}
console.log(
  `\nfirst message of each failure kind: ${Object.entries(samples)
    .map(([k, m]) => `${k}: "${m}"`)
    .join('; ')}`,
)
for (const r of out.runs) if (r.sample.length) console.log(`${r.side} (${r.run + 1}): lost e.g. ${r.sample.join(', ')}`)
for (const r of out.runs) if (r.failed.length) console.log(`${r.side} (${r.run + 1}): failed tasks: ${r.failed.join('; ')}`)
