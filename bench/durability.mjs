// Durability benchmark: how long a repair waits for promotion before it restarts dead masters (vs Redis's own automatic failover), and a rolling restart's client-visible pause, this tree vs a baseline checkout.
//
// Per shape HxP (replicas 1, save "", appendonly no, node timeout 5000), one writer whose
// writes count only when WAIT 1 acknowledges them runs throughout:
//   anchor   every instance of h1 killed -9; nothing run: time until Redis itself has promoted
//            a replica for every master h1 held (node timeout + FAIL agreement + election);
//            then `up` brings h1 back.
//   repair   every instance of h1 killed -9 and `up` started at once: time `up` spends in
//            "Dead masters failed over before they restart", the whole `up`, writes lost.
//   rolling  `up` with a restart-only change (tcp-backlog): failed writes by kind, the longest
//            write, writes lost; with --baseline DIR the same step is run by DIR's bin/run.js
//            (an older checkout, built), on the same cluster, before this tree's run.
// Prints figures and ratios; asserts nothing.
//
//   npm run build && node bench/durability.mjs --shapes 2x10,3x66 [--baseline /tmp/bm-old] [--fleet NAME]
import {parseArgs} from 'node:util'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {loadavg, measure} from './lib/measure.mjs'
import {ROOT, BIN, openFleet, redisSource} from './lib/tools.mjs'

const {sharedRedisBuild} = await import(join(ROOT, 'dist/test/e2e/fault-tools.js'))
const {AckedKeys} = await import(join(ROOT, 'dist/test/e2e/acked.js'))
const {values} = parseArgs({options: {shapes: {type: 'string', default: '2x10,3x66'}, baseline: {type: 'string'}, fleet: {type: 'string'}, 'max-nodes': {type: 'string', default: '200'}}})

const s = (ms) => `${(ms / 1000).toFixed(2)} s`
const shapes = values.shapes.split(',').map((x) => x.split('x').map(Number))
const maxHosts = Math.max(...shapes.map(([h]) => h))
const maxNodes = Math.max(...shapes.map(([h, p]) => h * p))
const {fleet} = await openFleet({hosts: maxHosts, nodes: maxNodes, maxNodes: Number(values['max-nodes']), fleet: values.fleet})
const build = await sharedRedisBuild(fleet, fleet.hosts[0])

async function cli(bin, inv, args) {
  const src = redisSource()
  const vars = {redis_version: src.version, redis_source: src.tarball, redis_make_args: src.makeArgs}
  const m = await measure(process.execPath, [bin, ...args, '-i', inv, '--json', ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`])], {cwd: ROOT, timeoutS: 1800})
  let json
  try { json = JSON.parse(m.stdout) } catch {}
  return {...m, json, code: m.code}
}

const sh = async (h, cmd) => {
  const r = await fleet.nsExec(h, cmd)
  if (r.code !== 0) throw new Error(`${h.name}: ${cmd}: ${r.stderr}`)
  return r.stdout
}
const killHost = (h, ports) => sh(h, `kill -KILL ${ports.map((p) => `$(cat /root/redis_cluster/${p}/redis.pid)`).join(' ')}; sleep 0.2`)

async function status(inv) {
  const r = await cli(BIN, inv, ['status'])
  return r.json
}
async function waitOk(inv, ms = 180_000) {
  const end = Date.now() + ms
  for (;;) {
    const st = await status(inv)
    if (st?.ok) return st
    if (Date.now() > end) throw new Error(`cluster not ok: ${st?.problems?.slice(0, 3).join('; ')}`)
    await sleep(1000)
  }
}

// Redis's own failover: until no slot is owned by a node of the dead host, seen from a live one.
async function autoFailoverMs(live, deadIp, t0) {
  for (;;) {
    const text = await sh(live, `${build.redis_bin_dir}/redis-cli -h ${live.ip} -p ${7000} CLUSTER NODES`)
    const owning = text.split('\n').filter((l) => l.includes(` ${deadIp}:`) && / master /.test(` ${l.split(' ')[2].replace(/,/g, ' ')} `) && l.split(' ').length > 8)
    if (owning.length === 0) return Date.now() - t0
    if (Date.now() - t0 > 120_000) return NaN
    await sleep(50)
  }
}

const rows = []
for (const [H, P] of shapes) {
  const hosts = fleet.hosts.slice(0, H)
  const ports = Array.from({length: P}, (_, i) => 7000 + i)
  const inv = fleet.writeInventory({hosts, path: join(fleet.dir, `bench-durability-${H}x${P}.yml`), vars: {redis_port_start: 7000, redis_count: P, redis_replicas: 1, redis_cluster_node_timeout: 5000, ...build}})
  const shape = `${H} × ${P} (${H * P} nodes)`
  console.error(`${shape}: up, load ${loadavg().join(' ')}`)
  let r = await cli(BIN, inv, ['up'])
  if (r.code !== 0) throw new Error(`up failed\n${r.stdout.slice(-2000)}`)
  await waitOk(inv)
  const keys = new AckedKeys({seeds: hosts.map((h) => ({host: h.ip, port: 7000})), replicas: 1})
  await keys.writeKeys('base', 200)
  const [h1, h2] = hosts

  // anchor: Redis alone
  let st0 = await status(inv)
  const held = st0.masters.filter((m) => m.host === h1.name).length
  let t0 = Date.now()
  await killHost(h1, ports)
  const auto = await autoFailoverMs(h2, h1.ip, t0)
  r = await cli(BIN, inv, ['up'])
  await waitOk(inv)

  // repair: ours, started at once
  st0 = await status(inv)
  const heldNow = st0.masters.filter((m) => m.host === h1.name).length
  let w = keys.background('repair')
  await sleep(500)
  await killHost(h1, ports)
  t0 = Date.now()
  r = await cli(BIN, inv, ['up'])
  const repairWall = Date.now() - t0
  const fo = (r.json?.tasks ?? []).find((t) => t.task === 'Dead masters failed over before they restart')
  await waitOk(inv)
  let ws = await w.stop()
  let lost = 0
  try { await keys.assertNoneLost() } catch (e) { lost = Number(/^(\d+) of/.exec(e.message)?.[1] ?? -1) }
  rows.push([shape, 'anchor: Redis promotes by itself', `${held} master(s) of h1`, Number.isNaN(auto) ? `never within 120 s (${st0.masters.length - held} of ${st0.masters.length} masters left${st0.masters.length - held > st0.masters.length / 2 ? '' : ': no majority to elect'})` : s(auto), '', ''])
  rows.push([shape, 'repair: up right after kill -9 of h1', `${heldNow} master(s) of h1`, `${s(fo?.durationMs ?? NaN)} promotion, ${s(repairWall)} whole up (exit ${r.code})`, `${ws.failed} failed ${JSON.stringify(ws.kinds)}`, `${lost} lost`])

  // rolling restart: baseline first, then this tree, each with its own tcp-backlog value
  for (const [name, bin, backlog] of [...(values.baseline ? [['baseline', join(values.baseline, 'bin/run.js'), 300]] : []), ['this tree', BIN, 400]]) {
    w = keys.background(`roll-${backlog}`)
    t0 = Date.now()
    r = await cli(bin, inv, ['up', '-e', JSON.stringify({redis_extra_config: [`tcp-backlog ${backlog}`]})])
    const wall = Date.now() - t0
    await waitOk(inv).catch(() => {})
    ws = await w.stop()
    lost = 0
    try { await keys.assertNoneLost() } catch (e) { lost = Number(/^(\d+) of/.exec(e.message)?.[1] ?? -1); for (const k of keys.acked.keys()) if (k.startsWith(`roll-${backlog}`)) keys.acked.delete(k) }
    const failedTasks = (r.json?.tasks ?? []).filter((t) => t.status === 'failed').map((t) => t.msg.split('\n').slice(0, 3).join(' / '))
    if (failedTasks.length) console.error(`${name}: ${failedTasks.join('; ')}`)
    rows.push([shape, `rolling restart (${name})`, `${H * P} restarted`, `${s(wall)} (exit ${r.code})`, `${ws.failed} failed ${JSON.stringify(ws.kinds)}, longest write ${ws.maxMs} ms`, `${lost} lost`])
  }
  await cli(BIN, inv, ['down'])
}
console.log(`\ndurability bench, ${new Date().toISOString().slice(0, 10)}, load ${loadavg().join(' ')}\n`)
console.log('| shape | step | scope | time | failed writes | acknowledged writes lost |')
console.log('|---|---|---|---|---|---|')
for (const row of rows) console.log(`| ${row.join(' | ')} |`)
if (!values.fleet) await fleet.destroy()
