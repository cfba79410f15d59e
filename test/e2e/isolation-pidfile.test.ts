import assert from 'node:assert/strict'
import {connect} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

// Issue 11, cases 3 and 4, on one fleet of 3 hosts × 3 ports (9 masters, no replicas):
// an instance whose redis.pid is gone (or whose directory was deleted under it) is still
// ours — `up` writes the pidfile back without a restart, `down` stops it before removing
// its directory — while a redis-server started by hand elsewhere stays foreign; and
// `down -l h2` on a member of the live cluster is refused before anything changes, while
// `down -l h2` after `up --remove-missing` drained h2 works.

const PORT = 7000
const COUNT = 3
const DIR = '/root/redis_cluster'

let fleet: Fleet
let inv123: string
let inv13: string
let build: Record<string, string> = {}
let BIN = ''
let foreignPid = ''

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
  const vars = {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 0, redis_cluster_node_timeout: 5000, ...build}
  inv123 = fleet.writeInventory({path: join(fleet.dir, 'inv123.yml'), vars})
  inv13 = fleet.writeInventory({path: join(fleet.dir, 'inv13.yml'), hosts: [fleet.hosts[0], fleet.hosts[2]], vars})
})

after(async () => {
  if (foreignPid && fleet) await fleet.nsExec(host('h3'), `kill ${foreignPid}`).catch(() => {})
  await ops.tearDown(fleet, inv123)
})

const up = (inv: string, ...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
const byName = (r: CliResult, name: string) => tasks(r).filter((t) => t.task === name)
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const alive = async (h: TestHost, pid: string) => (await fleet.nsExec(h, `${ops.ALIVE}; alive ${pid}`)).code === 0

// Nothing listens there any more (a refused TCP connection, not a timeout).
function refused(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({host: ip, port, timeout: 3000})
    sock.once('connect', () => (sock.destroy(), resolve(false)))
    sock.once('timeout', () => (sock.destroy(), resolve(false)))
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

// The pid the instance on the port reports itself (no pidfile needed).
const servingPid = async (h: TestHost, port: number) => {
  const out = await sh(h, `${BIN}/redis-cli -h ${h.ip} -p ${port} INFO server | tr -d '\\r' | sed -n 's/^process_id://p'`)
  assert.match(out.trim(), /^\d+$/, `${h.name}:${port} answers INFO`)
  return out.trim()
}

// Every instance's pid by host and port, from the pidfiles.
async function allPids(hosts: TestHost[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const h of hosts) for (let p = PORT; p < PORT + COUNT; p++) out.set(`${h.name}:${p}`, await servingPid(h, p))
  return out
}

describe('isolation: identity without a pidfile (issue 11 case 3), down --limit of live members (case 4)', () => {
  it('up forms 9 masters on 3 hosts', async () => {
    const r = await up(inv123)
    assert.equal(r.code, 0, show(r))
    const s = await ops.waitClusterOk(inv123, 90_000)
    assert.equal(s.masters.length, 9)
  })

  it('case 3: redis.pid deleted: up restores it (same pid, no restart, named as a repair); a re-run changes nothing', async () => {
    const h1 = host('h1')
    const pid = await ops.pidOf(fleet, h1, PORT)
    await sh(h1, `rm ${DIR}/${PORT}/redis.pid`)
    const r = await up(inv123)
    assert.equal(r.code, 0, show(r))
    const inst = byName(r, 'Instances running').find((t) => t.host === 'h1')!
    assert.equal(inst.status, 'changed', show(r))
    assert.match(inst.msg, new RegExp(`pidfile restored for ${PORT}`))
    assert.deepEqual(inst.data?.started, [], 'nothing started')
    assert.equal(await ops.pidOf(fleet, h1, PORT), pid, 'the pidfile names the running instance')
    assert.ok(await alive(h1, pid), 'the instance kept running')
    assert.deepEqual(
      changed(r).map((t) => `${t.task} ${t.host}`),
      ['Instances running h1'],
      'nothing else changed',
    )
    const again = await up(inv123)
    assert.equal(again.code, 0, show(again))
    assert.deepEqual(
      changed(again).map((t) => [t.task, t.host, t.msg]),
      [],
    )
  })

  it("case 3: a redis.pid naming another host's redis-server on the same port (hosts sharing one PID namespace) is not trusted: up restores the right pid, the other host's instance untouched", async () => {
    const [h1, h2] = [host('h1'), host('h2')]
    const own = await servingPid(h1, PORT)
    const other = await servingPid(h2, PORT)
    await sh(h1, `echo ${other} > ${DIR}/${PORT}/redis.pid`)
    const r = await up(inv123)
    assert.equal(r.code, 0, show(r))
    const inst = byName(r, 'Instances running').find((t) => t.host === 'h1')!
    assert.match(inst.msg, new RegExp(`pidfile restored for ${PORT}`), show(r))
    assert.deepEqual(inst.data?.started, [], 'nothing started')
    assert.equal(await ops.pidOf(fleet, h1, PORT), own, "h1's pidfile names h1's instance again")
    assert.equal(await servingPid(h2, PORT), other, "h2's instance kept running")
    assert.equal(await servingPid(h1, PORT), own, "h1's instance kept running")
  })

  it('case 4: down -l h2 on a live cluster is refused (exit 5) naming its masters, slots and the fix; everything still runs', async () => {
    const before = await allPids(fleet.hosts)
    const s = await ops.status(inv123)
    const h2masters = s.masters.filter((m) => m.host === 'h2')
    assert.equal(h2masters.length, COUNT)
    const r = await cli(['down', '-i', inv123, '-l', 'h2'], {timeoutMs: 120_000})
    assert.equal(r.code, 5, show(r))
    for (const m of h2masters) assert.ok(r.stderr.includes(`${m.addr} (h2) slots ${m.slots}`), `names ${m.addr} and its slots ${m.slots}: ${r.stderr}`)
    assert.match(r.stderr, /keeps running on h1, h3/)
    assert.match(r.stderr, /--remove-missing/)
    assert.match(r.stderr, /without --limit/)
    assert.equal(r.stdout.trim(), '', 'no task ran')
    for (const h of fleet.hosts) {
      for (let p = PORT; p < PORT + COUNT; p++) assert.ok(await alive(h, before.get(`${h.name}:${p}`)!), `${h.name}:${p} still runs`)
      assert.match(await sh(h, 'iptables -S'), /BAREMETAL/, `${h.name}: firewall kept`)
    }
    const after = await ops.status(inv123)
    assert.equal(after.ok, true, after.problems.join('; '))
  })

  it('case 4: after up --remove-missing drained h2, down -l h2 removes what is left there (exit 0)', async () => {
    const r = await up(inv13, '--remove-missing')
    assert.equal(r.code, 0, show(r))
    const d = await cli(['down', '-i', inv123, '-l', 'h2', '--json'], {timeoutMs: 120_000})
    assert.equal(d.code, 0, show(d))
    assert.doesNotMatch(await sh(host('h2'), 'ls -1A /root'), /redis_cluster/)
    const s = await ops.waitClusterOk(inv13, 90_000)
    assert.equal(s.masters.length, 6)
  })

  it('case 3: down stops an instance without its pidfile and one whose directory was deleted under it, then removes the dirs (exit 0)', async () => {
    const h1 = host('h1')
    const p0 = await servingPid(h1, PORT)
    const p1 = await servingPid(h1, PORT + 1)
    // On a healthy cluster: no cluster event makes the dir-less instance save nodes.conf (and exit) by itself.
    await sh(h1, `rm -f ${DIR}/${PORT}/redis.pid && rm -rf ${DIR}/${PORT + 1}`)
    const r = await cli(['down', '-i', inv13, '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    const stopped = byName(r, 'Instances stopped').find((t) => t.host === 'h1')!
    assert.match(stopped.msg, new RegExp(`stopped ${COUNT} \\(${PORT}-${PORT + COUNT - 1}\\)`))
    for (const [pid, port] of [
      [p0, PORT],
      [p1, PORT + 1],
    ] as const) {
      assert.equal(await alive(h1, pid), false, `h1:${port} (pid ${pid}) stopped`)
      assert.ok(await refused(h1.ip, port), `h1:${port} refuses connections`)
    }
    for (const h of [h1, host('h3')]) assert.doesNotMatch(await sh(h, 'ls -1A /root'), /redis_cluster/, `${h.name}: instance directories removed`)
  })

  it('case 3: a redis-server started by hand from another directory on one of the ports stays foreign: up reports it, down leaves it running behind its rules (exit 2), then removes them once it is gone', async () => {
    const h3 = host('h3')
    const port = PORT + 2
    let r = await up(inv13)
    assert.equal(r.code, 0, show(r))
    await ops.waitClusterOk(inv13, 90_000)
    // Our instance on that port goes (its pidfile), then someone else's takes the port.
    await ops.killPorts(fleet, h3, [port], 'TERM')
    await sh(
      h3,
      `mkdir -p /tmp/foreign && ${BIN}/redis-server --port ${port} --bind ${h3.ip} --protected-mode no --daemonize yes --dir /tmp/foreign --pidfile /tmp/foreign/redis.pid --logfile /tmp/foreign/log --save '' && sleep 0.5`,
    )
    foreignPid = (await sh(h3, 'cat /tmp/foreign/redis.pid')).trim()
    r = await up(inv13)
    assert.notEqual(r.code, 0, show(r))
    const inst = byName(r, 'Instances running').find((t) => t.host === 'h3')!
    assert.equal(inst.status, 'failed', show(r))
    assert.match(inst.msg, new RegExp(`port ${port} is served by a redis-server not started from ${DIR}/${port} \\(pid ${foreignPid}\\)`))

    // down stops ours and leaves the foreign one running — and behind our rules: removing
    // them would expose it, so h3 keeps its chain and the run says why (exit 2).
    let d = await cli(['down', '-i', inv13, '--json'], {timeoutMs: 300_000})
    assert.equal(d.code, 2, show(d))
    const h3stop = byName(d, 'Instances stopped').find((t) => t.host === 'h3')!
    assert.match(h3stop.msg, new RegExp(`port ${port} is served by a redis-server not started from .*left running`))
    assert.match(byName(d, 'Firewall rules removed').find((t) => t.host === 'h3')!.msg, new RegExp(`port\\(s\\) ${port} still listening`))
    assert.match(await sh(h3, 'iptables -S'), /BAREMETAL-/, 'h3 keeps its rules while the foreign instance runs')
    assert.equal((await sh(h3, `kill -0 ${foreignPid} && ${BIN}/redis-cli -h ${h3.ip} -p ${port} PING`)).trim(), 'PONG', 'the foreign redis-server survives')
    await sh(h3, `kill ${foreignPid}; n=0; while kill -0 ${foreignPid} 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done`)
    foreignPid = ''
    d = await cli(['down', '-i', inv13, '--json'], {timeoutMs: 300_000})
    assert.equal(d.code, 0, show(d))
    assert.doesNotMatch(await sh(h3, 'iptables -S'), /BAREMETAL-/, 'its rules go once nothing listens')
  })
})
