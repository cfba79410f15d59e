import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Master placement drifts after failovers and `up` restores it (issue 10, case 9). On 3
// hosts × 4 ports with 1 replica each, hand-made CLUSTER FAILOVERs on the replicas that
// live on h1 gather 4 of the 6 masters there (losing h1 would then leave 2 masters, no
// majority: the whole cluster down); `status` warns, `up` hands masters back to in-sync
// replicas one shard at a time, with a writer acknowledged by WAIT 1 running throughout,
// and no acknowledged write is lost.

const PORT = 7000
const COUNT = 4
const VARS = {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, redis_appendonly: true, redis_cluster_node_timeout: 5000}

let fleet: Fleet
let inv: string
// Acknowledged = WAIT 1 says a replica has it too. Failovers make the clients refresh their
// slot map; failures to do so surface as failed writes (quiet: not as 'error' events too).
let acked: AckedKeys

before(async () => {
  fleet = await createFleet(3)
  const build = await sharedRedisBuild(fleet, fleet.hosts[0])
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars: {...VARS, ...build}})
  acked = new AckedKeys({seeds: fleet.hosts.map((h) => ({host: h.ip, port: PORT})), replicas: 1, quiet: true})
})

after(() => ops.tearDown(fleet, inv))

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args], {timeoutMs: 900_000})
const tasks = (r: CliResult) => r.json.tasks as ops.Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const clusterTask = (r: CliResult) => tasks(r).find((t) => t.task === 'Cluster formed')!
const mastersPerHost = (s: ops.Report) => Object.fromEntries(fleet.hosts.map((h) => [h.name, s.masters.filter((m) => m.host === h.name && m.slotCount > 0).length]))
const {shards} = ops
const status = () => ops.status(inv)
const waitClusterOk = () => ops.waitClusterOk(inv, 60_000)

// CLUSTER FAILOVER (no FORCE) on a replica, as an operator would, until it says master.
async function handFailover(addr: string): Promise<void> {
  const [ip, port] = addr.split(':')
  const r = new Redis({host: ip, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1})
  await r.connect()
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      await r.call('CLUSTER', 'FAILOVER')
      const deadline = Date.now() + 7000
      while (Date.now() < deadline) {
        if (/role:master/.test(String(await r.call('INFO', 'replication')))) return
        await new Promise((res) => setTimeout(res, 200))
      }
    }
    assert.fail(`${addr} did not become master`)
  } finally {
    r.disconnect()
  }
}

describe(`durability: master placement restored after failovers (Redis ${redisVersion()})`, () => {
  it('up forms the planned spread (2 masters per host) and status has no warning', async () => {
    const r = await up('--json')
    assert.equal(r.code, 0, show(r))
    const s = await waitClusterOk()
    assert.deepEqual(mastersPerHost(s), {h1: 2, h2: 2, h3: 2})
    assert.deepEqual(s.warnings, [])
    await acked.writeKeys('base', 200)
  })

  it('failovers gather 4 of 6 masters on h1: status warns; up --check says what it would do and sends nothing; up restores 2 per host with no acknowledged write lost; a second up changes nothing', async () => {
    const w = acked.background('placement')
    let stopped: Awaited<ReturnType<typeof w.stop>> | undefined
    try {
      await new Promise((r) => setTimeout(r, 500))
      // The replicas on h1: their failover moves a master from h2/h3 to h1.
      let s = await status()
      const shardsBefore = shards(s)
      for (const rep of s.replicas.filter((x) => x.host === 'h1')) await handFailover(rep.addr)
      s = await waitClusterOk()
      const drifted = mastersPerHost(s)
      assert.equal(drifted.h1, 4, JSON.stringify(s.perHost))
      const spread = (c: Record<string, number>) =>
        Object.entries(c)
          .map(([h, n]) => `${h} ${n}`)
          .join(', ')

      assert.equal(s.ok, true, 'a placement risk is not a failure')
      assert.equal(s.warnings?.length, 1, JSON.stringify(s.warnings))
      assert.match(
        s.warnings![0],
        /^host h1 holds 4 of 6 masters: losing it leaves 2, short of the 4 \(a majority of all masters\) a failover needs, and the cluster goes down; `baremetal up` hands 2 of them over to replicas on other hosts$/,
      )
      const text = await cli(['status', '-i', inv], {timeoutMs: 60_000})
      assert.equal(text.code, 0, show(text))
      assert.match(text.stdout, /\nwarnings:\n {2}- host h1 holds 4 of 6 masters/)

      const check = await up('--json', '--check')
      assert.equal(check.code, 0, show(check))
      assert.deepEqual(
        changed(check).map((t) => t.task),
        ['Cluster formed'],
      )
      assert.match(
        clusterTask(check).msg,
        new RegExp(`^would fail over 2 master\\(s\\) to in-sync replicas on other hosts: .*\\(h1 → h[23]\\).*\\(h1 → h[23]\\); masters per host ${spread(drifted)} → h1 2, h2 2, h3 2$`),
      )
      assert.deepEqual(mastersPerHost(await status()), drifted, 'check mode sent nothing')

      const before = w.since()
      process.stdout.write(`# writer before the restore: ${before.acked} acknowledged, ${before.failed} not (${JSON.stringify(before.kinds)}), longest gap ${before.maxGapMs} ms\n`)
      w.mark()
      const t0 = Date.now()
      const r = await up('--json')
      const upMs = Date.now() - t0
      const during = w.since()
      assert.equal(r.code, 0, show(r))
      assert.deepEqual(
        changed(r).map((t) => t.task),
        ['Cluster formed'],
        'only the cluster step changed',
      )
      const task = clusterTask(r)
      assert.match(
        task.msg,
        new RegExp(`^masters rebalanced across hosts: 2 failover\\(s\\) \\(.*\\(h1 → h[23]\\).*\\(h1 → h[23]\\)\\); masters per host were ${spread(drifted)}, now h1 2, h2 2, h3 2$`),
      )
      assert.equal(task.data?.placement?.done.length, 2)
      s = await waitClusterOk()
      assert.deepEqual(mastersPerHost(s), {h1: 2, h2: 2, h3: 2})
      assert.deepEqual(s.warnings, [])
      assert.deepEqual(shards(s), shardsBefore, 'roles swapped inside shards, no slot moved')

      stopped = await w.stop()
      assert.ok(stopped.acked > 0, 'the writer got acknowledged writes through')
      const checked = await acked.assertNoneLost()
      process.stdout.write(
        `# restore: up ${(upMs / 1000).toFixed(1)} s; during it ${during.acked} acknowledged writes, ${during.failed} not (${JSON.stringify(during.kinds)}), longest gap between acknowledged writes ${during.maxGapMs} ms; ${checked} acknowledged keys read back, 0 lost\n`,
      )

      const again = await up()
      assert.equal(again.code, 0, show(again))
      assert.match(again.stdout, /no changes — everything already as declared/)
      assert.doesNotMatch((await cli(['status', '-i', inv], {timeoutMs: 60_000})).stdout, /warnings:/)
    } finally {
      // A failed assertion must not leave the writer retrying against destroyed hosts.
      if (!stopped) await w.stop()
    }
  })
})
