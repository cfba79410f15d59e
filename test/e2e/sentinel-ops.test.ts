import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import {sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {redisVersion} from './redis-fleet.js'
import {startSentinelFleet, type SentinelFleet} from './sentinel-fleet.js'

// Issue 15, part C: status, failover and load for redis_topology: sentinel, against a
// deployment started by hand exactly as planSentinelLayout places it (sentinel-fleet.ts):
// 3 hosts × 2 groups × 1 replica, 3 Sentinels on the data hosts, a password.

const PORT = 7000
const PW = 'sentinel-ops-Secret-4711'
const NAME0 = `redis-${PORT}-${PORT}`

let fleet: Fleet
let sf: SentinelFleet | undefined
let inv: string
let build: Record<string, string>

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  sf = await startSentinelFleet(fleet, {bin: build.redis_bin_dir, portStart: PORT, groups: 2, replicas: 1, clusterName: `redis-${PORT}`, password: PW})
  inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel.yml'), vars: {redis_topology: 'sentinel', redis_port_start: PORT, redis_sentinel_groups: 2, redis_replicas: 1, redis_password: PW}})
})

after(async () => {
  await sf?.stop()
  await fleet?.destroy()
})

const noSecret = (r: CliResult) => assert.ok(!r.stdout.includes(PW) && !r.stderr.includes(PW), 'the password is printed')
const status = async () => {
  const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
  noSecret(r)
  assert.ok(r.json, show(r))
  return {r, s: r.json}
}

async function waitStatusOk(ms: number): Promise<any> {
  const deadline = Date.now() + ms
  let last: CliResult | undefined
  while (Date.now() < deadline) {
    const {r, s} = await status()
    if (r.code === 0 && s.health === 'ok') return s
    last = r
    await sleep(500)
  }
  assert.fail(`status never ok: ${last ? show(last) : ''}`)
}

// A writer on one group: SET, then WAIT 1 on the same connection; a write counts only when a
// replica acknowledged it. After any failure it asks the Sentinels again for the master.
class GroupWriter {
  readonly acked = new Map<string, string>()
  failed = 0
  maxGapMs = 0
  private lastAck = 0
  private stopping = false
  private done?: Promise<void>
  constructor(
    private readonly name: string,
    private readonly sentinels: string[],
  ) {}

  private async master(): Promise<string | undefined> {
    for (const s of this.sentinels) {
      const [host, port] = s.split(':')
      const r = new Redis({host, port: Number(port), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500, commandTimeout: 500})
      r.on('error', () => {})
      try {
        await r.connect()
        const a = (await r.call('SENTINEL', 'get-master-addr-by-name', this.name)) as string[] | null
        if (a) return `${a[0]}:${a[1]}`
      } catch {
      } finally {
        r.disconnect()
      }
    }
    return undefined
  }

  start(): void {
    this.lastAck = performance.now()
    this.done = this.loop()
  }

  private async loop(): Promise<void> {
    let n = 0
    let conn: Redis | undefined
    while (!this.stopping) {
      if (!conn) {
        const m = await this.master()
        if (!m) {
          await sleep(20)
          continue
        }
        conn = new Redis({
          host: m.split(':')[0],
          port: Number(m.split(':')[1]),
          password: PW,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
          connectTimeout: 500,
          commandTimeout: 1000,
          disableClientInfo: true,
        })
        conn.on('error', () => {})
      }
      const key = `w:${this.name}:${n++}`
      try {
        await conn.set(key, key)
        const replicas = Number(await conn.call('WAIT', '1', '200'))
        if (replicas < 1) throw new Error('NOT_REPLICATED')
        const now = performance.now()
        this.maxGapMs = Math.max(this.maxGapMs, now - this.lastAck)
        this.lastAck = now
        this.acked.set(key, key)
      } catch {
        this.failed++
        conn.disconnect()
        conn = undefined
      }
    }
    conn?.disconnect()
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.done
  }

  /** Every acknowledged key read back from the group's master now; the ones missing or changed. */
  async lost(): Promise<string[]> {
    const m = (await this.master())!
    const r = new Redis({host: m.split(':')[0], port: Number(m.split(':')[1]), password: PW, disableClientInfo: true})
    try {
      const keys = [...this.acked.keys()]
      const vals = keys.length ? await r.mget(...keys) : []
      return keys.filter((k, i) => vals[i] !== this.acked.get(k))
    } finally {
      r.disconnect()
    }
  }
}

describe(`sentinel topology on Redis ${redisVersion()}: status, failover, load from the controller`, () => {
  it("status: ok, names each group's master and its replica in sync, no secret printed", async () => {
    const s = await waitStatusOk(30_000)
    assert.equal(s.topology, 'sentinel')
    assert.equal(s.groups.length, 2)
    for (const g of sf!.layout.groups) {
      const got = s.groups.find((x: any) => x.name === g.name)
      assert.equal(got.master, `${g.master.ip}:${g.port}`)
      assert.equal(got.agree, true)
      assert.deepEqual(
        got.replicas.map((r: any) => [r.addr, r.inSync]),
        [[`${g.replicas[0].ip}:${g.port}`, true]],
      )
    }
    assert.equal(s.reachableSentinels, 3)
    assert.equal(s.quorumReachable, true)
    const text = await cli(['status', '-i', inv], {timeoutMs: 60_000})
    assert.equal(text.code, 0, show(text))
    noSecret(text)
    assert.match(text.stdout, new RegExp(`${NAME0}.*\\n\\s+master\\s+${sf!.layout.groups[0].master.ip}:${PORT}`))
  })

  it('failover --group moves the master; a WAIT 1 writer loses nothing; the write gap is measured', async () => {
    const g = sf!.layout.groups[0]
    const w = new GroupWriter(
      g.name,
      sf!.layout.sentinels.map((s) => `${s.ip}:${s.port}`),
    )
    w.start()
    await sleep(1000)
    const r = await cli(['failover', '-i', inv, '--group', g.name, '--json'], {timeoutMs: 120_000})
    await sleep(1000)
    await w.stop()
    noSecret(r)
    assert.equal(r.code, 0, show(r))
    const f = r.json.failovers[0]
    assert.equal(f.from, `${g.master.ip}:${PORT}`)
    assert.equal(f.to, `${g.replicas[0].ip}:${PORT}`)
    const lost = await w.lost()
    console.log(
      `failover ${g.name}: confirmed in ${f.ms} ms (first Sentinel switched after ${f.switchedMs} ms, old master demoted by ${f.demotedBy}); writer: ${w.acked.size} acknowledged, ${w.failed} failed, longest gap between acknowledged writes ${Math.round(w.maxGapMs)} ms`,
    )
    assert.deepEqual(lost, [], 'acknowledged writes lost')
    assert.ok(w.acked.size > 10)
    assert.ok(w.maxGapMs < 3000, `write gap ${w.maxGapMs} ms`)
  })

  it('status after the failover names the new master, the old one its replica', async () => {
    const s = await waitStatusOk(30_000)
    const g = sf!.layout.groups[0]
    const got = s.groups.find((x: any) => x.name === g.name)
    assert.equal(got.master, `${g.replicas[0].ip}:${PORT}`)
    assert.deepEqual(
      got.replicas.map((r: any) => r.addr),
      [`${g.master.ip}:${PORT}`],
    )
  })

  it('a second failover is refused while the group has no replica in sync (exit 2, nothing changed)', async () => {
    const g = sf!.layout.groups[1]
    const rep = fleet.hosts.find((h) => h.name === g.replicas[0].host)!
    const c = new Redis({host: rep.ip, port: g.port, password: PW, disableClientInfo: true})
    try {
      await c.call('REPLICAOF', 'NO', 'ONE')
      const r = await cli(['failover', '-i', inv, '--group', String(g.port)], {timeoutMs: 60_000})
      assert.equal(r.code, 2, show(r))
      assert.match(r.stderr, /refused, nothing changed.*no replica is in sync/)
      noSecret(r)
    } finally {
      await c.call('REPLICAOF', g.master.ip, String(g.port))
      c.disconnect()
    }
    await waitStatusOk(30_000)
  })

  it('a killed Sentinel: status exits non-zero and names it', async () => {
    const h = fleet.hosts[2]
    await sf!.killSentinel(h)
    try {
      const {r, s} = await status()
      assert.equal(r.code, 2, show(r))
      assert.equal(s.health, 'degraded')
      assert.equal(s.reachableSentinels, 2)
      assert.equal(s.quorumReachable, true)
      assert.ok(
        s.problems.some((p: string) => p.includes(`Sentinel ${h.ip}:26379 did not answer`)),
        s.problems.join('\n'),
      )
    } finally {
      await sf!.startSentinel(h)
    }
    await waitStatusOk(30_000)
  })

  it('load --verify: keys spread over both groups, 0 lost', async () => {
    const r = await cli(['load', '-i', inv, '--requests', '20000', '--clients', '4', '--verify', '--json'], {timeoutMs: 120_000})
    noSecret(r)
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.load.acked, 20000)
    assert.equal(r.json.verify.checked, 20000)
    assert.equal(r.json.verify.lost, 0)
    for (const g of sf!.layout.groups) {
      const m = (await status()).s.groups.find((x: any) => x.name === g.name).master as string
      const c = new Redis({host: m.split(':')[0], port: Number(m.split(':')[1]), password: PW, disableClientInfo: true})
      const n = await c.dbsize()
      c.disconnect()
      assert.ok(n > 5000, `${g.name} holds ${n} keys`)
    }
  })

  it('load --verify reports a key deleted mid-run as lost', async () => {
    for (const g of (await status()).s.groups) {
      const [host, port] = (g.master as string).split(':')
      const c = new Redis({host, port: Number(port), password: PW, disableClientInfo: true})
      await c.flushall()
      c.disconnect()
    }
    const live = startCli(['load', '-i', inv, '--duration', '4', '--clients', '2', '--pipeline', '1', '--verify', '--json'], {timeoutMs: 120_000})
    await sleep(2000)
    const s = (await status()).s
    const m = s.groups[1].master as string
    const c = new Redis({host: m.split(':')[0], port: Number(m.split(':')[1]), password: PW, disableClientInfo: true})
    let victim = ''
    try {
      for (let i = 0; i < 50 && !victim; i++) {
        const k = await c.randomkey()
        if (k && /^[0-9a-f-]{36}-\d+$/.test(k)) victim = k
      }
      assert.ok(victim, 'no load key found')
      assert.equal(await c.del(victim), 1)
    } finally {
      c.disconnect()
    }
    const r = await live.result
    assert.equal(r.code, 2, show(r))
    const v = JSON.parse(r.stdout).verify
    console.log(`load: ${JSON.parse(r.stdout).load.acked} acknowledged, verify: ${v.checked} checked, ${v.lost} lost (${v.lostSamples.join(', ')}); deleted ${victim}`)
    assert.equal(v.lost, 1)
    assert.deepEqual(v.lostSamples, [victim])
  })

  // SENTINEL FAILOVER alone leaves the old master taking writes until it is reconfigured;
  // with 2 replicas, WAIT 1 is then met by the replica that stays behind it, and both throw
  // those writes away when they resync from the new master (the benchmark lost 3018 this way).
  it('failover with 2 replicas: the old master refuses writes until every replica has them; a WAIT 1 writer loses nothing', async () => {
    await sf!.stop()
    sf = await startSentinelFleet(fleet, {bin: build.redis_bin_dir, portStart: PORT, groups: 1, replicas: 2, clusterName: `redis-${PORT}`, password: PW})
    const inv2 = fleet.writeInventory({
      path: join(fleet.dir, 'sentinel-2r.yml'),
      vars: {redis_topology: 'sentinel', redis_port_start: PORT, redis_sentinel_groups: 1, redis_replicas: 2, redis_password: PW},
    })
    inv = inv2
    const g = sf.layout.groups[0]
    const sentinels = sf.layout.sentinels.map((x) => `${x.ip}:${x.port}`)
    for (let round = 0; round < 2; round++) {
      await waitStatusOk(60_000)
      const members = [g.master, ...g.replicas].map((m) => `${m.ip}:${g.port}`)
      const fullBefore = await fullSyncs(members)
      const w = new GroupWriter(g.name, sentinels)
      w.start()
      await sleep(1000)
      const r = await cli(['failover', '-i', inv2, '--json'], {timeoutMs: 120_000})
      await sleep(1000)
      await w.stop()
      noSecret(r)
      assert.equal(r.code, 0, show(r))
      const lost = await w.lost()
      console.log(
        `failover with 2 replicas, round ${round + 1}: ${r.json.failovers[0].from} → ${r.json.failovers[0].to} in ${r.json.failovers[0].ms} ms; writer: ${w.acked.size} acknowledged, ${w.failed} failed, ${lost.length} lost, longest gap ${Math.round(w.maxGapMs)} ms`,
      )
      assert.deepEqual(lost, [], 'acknowledged writes lost')
      assert.ok(w.acked.size > 10)
      // The fence is lifted: the old master (a replica now) keeps its declared setting.
      const [host, port] = r.json.failovers[0].from.split(':')
      const c = new Redis({host, port: Number(port), password: PW, disableClientInfo: true})
      try {
        assert.deepEqual(await c.config('GET', 'min-replicas-to-write'), ['min-replicas-to-write', '0'])
        assert.deepEqual(await c.config('GET', 'repl-ping-replica-period'), ['repl-ping-replica-period', '10'])
      } finally {
        c.disconnect()
      }
      // The old master's stream ended with the promotion (no Sentinel hello after it): both the
      // old master and the other replica continued from the new master, no full resync.
      assert.deepEqual(await fullSyncs(members), fullBefore, 'a member of the group served a full resync after the failover')
    }
  })
})

/** INFO stats sync_full of each address (full resyncs it served as a master). */
async function fullSyncs(addrs: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const a of addrs) {
    const [host, port] = a.split(':')
    const c = new Redis({host, port: Number(port), password: PW, disableClientInfo: true})
    try {
      out[a] = Number(/^sync_full:(\d+)/m.exec(String(await c.info('stats')))?.[1])
    } finally {
      c.disconnect()
    }
  }
  return out
}
