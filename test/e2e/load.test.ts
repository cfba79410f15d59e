import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Cluster, Redis} from 'ioredis'
import {readFileSync} from 'node:fs'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

// `baremetal load --pipeline N` (issue 14): N requests in flight per client, answered out of
// order across nodes, and still every acknowledged key known: --verify reads them all back,
// and a key the harness deletes mid-run is reported lost (exit 2).

const PORT = 7300
const COUNT = 2

let fleet: Fleet
let inv: string

before(async () => {
  fleet = await createFleet(3)
  const build = await sharedRedisBuild(fleet, fleet.hosts[0])
  inv = fleet.writeInventory({path: join(fleet.dir, 'load.yml'), vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 0, ...build}})
  const r = await cli(['up', '-i', inv, ...redisArgs(), '--json'], {timeoutMs: 600_000})
  assert.equal(r.code, 0, show(r))
  await ops.waitClusterOk(inv, 60_000)
})

after(() => ops.tearDown(fleet, inv))

const load = (...args: string[]) => cli(['load', '-i', inv, '--json', ...args], {timeoutMs: 300_000})

async function flushAll(): Promise<void> {
  for (const h of fleet.hosts) {
    for (let p = PORT; p < PORT + COUNT; p++) {
      const c = new Redis({host: h.ip, port: p})
      await c.flushall().finally(() => c.disconnect())
    }
  }
}

interface Master {
  id: string
  ip: string
  port: number
  slots: Array<[number, number]>
}

async function masters(): Promise<Master[]> {
  const c = new Redis({host: fleet.hosts[0].ip, port: PORT})
  try {
    return String(await c.call('CLUSTER', 'NODES'))
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2].includes('master'))
      .map((f) => {
        const [ip, port] = f[1].split('@')[0].split(':')
        return {
          id: f[0],
          ip,
          port: Number(port),
          slots: f
            .slice(8)
            .filter((x) => !x.startsWith('['))
            .map((r) => r.split('-').map(Number) as [number, number])
            .map(([a, b]) => [a, b ?? a] as [number, number]),
        }
      })
  } finally {
    c.disconnect()
  }
}

// One slot moved the way a resharding tool does it, keys a few at a time, so that writers
// meanwhile meet ASK (the slot half moved) and then MOVED (the slot gone).
async function moveSlot(slot: number, from: Master, to: Master, all: Master[]): Promise<void> {
  const src = new Redis({host: from.ip, port: from.port})
  const dst = new Redis({host: to.ip, port: to.port})
  try {
    await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id)
    await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id)
    for (;;) {
      const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, 20)) as string[]
      if (keys.length === 0) break
      await src.call('MIGRATE', to.ip, to.port, '', 0, 10_000, 'KEYS', ...keys)
      await new Promise((r) => setTimeout(r, 5))
    }
    for (const m of [to, from, ...all.filter((x) => x !== to && x !== from)]) {
      const c = new Redis({host: m.ip, port: m.port})
      await c.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id).finally(() => c.disconnect())
    }
  } finally {
    src.disconnect()
    dst.disconnect()
  }
}

describe('load --pipeline: every acknowledged key known', () => {
  it('8 clients × 16 in flight over 2 shared connection sets, 40,000 SETs: all acknowledged, all read back, one counter range per client', async () => {
    const r = await load('--clients', '8', '--pipeline', '16', '--connections', '2', '--requests', '40000', '--verify')
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.load.pipeline, 16)
    assert.equal(r.json.load.connections, 2)
    assert.equal(r.json.load.sent, 40_000)
    assert.equal(r.json.load.acked, 40_000)
    assert.equal(r.json.load.ranges, 8, 'out-of-order replies merge back into one range per client')
    assert.equal(r.json.verify.checked, 40_000)
    assert.equal(r.json.verify.lost, 0)
  })

  it('a key deleted mid-run is reported lost by --verify (exit 2), by name', async () => {
    // Only this run's keys, so that the one deleted is one of them.
    await flushAll()
    const done = load('--clients', '4', '--pipeline', '32', '--duration', '8', '--verify')
    // Any key a node holds was acknowledged to its writer: delete one once writes flow.
    const node = new Redis({host: fleet.hosts[1].ip, port: PORT, lazyConnect: true})
    let victim: string | null = null
    try {
      await node.connect()
      for (let i = 0; i < 100 && !victim; i++) {
        await new Promise((r) => setTimeout(r, 100))
        victim = (await node.randomkey()) as string | null
      }
      assert.ok(victim, 'a key was written')
      assert.equal(await node.del(victim), 1)
    } finally {
      node.disconnect()
    }
    const r = await done
    assert.equal(r.code, 2, show(r))
    assert.equal(r.json.verify.lost, 1, JSON.stringify(r.json.verify))
    assert.deepEqual(r.json.verify.lostSamples, [victim])
    assert.equal(r.json.verify.wrong, 0)
    assert.equal(r.json.verify.checked, r.json.load.acked)
  })

  it('by default 16 in flight per client on one shared set of connections: all acknowledged, all read back', async () => {
    const r = await load('--clients', '10', '--requests', '30000', '--verify')
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.load.pipeline, 16)
    assert.equal(r.json.load.connections, 1)
    assert.equal(r.json.load.threads, 1)
    assert.equal(r.json.load.acked, 30_000)
    assert.equal(r.json.load.ranges, 10)
    assert.equal(r.json.verify.checked, 30_000)
    assert.equal(r.json.verify.lost, 0)
  })

  it('--workers 2: clients split over two threads, their keys merged: all acknowledged, all read back', async () => {
    const r = await load('--clients', '9', '--workers', '2', '--pipeline', '16', '--requests', '40001', '--data-size', '300', '--verify')
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.load.threads, 2)
    assert.equal(r.json.load.connections, 2, 'one set per thread')
    assert.equal(r.json.load.sent, 40_001)
    assert.equal(r.json.load.acked, 40_001)
    assert.equal(r.json.load.ranges, 9)
    assert.equal(r.json.verify.checked, 40_001)
    assert.equal(r.json.verify.lost, 0)
    assert.equal(r.json.verify.wrong, 0)
  })

  it('--workers 2, a key deleted mid-run: --verify reports exactly that key lost (exit 2)', async () => {
    await flushAll()
    const done = load('--clients', '6', '--workers', '2', '--duration', '6', '--verify')
    const node = new Redis({host: fleet.hosts[2].ip, port: PORT + 1, lazyConnect: true})
    let victim: string | null = null
    try {
      await node.connect()
      for (let i = 0; i < 100 && !victim; i++) {
        await new Promise((r) => setTimeout(r, 100))
        victim = (await node.randomkey()) as string | null
      }
      assert.ok(victim, 'a key was written')
      assert.equal(await node.del(victim), 1)
    } finally {
      node.disconnect()
    }
    const r = await done
    assert.equal(r.code, 2, show(r))
    assert.equal(r.json.load.threads, 2)
    assert.equal(r.json.verify.lost, 1, JSON.stringify(r.json.verify))
    assert.deepEqual(r.json.verify.lostSamples, [victim])
    assert.equal(r.json.verify.checked, r.json.load.acked)
  })

  it('--record from two threads, one recorded key deleted and one overwritten: --verify-record names exactly those (exit 2)', async () => {
    const record = join(fleet.dir, 'keys.json')
    const w = await load('--clients', '5', '--workers', '2', '--requests', '20000', '--record', record)
    assert.equal(w.code, 0, show(w))
    const rec = JSON.parse(readFileSync(record, 'utf8')) as {workers: Array<{uuid: string; ranges: Array<[number, number]>}>}
    assert.equal(rec.workers.length, 5)
    assert.equal(
      rec.workers.reduce((n, x) => n + x.ranges.reduce((k, [a, b]) => k + b - a + 1, 0), 0),
      20_000,
    )
    const lost = `${rec.workers[3].uuid}-${rec.workers[3].ranges[0][1]}`
    const wrong = `${rec.workers[1].uuid}-${rec.workers[1].ranges[0][0]}`
    const c = new Cluster([{host: fleet.hosts[0].ip, port: PORT}])
    try {
      assert.equal(await c.del(lost), 1)
      await c.set(wrong, 'not what the writer wrote')
    } finally {
      c.disconnect()
    }
    const r = await load('--verify-record', record)
    assert.equal(r.code, 2, show(r))
    assert.equal(r.json.verify.checked, 20_000)
    assert.deepEqual([r.json.verify.lost, r.json.verify.wrong], [1, 1])
    assert.deepEqual(r.json.verify.lostSamples, [lost])
    assert.deepEqual(r.json.verify.wrongSamples, [wrong])
  })

  it('slots moved mid-run (ASK, then MOVED) under --pipeline 16 on two threads: nothing acknowledged is lost', async () => {
    await flushAll()
    const done = load('--clients', '8', '--workers', '2', '--duration', '10', '--verify')
    await new Promise((r) => setTimeout(r, 2000))
    const all = await masters()
    const [from, to] = [all[0], all[1]]
    const first = from.slots[0][0]
    for (let s = first; s < first + 8; s++) await moveSlot(s, from, to, all)
    const r = await done
    assert.equal(r.code, 0, show(r))
    assert.ok(r.json.load.acked > 1000, `only ${r.json.load.acked} acknowledged`)
    assert.ok((r.json.load.redirects.MOVED ?? 0) + (r.json.load.redirects.ASK ?? 0) > 0, `redirections met: ${JSON.stringify(r.json.load.redirects)}`)
    assert.equal(r.json.verify.checked, r.json.load.acked)
    assert.equal(r.json.verify.lost, 0)
    assert.equal(r.json.verify.wrong, 0)
    const after = await masters()
    assert.ok(
      after.find((m) => m.id === to.id)!.slots.some(([a, b]) => a <= first && first <= b),
      'the slot moved',
    )
  })

  it('--pipeline 0 is refused as bad input (exit 5)', async () => {
    const r = await cli(['load', '-i', inv, '--pipeline', '0'], {timeoutMs: 60_000})
    assert.notEqual(r.code, 0, show(r))
    assert.match(r.stderr, /pipeline/)
  })
})
