import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Persistence across down --keep-data and AOF turned on (issue 10, cases 3 and 4), on one
// fleet of 2 hosts × 3 ports, in the default shape (save "", appendonly no). Every write
// counts only when acknowledged (WAIT 1 with a replica, the master's OK without), and no
// acknowledged write may be lost. Run on 5.0.3 too:
// BAREMETAL_REDIS_TARBALL=/work/shared/redis/redis-5.0.3.tar.gz.

const PORT = 7000
const COUNT = 3
const DIR = '/root/redis_cluster'
const BASE = {redis_port_start: PORT, redis_count: COUNT, redis_save: '', redis_appendonly: false, redis_cluster_node_timeout: 5000}
const ports = Array.from({length: COUNT}, (_, i) => PORT + i)

let fleet: Fleet
let inv: string
let build: Record<string, string> = {}
let BIN = ''
let acked: AckedKeys

// A new layout is a new cluster: the keys to check start empty, acknowledged as its replicas allow.
function layout(vars: Record<string, unknown>): void {
  acked = new AckedKeys({seeds: fleet.hosts.map((h) => ({host: h.ip, port: PORT})), replicas: Number(vars.redis_replicas)})
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars: {...BASE, ...vars, ...build}})
}

before(async () => {
  fleet = await createFleet(2)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(() => ops.tearDown(fleet, inv))

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 900_000})
const down = (...args: string[]) => cli(['down', '-i', inv, ...args, '--json'], {timeoutMs: 300_000})
const byName = (r: CliResult, name: string) => ((r.json?.tasks as ops.Task[] | undefined) ?? []).filter((t) => t.task === name)
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const redisCli = (h: TestHost, port: number, cmd: string) => sh(h, `${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)

// Not ops.waitClusterOk: this one keeps polling through a status that printed no JSON,
// and its failure shows the whole last status.
async function waitClusterOk(ms = 90_000): Promise<{masters: Array<{id: string; slots: string}>}> {
  const deadline = Date.now() + ms
  for (;;) {
    const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
    if (r.json?.ok) return r.json
    if (Date.now() > deadline) assert.fail(`cluster not ok: ${show(r)}`)
    await new Promise((res) => setTimeout(res, 1000))
  }
}

const aliveCount = (h: TestHost) => sh(h, `${ops.ALIVE}; n=0; for f in ${DIR}/*/redis.pid; do [ -f "$f" ] && alive $(cat $f) && n=$((n+1)); done; echo $n`).then(Number)

// Every instance says AOF is on, its rewrite done.
async function assertAofOn(): Promise<void> {
  for (const h of fleet.hosts) {
    for (const p of ports) {
      const info = await redisCli(h, p, 'INFO persistence')
      assert.match(info, /aof_enabled:1/, `${h.name}:${p}`)
      assert.match(info, /aof_rewrite_in_progress:0/, `${h.name}:${p}`)
    }
  }
}

describe(`durability: down --keep-data and AOF turned on (Redis ${redisVersion()})`, () => {
  it('case 3: down --keep-data saves every instance (save ""), up brings every acknowledged key back; a save that fails leaves that instance running, exit != 0', async () => {
    layout({redis_replicas: 1})
    let r = await up()
    assert.equal(r.code, 0, show(r))
    const before = await waitClusterOk()
    await acked.writeKeys('keep', 300)

    const t0 = Date.now()
    r = await down('--keep-data')
    const downMs = Date.now() - t0
    assert.equal(r.code, 0, show(r))
    for (const t of byName(r, 'Instances stopped')) assert.match(t.msg, new RegExp(`^stopped ${COUNT} `), t.msg)
    // What down left, checked after the keys (the symptom comes first when this fails).
    const left = await Promise.all(
      fleet.hosts.map(async (h) => ({h, alive: await aliveCount(h), files: (await fleet.nsExec(h, `for p in ${ports.join(' ')}; do ls ${DIR}/$p; cat ${DIR}/$p/saved-by-baremetal; done`)).stdout})),
    )
    console.log(`# down --keep-data of ${2 * COUNT} instances: ${downMs} ms`)

    r = await up()
    assert.equal(r.code, 0, show(r))
    const again = await waitClusterOk()
    assert.deepEqual(again.masters.map((m) => m.slots).sort(), before.masters.map((m) => m.slots).sort())
    await acked.assertNoneLost()
    for (const {h, alive, files} of left) {
      assert.equal(alive, 0, `${h.name}: every instance stopped`)
      assert.equal(files.match(/^dump\.rdb$/gm)?.length, COUNT, `${h.name}: a dump.rdb per port\n${files}`)
      assert.equal(files.match(/^\d{10}$/gm)?.length, COUNT, `${h.name}: the saved-by-baremetal marker per port\n${files}`)
    }
    for (const h of fleet.hosts) assert.doesNotMatch(await sh(h, `ls ${DIR}/${PORT}`), /saved-by-baremetal/, 'the marker goes when the instance starts')

    // A save that cannot be written: a directory where Redis writes its temp RDB.
    await acked.writeKeys('keep2', 100)
    const h1 = host('h1')
    const pid = await ops.pidOf(fleet, h1, PORT)
    await sh(h1, `mkdir ${DIR}/${PORT}/temp-${pid}.rdb`)
    r = await down('--keep-data')
    assert.notEqual(r.code, 0, show(r))
    const failed = byName(r, 'Instances stopped').find((t) => t.host === 'h1')!
    assert.equal(failed.status, 'failed', failed.msg)
    assert.match(failed.msg, new RegExp(`port ${PORT}: not saved, left running \\(pid ${pid}\\): .*Errors trying to SHUTDOWN`), failed.msg)
    assert.match(await redisCli(h1, PORT, 'PING'), /PONG/, 'the instance whose save failed still runs')
    assert.equal(await aliveCount(h1), 1, 'the others of h1 saved and stopped')
    assert.equal(await aliveCount(host('h2')), 0)

    await sh(h1, `rmdir ${DIR}/${PORT}/temp-${pid}.rdb`)
    r = await up()
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await acked.assertNoneLost()
  })

  it('case 4b: an instance started (not restarted) with appendonly yes, no AOF and a dump.rdb loads the RDB, then AOF is on', async () => {
    // A fresh cluster without replicas: a master that comes up empty has no one to sync from.
    await down()
    layout({redis_replicas: 0})
    let r = await up()
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await acked.writeKeys('rdb', 300)
    r = await down('--keep-data')
    assert.equal(r.code, 0, show(r))

    r = await up('-e', 'redis_appendonly=true')
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await acked.assertNoneLost()
    for (const t of byName(r, 'Instances running')) assert.match(t.msg, new RegExp(`AOF turned on live after loading dump.rdb on ${COUNT} `), t.msg)
    await assertAofOn()
    // Converged: the snapshot says appendonly yes now, nothing left to do.
    r = await up('-e', 'redis_appendonly=true')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      byName(r, 'Instances use the current configuration').map((t) => t.status),
      ['ok'],
    )
  })

  it('case 4: appendonly turned on together with a restart-only change (tcp-backlog), writer running: AOF on live first, then the restart; 0 acknowledged writes lost', async () => {
    // Back to appendonly no (live): the AOF files of case 4b stay behind, stale.
    let r = await up()
    assert.equal(r.code, 0, show(r))
    await acked.writeKeys('aof', 200)
    const w = acked.background('bg')
    await new Promise((res) => setTimeout(res, 1000))
    const t0 = Date.now()
    r = await up('-e', 'redis_appendonly=true', '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}))
    const upMs = Date.now() - t0
    await new Promise((res) => setTimeout(res, 1000))
    const written = (await w.stop()).acked
    assert.equal(r.code, 0, show(r))
    console.log(`# up with appendonly + tcp-backlog (AOF on live, then rolling restart of ${2 * COUNT} masters): ${upMs} ms; ${written} background writes acknowledged`)
    assert.ok(written > 0, 'the writer got acknowledged writes through')
    await waitClusterOk()
    await acked.assertNoneLost()
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.match(cfg.msg, /AOF turned on live before the restart on 6 instance\(s\)/, cfg.msg)
    assert.match(cfg.msg, /restarted for tcp-backlog/, cfg.msg)
    await assertAofOn()
    for (const h of fleet.hosts) assert.match(await redisCli(h, PORT, 'CONFIG GET tcp-backlog'), /^200$/m)
  })
})
