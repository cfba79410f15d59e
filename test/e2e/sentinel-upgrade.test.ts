import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {SentinelAcked} from './acked-sentinel.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {compareVersions} from '../../src/redis/upgrade.js'
import {NEW, OLD, args, changed, info, skip, task, tasks, up} from './upgrade-kit.js'

// Issue 16 for redis_topology: sentinel: 3 hosts × 2 groups × 1 replica, 3 Sentinels, on
// Redis 5.0.3, a WAIT-1 writer on each group throughout → `up` with the e2e's own version
// (7.0.15) → every instance and Sentinel on it, the Sentinels agreeing, no acknowledged
// write lost, and at no moment an old instance syncing from an upgraded master. Needs both
// versions in one run: the default pass only.

const PORT = 7600
const SPORT = 26600
const LONE = 7700
const LONE_SPORT = 26700
const PW = 'sentinel-upgrade-Secret-93'
const TASK = /^Instances and Sentinels run Redis/

let fleet: Fleet
let inv: string
let lone: string
let b5: Record<string, string> = {}
let b7: Record<string, string> = {}

const members = (port: number, groups: number) => fleet.hosts.flatMap((h) => Array.from({length: groups}, (_, i) => ({host: h.ip, port: port + i})))
const name = (port: number) => `redis-${PORT}-${port}`
const sentinels = (sport = SPORT) => fleet.hosts.map((h) => ({host: h.ip, port: sport}))

// Group i: its master on host i mod 3, its replica on the next host (planSentinelLayout).
const dataAddrs = () => [0, 1].flatMap((i) => [fleet.hosts[i % 3], fleet.hosts[(i + 1) % 3]].map((h) => ({host: h.ip, port: PORT + i})))
const versions = async () => [...new Set(await Promise.all([...dataAddrs().map((n) => info(n, PW)), ...sentinels().map((s) => info(s))]).then((a) => a.map((i) => i.redis_version)))]

// Every 200 ms: an instance on an older version than the master its INFO names, with that
// link up or a sync in progress, is a violation; one that names a newer master at all (the
// fenced old master between its failover and its restart) is counted. And the fewest
// Sentinels answering at once (the quorum, 2, must always run).
function watchReplication(): {stop(): Promise<{violations: string[]; namedNewer: number; fewestSentinels: number}>} {
  let running = true
  const violations: string[] = []
  let namedNewer = 0
  let fewestSentinels = Infinity
  const loop = (async () => {
    while (running) {
      const answering = await Promise.all(
        sentinels().map((s) =>
          info(s).then(
            () => 1,
            () => 0,
          ),
        ),
      )
      fewestSentinels = Math.min(
        fewestSentinels,
        answering.reduce<number>((a, b) => a + b, 0),
      )
      const all = await Promise.all(
        dataAddrs().map((n) =>
          info(n, PW).then(
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
        namedNewer++
        if (i.master_link_status === 'up' || i.master_sync_in_progress === '1')
          violations.push(`${addr} (${i.redis_version}) link ${i.master_link_status}, sync ${i.master_sync_in_progress} from ${i.master_host}:${i.master_port} (${m.redis_version})`)
      }
      await sleep(200)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return {violations, namedNewer, fewestSentinels}
    },
  }
}

async function statusJson(i: string): Promise<any> {
  const r = await cli(['status', '-i', i, '--json'], {timeoutMs: 60_000})
  assert.ok(r.json, show(r))
  assert.ok(!r.stdout.includes(PW) && !r.stderr.includes(PW), 'the password is printed')
  return r.json
}

async function waitHealthy(i: string, ms = 60_000): Promise<any> {
  const deadline = Date.now() + ms
  let last: any
  while (Date.now() < deadline) {
    last = await statusJson(i)
    if (last.ok && last.groups.every((g: any) => g.agree)) return last
    await sleep(500)
  }
  assert.fail(`status never ok: ${JSON.stringify(last?.problems)}`)
}

before(async () => {
  if (skip) return
  fleet = await createFleet(3)
  b5 = await sharedRedisBuild(fleet, fleet.hosts[0], OLD)
  b7 = await sharedRedisBuild(fleet, fleet.hosts[0], NEW)
  const base = {redis_topology: 'sentinel', redis_password: PW}
  inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel-upgrade.yml'), vars: {...base, redis_port_start: PORT, redis_sentinel_port: SPORT, redis_sentinel_groups: 2, redis_replicas: 1}})
  lone = fleet.writeInventory({path: join(fleet.dir, 'lone.yml'), vars: {...base, redis_port_start: LONE, redis_sentinel_port: LONE_SPORT, redis_sentinel_groups: 1, redis_replicas: 0}})
})

after(async () => {
  if (!fleet) return
  for (const i of [lone, inv]) await cli(['down', '-i', i, ...args(b7, NEW)], {timeoutMs: 120_000}).catch(() => {})
  await fleet.destroy()
})

describe(`sentinel rolling upgrade ${OLD.version} → ${NEW.version}`, {skip}, () => {
  const g0 = () => new SentinelAcked({sentinels: sentinels(), name: name(PORT), password: PW})
  const g1 = () => new SentinelAcked({sentinels: sentinels(), name: name(PORT + 1), password: PW})
  let w0: SentinelAcked
  let w1: SentinelAcked
  after(() => {
    w0?.close()
    w1?.close()
  })

  it(`up on ${OLD.version}: 2 groups, 3 Sentinels`, async () => {
    const r = await up(inv, b5, OLD)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(await versions(), [OLD.version])
    w0 = g0()
    w1 = g1()
    await w0.writeKeys('base0', 200)
    await w1.writeKeys('base1', 200)
  })

  it('--check prints the plan (order, failovers) and changes nothing', async () => {
    const r = await up(inv, b7, NEW, '--check')
    assert.equal(r.code, 0, show(r))
    const t = task(r, TASK)[0]
    assert.equal(t?.status, 'changed', show(r))
    assert.match(t.msg, new RegExp(`would upgrade 7 instance\\(s\\) and Sentinel\\(s\\) on ${OLD.version} → ${NEW.version}`))
    assert.equal((t.msg.match(/fenced failover/g) ?? []).length, 2, t.msg)
    assert.equal((t.msg.match(/restart Sentinel/g) ?? []).length, 3, t.msg)
    assert.deepEqual(await versions(), [OLD.version])
  })

  it(`up with ${NEW.version}: every instance and Sentinel upgraded, Sentinels agree, no acknowledged write lost, no old instance syncing from a newer master`, async (t) => {
    await waitHealthy(inv)
    const watch = watchReplication()
    const bg0 = w0.background('up0')
    const bg1 = w1.background('up1')
    await sleep(1000)
    const t0 = Date.now()
    const r = await up(inv, b7, NEW)
    const ms = Date.now() - t0
    await sleep(500)
    const [s0, s1] = await Promise.all([bg0.stop(), bg1.stop()])
    const seen = await watch.stop()
    const ut = task(r, TASK)[0]
    t.diagnostic(
      `up took ${ms} ms (upgrade task ${ut?.data?.ms} ms); writers: ${JSON.stringify(s0)} ${JSON.stringify(s1)}; old instance naming a newer master (fenced, link down) in ${seen.namedNewer} sample(s); fewest Sentinels answering ${seen.fewestSentinels}`,
    )
    t.diagnostic(ut?.msg ?? '')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(seen.violations, [], 'an old-version instance linked to (or syncing from) a newer master')
    assert.ok(seen.fewestSentinels >= 2, `only ${seen.fewestSentinels} Sentinel(s) answered at one point: the quorum was lost`)
    assert.deepEqual(await versions(), [NEW.version])
    assert.equal(ut.status, 'changed')
    assert.equal(ut.data?.upgraded?.length, 7)
    assert.equal(ut.data?.failovers?.length, 2)
    const s = await waitHealthy(inv)
    assert.ok(
      s.groups.every((g: any) => g.sentinels.every((x: any) => x.master === g.master)),
      JSON.stringify(s.groups),
    )
    assert.ok(s0.acked > 0 && s1.acked > 0, 'the writers got acknowledged writes through')
    assert.ok((await w0.assertNoneLost()) >= 200)
    assert.ok((await w1.assertNoneLost()) >= 200)
    for (const h of fleet.hosts) {
      const logs = await fleet.nsExec(h, `cat /root/redis_cluster/76*/redis.log`)
      assert.doesNotMatch(logs.stdout, /Can't handle RDB format|Failed trying to load the MASTER synchronization/, h.name)
    }
  })

  it('status shows each instance and Sentinel on the new version, not mixed; a re-run changes nothing', async () => {
    const s = await statusJson(inv)
    assert.deepEqual(s.versions, {[NEW.version]: 7})
    assert.deepEqual(s.warnings, [])
    assert.ok(s.groups.every((g: any) => g.masterVersion === NEW.version && g.replicas.every((x: any) => x.version === NEW.version)))
    assert.ok(s.sentinels.every((x: any) => x.version === NEW.version))
    const r = await up(inv, b7, NEW)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((x) => `${x.task} ${x.host}: ${x.msg}`),
      [],
    )
    assert.match(task(r, TASK)[0].msg, new RegExp(`every running instance and Sentinel runs ${NEW.version}`))
  })

  it('a downgrade is refused before the build, nothing changed', async () => {
    const r = await up(inv, b5, OLD)
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /a downgrade across RDB formats is refused, no flag allows it/)
    assert.deepEqual(task(r, /^Redis compiled/), [], 'refused before the build')
    assert.deepEqual(await versions(), [NEW.version])
  })

  it('groups without replicas: refused (exit 2, nothing changed) naming them and --allow-downtime; with it, restarted in place, keys kept', async (t) => {
    let r = await up(lone, b5, OLD)
    assert.equal(r.code, 0, show(r))
    const m = {host: fleet.hosts[0].ip, port: LONE}
    const c = new Redis({...m, password: PW, lazyConnect: true, maxRetriesPerRequest: 0})
    await c.connect()
    for (let i = 0; i < 100; i++) await c.set(`lone:${i}`, `v${i}`)
    c.disconnect()
    const pid = (await ops.sh(fleet, fleet.hosts[0], `cat /root/redis_cluster/${LONE}/redis.pid`)).trim()
    r = await up(lone, b7, NEW)
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, new RegExp(`${m.host.replace(/\./g, '\\.')}:${LONE}: master of redis-${LONE}-${LONE} on ${OLD.version} with no replica`))
    assert.match(r.stdout, /--allow-downtime/)
    assert.deepEqual(task(r, /^Redis compiled/), [], 'refused before the build')
    assert.equal((await ops.sh(fleet, fleet.hosts[0], `cat /root/redis_cluster/${LONE}/redis.pid`)).trim(), pid)
    const t0 = Date.now()
    r = await up(lone, b7, NEW, '--allow-downtime')
    t.diagnostic(`in-place upgrade ${Date.now() - t0} ms: ${task(r, TASK)[0]?.msg}`)
    assert.equal(r.code, 0, show(r))
    assert.equal((await info(m, PW)).redis_version, NEW.version)
    const d = new Redis({...m, password: PW, lazyConnect: true, maxRetriesPerRequest: 0})
    await d.connect()
    const vals = await d.mget(...Array.from({length: 100}, (_, i) => `lone:${i}`))
    d.disconnect()
    assert.deepEqual(
      vals,
      Array.from({length: 100}, (_, i) => `v${i}`),
    )
  })

  // The controller SIGKILLed at `killAt` (+ delay): status reports the mixed versions, the next
  // up finishes the upgrade from the live versions; no acknowledged write lost.
  async function interrupted(t: {diagnostic(m: string): void}, killAt: RegExp, delayMs: number): Promise<{failovers: number}> {
    let r = await cli(['down', '-i', inv, ...args(b7, NEW)], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    r = await up(inv, b5, OLD)
    assert.equal(r.code, 0, show(r))
    const k0 = g0()
    const k1 = g1()
    try {
      await k0.writeKeys('resume0', 100)
      await k1.writeKeys('resume1', 100)
      const watch = watchReplication()
      const bg = k0.background('resume-w')
      const run = startCli(['up', '-i', inv, ...args(b7, NEW)], {timeoutMs: 900_000})
      try {
        await run.waitFor(killAt, 300_000)
        await sleep(delayMs)
      } catch (error) {
        await Promise.all([bg.stop(), watch.stop()])
        throw error
      } finally {
        run.signal('SIGKILL')
        await run.result.catch(() => {})
      }
      await sleep(3000)
      const mid = await statusJson(inv)
      t.diagnostic(`after the kill: ${JSON.stringify(mid.versions)}; ${mid.warnings.join('')}; masters ${mid.groups.map((g: any) => `${g.master} ${g.masterVersion}`).join(', ')}`)
      assert.equal(Object.keys(mid.versions).length, 2, JSON.stringify(mid.versions))
      assert.match(mid.warnings.join('\n'), new RegExp(`mixed Redis versions: \\d+ on ${OLD.version}, \\d+ on ${NEW.version}`))
      r = await up(inv, b7, NEW)
      const st = await bg.stop()
      const seen = await watch.stop()
      const ut = task(r, TASK)[0]
      t.diagnostic(`resumed: ${ut?.msg}; writer: ${JSON.stringify(st)}`)
      assert.equal(r.code, 0, show(r))
      assert.ok((ut.data?.upgraded?.length ?? 0) < 7, 'the resumed run upgraded only what was left')
      assert.deepEqual(seen.violations, [])
      assert.deepEqual(await versions(), [NEW.version])
      await waitHealthy(inv)
      await k0.assertNoneLost()
      await k1.assertNoneLost()
      return {failovers: ut.data?.failovers?.length ?? 0}
    } finally {
      k0.close()
      k1.close()
    }
  }

  it('an upgrade whose controller is killed as its first failover begins: the next up resumes it', async (t) => {
    await interrupted(t, /fenced failover of/, 300)
  })

  it('an upgrade whose controller is killed right after its first failover (the old master fenced, not yet restarted): the next up restarts it, one failover left', async (t) => {
    const r = await interrupted(t, /\(fenced failover\)/, 0)
    assert.equal(r.failovers, 1)
  })
})
