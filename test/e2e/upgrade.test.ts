import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {compareVersions, replicationViolations, type VersionedNode} from '../../src/redis/upgrade.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {NEW, OLD, args, changed, info, skip, task, tasks, up} from './upgrade-kit.js'

// Issue 16, rolling version upgrade: 3 hosts × 4 ports, 1 replica each, on Redis 5.0.3
// (the users' version), a WAIT-1 writer running throughout → `up` with the e2e's own
// version (Debian's 7.0.15) → every node on it, cluster ok, no acknowledged write lost,
// and at no moment an old node replicating from an upgraded master. Needs both versions in
// one run: it runs in the default pass (not the 5.0.3 one, where there is nothing newer).

const PORT = 7000
const COUNT = 4
const LONE = 7100

let fleet: Fleet
let inv: string
let lone: string
let b5: Record<string, string> = {}
let b7: Record<string, string> = {}

const addrs = (port: number, count: number) => fleet.hosts.flatMap((h) => Array.from({length: count}, (_, i) => ({host: h.ip, port: port + i})))

const versions = async (port: number, count: number) => Promise.all(addrs(port, count).map(async (n) => (await info(n)).redis_version))

// Every 300 ms: no replica whose link to its master is up (or syncing) runs an older version than that master.
function watchReplication(port: number, count: number): {stop(): Promise<string[]>} {
  let running = true
  const seen: string[] = []
  const loop = (async () => {
    while (running) {
      const all = await Promise.all(
        addrs(port, count).map((n) =>
          info(n).then(
            (i) => ({n, i}),
            () => undefined,
          ),
        ),
      )
      const byAddr = new Map(all.filter((x) => x !== undefined).map((x) => [`${x!.n.host}:${x!.n.port}`, x!.i]))
      for (const [addr, i] of byAddr) {
        if (i.role !== 'slave') continue
        const m = byAddr.get(`${i.master_host}:${i.master_port}`)
        if (!m || compareVersions(i.redis_version, m.redis_version) >= 0) continue
        if (i.master_link_status === 'up' || i.master_sync_in_progress === '1')
          seen.push(`${addr} (${i.redis_version}) link ${i.master_link_status}, sync ${i.master_sync_in_progress} from ${i.master_host}:${i.master_port} (${m.redis_version})`)
      }
      await sleep(300)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return seen
    },
  }
}

// The cluster as the plan saw it, from `status --json`.
function nodesOf(s: ops.Report, version: string): VersionedNode[] {
  return [
    ...s.masters.map((m): VersionedNode => ({addr: m.addr, role: 'master', healthyReplicas: s.replicas.filter((r) => r.masterId === m.id).map((r) => r.addr), version})),
    ...s.replicas.map((r): VersionedNode => ({addr: r.addr, role: 'replica', masterAddr: r.masterAddr ?? undefined, healthyReplicas: [], version})),
  ]
}

before(async () => {
  if (skip) return
  fleet = await createFleet(3)
  b5 = await sharedRedisBuild(fleet, fleet.hosts[0], OLD)
  b7 = await sharedRedisBuild(fleet, fleet.hosts[0], NEW)
  inv = fleet.writeInventory({path: join(fleet.dir, 'upgrade.yml'), vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, redis_cluster_node_timeout: 5000}})
  lone = fleet.writeInventory({path: join(fleet.dir, 'lone.yml'), vars: {redis_port_start: LONE, redis_count: 1, redis_replicas: 0, redis_cluster_node_timeout: 5000}})
})

after(async () => {
  if (!fleet) return
  for (const i of [lone, inv]) await cli(['down', '-i', i, ...args(b7, NEW)], {timeoutMs: 120_000}).catch(() => {})
  await fleet.destroy()
})

describe(`rolling upgrade ${OLD.version} → ${NEW.version}`, {skip}, () => {
  let acked: AckedKeys
  const seeds = () => fleet.hosts.map((h) => ({host: h.ip, port: PORT}))

  it(`up on ${OLD.version}: 6 masters with 1 replica each`, async () => {
    const r = await up(inv, b5, OLD)
    assert.equal(r.code, 0, show(r))
    await ops.waitClusterOk(inv, 90_000)
    assert.deepEqual([...new Set(await versions(PORT, COUNT))], [OLD.version])
    acked = new AckedKeys({seeds: seeds(), replicas: 1, quiet: true})
    await acked.writeKeys('base', 300)
  })

  it('--check prints the plan (order, failovers) and changes nothing', async () => {
    const r = await up(inv, b7, NEW, '--check')
    assert.equal(r.code, 0, show(r))
    const t = task(r, /^Instances run Redis/)[0]
    assert.equal(t?.status, 'changed', show(r))
    assert.match(t.msg, new RegExp(`would upgrade 12 instance\\(s\\) on ${OLD.version} → ${NEW.version}, 6 shard\\(s\\)`))
    assert.equal((t.msg.match(/CLUSTER FAILOVER/g) ?? []).length, 6, t.msg)
    assert.deepEqual([...new Set(await versions(PORT, COUNT))], [OLD.version])
  })

  it(`up with ${NEW.version}: every node upgraded shard by shard, cluster ok, no acknowledged write lost, no old node ever syncing from a new master`, async (t) => {
    const before = await ops.waitClusterOk(inv, 60_000)
    const watch = watchReplication(PORT, COUNT)
    const w = acked.background('upgrade')
    await sleep(1000)
    const t0 = Date.now()
    const r = await up(inv, b7, NEW)
    const ms = Date.now() - t0
    const gap = w.since().maxGapMs
    const st = await w.stop()
    const seen = await watch.stop()
    const ut = task(r, /^Instances run Redis/)[0]
    t.diagnostic(`up took ${ms} ms (upgrade task ${ut?.data?.ms} ms); writer: ${JSON.stringify(st)}, longest time without an acknowledged write ${gap} ms`)
    t.diagnostic(ut?.msg ?? '')
    assert.equal(r.code, 0, show(r))
    await ops.waitClusterOk(inv, 90_000)
    await acked.assertNoneLost()
    assert.ok(st.acked > 0, 'the writer got acknowledged writes through')
    assert.deepEqual(seen, [], 'an old-version replica linked to a newer master')
    assert.deepEqual([...new Set(await versions(PORT, COUNT))], [NEW.version])
    assert.equal(ut.status, 'changed')
    assert.equal(ut.data?.upgraded?.length, 12)
    assert.equal(ut.data?.failovers?.length, 6)
    // The plan it carried out, replayed over the cluster it started from.
    assert.deepEqual(replicationViolations(nodesOf(before, OLD.version), {target: NEW.version, shards: ut.data!.plan, refused: [], downtime: [], versions: {}}), [])
    // No node ever failed to load a newer RDB; each records the binary it runs; the old build is still there.
    for (const h of fleet.hosts) {
      const logs = await fleet.nsExec(h, `cat /root/redis_cluster/70*/redis.log`)
      assert.doesNotMatch(logs.stdout, /Can't handle RDB format|Failed trying to load the MASTER synchronization/, h.name)
      assert.equal(
        (await ops.sh(fleet, h, 'cat /root/redis_cluster/70*/redis.bin'))
          .trim()
          .split('\n')
          .filter((l) => l !== b7.redis_bin_dir).length,
        0,
      )
    }
    assert.ok(existsSync(join(b5.redis_bin_dir, 'redis-server')))
  })

  it('status shows each node on the new version, not mixed; a re-run changes nothing', async () => {
    const s = await ops.status(inv)
    assert.deepEqual(s.versions, {[NEW.version]: 12})
    assert.ok([...s.masters, ...s.replicas].every((n) => n.version === NEW.version))
    assert.ok(!s.warnings.some((x) => /mixed/.test(x)), s.warnings.join('\n'))
    const r = await up(inv, b7, NEW)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((x) => `${x.task} ${x.host}: ${x.msg}`),
      [],
    )
    assert.match(task(r, /^Instances run Redis/)[0].msg, new RegExp(`every running instance runs ${NEW.version}`))
  })

  it('a downgrade is refused, nothing changed', async () => {
    const r = await up(inv, b5, OLD)
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /a downgrade across RDB formats is refused, no flag allows it/)
    assert.deepEqual([...new Set(await versions(PORT, COUNT))], [NEW.version])
  })

  it('masters without replicas: refused (exit 2, nothing changed) naming them and --allow-downtime; with it, restarted in place, keys kept', async (t) => {
    let r = await up(lone, b5, OLD)
    assert.equal(r.code, 0, show(r))
    const keys = new AckedKeys({seeds: fleet.hosts.map((h) => ({host: h.ip, port: LONE})), replicas: 0, quiet: true})
    await keys.writeKeys('lone', 100)
    const pids = await Promise.all(fleet.hosts.map((h) => ops.pidOf(fleet, h, LONE)))
    r = await up(lone, b7, NEW)
    assert.equal(r.code, 2, show(r))
    const refusal = task(r, /^Upgrade to Redis/).find((x) => x.status === 'failed')
    assert.ok(refusal, show(r))
    for (const h of fleet.hosts) assert.match(refusal.msg, new RegExp(`${h.ip.replace(/\./g, '\\.')}:${LONE}`))
    assert.match(refusal.msg, /--allow-downtime/)
    assert.deepEqual(task(r, /^Redis compiled/), [], 'refused before the build')
    assert.deepEqual(await Promise.all(fleet.hosts.map((h) => ops.pidOf(fleet, h, LONE))), pids)
    assert.deepEqual([...new Set(await versions(LONE, 1))], [OLD.version])
    const t0 = Date.now()
    r = await up(lone, b7, NEW, '--allow-downtime')
    t.diagnostic(`lone upgrade ${Date.now() - t0} ms`)
    assert.equal(r.code, 0, show(r))
    await ops.waitClusterOk(lone, 60_000)
    assert.deepEqual([...new Set(await versions(LONE, 1))], [NEW.version])
    await keys.assertNoneLost()
  })

  it('an upgrade whose controller is killed mid-way (right after a failover began): status reports the mixed versions, the next up resumes it; no acknowledged write lost', async (t) => {
    let r = await cli(['down', '-i', inv, ...args(b7, NEW)], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    r = await up(inv, b5, OLD)
    assert.equal(r.code, 0, show(r))
    await ops.waitClusterOk(inv, 90_000)
    const keys = new AckedKeys({seeds: seeds(), replicas: 1, quiet: true})
    await keys.writeKeys('resume', 200)
    const watch = watchReplication(PORT, COUNT)
    const w = keys.background('resume-w')
    const run = startCli(['up', '-i', inv, ...args(b7, NEW)], {timeoutMs: 900_000})
    try {
      await run.waitFor(/redis_upgrade: manual failover/, 300_000)
      await sleep(300)
    } catch (error) {
      // Never leave the writer and the watcher running past a failed test.
      await Promise.all([w.stop(), watch.stop()])
      throw error
    } finally {
      run.signal('SIGKILL')
      await run.result.catch(() => {})
    }
    const mid = await ops.waitClusterOk(inv, 90_000)
    t.diagnostic(`after the kill: ${JSON.stringify(mid.versions)}; ${mid.warnings.filter((x) => /mixed/.test(x)).join('')}`)
    assert.ok(Object.keys(mid.versions ?? {}).length === 2, JSON.stringify(mid.versions))
    assert.ok(
      mid.warnings.some((x) => /mixed Redis versions: \d+ node\(s\) on 5\.0\.3, \d+ node\(s\) on 7\.0\.15/.test(x)),
      mid.warnings.join('\n'),
    )
    r = await up(inv, b7, NEW)
    const st = await w.stop()
    const seen = await watch.stop()
    const ut = task(r, /^Instances run Redis/)[0]
    t.diagnostic(`resumed: ${ut?.msg}; writer: ${JSON.stringify(st)}`)
    assert.equal(r.code, 0, show(r))
    assert.ok((ut.data?.upgraded?.length ?? 0) < 12, 'the resumed run upgraded only what was left')
    await ops.waitClusterOk(inv, 90_000)
    await keys.assertNoneLost()
    assert.deepEqual(seen, [], 'an old-version replica linked to a newer master')
    assert.deepEqual([...new Set(await versions(PORT, COUNT))], [NEW.version])
  })
})
