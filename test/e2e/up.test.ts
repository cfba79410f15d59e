import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Cluster, Redis} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show} from './cli.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// `baremetal up` end to end: Redis built from source on three SSH hosts, configured,
// firewalled, started and formed into one cluster that real clients use.

let fleet: Fleet
let inv: string

// The deployment's shape lives in the inventory, as a user writes it; status reads the same file.
function layout(vars: Record<string, unknown>): void {
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars})
}

before(async () => {
  fleet = await createFleet(3)
  layout({redis_count: 10})
})

after(async () => {
  if (fleet) {
    await cli(['down', '-i', inv, ...redisArgs()], {timeoutMs: 120_000}).catch(() => {})
    await fleet.destroy()
  }
})

const statusOf = async (extra: string[] = []) => {
  const r = await cli(['status', '-i', inv, '--json', ...extra], {timeoutMs: 60_000})
  return {r, report: r.json}
}

function clusterClient(): Cluster {
  return new Cluster(
    fleet.hosts.map((h) => ({host: h.ip, port: 6379})),
    {
      enableAutoPipelining: true,
      redisOptions: {connectTimeout: 3000, maxRetriesPerRequest: 5},
      clusterRetryStrategy: (n) => (n > 20 ? null : 200),
    },
  )
}

async function hostOf(ip: string): Promise<TestHost> {
  const h = fleet.hosts.find((x) => x.ip === ip)
  assert.ok(h, `no host with ip ${ip}`)
  return h
}

describe(`up on Redis ${redisVersion()}: 3 hosts × 10 ports, built from source over SSH`, () => {
  it('forms a healthy cluster that clients use across all slots', async () => {
    const r = await cli(['up', '-i', inv, ...redisArgs(), '--json'], {timeoutMs: 900_000})
    assert.equal(r.code, 0, show(r))
    const tasks = r.json.tasks as Array<{task: string; host: string; status: string; data?: {masters?: unknown[]}}>
    // Issue 11 case 9: the recap names tasks as their headers do, rendered.
    assert.deepEqual(
      tasks.filter((t) => t.task.includes('{{')).map((t) => t.task),
      [],
    )
    assert.equal(tasks.filter((t) => t.task === `Redis ${redisVersion()} source` && t.status === 'changed').length, 3)
    const cluster = tasks.find((t) => t.task === 'Cluster formed')
    assert.equal(cluster?.status, 'changed')
    assert.equal(cluster?.data?.masters?.length, 30)

    const {r: s, report} = await statusOf()
    assert.equal(s.code, 0, show(s))
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.slotsCovered, 16384)
    assert.equal(report.masters.length, 30)
    // Every node itself says ok (not only the seed's view).
    for (const h of fleet.hosts) {
      for (const port of [6379, 6383, 6388]) {
        const c = new Redis({host: h.ip, port, lazyConnect: true, maxRetriesPerRequest: 1})
        await c.connect()
        assert.match((await c.cluster('INFO')) as string, /cluster_state:ok/)
        c.disconnect()
      }
    }
  })

  it("puts each redis.conf in its own host's home with its port and bind address; bus ports reach across hosts", async () => {
    for (const h of fleet.hosts) {
      const conf = await fleet.nsExec(h, 'cat ~/redis_cluster/6384/redis.conf; stat -c %a ~/redis_cluster/6384/redis.conf; ls ~/redis_cluster | wc -l')
      assert.match(conf.stdout, /^port 6384$/m)
      assert.match(conf.stdout, new RegExp(`^bind ${h.ip.replace(/\./g, '\\.')}$`, 'm'))
      assert.match(conf.stdout, /^cluster-enabled yes$/m)
      assert.match(conf.stdout, /\n600\n10\n$/)
    }
    const [h1, h2, h3] = fleet.hosts
    for (const [from, to] of [
      [h1, h2],
      [h2, h3],
      [h3, h1],
    ]) {
      const probe = await fleet.nsExec(from, `timeout 3 bash -c 'exec 3<>/dev/tcp/${to.ip}/16385 && echo open'`)
      assert.equal(probe.stdout.trim(), 'open', `bus port of ${to.name} from ${from.name}: ${probe.stderr}`)
    }
  })

  it('serves 10,000 keys over all slots through a cluster client', async () => {
    const c = clusterClient()
    try {
      const N = 10_000
      const slots = new Set<number>()
      for (let i = 0; i < N; i += 500) {
        const batch = Array.from({length: 500}, (_, k) => i + k)
        const res = await Promise.all(batch.map((j) => c.set(`key:${j}`, `value-${j}`)))
        assert.ok(res.every((x) => x === 'OK'))
      }
      for (let i = 0; i < N; i += 500) {
        const batch = Array.from({length: 500}, (_, k) => i + k)
        const res = await Promise.all(batch.map((j) => c.get(`key:${j}`)))
        res.forEach((v, k) => assert.equal(v, `value-${i + k}`))
      }
      for (let j = 0; j < N; j += 97) slots.add(Number(await c.cluster('KEYSLOT', `key:${j}`)))
      assert.ok(slots.size > 100, 'keys spread over many slots')
      const masters = c.nodes('master').length
      let withKeys = 0
      for (const node of c.nodes('master')) if (Number((await node.dbsize()) > 0)) withKeys++
      assert.equal(masters, 30)
      assert.equal(withKeys, 30, 'keys spread over every master')
    } finally {
      c.disconnect()
    }
  })

  it('a re-run changes nothing', async () => {
    const r = await cli(['up', '-i', inv, ...redisArgs(), '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    const changed = (r.json.tasks as Array<{task: string; host: string; status: string}>).filter((t) => t.status === 'changed')
    assert.deepEqual(changed, [])
  })
})

describe(`up on Redis ${redisVersion()}: replicas, failover, partial sets, bad input`, () => {
  it("redis_replicas 1 on 3 hosts × 4 ports: no replica shares its master's host; a killed master fails over without losing keys", async () => {
    let r = await cli(['down', '-i', inv, ...redisArgs()], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    layout({redis_count: 4, redis_replicas: 1, redis_appendonly: true})
    r = await cli(['up', '-i', inv, ...redisArgs()], {timeoutMs: 600_000})
    assert.equal(r.code, 0, show(r))
    const {report} = await statusOf()
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.masters.length, 6)
    assert.equal(report.replicas.length, 6)
    const hostByAddr = new Map<string, string>()
    for (const m of report.masters) hostByAddr.set(m.addr, m.host)
    for (const rep of report.replicas) assert.notEqual(rep.host, hostByAddr.get(rep.masterAddr), `replica ${rep.addr} shares host with its master`)

    // Write keys, each acknowledged by a replica (WAIT 1).
    const c = clusterClient()
    const keys: string[] = []
    try {
      for (let i = 0; i < 600; i++) keys.push(`fo:${i}`)
      for (const k of keys) await c.set(k, `v-${k}`)
      for (const node of c.nodes('master')) assert.ok(Number(await node.call('WAIT', '1', '2000')) >= 1)
      // Kill the master owning the first key by the PID in its own pidfile.
      const slot = Number(await c.cluster('KEYSLOT', keys[0]))
      const owner = report.masters.find((m: {slots: string}) =>
        m.slots.split(',').some((range: string) => {
          const [a, b] = range.split('-').map(Number)
          return slot >= a && slot <= (b ?? a)
        }),
      )
      assert.ok(owner)
      const [ip, port] = owner.addr.split(':')
      const host = await hostOf(ip)
      const kill = await fleet.nsExec(host, `kill -9 $(cat ~/redis_cluster/${port}/redis.pid)`)
      assert.equal(kill.code, 0, kill.stderr)
      // Its replica is promoted (a surviving node maps the slot elsewhere and says ok): every key is still readable.
      const survivor = fleet.hosts.find((x) => x.ip !== ip)!
      const probe = new Redis({host: survivor.ip, port: 6379, lazyConnect: true, maxRetriesPerRequest: 1})
      await probe.connect()
      const deadline = Date.now() + 60_000
      let promoted = false
      try {
        while (Date.now() < deadline && !promoted) {
          await new Promise((res) => setTimeout(res, 1000))
          const info = (await probe.cluster('INFO')) as string
          const slots = (await probe.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>
          const serving = slots.find(([a, b]) => slot >= a && slot <= b)
          promoted = /cluster_state:ok/.test(info) && serving !== undefined && `${serving[2][0]}:${serving[2][1]}` !== owner.addr
        }
      } finally {
        probe.disconnect()
      }
      assert.ok(promoted, 'replica promoted in time')
      for (const k of keys) assert.equal(await c.get(k), `v-${k}`)
    } finally {
      c.disconnect()
    }
    // up brings the killed instance back as a replica; the cluster is ok again.
    r = await cli(['up', '-i', inv, ...redisArgs()], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
  })

  it('a port already in use on one host: reported with the log tail, no partial cluster unless --allow-partial', async () => {
    let r = await cli(['down', '-i', inv, ...redisArgs()], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    layout({redis_count: 3})
    const h2 = fleet.hosts[1]
    // A foreign process holds port 6380 on h2.
    const hold = await fleet.nsExec(h2, `redis-server --port 6380 --bind ${h2.ip} --daemonize yes --pidfile /root/foreign.pid --dir /root --save '' && sleep 0.5 && cat /root/foreign.pid`)
    assert.equal(hold.code, 0, hold.stderr)
    try {
      r = await cli(['up', '-i', inv, ...redisArgs()], {timeoutMs: 300_000})
      assert.equal(r.code, 2, show(r))
      assert.match(r.stdout, /failed\s+h2: [^\n]*\n\s+port 6380: redis-server failed to start/)
      assert.match(r.stdout, /Address already in use/i)
      assert.match(r.stdout, /TASK \[Cluster formed\]\n\s+failed\s+h1: not forming the cluster: 1 host\(s\) failed earlier tasks \(h2\)/)
      const partial = await cli(['up', '-i', inv, ...redisArgs(), '--allow-partial', '--json'], {timeoutMs: 300_000})
      const formed = (partial.json.tasks as Array<{task: string; status: string; data?: {masters?: unknown[]}}>).find((t) => t.task === 'Cluster formed')
      assert.equal(formed?.status, 'changed', show(partial))
      assert.equal(formed?.data?.masters?.length, 6, 'formed over the two healthy hosts')
      assert.notEqual(partial.code, 0, 'the failed host still makes the run fail')
    } finally {
      await fleet.nsExec(h2, 'kill $(cat /root/foreign.pid)')
    }
  })

  it('a wrong sha256 stops before anything is unpacked', async () => {
    const h1 = fleet.hosts[0]
    const before = await fleet.nsExec(h1, 'cat ~/redis_src/.baremetal-source; ls ~/redis_src | wc -l')
    const r = await cli(['up', '-i', inv, ...redisArgs({redis_source_sha256: '0'.repeat(64)})], {timeoutMs: 120_000})
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /sha256/i)
    assert.match(r.stdout, /0{64}/)
    assert.doesNotMatch(r.stdout, /TASK \[Redis compiled\]/)
    const afterState = await fleet.nsExec(h1, 'cat ~/redis_src/.baremetal-source; ls ~/redis_src | wc -l')
    assert.equal(afterState.stdout, before.stdout)
  })

  it('redis_count 0 or a port range past 55535 is refused before anything runs', async () => {
    let r = await cli(['up', '-i', inv, ...redisArgs({redis_count: 0})])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /redis_count.*at least 1/)
    r = await cli(['up', '-i', inv, ...redisArgs({redis_port_start: 55500, redis_count: 100})])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /past 65535/)
    assert.match(r.stderr, /55535/)
    assert.doesNotMatch(r.stdout, /TASK/)
  })
})
