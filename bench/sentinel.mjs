#!/usr/bin/env node
// Sentinel + HAProxy: the client-visible write gap of a kill -9 failover through HAProxy,
// `baremetal failover`, throughput through HAProxy vs direct, and `up` for many groups —
// baremetal's topology against a hand-made redis-ha-style setup on the same hosts.
//
//   node bench/sentinel.mjs [--only kill,failover,up] [--downs 1000,5000,10000] [--runs 1] [--up-groups 30] [--fleet NAME]
//   (--runs also repeats the planned failover; each prints its timeline, ms from the fence)
//
// The hand-made side is what the redis-ha chart deploys, written here: one master and two
// replicas (one per host), 3 Sentinels (quorum 2), min-replicas-to-write 1, and HAProxy with
// the chart's rule (a server gets writes when it answers role:master and 2 Sentinels name
// it); its files go to bench/results/sentinel-handmade/. The writer acknowledges each SET
// with WAIT 1; the gap is kill → first acknowledged write through HAProxy.
import {execFileSync} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {loadavg, measure, median} from './lib/measure.mjs'
import {fmtRatio, fmtS, gitRevision, printTable} from './lib/report.mjs'
import {BENCH, BIN, ROOT, ensurePackages, log, openFleet, redisSource} from './lib/tools.mjs'

const {values: opt} = parseArgs({
  options: {
    downs: {type: 'string', default: '1000,5000,10000'},
    runs: {type: 'string', default: '1'},
    'up-groups': {type: 'string', default: '30'},
    only: {type: 'string', default: 'kill,failover,up'},
    'max-nodes': {type: 'string', default: '250'},
    fleet: {type: 'string'},
  },
})
const DOWNS = opt.downs.split(',').map(Number)
const RUNS = Number(opt.runs)
const UP_GROUPS = Number(opt['up-groups'])
const ONLY = new Set(opt.only.split(','))
const PORT = 7100
const SENTINEL_PORT = 26379
const HANDMADE = '/root/bench-handmade'

ensurePackages({ansible: false})
try {
  execFileSync('sh', ['-c', 'command -v haproxy >/dev/null || { apt-get install -y -q haproxy || { apt-get update -q && apt-get install -y -q haproxy; }; }'], {stdio: 'inherit'})
} catch {
  throw new Error('haproxy could not be installed (apt-get install haproxy)')
}
const {Redis} = await import(join(ROOT, 'node_modules/ioredis/built/index.js'))
const src = redisSource()
const BUILD = `/var/cache/baremetal-bench-build/redis-${src.version}`
const {fleet, hosts} = await openFleet({hosts: 4, nodes: 3 * UP_GROUPS + 3, maxNodes: Number(opt['max-nodes']), fleet: opt.fleet})
const [h1, h2, h3, proxy] = hosts
const data = [h1, h2, h3]
const sh = async (h, cmd) => {
  const r = await fleet.nsExec(h, cmd)
  if (r.code !== 0) throw new Error(`${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function inventory(vars) {
  const path = join(fleet.dir, 'bench-sentinel.yml')
  const host = (h) => `        ${h.name}: {ansible_host: ${h.ip}}`
  const lines = ['all:', '  vars:', `    ansible_user: root`, `    ansible_ssh_private_key_file: ${fleet.keyPath}`, `    ansible_ssh_known_hosts_file: ${fleet.knownHostsPath}`]
  for (const [k, v] of Object.entries(vars)) lines.push(`    ${k}: ${JSON.stringify(v)}`)
  lines.push('  children:', '    redis:', '      hosts:', ...data.map(host), '    haproxy:', '      hosts:', host(proxy))
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

const ourVars = (downAfter, groups = 1) => ({
  redis_topology: 'sentinel',
  redis_port_start: PORT,
  redis_sentinel_groups: groups,
  redis_replicas: 2,
  redis_sentinel_down_after_ms: downAfter,
  redis_min_replicas_to_write: 1,
  redis_version: src.version,
  redis_source: src.tarball,
  redis_make_args: src.makeArgs,
  redis_src_dir: `${BUILD}/src`,
  redis_bin_dir: `${BUILD}/bin`,
})

const baremetal = (inv, args, timeoutS = 900) => measure(process.execPath, [BIN, ...args, '-i', inv, '--json'], {cwd: ROOT, timeoutS})

// --- the hand-made side ------------------------------------------------------------------

const NAME = 'mymaster'
function handmadeFiles(downAfter) {
  const redis = (h, master) =>
    [`port ${PORT}`, `bind ${h.ip}`, 'protected-mode no', 'daemonize yes', `dir ${HANDMADE}`, `pidfile ${HANDMADE}/redis.pid`, `logfile ${HANDMADE}/redis.log`, 'save ""', 'appendonly no', `replica-announce-ip ${h.ip}`, 'min-replicas-to-write 1', 'min-replicas-max-lag 10', ...(master ? [`replicaof ${master.ip} ${PORT}`] : [])].join('\n') + '\n'
  const sentinel = (h) =>
    [`port ${SENTINEL_PORT}`, `bind ${h.ip}`, 'protected-mode no', 'daemonize yes', `dir ${HANDMADE}`, `pidfile ${HANDMADE}/sentinel.pid`, `logfile ${HANDMADE}/sentinel.log`, `sentinel announce-ip ${h.ip}`, `sentinel monitor ${NAME} ${h1.ip} ${PORT} 2`, `sentinel down-after-milliseconds ${NAME} ${downAfter}`, `sentinel failover-timeout ${NAME} 60000`, `sentinel parallel-syncs ${NAME} 1`].join('\n') + '\n'
  // The chart's haproxy.cfg (its QUIT/+OK step dropped: Sentinel 7.0.15 never answers it).
  const checkSentinels = data.map((d, i) =>
    [
      `backend check_if_redis_is_master_${i}`,
      '  mode tcp',
      '  option tcp-check',
      '  tcp-check connect',
      '  tcp-check send PING\\r\\n',
      '  tcp-check expect string +PONG',
      `  tcp-check send SENTINEL\\ get-master-addr-by-name\\ ${NAME}\\r\\n`,
      `  tcp-check expect string ${d.ip}`,
      '  tcp-check send QUIT\\r\\n',
      ...data.map((s, j) => `  server S${j} ${s.ip}:${SENTINEL_PORT} check inter 3s`),
    ].join('\n'),
  )
  const haproxy = [
    'global',
    '  daemon',
    // The chart's maxconn 30000 is past this machine's file-descriptor limit (HAProxy then refuses to start).
    '  maxconn 5000',
    'defaults',
    '  mode tcp',
    '  timeout connect 4s',
    '  timeout server 330s',
    '  timeout client 330s',
    '  timeout check 2s',
    ...checkSentinels,
    'frontend ft_redis_master',
    `  bind ${proxy.ip}:${PORT}`,
    '  use_backend bk_redis_master',
    'backend bk_redis_master',
    '  mode tcp',
    '  option tcp-check',
    '  tcp-check connect',
    '  tcp-check send PING\\r\\n',
    '  tcp-check expect string +PONG',
    '  tcp-check send info\\ replication\\r\\n',
    '  tcp-check expect string role:master',
    '  tcp-check send QUIT\\r\\n',
    '  tcp-check expect string +OK',
    ...data.map((_, i) => `  use-server R${i} if { srv_is_up(R${i}) } { nbsrv(check_if_redis_is_master_${i}) ge 2 }`),
    ...data.map((d, i) => `  server R${i} ${d.ip}:${PORT} check inter 1s fall 1 rise 1`),
  ].join('\n') + '\n'
  return {redis, sentinel, haproxy}
}

const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`
const stopByPid = (f) => `[ -f ${f} ] && { p=$(cat ${f}); kill -KILL $p 2>/dev/null; n=0; while [ -r /proc/$p/stat ] && ! grep -q ') [ZX]' /proc/$p/stat && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; rm -f ${f}; }; true`

async function handmadeUp(downAfter) {
  const f = handmadeFiles(downAfter)
  const dir = join(BENCH, 'results', 'sentinel-handmade')
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'haproxy.cfg'), f.haproxy)
  writeFileSync(join(dir, 'redis-h1.conf'), f.redis(h1))
  writeFileSync(join(dir, 'sentinel.conf'), f.sentinel(h1))
  // The hand-made order: master, then Sentinels, then replicas, then HAProxy.
  const put = (h, file, text) => `mkdir -p ${HANDMADE} && printf %s ${q(text)} > ${HANDMADE}/${file}`
  await sh(h1, `${put(h1, 'redis.conf', f.redis(h1))} && ${BUILD}/bin/redis-server ${HANDMADE}/redis.conf`)
  await Promise.all(data.map((h) => sh(h, `${put(h, 'sentinel.conf', f.sentinel(h))} && ${BUILD}/bin/redis-server ${HANDMADE}/sentinel.conf --sentinel`)))
  await Promise.all([h2, h3].map((h) => sh(h, `${put(h, 'redis.conf', f.redis(h, h1))} && ${BUILD}/bin/redis-server ${HANDMADE}/redis.conf`)))
  await sh(proxy, `${put(proxy, 'haproxy.cfg', f.haproxy)} && haproxy -f ${HANDMADE}/haproxy.cfg -D -p ${HANDMADE}/haproxy.pid`)
}

async function handmadeDown() {
  await Promise.all([...data, proxy].map((h) => fleet.nsExec(h, `for f in ${HANDMADE}/*.pid; do ${stopByPid('"$f"')}; done; rm -rf ${HANDMADE}`)))
}

// --- the writer and the failover measurement ------------------------------------------------

/** SET + WAIT 1 through addr, one at a time, reconnecting fast; acknowledged keys with their times. */
function startWriter(host, port) {
  const acked = []
  let failed = 0
  let stop = false
  const r = new Redis({host, port, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 500, retryStrategy: () => 20, lazyConnect: false})
  r.on('error', () => {})
  const loop = (async () => {
    let i = 0
    while (!stop) {
      const key = `w-${Date.now()}-${i++}`
      try {
        await r.set(key, '1')
        const n = await r.call('WAIT', '1', '500')
        if (Number(n) >= 1) acked.push({key, t: Date.now()})
        else failed++
      } catch {
        failed++
        await sleep(5)
      }
    }
  })()
  return {
    acked,
    async stop() {
      stop = true
      await loop
      r.disconnect()
      return {acked: acked.length, failed}
    },
  }
}

async function masterOf(name) {
  for (const s of data) {
    const c = new Redis({host: s.ip, port: SENTINEL_PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000})
    c.on('error', () => {})
    try {
      await c.connect()
      const a = await c.call('SENTINEL', 'get-master-addr-by-name', name)
      if (Array.isArray(a)) return data.find((h) => h.ip === a[0])
    } catch {
    } finally {
      c.disconnect()
    }
  }
  throw new Error(`no Sentinel names a master for ${name}`)
}

// Keys the writer saw acknowledged and the master has not: the loss (must be 0).
async function lostKeys(name, keys) {
  const deadline = Date.now() + 90_000
  let c
  for (;;) {
    const m = await masterOf(name)
    c = new Redis({host: m.ip, port: PORT, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000})
    c.on('error', () => {})
    const role = await c.call('ROLE').catch(() => undefined)
    if (Array.isArray(role) && role[0] === 'master') break
    c.disconnect()
    if (Date.now() > deadline) throw new Error(`no confirmed master of ${name} to count the keys on`)
    await sleep(200)
  }
  try {
    let lost = 0
    for (let i = 0; i < keys.length; i += 500) {
      const got = await c.exists(...keys.slice(i, i + 500).map((k) => k.key))
      lost += Math.min(500, keys.length - i) - got
    }
    return lost
  } finally {
    c.disconnect()
  }
}

async function killFailover(name, pidfile) {
  const w = startWriter(proxy.ip, PORT)
  await sleep(2000)
  const m = await masterOf(name)
  const t0 = Date.now()
  await sh(m, stopByPid(pidfile(m)))
  // A write the old master acknowledged in the instant of the kill is not the new master's.
  const gone = Date.now()
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline && !w.acked.some((a) => a.t > gone)) await sleep(20)
  const first = w.acked.find((a) => a.t > gone)
  await sleep(1000)
  const st = await w.stop()
  const lost = await lostKeys(name, w.acked)
  return {gapS: first ? (first.t - t0) / 1000 : NaN, lost, ...st, from: m.name, to: (await masterOf(name)).name}
}

// A failover right after another waits for the old master to be back in sync (refused otherwise).
async function waitInSync(name, ms = 60_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const m = await masterOf(name)
    const c = new Redis({host: m.ip, port: PORT, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000})
    c.on('error', () => {})
    const info = await c.info('replication').catch(() => '')
    c.disconnect()
    if ((info.match(/^slave\d+:.*state=online/gm) ?? []).length >= 2) return
    await sleep(200)
  }
}

async function waitThroughProxy(ms = 60_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const c = new Redis({host: proxy.ip, port: PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500})
    c.on('error', () => {})
    try {
      await c.connect()
      await c.set('bench-probe', '1')
      return
    } catch {
    } finally {
      c.disconnect()
    }
    await sleep(200)
  }
  throw new Error('no write got through HAProxy')
}

function benchmarkSet(host, port) {
  const out = execFileSync('redis-benchmark', ['-h', host, '-p', String(port), '-t', 'set', '-c', '50', '-n', '200000', '-d', '30', '-q'], {encoding: 'utf8'})
  return Number(/SET: ([\d.]+) requests per second/.exec(out)?.[1] ?? NaN)
}

// --- the runs ---------------------------------------------------------------------------------

const out = {benchmark: 'sentinel', date: new Date().toISOString(), revision: gitRevision(), redis: src.version, runs: []}
const ourName = `redis-${PORT}-${PORT}`
let inv
try {
  for (let run = 0; run < (ONLY.has('kill') ? RUNS : 0); run++) {
    for (const downAfter of DOWNS) {
      const sides = run % 2 === 0 ? ['hand-made', 'baremetal'] : ['baremetal', 'hand-made']
      for (const side of sides) {
        const load = loadavg()
        let rec
        if (side === 'hand-made') {
          await handmadeUp(downAfter)
          await waitThroughProxy()
          await sleep(3000)
          rec = await killFailover(NAME, () => `${HANDMADE}/redis.pid`)
          await handmadeDown()
        } else {
          inv = inventory(ourVars(downAfter))
          const up = await baremetal(inv, ['up'])
          if (up.code !== 0) throw new Error(`baremetal up failed (exit ${up.code}): ${up.stderr.slice(-2000)}`)
          await waitThroughProxy()
          rec = await killFailover(ourName, () => `/root/redis_cluster/${PORT}/redis.pid`)
          const again = await baremetal(inv, ['up'])
          rec.rerunS = again.wallS
          rec.rerunOk = again.code === 0
          const down = await baremetal(inv, ['down'])
          if (down.code !== 0) throw new Error(`baremetal down failed: ${down.stderr.slice(-2000)}`)
        }
        out.runs.push({run, side, downAfter, load, ...rec})
        log(`${side} down-after ${downAfter}: gap ${fmtS(rec.gapS)}, ${rec.acked} acked, ${rec.lost} lost (load ${load})`)
      }
    }
  }
  // Planned failover and throughput: baremetal's side, then the hand-made HAProxy on the same nodes.
  if (ONLY.has('failover')) await failoverAndThroughput()
  if (ONLY.has('up')) await upMany()
} finally {
  await handmadeDown().catch(() => {})
  if (inv) await baremetal(inv, ['down']).catch(() => {})
  if (!opt.fleet) await fleet.destroy()
}

async function failoverAndThroughput() {
  inv = inventory(ourVars(5000))
  await baremetal(inv, ['up'])
  await waitThroughProxy()
  const master = await masterOf(ourName)
  const direct = benchmarkSet(master.ip, PORT)
  const viaOurs = benchmarkSet(proxy.ip, PORT)
  out.failovers = []
  for (let run = 0; run < RUNS; run++) {
    await waitInSync(ourName)
    const w = startWriter(proxy.ip, PORT)
    await sleep(1000)
    const t0 = Date.now()
    const fo = await baremetal(inv, ['failover'])
    // Until writes are acknowledged again: a gap that runs past the command counts in full.
    const done = Date.now()
    while (Date.now() < done + 30_000 && !w.acked.some((a) => a.t > done)) await sleep(20)
    const st = await w.stop()
    const acks = [t0, ...w.acked.map((a) => a.t).filter((t) => t > t0)]
    let maxGap = 0
    let gapEnd = t0
    for (let i = 1; i < acks.length; i++) if (acks[i] - acks[i - 1] > maxGap) [maxGap, gapEnd] = [acks[i] - acks[i - 1], acks[i]]
    // The command's own steps (ms from its fence) and the writer's first acknowledged write after it.
    let f
    try {
      f = JSON.parse(fo.stdout).failovers?.[0]
    } catch {}
    const timeline = f?.phases ? {...f.phases, firstAckAfter: gapEnd - f.fencedAt} : undefined
    const rec = {wallS: fo.wallS, code: fo.code, maxGapS: maxGap / 1000, aimed: f?.aimed, timeline, ...st, lost: await lostKeys(ourName, w.acked)}
    out.failovers.push(rec)
    log(`failover ${run}: gap ${fmtS(rec.maxGapS)}, command ${fmtS(rec.wallS)}, ${rec.lost} lost; timeline (ms from the fence) ${JSON.stringify(timeline)}`)
  }
  out.failover = out.failovers[0]
  out.throughput = {direct, viaOurs}
  await baremetal(inv, ['down'])
  await handmadeUp(5000)
  await waitThroughProxy()
  out.throughput.direct2 = benchmarkSet(h1.ip, PORT)
  out.throughput.viaHandmade = benchmarkSet(proxy.ip, PORT)
  await handmadeDown()
}

async function upMany() {
  inv = inventory(ourVars(5000, UP_GROUPS))
  const upMany = await baremetal(inv, ['up'], 1800)
  const rerun = await baremetal(inv, ['up'], 1800)
  out.upMany = {groups: UP_GROUPS, upS: upMany.wallS, ok: upMany.code === 0, rerunS: rerun.wallS, rerunOk: rerun.code === 0, load: loadavg()}
  await baremetal(inv, ['down'])
}

mkdirSync(join(BENCH, 'results'), {recursive: true})
writeFileSync(join(BENCH, 'results', 'sentinel.json'), JSON.stringify(out, null, 2) + '\n')
console.log(`# sentinel, rev ${out.revision}, Redis ${src.version}`)
const rows = DOWNS.map((d) => {
  const of = (side) => out.runs.filter((r) => r.side === side && r.downAfter === d)
  const hm = median(of('hand-made').map((r) => r.gapS))
  const bm = median(of('baremetal').map((r) => r.gapS))
  const lost = [...of('hand-made'), ...of('baremetal')].map((r) => r.lost).join('/')
  return [`kill -9 → first acked write, down-after ${d}`, fmtS(hm), fmtS(bm), `${fmtS(bm - d / 1000)} over down-after`, lost]
})
if (ONLY.has('kill')) printTable(['measure', 'hand-made', 'baremetal', 'baremetal vs target', 'lost (each run)'], rows)
const t = out.throughput
if (ONLY.has('failover')) for (const f of out.failovers) console.log(`baremetal failover: ${fmtS(f.wallS)} command, longest write gap ${fmtS(f.maxGapS)}, ${f.acked} acked, ${f.lost} lost; ms from the fence: ${Object.entries(f.timeline ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`)
if (ONLY.has('failover')) console.log(`SET/s (redis-benchmark -c 50 -d 30): direct ${t.direct.toFixed(0)}, through our HAProxy ${t.viaOurs.toFixed(0)} (${fmtRatio(t.viaOurs / t.direct)}); direct ${t.direct2.toFixed(0)}, through the hand-made one ${t.viaHandmade.toFixed(0)} (${fmtRatio(t.viaHandmade / t.direct2)})`)
if (ONLY.has('up')) console.log(`up, 3 hosts × ${UP_GROUPS} groups (2 replicas each) + HAProxy: ${fmtS(out.upMany.upS)} (${out.upMany.ok ? 'ok' : 'FAILED'}), re-run ${fmtS(out.upMany.rerunS)}; load ${out.upMany.load}`)
