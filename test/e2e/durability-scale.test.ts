import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {shapeLink, sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

// Durability of scaling (issue 10), one test per case, on ONE fleet of 3 hosts (a fresh
// cluster per test: `down`, then `up` with that test's variables). Writers are real:
// SET then WAIT 1 on the same connection (with no replicas: the master's OK), and every
// test ends with 0 acknowledged writes lost, or a refusal (exit != 0) with every key intact.
//   5  an interrupted move whose target then failed over: `up` settles it on the promoted replica;
//   7  scale-in: the leaving master killed mid-drain (its replica still guards the rest),
//      and a drain that would push the receivers past maxmemory (refused);
//   10 big values over a slow link with a short cluster-node-timeout: no node marked failed.

const PORT = 7300
const PASSWORD = 'durability-e2e-Secret-41c9'

let fleet: Fleet
let build: Record<string, string> = {}
let current: string | undefined // inventory of the cluster running now (every host, for `down`)

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
})

after(async () => {
  if (!fleet) return
  for (const h of fleet.hosts) await shapeLink(fleet, h).catch(() => {})
  if (current) await cli(['down', '-i', current], {timeoutMs: 300_000}).catch(() => {})
  await fleet.destroy()
})

interface Layout {
  all: string
  /** The inventory without the last host. */
  first2: string
}

// Tear down what the previous test left, write this test's inventories, form on `formOn`.
async function freshCluster(name: string, vars: Record<string, unknown>, formOn: 'all' | 'first2' = 'all'): Promise<Layout> {
  if (current) {
    const d = await cli(['down', '-i', current], {timeoutMs: 300_000})
    assert.equal(d.code, 0, show(d))
  }
  const v = {redis_port_start: PORT, redis_password: PASSWORD, ...build, ...vars}
  const inv = {
    all: fleet.writeInventory({path: join(fleet.dir, `${name}-all.yml`), vars: v}),
    first2: fleet.writeInventory({path: join(fleet.dir, `${name}-12.yml`), hosts: fleet.hosts.slice(0, 2), vars: v}),
  }
  current = inv.all
  const r = await cli(['up', '-i', inv[formOn], ...redisArgs(), '--json'], {timeoutMs: 900_000})
  assert.equal(r.code, 0, show(r))
  await waitClusterOk(inv[formOn])
  return inv
}

const {status} = ops
const waitClusterOk = (inv: string) => ops.waitClusterOk(inv, 90_000)

const clusterTask = (r: CliResult) => (r.json?.tasks as Array<{task: string; status: string; msg: string}> | undefined)?.find((t) => t.task === 'Cluster formed')

function node(addr: string, commandTimeout = 60_000): Redis {
  const [ip, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))]
  return new Redis({host: ip, port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, commandTimeout, connectTimeout: 3000})
}

async function onNode<T>(addr: string, fn: (r: Redis) => Promise<T>, commandTimeout?: number): Promise<T> {
  const r = node(addr, commandTimeout)
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

// Writes acknowledged by WAIT 1 (with replicas) or the master's OK (without); the clients
// meet nodes not started yet or killed on purpose: the writes say so, the events are noise.
const ackedKeys = (replicas: number) => new AckedKeys({seeds: fleet.hosts.map((h) => ({host: h.ip, port: PORT})), replicas, password: PASSWORD, quiet: true})

// A hash tag whose slot passes `want`: keys `{tag}:…` all land in that slot.
async function tagFor(addr: string, want: (slot: number) => boolean): Promise<{tag: string; slot: number}> {
  return onNode(addr, async (r) => {
    for (let i = 0; i < 100_000; i++) {
      const slot = Number(await r.call('CLUSTER', 'KEYSLOT', `t${i}`))
      if (want(slot)) return {tag: `t${i}`, slot}
    }
    throw new Error('no tag found')
  })
}

const owns = (slots: string, slot: number) =>
  slots.split(',').some((r) => {
    const [a, b] = r.split('-').map(Number)
    return slot >= a && slot <= (b ?? a)
  })

// Every node's own CLUSTER NODES, for a failure message.
async function dumpNodes(): Promise<string> {
  const out: string[] = []
  for (const h of fleet.hosts) {
    for (let p = PORT; p < PORT + 2; p++) {
      const text = await onNode(`${h.ip}:${p}`, (r) => r.call('CLUSTER', 'NODES'), 2000).then(String, (e) => `(${e.message})`)
      out.push(
        `## ${h.ip}:${p}`,
        ...text
          .trim()
          .split('\n')
          .map((l) => `#   ${l.slice(0, 200)}`),
      )
    }
  }
  return out.join('\n')
}

async function pidOf(h: TestHost, port: number): Promise<number> {
  const r = await fleet.nsExec(h, `cat /root/redis_cluster/${port}/redis.pid`)
  assert.equal(r.code, 0, r.stderr)
  return Number(r.stdout.trim())
}

// SIGKILL one of our instances by the pid in its own pidfile, and wait until it is gone.
async function kill9(h: TestHost, port: number): Promise<void> {
  const pid = await pidOf(h, port)
  const r = await fleet.nsExec(h, `kill -9 ${pid}; n=0; while [ -r /proc/${pid}/stat ] && ! grep -q ') [ZX]' /proc/${pid}/stat && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done`)
  assert.equal(r.code, 0, r.stderr)
}

async function waitUntil(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(300)
  }
}

describe('durability of scaling (issue 10)', () => {
  it('case 5: an interrupted move whose target then failed over is finished on the promoted replica; 0 acknowledged writes lost', async () => {
    const t0 = Date.now()
    const inv = await freshCluster('c5', {redis_count: 2, redis_replicas: 1, redis_cluster_node_timeout: 3000})
    const s = await status(inv.all)
    const acked = ackedKeys(1)
    const src = s.masters[0]
    const dst = s.masters[1]
    const dstReplica = s.replicas.find((r) => r.masterId === dst.id)
    assert.ok(dstReplica, `no replica of ${dst.addr}: ${JSON.stringify(s.replicas)}`)
    const {tag, slot} = await tagFor(src.addr, (x) => owns(src.slots, x))
    await acked.writeKeys(`{${tag}}:base`, 200)

    // What a run SIGKILLed mid-batch leaves: IMPORTING on the target, MIGRATING on the
    // source, part of the slot's keys moved (exactly the tool's own commands).
    await onNode(dst.addr, (r) => r.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', src.id))
    await onNode(src.addr, (r) => r.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dst.id))
    const [dip, dport] = [dst.addr.split(':')[0], dst.addr.split(':')[1]]
    await onNode(src.addr, (r) => r.call('MIGRATE', dip, dport, '', '0', '5000', 'AUTH', PASSWORD, 'KEYS', ...Array.from({length: 120}, (_, i) => `{${tag}}:base:${i}`)))
    const writer = acked.background('c5w')
    const slotWriter = acked.background(`{${tag}}:live`) // follows ASK to the target
    await sleep(1000)

    // The target's shard fails over: its replica takes the slot's moved keys along.
    await onNode(dstReplica!.addr, (r) => r.call('CLUSTER', 'FAILOVER'))
    await waitUntil('the target replica to be promoted', 30_000, () => onNode(dstReplica!.addr, async (r) => String(((await r.call('ROLE')) as unknown[])[0]) === 'master'))
    await waitUntil('the old target to be a replica', 30_000, () => onNode(dst.addr, async (r) => String(((await r.call('ROLE')) as unknown[])[0]) === 'slave'))
    const moved = await onNode(dstReplica!.addr, (r) => r.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)))
    assert.ok(Number(moved) >= 120, `the promoted replica holds the moved keys (${moved})`)
    const mid = await status(inv.all)
    process.stdout.write(`# case 5: open slots before up: ${JSON.stringify(mid.openSlots)}\n`)
    assert.ok(
      mid.openSlots.some((o) => o.slot === slot),
      'slot still open on the source',
    )

    const up = await cli(['up', '-i', inv.all, ...redisArgs(), '--json'], {timeoutMs: 900_000})
    await sleep(1500)
    const n = (await writer.stop()).acked + (await slotWriter.stop()).acked
    if (up.code !== 0) process.stdout.write(`# case 5: CLUSTER NODES after the failed up:\n${await dumpNodes()}\n`)
    assert.equal(up.code, 0, show(up))
    process.stdout.write(`# case 5: ${clusterTask(up)?.msg}\n# ${n} background writes acknowledged\n`)
    assert.match(clusterTask(up)!.msg, /settled 1 open slot\(s\) \(1 finished/)
    const end = await waitClusterOk(inv.all)
    assert.deepEqual(end.openSlots, [])
    const owner = end.masters.find((m) => owns(m.slots, slot))
    // The target's shard owns it (up's placement step may hand the shard back to the old target).
    assert.ok(owner && [dst.id, dstReplica!.id].includes(owner.id), `the target's shard owns slot ${slot}: ${owner?.addr}`)
    const intact = await acked.assertNoneLost()
    process.stdout.write(`# case 5: ${intact} acknowledged keys intact, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
  })

  it('case 7: scale-in, the leaving master killed mid-drain: its replica is still attached and takes over; re-run finishes; 0 acknowledged writes lost', async () => {
    const t0 = Date.now()
    const inv = await freshCluster('c7', {redis_count: 2, redis_replicas: 1, redis_cluster_node_timeout: 3000})
    const h3 = fleet.hosts[2]
    const s = await status(inv.all)
    const leaving = s.masters.find((m) => m.host === h3.name)
    assert.ok(leaving, `no master on ${h3.name}`)
    const guard = s.replicas.find((r) => r.masterId === leaving!.id)
    assert.ok(guard && guard.host !== h3.name, `the leaving master's replica is on a staying host: ${JSON.stringify(s.replicas)}`)
    const record = join(fleet.dir, 'c7-fill.json')
    const fill = await cli(['load', '-i', inv.all, '--clients', '16', '--requests', '200000', '--data-size', '100', '--record', record, '--json'], {timeoutMs: 900_000})
    assert.equal(fill.code, 0, show(fill))
    const acked = ackedKeys(1)
    await acked.writeKeys('c7base', 200)
    const writer = acked.background('c7w')

    const run = startCli(['up', '-i', inv.first2, ...redisArgs(), '--remove-missing'], {timeoutMs: 900_000})
    await run.waitFor(/redis_cluster: moved \d+\/\d+ slot/, 600_000)
    assert.doesNotMatch(run.stdout(), /moved \d+ slot\(s\) and \d+ key\(s\) in/, 'killed too late: the drain had finished')
    const guardRole = await onNode(
      guard!.addr,
      async (r) =>
        String(await r.call('CLUSTER', 'NODES'))
          .split('\n')
          .find((l) => l.includes('myself')) ?? '',
    )
    await kill9(h3, Number(leaving!.addr.split(':')[1]))
    const first = await run.result
    process.stdout.write(`# case 7: the leaving master killed mid-drain; the run: exit ${first.code}\n`)
    assert.ok(guardRole.includes(`slave ${leaving!.id}`), `its replica was still attached when it was killed: ${guardRole}`)

    await waitUntil('the replica to take over', 60_000, () => onNode(guard!.addr, async (r) => String(((await r.call('ROLE')) as unknown[])[0]) === 'master'))
    // The target of the interrupted slot still maps it to the dead master (an importing
    // node ignores gossip about it): the re-run rebinds it first, else CLUSTERDOWN for good.
    const rerun = await cli(['up', '-i', inv.first2, ...redisArgs(), '--remove-missing', '--json'], {timeoutMs: 900_000})
    await sleep(1500)
    const n = (await writer.stop()).acked
    assert.equal(rerun.code, 0, show(rerun))
    process.stdout.write(`# case 7: re-run: ${clusterTask(rerun)?.msg}\n# ${n} background writes acknowledged\n`)
    const end = await waitClusterOk(inv.first2)
    assert.deepEqual(end.openSlots, [])
    assert.ok(end.masters.every((m) => m.host !== h3.name) && end.replicas.every((r) => r.host !== h3.name))
    const intact = await acked.assertNoneLost()
    const check = await cli(['load', '-i', inv.first2, '--verify-record', record, '--json'], {timeoutMs: 600_000})
    assert.equal(check.code, 0, show(check))
    assert.equal(check.json.verify.lost, 0)
    process.stdout.write(`# case 7: ${intact} acknowledged keys + ${check.json.verify.checked} filled keys intact, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
  })

  it('case 7: a drain that would push the receivers past maxmemory (allkeys-lru) is refused, exit != 0, every key intact', async () => {
    const t0 = Date.now()
    const inv = await freshCluster('c7m', {redis_count: 1, redis_replicas: 0, redis_maxmemory: '48mb', redis_maxmemory_policy: 'allkeys-lru'})
    const s = await status(inv.all)
    const usedMax = () => Promise.all(s.masters.map((m) => onNode(m.addr, async (r) => Number(/used_memory:(\d+)/.exec(String(await r.call('INFO', 'memory')))![1]))))
    const records: string[] = []
    // Fill each master to ~36 MB of its 48: no eviction yet, but half of another master's on top would.
    for (let i = 0; Math.max(...(await usedMax())) < 36 << 20; i++) {
      assert.ok(i < 40, 'filling took too long')
      const record = join(fleet.dir, `c7m-${i}.json`)
      const fill = await cli(['load', '-i', inv.all, '--clients', '8', '--requests', '6000', '--data-size', '1000', '--record', record, '--json'], {timeoutMs: 300_000})
      assert.equal(fill.code, 0, show(fill))
      records.push(record)
    }
    const evicted = () => Promise.all(s.masters.map((m) => onNode(m.addr, async (r) => Number(/evicted_keys:(\d+)/.exec(String(await r.call('INFO', 'stats')))![1]))))
    assert.deepEqual(
      await evicted(),
      s.masters.map(() => 0),
      'nothing evicted by the fill',
    )
    process.stdout.write(`# case 7 headroom: used_memory ${(await usedMax()).map((x) => (x / 2 ** 20).toFixed(1)).join(', ')} MB of 48\n`)

    const r = await cli(['up', '-i', inv.first2, ...redisArgs(), '--remove-missing', '--json'], {timeoutMs: 900_000})
    process.stdout.write(`# case 7 headroom: exit ${r.code}: ${clusterTask(r)?.msg}\n`)
    assert.notEqual(r.code, 0, show(r))
    assert.match(clusterTask(r)!.msg, /would exceed maxmemory/)
    for (const m of s.masters.filter((m) => m.host !== fleet.hosts[2].name)) assert.ok(clusterTask(r)!.msg.includes(m.addr) || /receiving master/.test(clusterTask(r)!.msg))
    assert.match(clusterTask(r)!.msg, /MB/)
    assert.deepEqual(
      await evicted(),
      s.masters.map(() => 0),
      'nothing evicted',
    )
    const end = await waitClusterOk(inv.all)
    assert.equal(end.masters.length, 3, 'nothing was drained')
    assert.deepEqual(end.openSlots, [])
    let checked = 0
    for (const record of records) {
      const v = await cli(['load', '-i', inv.all, '--verify-record', record, '--json'], {timeoutMs: 300_000})
      assert.equal(v.code, 0, show(v))
      assert.equal(v.json.verify.lost, 0)
      assert.equal(v.json.verify.wrong, 0)
      checked += v.json.verify.checked
    }
    process.stdout.write(`# case 7 headroom: ${checked} keys intact, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
  })

  it('case 10: big values over a slow link with a 3 s node timeout move without any node marked failed; 0 acknowledged writes lost', async () => {
    const t0 = Date.now()
    const inv = await freshCluster('c10', {redis_count: 1, redis_replicas: 0, redis_cluster_node_timeout: 3000}, 'first2')
    const s = await status(inv.first2)
    // planRebalance takes a giver's surplus from the top of its slots: 2 masters → 3
    // moves about the top third of each to the new one.
    const giver = s.masters[0]
    const [lo, hi] = giver.slots.split('-').map(Number)
    const {tag} = await tagFor(giver.addr, (x) => x >= hi - Math.floor((hi - lo) / 4) && x <= hi)
    const acked = ackedKeys(0)
    // Random: a repeated character compresses (rdbcompression) to nothing in MIGRATE's payload.
    const bigValues = Array.from({length: 60}, () => randomBytes(384 * 1024).toString('base64'))
    const big = (i: number) => bigValues[i]
    await acked.writeKeys(`{${tag}}:big`, 60, big) // 30 MB in one slot: 60 keys, one MIGRATE before
    await shapeLink(fleet, fleet.hosts[2], '16mbit') // ~2 MB/s to the new host: 15 s for that MIGRATE
    const writer = acked.background('c10w')
    let sampling = true
    const failed = new Set<string>()
    const sampler = (async () => {
      while (sampling) {
        for (const h of fleet.hosts) {
          // A short timeout: a source blocked by MIGRATE must not stall the sampler.
          const text = await onNode(`${h.ip}:${PORT}`, (r) => r.call('CLUSTER', 'NODES'), 1000).then(String, () => '')
          // `fail` (a majority agreed), not `fail?` (one node's suspicion).
          for (const l of text.split('\n')) if ((l.split(' ')[2] ?? '').split(',').includes('fail')) failed.add(`${h.name}: ${l.slice(0, 120)}`)
        }
        await sleep(250)
      }
    })()
    let up: CliResult
    try {
      up = await cli(['up', '-i', inv.all, ...redisArgs(), '--json'], {timeoutMs: 900_000})
    } finally {
      sampling = false
      await sampler
      await shapeLink(fleet, fleet.hosts[2])
    }
    await sleep(1000)
    const n = (await writer.stop()).acked
    process.stdout.write(`# case 10: ${clusterTask(up)?.msg}\n# ${n} background writes acknowledged; nodes seen failed: ${[...failed].length}\n`)
    assert.equal(up.code, 0, show(up))
    // The premise: the link really was slow (30 MB at ~2 MB/s), so one MIGRATE of the slot would block for ~15 s.
    const secs = Number(/moved \d+ slot\(s\) and \d+ key\(s\) in ([\d.]+) s/.exec(clusterTask(up)!.msg)?.[1] ?? 0)
    assert.ok(secs >= 8, `the move took ${secs} s: the link was not shaped`)
    assert.deepEqual([...failed], [], 'a node was marked failed during the move')
    const end = await waitClusterOk(inv.all)
    assert.equal(end.masters.length, 3)
    const owner = end.masters.find((m) => m.host === fleet.hosts[2].name)
    const bigSlot = Number(await onNode(giver.addr, (r) => r.call('CLUSTER', 'KEYSLOT', tag)))
    assert.ok(owner && owns(owner.slots, bigSlot), `the big slot ${bigSlot} moved to the new master`)
    const intact = await acked.assertNoneLost()
    process.stdout.write(`# case 10: ${intact} acknowledged keys intact (60 × 512 KB moved), ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
  })
})
