import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, loadFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

// The lifecycle end to end, on ONE fleet of 3 hosts (Redis from the build the fault
// suites share; `down` keeps it): up → up (nothing changes) → drift repaired by one up each → changed
// variables (live, then by a rolling restart) → a host's new address → down → down → up.
// Every repair is checked against the cluster (same node ids, same shards), and no key
// acknowledged by WAIT is lost (appendonly yes, 1 replica per master).

const PORT = 7000
const COUNT = 4
const VARS = {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, redis_appendonly: true, redis_cluster_node_timeout: 5000}

let fleet: Fleet
let inv: string
let build: Record<string, string> = {}
let BIN = ''

function layout(): void {
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars: {...VARS, ...build}})
}

// BM_LIFECYCLE_FLEET=name reuses a fleet of 3 made with `npm run hosts -- up 3 --name name`
// (its Redis build saves minutes when working on this file); it is taken down, not destroyed.
const reuse = process.env.BM_LIFECYCLE_FLEET

before(async () => {
  fleet = reuse ? await loadFleet(reuse) : await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
  layout()
  if (reuse) await cli(['down', '-i', inv], {timeoutMs: 120_000})
})

after(async () => {
  if (fleet) {
    await cli(['down', '-i', inv], {timeoutMs: 120_000}).catch(() => {})
    if (!reuse) await fleet.destroy()
  }
})

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args], {timeoutMs: 900_000})
const upJson = (...args: string[]) => up(...args, '--json')
const down = (...args: string[]) => cli(['down', '-i', inv, ...args], {timeoutMs: 300_000})
const tasks = (r: CliResult) => r.json.tasks as ops.Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const byName = (r: CliResult, name: string) => tasks(r).filter((t) => t.task === name)
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const killPorts = (h: TestHost, ports: number[], signal: 'KILL' | 'TERM') => ops.killPorts(fleet, h, ports, signal)
const pids = (h: TestHost) => ops.pids(fleet, h)
const status = () => ops.status(inv)
const waitClusterOk = () => ops.waitClusterOk(inv, 60_000)
const {shards} = ops
const allPorts = Array.from({length: COUNT}, (_, i) => PORT + i)

// What --check must leave exactly as it was: every file name, the managed files by hash
// (nodes.conf is Redis' own, rewritten on any cluster event), live pids, firewall, home.
async function hostState(h: TestHost): Promise<string> {
  return sh(
    h,
    [
      ops.ALIVE,
      'cd /root; ls -1A',
      // Redis' own data files (a BGSAVE for a replica's resync, AOF rewrites) come and go by themselves.
      "find redis_cluster 2>/dev/null | grep -v -e appendonlydir/ -e '/temp-' -e '/dump.rdb$' | sort",
      'find redis_cluster -maxdepth 2 -type f \\( -name redis.conf -o -name redis.conf.applied -o -name redis.pid \\) 2>/dev/null | sort | xargs -r sha256sum',
      'for f in redis_cluster/*/redis.pid; do [ -f "$f" ] && p=$(cat "$f") && alive "$p" && echo "alive $f $p"; done',
      'iptables -S | sort',
      'true',
    ].join('\n'),
  )
}
const fleetState = () => Promise.all(fleet.hosts.map(hostState))

const mastersPerHost = (r: ops.Report) => Object.fromEntries(fleet.hosts.map((h) => [h.name, r.masters.filter((m) => m.host === h.name).length]))

// Every key counts once WAIT 1 says a replica has it too. The seeds are asked again for
// each client: a test moves h3 to a new address.
const acked = new AckedKeys({seeds: () => fleet.hosts.map((h) => ({host: h.ip, port: PORT})), replicas: 1})

// up --check: reports, and the hosts are byte for byte as before.
async function checkChangesNothing(...args: string[]): Promise<CliResult> {
  const before = await fleetState()
  const r = await upJson('--check', ...args)
  assert.ok(r.code === 0, show(r))
  assert.deepEqual(await fleetState(), before, 'up --check changed a host')
  return r
}

describe('lifecycle: up, re-run, drift repair, changed variables, new address, down', () => {
  let shardsAtStart: Record<string, string>

  it('up --check on a fresh fleet: reports the whole deployment, changes nothing', async () => {
    const r = await checkChangesNothing()
    const would = changed(r).map((t) => `${t.task} ${t.host}`)
    for (const h of fleet.hosts) {
      assert.ok(would.includes(`Instances running ${h.name}`), would.join('; '))
      assert.ok(would.includes(`Instance configuration (redis.conf) ${h.name}`), would.join('; '))
    }
    assert.match(byName(r, 'Cluster formed')[0].msg, /would/)
  })

  it('up forms the cluster', async () => {
    const r = await upJson()
    assert.equal(r.code, 0, show(r))
    assert.equal(byName(r, 'Cluster formed')[0]?.status, 'changed')
    const s = await waitClusterOk()
    assert.equal(s.masters.length, 6)
    assert.equal(s.replicas.length, 6)
    shardsAtStart = shards(s)
    await acked.writeKeys('base', 300)
  })

  it('re-run on a healthy cluster: every task ok, changed = 0, said in one line; no file, pid or firewall touched', async () => {
    const before = await fleetState()
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /^ {2}3 host\(s\): no changes — everything already as declared \(\d+\.\ds\)$/m)
    assert.doesNotMatch(r.stdout, /^\s+changed\s/m)
    assert.deepEqual(await fleetState(), before)
    const j = await upJson()
    for (const [h, rc] of Object.entries(j.json.recap as Record<string, {changed: number; failed: number}>)) assert.deepEqual([h, rc.changed, rc.failed], [h, 0, 0])
    assert.equal(byName(j, 'Cluster formed')[0].data?.commands, 0, 'no cluster command that changes state')
  })

  it('up --check on a healthy cluster: nothing would change, nothing changed', async () => {
    const r = await checkChangesNothing()
    assert.deepEqual(changed(r), [])
  })

  it('drift: instances killed by PID on one host → only those restarted, same ids and shards', async () => {
    const h1 = host('h1')
    const before = await pids(h1)
    await killPorts(h1, [PORT, PORT + 1], 'KILL')
    // A killed master is first handed to its replica (it restarts as one): that task may
    // change too, nothing else.
    const FAILOVER = 'Dead masters failed over before they restart'
    const check = await checkChangesNothing()
    assert.deepEqual(
      changed(check)
        .filter((t) => t.task !== FAILOVER)
        .map((t) => [t.task, t.host, t.msg]),
      [['Instances running', 'h1', `would start 2 (${PORT}-${PORT + 1})`]],
    )
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, new RegExp(`changed: Instances running on h1 — started 2 \\(${PORT}-${PORT + 1}\\), 2 already running`))
    // The killed masters' shards went to replicas on other hosts (the failover task, or
    // Redis itself before up ran): the cluster step hands them back to h1, 2 masters a host.
    const failedOver = r.stdout.includes(`changed: ${FAILOVER} on h1`)
    const restored = /changed: Cluster formed on h1 — masters rebalanced across hosts: \d failover\(s\)/.test(r.stdout)
    assert.match(r.stdout, new RegExp(`3 host\\(s\\), [\\d.]+s: ok=\\d+ changed=${1 + Number(failedOver) + Number(restored)} failed=0`))
    const after = (await pids(h1)).split('\n')
    const was = before.split('\n')
    assert.deepEqual(after.slice(2), was.slice(2), 'the untouched instances keep their pid')
    assert.notDeepEqual(after.slice(0, 2), was.slice(0, 2))
    const s = await waitClusterOk()
    assert.deepEqual(shards(s), shardsAtStart)
    assert.deepEqual(mastersPerHost(s), {h1: 2, h2: 2, h3: 2})
    await acked.assertNoneLost()
  })

  it('drift: every daemon of one host stopped, cluster failed over → up restarts them; they rejoin; no acknowledged key lost', async () => {
    // The host with the fewest masters: the others keep a majority of masters, which a
    // failover needs (earlier failovers may have gathered masters on one host).
    const s0 = await status()
    const perHost = fleet.hosts.map((h) => ({h, n: s0.masters.filter((m) => m.host === h.name).length})).sort((a, b) => a.n - b.n)
    const h2 = perHost[0].h
    const w = acked.background('hostdown')
    await new Promise((r) => setTimeout(r, 500))
    await killPorts(h2, allPorts, 'TERM')
    await new Promise((r) => setTimeout(r, 9000)) // > cluster-node-timeout: replicas take over
    // On a slow machine Redis may not have promoted them all yet: the failover task does.
    const FAILOVER = 'Dead masters failed over before they restart'
    const check = await checkChangesNothing()
    assert.deepEqual(
      changed(check)
        .filter((t) => t.task !== FAILOVER)
        .map((t) => [t.task, t.host]),
      [['Instances running', h2.name]],
    )
    const r = await upJson()
    assert.equal(r.code, 0, show(r))
    // Its masters are replicas now: the cluster step hands 2 back to it (one at a time, in sync).
    const c = changed(r).filter((t) => t.task !== FAILOVER)
    assert.deepEqual(
      c.map((t) => [t.task, t.host]),
      [
        ['Instances running', h2.name],
        ['Cluster formed', 'h1'],
      ],
    )
    assert.equal(c[0].msg, `started ${COUNT} (${PORT}-${PORT + COUNT - 1})`)
    assert.match(c[1].msg, /^masters rebalanced across hosts: 2 failover\(s\) \(.*\); masters per host were .*, now h1 2, h2 2, h3 2$/)
    const s = await waitClusterOk()
    assert.deepEqual(mastersPerHost(s), {h1: 2, h2: 2, h3: 2})
    assert.ok((await w.stop()).acked > 0, 'the writer got acknowledged writes through')
    assert.deepEqual(shards(s), shardsAtStart)
    await acked.assertNoneLost()
  })

  it('drift: a hand-edited redis.conf is rewritten (--diff shows it), nothing else', async () => {
    const h3 = host('h3')
    const file = `/root/redis_cluster/${PORT + 1}/redis.conf`
    await sh(h3, `echo 'maxmemory-policy allkeys-lru' >> ${file}`)
    const check = await checkChangesNothing('--diff')
    assert.deepEqual(
      changed(check).map((t) => [t.task, t.host]),
      [['Instance configuration (redis.conf)', 'h3']],
    )
    const pidsBefore = await pids(h3)
    const r = await upJson('--diff')
    assert.equal(r.code, 0, show(r))
    const c = changed(r)
    assert.deepEqual(
      c.map((t) => [t.task, t.host]),
      [['Instance configuration (redis.conf)', 'h3']],
    )
    assert.equal(c[0].diff?.length, 1)
    assert.equal(c[0].diff![0].path, file)
    assert.match(c[0].diff![0].before, /maxmemory-policy allkeys-lru/)
    assert.doesNotMatch(c[0].diff![0].after, /allkeys-lru/)
    assert.equal(await pids(h3), pidsBefore, 'the running instance never used the edit: no restart')
    const text = await up('--diff', '--check')
    assert.match(text.stdout, /no changes would be made/)
  })

  it('drift: a deleted firewall rule is restored, only on that host', async () => {
    const h1 = host('h1')
    const before = await sh(h1, 'iptables -S | sort')
    const rule = (await sh(h1, 'iptables -S BAREMETAL-redis-7000')).split('\n').find((l) => / -s \S+ .*-j ACCEPT/.test(l) && !l.includes('-i lo'))
    assert.ok(rule, 'a source rule to delete')
    await sh(h1, `iptables ${rule!.replace(/^-A /, '-D ')}`)
    await checkChangesNothing()
    const r = await upJson()
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((t) => [t.task, t.host]),
      [['Firewall open to the fleet only (data and bus ports)', 'h1']],
    )
    assert.match(changed(r)[0].msg, /1 rule\(s\) added/)
    assert.equal(await sh(h1, 'iptables -S | sort'), before)
  })

  it('changed variable settable live (maxmemory): CONFIG SET on every instance, no restart', async () => {
    const before = await Promise.all(fleet.hosts.map(pids))
    const check = await checkChangesNothing('-e', 'redis_maxmemory=64mb')
    assert.match(byName(check, 'Instances use the current configuration')[0].msg, /would CONFIG SET maxmemory \(default\) → 64mb on 12 instance/)
    const r = await upJson('-e', 'redis_maxmemory=64mb')
    assert.equal(r.code, 0, show(r))
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.equal(cfg.status, 'changed', cfg.msg)
    assert.match(cfg.msg, /changed live: CONFIG SET maxmemory \(default\) → 64mb on 12 instance\(s\): h1 7000-7003, h2 7000-7003, h3 7000-7003/)
    assert.equal(cfg.data?.live.length, 12)
    assert.deepEqual(cfg.data?.restart, [])
    assert.deepEqual(await Promise.all(fleet.hosts.map(pids)), before, 'no instance restarted')
    for (const h of fleet.hosts) {
      const out = await sh(h, `for p in $(seq ${PORT} ${PORT + COUNT - 1}); do ${BIN}/redis-cli -h ${h.ip} -p $p CONFIG GET maxmemory | tail -n 1; done`)
      assert.deepEqual(out.trim().split('\n'), Array(COUNT).fill('67108864'))
    }
    const again = await upJson('-e', 'redis_maxmemory=64mb')
    assert.deepEqual(changed(again), [], 'applied once, then nothing to do')
  })

  it('changed directive that needs a restart (tcp-backlog): rolling restart, replicas first, masters after a manual failover; no acknowledged key lost', async () => {
    const vars = ['-e', 'redis_maxmemory=64mb', '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']})]
    const before = await Promise.all(fleet.hosts.map(pids))
    const check = await checkChangesNothing(...vars)
    assert.match(
      byName(check, 'Instances use the current configuration')[0].msg,
      /would restart for tcp-backlog \(default\) → 200 on 12 instance\(s\)[^]*CLUSTER FAILOVER before restarting 6 master\(s\)/,
    )
    const w = acked.background('rolling')
    const r = await upJson(...vars)
    const written = (await w.stop()).acked
    assert.equal(r.code, 0, show(r))
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.match(cfg.msg, /restarted for tcp-backlog \(default\) → 200 on 12 instance\(s\)/)
    assert.match(cfg.msg, /restarted 12 instance\(s\) one at a time per shard, replicas first; 6 master\(s\) handed over first by CLUSTER FAILOVER/)
    assert.equal(cfg.data?.failovers.length, 6)
    // Per shard: the replica's restart comes before the failover, the old master's after it.
    for (const shard of cfg.data?.rolling as Array<Array<{kind: string}>>)
      assert.deepEqual(
        shard.map((s) => s.kind),
        ['restart', 'failover', 'restart'],
      )
    const after = await Promise.all(fleet.hosts.map(pids))
    after.forEach((p, i) =>
      p
        .split('\n')
        .filter(Boolean)
        .forEach((pid, j) => assert.notEqual(pid, before[i].split('\n')[j], `${fleet.hosts[i].name}: every instance restarted`)),
    )
    const s = await waitClusterOk()
    assert.deepEqual(shards(s), shardsAtStart)
    assert.ok(written > 0, 'the writer got acknowledged writes through the restarts')
    await acked.assertNoneLost()
    const recap = await up(...vars)
    assert.match(recap.stdout, /no changes — everything already as declared/)
  })

  it('a host whose address changed: its nodes keep their ids and slots and the cluster accepts them', async () => {
    const vars = ['-e', 'redis_maxmemory=64mb', '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']})]
    const s0 = await status()
    const h3 = host('h3')
    const oldIp = h3.ip
    const ids = [...s0.masters, ...s0.replicas]
      .filter((n) => n.addr.startsWith(`${oldIp}:`))
      .map((n) => `${n.id} ${n.addr.split(':')[1]}`)
      .sort()
    assert.equal(ids.length, COUNT)
    // The machine goes down, comes back with another address.
    await killPorts(h3, allPorts, 'TERM')
    const newIp = oldIp.replace(/\.\d+$/, (m) => `.${Number(m.slice(1)) < 128 ? Number(m.slice(1)) + 100 : Number(m.slice(1)) - 100}`)
    const moved = await fleet.readdress(h3, newIp)
    layout()
    const r = await upJson(...vars)
    assert.equal(r.code, 0, show(r))
    const started = byName(r, 'Instances running').find((t) => t.host === 'h3')!
    assert.match(started.msg, new RegExp(`started ${COUNT} .*own address in nodes.conf updated on ${COUNT} \\(${oldIp.replace(/\./g, '\\.')} -> ${newIp.replace(/\./g, '\\.')}\\)`))
    const s = await waitClusterOk()
    const nowIds = [...s.masters, ...s.replicas]
      .filter((n) => n.addr.startsWith(`${moved.ip}:`))
      .map((n) => `${n.id} ${n.addr.split(':')[1]}`)
      .sort()
    assert.deepEqual(nowIds, ids, 'same node ids at the new address')
    assert.deepEqual(shards(s), shardsAtStart)
    // Every node, the moved ones included, names the new address, none the old.
    for (const h of fleet.hosts) {
      const nodes = await sh(h, `${BIN}/redis-cli -h ${h.ip} -p ${PORT} CLUSTER NODES`)
      assert.doesNotMatch(nodes, new RegExp(`${oldIp.replace(/\./g, '\\.')}:`), `${h.name} still knows the old address`)
      assert.equal(nodes.split('\n').filter((l) => l.includes(` ${newIp}:`)).length, COUNT)
    }
    await acked.assertNoneLost()
    // Converged: the next runs change nothing more (a stale firewall source may go in one more run).
    let again = await upJson(...vars)
    if (changed(again).length) again = await upJson(...vars)
    assert.deepEqual(
      changed(again).map((t) => [t.task, t.host, t.msg]),
      [],
    )
  })

  it('down --check lists what would be stopped and removed, and changes nothing', async () => {
    const before = await fleetState()
    const r = await down('--check', '--json')
    assert.equal(r.code, 0, show(r))
    const stopped = byName(r, 'Instances stopped')
    assert.equal(stopped.length, 3)
    for (const t of stopped) assert.equal(t.msg, `would stop ${COUNT} (${PORT}-${PORT + COUNT - 1}), would remove ${COUNT} port dir(s)`)
    assert.deepEqual(
      byName(r, 'Firewall rules removed').map((t) => t.status),
      ['changed', 'changed', 'changed'],
    )
    assert.deepEqual(await fleetState(), before)
  })

  it('down stops only what baremetal started (a foreign redis-server survives), twice without error; up forms a fresh cluster', async () => {
    const h1 = host('h1')
    // Someone else's redis-server on the same host, from the same binary.
    await sh(
      h1,
      `mkdir -p /tmp/foreign && ${BIN}/redis-server --port 7100 --bind ${h1.ip} --protected-mode no --daemonize yes --dir /tmp/foreign --pidfile /tmp/foreign/redis.pid --logfile /tmp/foreign/log --save '' && sleep 0.5`,
    )
    const foreignPid = (await sh(h1, 'cat /tmp/foreign/redis.pid')).trim()

    const r = await down('--json')
    assert.equal(r.code, 0, show(r))
    for (const t of byName(r, 'Instances stopped')) assert.match(t.msg, new RegExp(`stopped ${COUNT} \\(${PORT}-${PORT + COUNT - 1}\\), removed ${COUNT} port dir\\(s\\)`))
    for (const h of fleet.hosts) {
      const left = await sh(h, `ls -1A /root; iptables -S | grep -c BAREMETAL || true; ls ${BIN}/redis-server`)
      assert.doesNotMatch(left, /redis_cluster/, `${h.name}: instance directories removed`)
      assert.match(left, /^0$/m, `${h.name}: our firewall rules removed`)
      assert.ok(left.includes(`${BIN}/redis-server`), `${h.name}: the build is kept`)
    }
    assert.equal((await sh(h1, `kill -0 ${foreignPid} && ${BIN}/redis-cli -h ${h1.ip} -p 7100 PING`)).trim(), 'PONG', 'the foreign redis-server survives')

    const again = await down('--json')
    assert.equal(again.code, 0, show(again))
    assert.deepEqual(changed(again), [])

    // A fresh cluster: no key of the old one is expected back.
    acked.acked.clear()
    const fresh = await upJson()
    assert.equal(fresh.code, 0, show(fresh))
    const cl = byName(fresh, 'Cluster formed')[0]
    assert.equal(cl.status, 'changed')
    assert.match(cl.msg, /^formed 6 masters/)
    const s = await waitClusterOk()
    assert.notDeepEqual(shards(s), shardsAtStart, 'new node ids: a fresh cluster')
    const c = acked.client()
    try {
      assert.equal(await c.get('base:1'), null, 'no key of the old cluster')
    } finally {
      c.disconnect()
    }
    assert.equal((await sh(h1, `${BIN}/redis-cli -h ${h1.ip} -p 7100 PING`)).trim(), 'PONG')
    await sh(h1, `kill ${foreignPid}`)
  })

  it("down --keep-data keeps each instance's directory; up restarts the same cluster from it; down --purge removes the build", async () => {
    const before = shards(await waitClusterOk())
    let r = await down('--keep-data', '--json')
    assert.equal(r.code, 0, show(r))
    for (const t of byName(r, 'Instances stopped')) assert.match(t.msg, new RegExp(`^stopped ${COUNT} \\(${PORT}-${PORT + COUNT - 1}\\)$`))
    for (const h of fleet.hosts) {
      const left = await sh(h, `${ops.ALIVE}; cd /root; ls redis_cluster/${PORT}; for f in redis_cluster/*/redis.pid; do [ -f "$f" ] && alive $(cat $f) && echo "alive $f"; done; true`)
      assert.match(left, /nodes\.conf/, `${h.name}: nodes.conf kept`)
      assert.match(left, /redis\.conf/)
      assert.doesNotMatch(left, /alive/, `${h.name}: every instance stopped`)
    }
    r = await upJson()
    assert.equal(r.code, 0, show(r))
    assert.notEqual(byName(r, 'Cluster formed')[0].status, 'failed')
    assert.deepEqual(shards(await waitClusterOk()), before, 'the same nodes, slots and shards')

    // --purge on a build of its own (the shared one serves other suites): a copy on h1.
    r = await down()
    assert.equal(r.code, 0, show(r))
    const h1 = host('h1')
    await sh(h1, `mkdir -p /root/own && cp -a ${BIN} /root/own/bin && mkdir -p /root/own/src && touch /root/own/src/Makefile`)
    r = await down('--purge', '--json', '-e', 'redis_bin_dir=/root/own/bin', '-e', 'redis_src_dir=/root/own/src')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      byName(r, 'Build removed (--purge)')
        .filter((t) => t.status === 'changed')
        .map((t) => t.host),
      ['h1'],
    )
    assert.doesNotMatch(await sh(h1, 'ls -1A /root/own'), /bin|src/)
    assert.match(await sh(h1, `ls ${BIN}`), /redis-server/, 'the build down did not name is untouched')
  })
})
