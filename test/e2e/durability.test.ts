import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Issue 10, cases 1, 2, 6 and 8, on one fleet of 3 hosts × 4 ports with the legacy
// defaults (save "", appendonly no): no acknowledged write is lost by the repairs and
// restarts `up` performs, or `up` refuses with exit != 0 and every key intact. Runs on
// Debian's 7.0.15 and, in CI, again on 5.0.3 (BAREMETAL_REDIS_TARBALL).

const PORT = 7000
const COUNT = 4
const ports = Array.from({length: COUNT}, (_, i) => PORT + i)

let fleet: Fleet
let inv: string
let build: Record<string, string> = {}
let BIN = ''

function layout(vars: Record<string, unknown>): void {
  inv = fleet.writeInventory({path: join(fleet.dir, 'durability.yml'), vars: {redis_port_start: PORT, redis_count: COUNT, redis_cluster_node_timeout: 5000, ...vars, ...build}})
}

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(() => ops.tearDown(fleet, inv))

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
const byName = (r: CliResult, name: string) => tasks(r).filter((t) => t.task === name)
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
const hostOfIp = (ip: string) => fleet.hosts.find((h) => h.ip === ip)!
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const status = () => ops.status(inv)
const waitClusterOk = () => ops.waitClusterOk(inv, 90_000)
const pidOf = (h: TestHost, port: number) => ops.pidOf(fleet, h, port)

// kill -9 by the pids in our pidfiles, returning once they are gone.
async function kill9(h: TestHost, list: number[]): Promise<void> {
  await sh(
    h,
    `${ops.ALIVE}; P="${list.map((p) => `$(cat /root/redis_cluster/${p}/redis.pid)`).join(' ')}"; kill -KILL $P; ` +
      'n=0; for p in $P; do while alive $p && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done; done',
  )
}

const cliOn = (h: TestHost, port: number, cmd: string) => sh(h, `${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)

describe(`durability on Redis ${redisVersion()}: repairs and restarts lose no acknowledged write`, () => {
  const seeds = () => fleet.hosts.map((h) => ({host: h.ip, port: PORT}))
  let acked: AckedKeys

  it('up forms 6 masters with 1 replica each (save "", appendonly no)', async () => {
    layout({redis_replicas: 1})
    acked = new AckedKeys({seeds: seeds(), replicas: 1})
    const r = await up()
    assert.equal(r.code, 0, show(r))
    const s = await waitClusterOk()
    assert.equal(s.masters.length, 6)
    await acked.writeKeys('base', 300)
  })

  it('case 1: a master killed -9 and up started at once: its replica is promoted first, it rejoins as a replica; 0 acknowledged writes lost', async (t) => {
    const s = await status()
    const m = s.masters.find((x) => x.host === 'h1')!
    const [ip, port] = m.addr.split(':')
    const w = acked.background('kill1')
    await new Promise((r) => setTimeout(r, 1000))
    await kill9(hostOfIp(ip), [Number(port)])
    const r = await up()
    const st = await w.stop()
    for (const x of changed(r)) t.diagnostic(`${x.task} ${x.host}: ${x.msg}`)
    t.diagnostic(`writer: ${JSON.stringify(st)}`)
    assert.equal(r.code, 0, show(r))
    // The keys first: a regression shows as the writes it lost.
    const after = await waitClusterOk()
    await acked.assertNoneLost()
    assert.ok(st.acked > 0, 'the writer got acknowledged writes through')
    // Promoted by us, or (on a slow machine, past the node timeout) already by Redis: never
    // started as the owner of its slots. It rejoined as a replica (the placement step may then
    // hand its shard back to it, in sync).
    const fo = byName(r, 'Dead masters failed over before they restart')[0]
    if (fo.status === 'changed') assert.match(fo.msg, new RegExp(`failed over 1 dead master\\(s\\).*${m.addr.replace(/\./g, '\\.')} → `))
    else assert.match(fo.msg, /safe to start: a replica|it owns no slot/, fo.msg)
    assert.ok(
      [...after.masters, ...after.replicas].some((x) => x.addr === m.addr),
      `${m.addr} is back in the cluster`,
    )
  })

  it('case 1: every instance of one host killed -9, up at once: each of its masters failed over first; 0 acknowledged writes lost', async (t) => {
    const s = await status()
    // The host with the most masters: the others must still elect (FORCE, or TAKEOVER without a majority).
    const h = fleet.hosts.map((x) => ({x, n: s.masters.filter((m) => m.host === x.name).length})).sort((a, b) => b.n - a.n)[0]
    assert.ok(h.n > 0)
    const w = acked.background('host1')
    await new Promise((r) => setTimeout(r, 1000))
    await kill9(h.x, ports)
    const r = await up()
    const st = await w.stop()
    for (const x of changed(r)) t.diagnostic(`${x.task} ${x.host}: ${x.msg}`)
    t.diagnostic(`writer: ${JSON.stringify(st)}`)
    assert.equal(r.code, 0, show(r))
    if (process.env.BM_DEBUG_LOGS) {
      for (const x of fleet.hosts)
        t.diagnostic(
          `${x.name}:\n${(await fleet.nsExec(x, `grep -hE 'configEpoch|election|Configuration change|new master|as a replica|Setting secondary|MASTER MODE|Full resync|keys loaded' /root/redis_cluster/*/redis.log | tail -40`)).stdout}`,
        )
    }
    const after = await waitClusterOk()
    await acked.assertNoneLost()
    assert.ok(st.acked > 0)
    assert.equal(after.masters.length + after.replicas.length, 12, 'its instances rejoined')
    // Promoted by us, or (a loaded machine reaching this step past the node timeout) some or
    // all already by Redis: never one started as the empty owner of its slots.
    const fo = byName(r, 'Dead masters failed over before they restart')[0]
    const ours = Number(/failed over (\d+) dead master/.exec(fo.msg)?.[1] ?? 0)
    if (fo.status === 'changed') assert.ok(ours >= 1 && ours <= h.n, fo.msg)
    else assert.match(fo.msg, /safe to start: (it owns no slot|a replica)/, fo.msg)
  })

  it('case 8: a master whose replica is not in sync is never handed to it, and CLUSTER FAILOVER is not sent (no client pause); the task fails naming why', async () => {
    const s = await waitClusterOk()
    const m = s.masters.find((x) => x.host === 'h1') ?? s.masters[0]
    const mh = host(m.host)
    const rep = s.replicas.find((x) => x.masterId === m.id)!
    const [rip] = rep.addr.split(':')
    const mport = Number(m.addr.split(':')[1])
    // The replica's replication link (to the master's data port) is cut; the cluster bus is not,
    // so by bus flags alone it looks healthy.
    await sh(mh, `iptables -I INPUT 1 -p tcp -s ${rip} --dport ${mport} -j DROP && ${BIN}/redis-cli -h ${mh.ip} -p ${mport} CLIENT KILL TYPE slave`)
    try {
      const rh = hostOfIp(rip)
      const rport = Number(rep.addr.split(':')[1])
      for (let i = 0; i < 50 && !(await cliOn(rh, rport, 'INFO replication')).includes('master_link_status:down'); i++) await new Promise((r) => setTimeout(r, 200))
      const pid = await pidOf(mh, mport)
      const w = acked.background('sync8')
      const r = await cli(['up', '-i', inv, ...redisArgs(), '-l', mh.name, '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}), '-e', 'redis_restart_timeout=12', '--json'], {
        timeoutMs: 600_000,
      })
      const st = await w.stop()
      assert.equal(r.code, 2, show(r))
      const cfg = byName(r, 'Instances use the current configuration')[0]
      assert.match(
        cfg.msg,
        new RegExp(
          `${m.addr.replace(/\./g, '\\.')} \\(${mh.name}\\): failover to ${rep.addr.replace(/\./g, '\\.')} did not complete within 12 s: ${rep.addr.replace(/\./g, '\\.')} is not an in-sync replica of ${m.addr.replace(/\./g, '\\.')}: master_link_status:down; not restarted`,
        ),
        cfg.msg,
      )
      assert.equal(await pidOf(mh, mport), pid, 'the master was not restarted')
      assert.ok(st.maxMs < 4000, `no client was paused by a manual failover (longest write ${st.maxMs} ms)`)
    } finally {
      await sh(mh, `iptables -D INPUT -p tcp -s ${rip} --dport ${mport} -j DROP`)
    }
    // With the link back, the same run hands over and restarts.
    const r = await up('-l', mh.name, '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}))
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await acked.assertNoneLost()
  })

  it("case 6: up --limit on a healthy cluster sees the whole cluster: nothing changes, the host's firewall still admits every host", async () => {
    const h1 = host('h1')
    const fw = await sh(h1, 'iptables -S | sort')
    const r = await up('-l', 'h1', '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}))
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((t) => `${t.task} ${t.host}: ${t.msg}`),
      [],
    )
    assert.equal(await sh(h1, 'iptables -S | sort'), fw, 'no firewall source dropped')
    assert.match(byName(r, 'Cluster formed')[0].msg, /cluster already formed: 6 masters, 6 replicas/)
  })

  it('case 6: --remove-missing with --limit is refused before anything runs (exit 5)', async () => {
    const r = await cli(['up', '-i', inv, ...redisArgs(), '-l', 'h1', '--remove-missing'], {timeoutMs: 60_000})
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /--remove-missing with --limit h1: refused/)
  })

  it("case 6: a fresh formation over --limit h1 is refused while the other hosts' nodes are not probed; no slot assigned", async () => {
    let r = await cli(['down', '-i', inv], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    r = await up('-l', 'h1')
    assert.equal(r.code, 2, show(r))
    assert.match(byName(r, 'Cluster formed')[0].msg, /unreachable/)
    for (const p of ports) assert.match(await cliOn(host('h1'), p, 'CLUSTER INFO'), /cluster_slots_assigned:0/)
    r = await cli(['down', '-i', inv], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
  })

  it('case 2: legacy shape (no replicas, no persistence): a restart-only change restarts each master through SHUTDOWN SAVE; 0 acknowledged writes lost', async () => {
    layout({redis_replicas: 0})
    acked = new AckedKeys({seeds: seeds(), replicas: 0})
    let r = await up()
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await acked.writeKeys('legacy', 300)
    const w = acked.background('roll2')
    r = await up('-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}))
    const st = await w.stop()
    assert.equal(r.code, 0, show(r))
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.match(cfg.msg, /restarted 12 instance\(s\)/)
    await waitClusterOk()
    assert.ok(st.acked > 0)
    await acked.assertNoneLost()
  })

  it('case 2: a master that cannot be inspected is never taken for alone and restarted: refused, its keys intact', async () => {
    const s = await status()
    const m = s.masters.find((x) => x.host === 'h2')!
    const mh = host('h2')
    const mport = Number(m.addr.split(':')[1])
    const pid = await pidOf(mh, mport)
    // The controller cannot reach it (a timeout, as a busy or LOADING node gives); its host can.
    await sh(mh, `iptables -I INPUT 1 -p tcp -s ${fleet.controllerIp} --dport ${mport} -j DROP`)
    let r: CliResult
    try {
      r = await up('-e', JSON.stringify({redis_extra_config: ['tcp-backlog 300']}))
    } finally {
      await sh(mh, `iptables -D INPUT -p tcp -s ${fleet.controllerIp} --dport ${mport} -j DROP`)
    }
    assert.equal(r.code, 2, show(r))
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.match(cfg.msg, new RegExp(`${m.addr.replace(/\./g, '\\.')} \\(h2\\): could not be inspected .*not restarted`))
    assert.equal(await pidOf(mh, mport), pid, 'not restarted')
    await waitClusterOk()
    await acked.assertNoneLost()
  })

  it('case 1: a killed master with no replica and no data on disk is not started as the empty owner of its slots: refused (exit 2) naming them; --allow-data-loss starts it and the recap says so', async () => {
    const s = await status()
    const m = s.masters.find((x) => x.host === 'h3')!
    const mh = host('h3')
    const mport = Number(m.addr.split(':')[1])
    // Its keys die with it (no replica, no persistence): the rest must survive.
    await acked.forgetSlots(m.slots)
    await kill9(mh, [mport])
    let r = await up()
    assert.equal(r.code, 2, show(r))
    const fo = byName(r, 'Dead masters failed over before they restart')[0]
    assert.equal(fo.status, 'failed')
    assert.match(fo.msg, new RegExp(`refusing to start 1 dead master[^]*${m.addr.replace(/\./g, '\\.')} \\(host h3\\): master of \\d+ slot\\(s\\) \\(${m.slots}\\)`))
    assert.match(fo.msg, /--allow-data-loss/)
    assert.deepEqual(byName(r, 'Instances running'), [], 'no instance started over the refusal')
    assert.notEqual((await fleet.nsExec(mh, `${BIN}/redis-cli -h ${mh.ip} -p ${mport} PING`)).stdout.trim(), 'PONG')
    r = await up('--allow-data-loss')
    assert.equal(r.code, 0, show(r))
    assert.ok(
      (r.json.warnings as string[]).some((x) => new RegExp(`--allow-data-loss: ${m.addr.replace(/\./g, '\\.')} .*starts as the empty owner`).test(x)),
      JSON.stringify(r.json.warnings),
    )
    await waitClusterOk()
    await acked.assertNoneLost()
  })
})
