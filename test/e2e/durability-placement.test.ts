import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Cluster, Redis} from 'ioredis'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
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

before(async () => {
  fleet = await createFleet(3)
  const build = await sharedRedisBuild(fleet, fleet.hosts[0])
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars: {...VARS, ...build}})
})

after(async () => {
  if (fleet) {
    await cli(['down', '-i', inv], {timeoutMs: 120_000}).catch(() => {})
    await fleet.destroy()
  }
})

interface Task {
  task: string
  host: string
  status: string
  msg: string
  data?: Record<string, any>
}

interface Report {
  ok: boolean
  masters: Array<{id: string; addr: string; host: string; slots: string; slotCount: number}>
  replicas: Array<{id: string; addr: string; host: string; masterId: string}>
  perHost: Record<string, {masters: number; replicas: number}>
  problems: string[]
  warnings?: string[]
}

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args], {timeoutMs: 900_000})
const tasks = (r: CliResult) => r.json.tasks as Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const clusterTask = (r: CliResult) => tasks(r).find((t) => t.task === 'Cluster formed')!
const mastersPerHost = (s: Report) => Object.fromEntries(fleet.hosts.map((h) => [h.name, s.masters.filter((m) => m.host === h.name && m.slotCount > 0).length]))

// Slots → the ids of the shard serving them, in any role order.
function shards(r: Report): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of r.masters) out[m.slots] = [m.id, ...r.replicas.filter((x) => x.masterId === m.id).map((x) => x.id)].sort().join(',')
  return out
}

async function status(): Promise<Report> {
  const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
  assert.ok(r.json, show(r))
  return r.json as Report
}

async function waitClusterOk(ms = 60_000): Promise<Report> {
  const deadline = Date.now() + ms
  let r = await status()
  while (!r.ok && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 1000))
    r = await status()
  }
  assert.ok(r.ok, `cluster not ok: ${r.problems.join('; ')}`)
  return r
}

function client(): Cluster {
  const c = new Cluster(fleet.hosts.map((h) => ({host: h.ip, port: PORT})), {
    redisOptions: {connectTimeout: 3000, maxRetriesPerRequest: 3, commandTimeout: 5000},
    clusterRetryStrategy: (n) => (n > 50 ? null : 200),
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 32,
  })
  // Failovers make it refresh its slot map; failures to do so surface as failed writes.
  c.on('error', () => {})
  return c
}

// SET, then WAIT 1 on the same connection: acknowledged = on a replica too. Never hangs.
async function writeAcked(c: Cluster, key: string, value: string, why?: (reason: string) => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`write of ${key} timed out`)), 8000)))
  try {
    const res = await Promise.race([c.pipeline().set(key, value).call('WAIT', '1', '2000').exec(), timeout])
    const ok = !!res && !res[0][0] && !res[1][0] && Number(res[1][1]) >= 1
    if (!ok) why?.(String(res?.[0][0]?.message ?? res?.[1][0]?.message ?? `WAIT ${res?.[1][1]}`).split(' ')[0])
    return ok
  } catch (error) {
    why?.(String((error as Error).message).split(' ').slice(0, 3).join(' '))
    throw error
  } finally {
    clearTimeout(timer)
  }
}

const acked = new Map<string, string>()

// Writes until stopped; only acknowledged keys count. Also the longest time without an
// acknowledged write (what a client sees of a failover).
function backgroundWriter(prefix: string): {stop(): Promise<{acked: number; failed: number; maxGapMs: number}>; mark(): void; since(): {acked: number; failed: number; maxGapMs: number; reasons: Record<string, number>}} {
  let window = {acked: 0, failed: 0, maxGapMs: 0, reasons: {} as Record<string, number>}
  let running = true
  let count = 0
  let failed = 0
  let last = Date.now()
  let maxGapMs = 0
  const c = client()
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const k = `${prefix}:${i}`
      const v = `w${i}`
      let ok = false
      try {
        ok = await writeAcked(c, k, v, (reason) => (window.reasons[reason] = (window.reasons[reason] ?? 0) + 1))
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
      if (ok) {
        acked.set(k, v)
        count++
        window.acked++
        maxGapMs = Math.max(maxGapMs, Date.now() - last)
        window.maxGapMs = Math.max(window.maxGapMs, Date.now() - last)
        last = Date.now()
      } else {
        failed++
        window.failed++
      }
    }
  })()
  return {
    mark() {
      window = {acked: 0, failed: 0, maxGapMs: 0, reasons: {}}
    },
    since: () => window,
    async stop() {
      running = false
      await loop
      c.disconnect()
      return {acked: count, failed, maxGapMs}
    },
  }
}

async function assertNoKeyLost(): Promise<number> {
  const c = client()
  try {
    const keys = [...acked.keys()]
    const missing: string[] = []
    for (let i = 0; i < keys.length; i += 50) {
      const vals = await Promise.all(keys.slice(i, i + 50).map((k) => Promise.race([c.get(k), new Promise<string>((r) => setTimeout(() => r('(read timed out)'), 10_000))])))
      vals.forEach((v, j) => {
        if (v !== acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${v}`)
      })
    }
    assert.deepEqual(missing, [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
    return keys.length
  } finally {
    c.disconnect()
  }
}

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
    const c = client()
    try {
      for (let i = 0; i < 200; i++) {
        let ok = false
        // Right after formation a replica may still be in its first sync: WAIT says 0 until then.
        for (let t = 0; t < 40 && !ok; t++) {
          ok = await writeAcked(c, `base:${i}`, `v${i}`).catch(() => false)
          if (!ok) await new Promise((res) => setTimeout(res, 500))
        }
        assert.ok(ok, `base:${i} not acknowledged`)
        acked.set(`base:${i}`, `v${i}`)
      }
    } finally {
      c.disconnect()
    }
  })

  it('failovers gather 4 of 6 masters on h1: status warns; up --check says what it would do and sends nothing; up restores 2 per host with no acknowledged write lost; a second up changes nothing', async () => {
    const w = backgroundWriter('placement')
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
      const spread = (c: Record<string, number>) => Object.entries(c).map(([h, n]) => `${h} ${n}`).join(', ')

      assert.equal(s.ok, true, 'a placement risk is not a failure')
      assert.equal(s.warnings?.length, 1, JSON.stringify(s.warnings))
      assert.match(s.warnings![0], /^host h1 holds 4 of 6 masters: losing it leaves 2, short of the 4 \(a majority of all masters\) a failover needs, and the cluster goes down; `baremetal up` hands 2 of them over to replicas on other hosts$/)
      const text = await cli(['status', '-i', inv], {timeoutMs: 60_000})
      assert.equal(text.code, 0, show(text))
      assert.match(text.stdout, /\nwarnings:\n {2}- host h1 holds 4 of 6 masters/)

      const check = await up('--json', '--check')
      assert.equal(check.code, 0, show(check))
      assert.deepEqual(changed(check).map((t) => t.task), ['Cluster formed'])
      assert.match(clusterTask(check).msg, new RegExp(`^would fail over 2 master\\(s\\) to in-sync replicas on other hosts: .*\\(h1 → h[23]\\).*\\(h1 → h[23]\\); masters per host ${spread(drifted)} → h1 2, h2 2, h3 2$`))
      assert.deepEqual(mastersPerHost(await status()), drifted, 'check mode sent nothing')

      const before = w.since()
      process.stdout.write(`# writer before the restore: ${before.acked} acknowledged, ${before.failed} not (${JSON.stringify(before.reasons)}), longest gap ${before.maxGapMs} ms\n`)
      w.mark()
      const t0 = Date.now()
      const r = await up('--json')
      const upMs = Date.now() - t0
      const during = w.since()
      assert.equal(r.code, 0, show(r))
      assert.deepEqual(changed(r).map((t) => t.task), ['Cluster formed'], 'only the cluster step changed')
      const task = clusterTask(r)
      assert.match(task.msg, new RegExp(`^masters rebalanced across hosts: 2 failover\\(s\\) \\(.*\\(h1 → h[23]\\).*\\(h1 → h[23]\\)\\); masters per host were ${spread(drifted)}, now h1 2, h2 2, h3 2$`))
      assert.equal(task.data?.placement?.done.length, 2)
      s = await waitClusterOk()
      assert.deepEqual(mastersPerHost(s), {h1: 2, h2: 2, h3: 2})
      assert.deepEqual(s.warnings, [])
      assert.deepEqual(shards(s), shardsBefore, 'roles swapped inside shards, no slot moved')

      stopped = await w.stop()
      assert.ok(stopped.acked > 0, 'the writer got acknowledged writes through')
      const checked = await assertNoKeyLost()
      process.stdout.write(`# restore: up ${(upMs / 1000).toFixed(1)} s; during it ${during.acked} acknowledged writes, ${during.failed} not (${JSON.stringify(during.reasons)}), longest gap between acknowledged writes ${during.maxGapMs} ms; ${checked} acknowledged keys read back, 0 lost\n`)

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
