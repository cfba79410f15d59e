// What the cluster e2e suites (lifecycle, durability*) do to a test host and ask of a
// running cluster, in one place so that they all do it the same way: a shell on the host
// that must succeed, our instances' pids and kills by their pidfiles, `baremetal status`,
// the wait for a healthy cluster, the shards a report shows, the suite's teardown.
// Writers whose writes count only when acknowledged are in acked.ts.
import assert from 'node:assert/strict'
import type {ClusterReport} from '../../src/redis/status.js'
import type {Fleet, TestHost} from '../harness/fleet.js'
import {cli, show} from './cli.js'

/** `status --json`: the product's own report. */
export type Report = ClusterReport

/** One task of `up`/`down --json`, as the suites read it. */
export interface Task {
  task: string
  host: string
  status: string
  msg: string
  diff?: Array<{path: string; before: string; after: string}>
  data?: Record<string, any>
}

// Where `up` puts each instance (its redis.pid, redis.conf, data).
const INSTANCES = '/root/redis_cluster'

/** After a suite: its cluster down (whatever state the suite left it in), then its test hosts destroyed. */
export async function tearDown(fleet: Fleet | undefined, inv: string): Promise<void> {
  if (!fleet) return
  await cli(['down', '-i', inv], {timeoutMs: 120_000}).catch(() => {})
  await fleet.destroy()
}

/** Run a shell command on a test host; anything but exit 0 fails the test with its output. */
export async function sh(fleet: Fleet, h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

/** Shell: a pid counts as alive until it is gone or a zombie (killed, not yet reaped). */
export const ALIVE = `alive() { [ -r /proc/$1/stat ] && ! grep -q ') [ZX]' /proc/$1/stat; }`

/** The pids of every instance on the host, one a line (by port). */
export const pids = (fleet: Fleet, h: TestHost): Promise<string> => sh(fleet, h, `cat ${INSTANCES}/*/redis.pid`)

/** The pid of the instance on this port, from its pidfile. */
export const pidOf = async (fleet: Fleet, h: TestHost, port: number): Promise<string> => (await sh(fleet, h, `cat ${INSTANCES}/${port}/redis.pid`)).trim()

/**
 * Kill our own instances by the pids in their pidfiles (never by name: a foreign
 * redis-server may run beside them), and wait until they are gone (up to 30 s).
 */
export async function killPorts(fleet: Fleet, h: TestHost, ports: number[], signal: 'KILL' | 'TERM'): Promise<void> {
  await sh(
    fleet,
    h,
    `${ALIVE}; P="${ports.map((p) => `$(cat ${INSTANCES}/${p}/redis.pid)`).join(' ')}"; kill -${signal} $P; ` +
      'n=0; for p in $P; do while alive $p && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; done',
  )
}

/** `status --json` of the inventory's cluster; a run that prints no JSON fails the test. */
export async function status(inv: string): Promise<Report> {
  const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
  assert.ok(r.json, show(r))
  return r.json as Report
}

/**
 * Slots → the ids of the shard serving them (master and replicas, in any role order):
 * a node restarted with its own nodes.conf keeps its id and its shard, a failover only
 * swaps roles inside one.
 */
export function shards(r: Report): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of r.masters) out[m.slots] = [m.id, ...r.replicas.filter((x) => x.masterId === m.id).map((x) => x.id)].sort().join(',')
  return out
}

/** Poll status once a second until the cluster is ok; after `ms`, fail naming its problems. */
export async function waitClusterOk(inv: string, ms: number): Promise<Report> {
  const deadline = Date.now() + ms
  let r = await status(inv)
  while (!r.ok && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 1000))
    r = await status(inv)
  }
  assert.ok(r.ok, `cluster not ok: ${r.problems.join('; ')}`)
  return r
}
