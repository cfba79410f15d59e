import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Issue 14: fresh nodes form under a short cluster-node-timeout and get the declared one
// back; a controller killed in between leaves nodes on the short value, which the next
// `up --check` and `status` report and `up` restores. 2 hosts × 4 ports, 1 replica each,
// a declared value that is not the default (6000) so "declared" cannot be a coincidence.
// Runs on 7.0.15 and, in the e2e-503 pass, on 5.0.3.

const PORT = 7100
const COUNT = 4
const DECLARED = '6000'
const ports = Array.from({length: COUNT}, (_, i) => PORT + i)

let fleet: Fleet
let inv: string

before(async () => {
  fleet = await createFleet(2)
  const build = await sharedRedisBuild(fleet, fleet.hosts[0])
  inv = fleet.writeInventory({
    path: join(fleet.dir, 'formation.yml'),
    vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, redis_cluster_node_timeout: Number(DECLARED), ...build},
  })
})

after(() => ops.tearDown(fleet, inv))

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const clusterTask = (r: CliResult) => ((r.json?.tasks ?? []) as ops.Task[]).find((t) => t.task === 'Cluster formed')
const nodes = () => fleet.hosts.flatMap((h) => ports.map((port) => ({host: h.ip, port})))

async function withNodes<T>(fn: (r: Redis, addr: string) => Promise<T>): Promise<T[]> {
  return Promise.all(
    nodes().map(async (n) => {
      const r = new Redis({host: n.host, port: n.port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false})
      await r.connect()
      try {
        return await fn(r, `${n.host}:${n.port}`)
      } finally {
        r.disconnect()
      }
    }),
  )
}

const timeouts = () => withNodes(async (r, addr) => [addr, ((await r.call('CONFIG', 'GET', 'cluster-node-timeout')) as string[])[1]] as const)
const states = () => withNodes(async (r) => /cluster_state:(\w+)/.exec(String(await r.call('CLUSTER', 'INFO')))?.[1])

describe(`formation under a short cluster-node-timeout on Redis ${redisVersion()}`, () => {
  it('(a) up forms under the short timeout and leaves every node on the declared one', async () => {
    const r = await up()
    assert.equal(r.code, 0, show(r))
    const data = clusterTask(r)?.data as {nodeTimeout?: {formingMs?: number; restored: string[]}} | undefined
    assert.equal(data?.nodeTimeout?.formingMs, 1000, JSON.stringify(data?.nodeTimeout))
    assert.deepEqual(data?.nodeTimeout?.restored, [], 'nothing was off the declared value before')
    for (const [addr, v] of await timeouts()) assert.equal(v, DECLARED, `${addr} runs cluster-node-timeout ${v}`)
    assert.deepEqual(new Set(await states()), new Set(['ok']))
  })

  // Two moments: right after the first node took the short value (the others still fresh),
  // and once every node has it (the formation past its slots, meeting or waiting).
  for (const trigger of ['first', 'all'] as const) {
    it(`(b, ${trigger}) a controller killed mid-formation: up --check and status report the short timeout, up restores it`, async () => {
      // Fresh again: no keys were written, so every node may be reset.
      await withNodes((r) => r.call('CLUSTER', 'RESET', 'HARD'))
      const run = startCli(['up', '-i', inv, ...redisArgs(), '--tags', 'cluster', '--json'], {timeoutMs: 600_000})
      // The trigger: nodes reporting the short value (set in the same pipeline as their
      // slots, a second or more before the restore) mean the formation is under way.
      let seen = ''
      const watchers = nodes().map((n) => {
        const c = new Redis({host: n.host, port: n.port, maxRetriesPerRequest: 1})
        c.on('error', () => {})
        return c
      })
      let ended = false
      void run.result.then(() => (ended = true))
      try {
        while (!seen && !ended) {
          const vals = await Promise.all(
            watchers.map((c) =>
              c.call('CONFIG', 'GET', 'cluster-node-timeout').then(
                (v) => (v as string[])[1],
                () => '',
              ),
            ),
          )
          const short = vals.filter((v) => v && v !== DECLARED)
          if (trigger === 'first' ? short.length > 0 : short.length === vals.length) {
            run.signal('SIGKILL')
            seen = vals.find((v) => v && v !== DECLARED)!
          } else await sleep(5)
        }
      } finally {
        for (const c of watchers) c.disconnect()
      }
      const killed = await run.result
      assert.equal(seen, '1000', `no node ever ran a short cluster-node-timeout; the run ended ${killed.code}:\n${killed.stdout.slice(-2000)}`)
      assert.equal(killed.code, null, 'the controller was killed before it finished')
      await sleep(500)
      const left = (await timeouts()).filter(([, v]) => v !== DECLARED)
      assert.ok(left.length > 0, 'the killed run left nodes on the short timeout')
      console.log(`# killed (${trigger}): ${left.length} node(s) left on ${seen}; states ${(await states()).join(',')}`)

      const check = await up('--check')
      const ct = clusterTask(check)
      assert.match(ct?.msg ?? '', /would restore the declared cluster-node-timeout on \d+ node\(s\) \(running 1000 on \d+ node\(s\)\)/, show(check))
      assert.equal((await timeouts()).filter(([, v]) => v !== DECLARED).length >= left.length, true, 'check mode changed nothing')

      const st = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
      assert.notEqual(st.code, 0, show(st))
      const problems = (st.json?.problems ?? []) as string[]
      for (const [addr] of left)
        assert.ok(
          problems.some((p) => p.includes(addr) && /cluster-node-timeout 1000, declared 6000/.test(p)),
          `status does not name ${addr}: ${problems.join('; ')}`,
        )

      console.log(`# up --check: ${ct?.msg}`)
      const fix = await up()
      assert.equal(fix.code, 0, show(fix))
      const ft = clusterTask(fix)
      assert.equal(ft?.status, 'changed')
      assert.match(ft?.msg ?? '', /restored the declared cluster-node-timeout on \d+ node\(s\)/, show(fix))
      console.log(`# up: ${ft?.msg}`)
      for (const [addr, v] of await timeouts()) assert.equal(v, DECLARED, `${addr} runs cluster-node-timeout ${v}`)
      assert.deepEqual(new Set(await states()), new Set(['ok']))
      const after = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
      assert.equal(after.code, 0, show(after))
    })
  }
})
