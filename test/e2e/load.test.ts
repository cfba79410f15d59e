import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
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
    for (const h of fleet.hosts) {
      for (let p = PORT; p < PORT + COUNT; p++) {
        const c = new Redis({host: h.ip, port: p})
        await c.flushall().finally(() => c.disconnect())
      }
    }
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

  it('--pipeline 0 is refused as bad input (exit 5)', async () => {
    const r = await cli(['load', '-i', inv, '--pipeline', '0'], {timeoutMs: 60_000})
    assert.notEqual(r.code, 0, show(r))
    assert.match(r.stderr, /pipeline/)
  })
})
