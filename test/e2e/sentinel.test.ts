import assert from 'node:assert/strict'
import {appendFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {SentinelAcked} from './acked-sentinel.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild, sleep} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Issue 15, part A: redis_topology: sentinel on 3 hosts × 2 groups × 1 replica, 3 Sentinels
// on the data hosts. Group 0 (port 7400): master h1, replica h2; group 1 (7401): master
// h2, replica h3. Runs on 7.0.15 and on 5.0.3 (scripts/test.mjs, ON_503).

const PORT = 7400
const SPORT = 26379
const PW = 'sentinel-e2e-pw'
const DIR = '/root/redis_cluster'
const NAME = `redis-${PORT}`

let fleet: Fleet
let inv = ''
let build: Record<string, string> = {}
let BIN = ''
let foreignPid = ''

const base = {redis_topology: 'sentinel', redis_port_start: PORT, redis_sentinel_groups: 2, redis_replicas: 1, redis_password: PW, redis_sentinel_down_after_ms: 2000, redis_min_replicas_to_write: 1}

function layout(vars: Record<string, unknown> = {}, hosts?: TestHost[]): string {
  inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel.yml'), vars: {...base, ...vars, ...build}, ...(hosts ? {hosts} : {})})
  return inv
}

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(async () => {
  if (foreignPid && fleet) await fleet.nsExec(host('h3'), `kill ${foreignPid}`).catch(() => {})
  if (fleet) layout()
  await ops.tearDown(fleet, inv)
})

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const cliOn = (h: TestHost, port: number, cmd: string, pw = true) => sh(h, `${pw ? `REDISCLI_AUTH=${PW} ` : ''}${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)
const sentinels = () => fleet.hosts.map((h) => ({host: h.ip, port: SPORT}))
const nothingDeployed = async () => {
  for (const h of fleet.hosts) assert.equal((await sh(h, `[ -e ${DIR} ] && echo yes || echo no`)).trim(), 'no', `${h.name} has ${DIR}`)
}

async function kill9(h: TestHost, port: number): Promise<void> {
  await sh(h, `${ops.ALIVE}; P=$(cat ${DIR}/${port}/redis.pid); kill -KILL $P; n=0; while alive $P && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done`)
}

async function sentinelSays(name: string): Promise<string> {
  return (await cliOn(host('h3'), SPORT, `SENTINEL get-master-addr-by-name ${name}`, false)).trim().split('\n').join(':')
}

describe(`sentinel topology on Redis ${redisVersion()}: up, failover, re-run, drift, down`, () => {
  // Made once the fleet exists (the describe body runs before `before`).
  let g0: SentinelAcked
  let g1: SentinelAcked
  after(() => {
    g0?.close()
    g1?.close()
  })

  it('bad input: fewer than 3 Sentinels, a quorum above the Sentinel count, unplaceable replicas: exit 5, nothing on the hosts', async () => {
    const cases: Array<[Record<string, unknown>, TestHost[] | undefined, RegExp]> = [
      [{}, fleet.hosts.slice(0, 2), /2 Sentinel host\(s\): a Sentinel deployment needs at least 3/],
      [{redis_sentinel_quorum: 4}, undefined, /redis_sentinel_quorum is 4, but there are 3 Sentinel/],
      [{redis_replicas: 3}, undefined, /redis_replicas is 3: each group needs 4 instances on different hosts, and there are 3/],
    ]
    for (const [vars, hosts, msg] of cases) {
      layout(vars, hosts)
      const r = await up()
      assert.equal(r.code, 5, show(r))
      assert.match(r.stderr + r.stdout, msg)
    }
    await nothingDeployed()
  })

  it('up: 2 groups replicating, 3 Sentinels agreeing; a writer acknowledged by WAIT 1 through Sentinel discovery', async () => {
    layout()
    g0 = new SentinelAcked({sentinels: sentinels(), name: `${NAME}-${PORT}`, password: PW})
    g1 = new SentinelAcked({sentinels: sentinels(), name: `${NAME}-${PORT + 1}`, password: PW})
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.equal(await sentinelSays(`${NAME}-${PORT}`), `${host('h1').ip}:${PORT}`)
    assert.equal(await sentinelSays(`${NAME}-${PORT + 1}`), `${host('h2').ip}:${PORT + 1}`)
    assert.match(await cliOn(host('h3'), PORT + 1, 'ROLE'), new RegExp(`slave\\n${host('h2').ip.replace(/\./g, '\\.')}\\n${PORT + 1}`))
    const modes = await sh(host('h2'), `stat -c '%a %n' ${DIR}/${PORT}/redis.conf ${DIR}/${SPORT}/sentinel.conf`)
    assert.match(modes, /^600 .*redis\.conf\n600 .*sentinel\.conf/)
    assert.ok(!JSON.stringify(r.json).includes(PW), 'the password is never printed')
    // h1 runs group 0's master (7400) and a Sentinel, nothing on 7401: its rules guard exactly those, for the fleet.
    const rules = await sh(host('h1'), 'iptables -S')
    assert.match(rules, new RegExp(`-p tcp -m tcp --dport ${PORT} .*-j BAREMETAL-${NAME}`))
    assert.match(rules, new RegExp(`-p tcp -m tcp --dport ${SPORT} .*-j BAREMETAL-${NAME}`))
    assert.doesNotMatch(rules, new RegExp(`--dport ${PORT + 1} `))
    for (const h of fleet.hosts) assert.match(rules, new RegExp(`-A BAREMETAL-${NAME} -s ${h.ip}/32 .*-j ACCEPT`))
    await g0.writeKeys('base0', 200)
    await g1.writeKeys('base1', 200)
  })

  it('up twice: the second run changes nothing, and --check says so too', async () => {
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
    const c = await up('--check')
    assert.equal(c.code, 0, show(c))
    assert.deepEqual(
      changed(c).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
  })

  it("kill -9 group 0's master: the Sentinels promote its replica; up keeps the new master and brings the old one back as its replica; 0 acknowledged writes lost", async () => {
    const w = g0.background('during')
    await sleep(500)
    const t0 = Date.now()
    await kill9(host('h1'), PORT)
    // How long the Sentinels take to name (and ROLE-confirm) the replica, measured alongside.
    const promoted = (async () => {
      for (;;) {
        const m = await g0.master()
        if (m && m.host === host('h2').ip) return Date.now() - t0
        await sleep(100)
      }
    })()
    // up at once: it waits for the promotion instead of starting the old master as a master.
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.equal(await sentinelSays(`${NAME}-${PORT}`), `${host('h2').ip}:${PORT}`)
    assert.match(await cliOn(host('h1'), PORT, 'ROLE'), new RegExp(`^slave\\n${host('h2').ip.replace(/\./g, '\\.')}\\n${PORT}`))
    await sleep(1000)
    const s = await w.stop()
    console.log(`kill → promoted (down-after-milliseconds 2000): ${await promoted} ms`)
    console.log(`kill → up done: ${((Date.now() - t0) / 1000).toFixed(1)} s; writer: ${s.acked} acknowledged, ${s.failed} failed, longest gap ${s.maxGapMs} ms`)
    assert.ok(s.acked > 0)
    assert.ok((await g0.assertNoneLost()) >= 200)
    assert.ok((await g1.assertNoneLost()) >= 200)
    console.log(
      `the re-run after the failover changed: ${changed(r)
        .map((t) => `${t.host}: ${t.task}: ${t.msg}`)
        .join(' | ')}`,
    )
    const again = await up()
    assert.equal(again.code, 0, show(again))
    assert.equal(await sentinelSays(`${NAME}-${PORT}`), `${host('h2').ip}:${PORT}`, 'a re-run never moves the master back')
    assert.deepEqual(
      changed(again).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
      'healthy after the failover: nothing to change',
    )
  })

  it('drift: a dead replica, a dead Sentinel and an edited redis.conf are repaired', async () => {
    const h3 = host('h3')
    await kill9(h3, PORT + 1)
    await sh(h3, `${ops.ALIVE}; P=$(cat ${DIR}/${SPORT}/redis.pid); kill -KILL $P; while alive $P; do sleep 0.05; done`)
    const h1 = host('h1')
    await sh(h1, `sed -i 's/^min-replicas-max-lag .*/min-replicas-max-lag 99/' ${DIR}/${PORT}/redis.conf`)
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.match(await cliOn(h3, PORT + 1, 'ROLE'), /^slave/)
    assert.match(await cliOn(h3, SPORT, 'PING', false), /PONG/)
    assert.match(await sh(h1, `grep '^min-replicas-max-lag' ${DIR}/${PORT}/redis.conf`), /min-replicas-max-lag 10/)
    assert.match(await cliOn(h1, PORT, 'CONFIG GET min-replicas-max-lag'), /\n10/)
    assert.ok((await g0.assertNoneLost()) >= 200)
    assert.ok((await g1.assertNoneLost()) >= 200)
  })

  it('a third group: its instances start, the running Sentinels watch it (SENTINEL MONITOR live)', async () => {
    base.redis_sentinel_groups = 3
    layout()
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.equal(await sentinelSays(`${NAME}-${PORT + 2}`), `${host('h3').ip}:${PORT + 2}`)
    assert.match(await cliOn(host('h1'), PORT + 2, 'ROLE'), /^slave/)
    const again = await up()
    assert.deepEqual(
      changed(again).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
  })

  it('every Sentinel down and a master killed: up refuses (exit 2) and never starts the old master; after a manual promotion it follows the new one', async () => {
    const [h2, h3] = [host('h2'), host('h3')]
    for (const h of fleet.hosts) await sh(h, `${ops.ALIVE}; P=$(cat ${DIR}/${SPORT}/redis.pid); kill -KILL $P; while alive $P; do sleep 0.05; done`)
    await kill9(h2, PORT + 1)
    const r = await up('-e', 'redis_sentinel_wait_timeout=3')
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout + r.stderr, /no running master, only replicas/)
    assert.equal((await sh(h2, `ss -ltn | grep -c ':${PORT + 1} ' || true`)).trim(), '0', 'the old master was started')
    await cliOn(h3, PORT + 1, 'REPLICAOF NO ONE')
    const again = await up()
    assert.equal(again.code, 0, show(again))
    assert.equal(await sentinelSays(`${NAME}-${PORT + 1}`), `${h3.ip}:${PORT + 1}`)
    assert.match(await cliOn(h2, PORT + 1, 'ROLE'), new RegExp(`^slave\\n${h3.ip.replace(/\./g, '\\.')}\\n${PORT + 1}`))
    assert.ok((await g1.assertNoneLost()) >= 200)
    assert.ok((await g0.assertNoneLost()) >= 200)
  })

  it('down: nothing of ours left; a foreign redis-server on one of the ports survives', async () => {
    const h3 = host('h3')
    // h3 runs no member of group 0: a redis-server on its port there is not ours.
    await sh(
      h3,
      `mkdir -p /tmp/foreign && ${BIN}/redis-server --port ${PORT} --bind ${h3.ip} --protected-mode no --daemonize yes --dir /tmp/foreign --pidfile /tmp/foreign/redis.pid --logfile /tmp/foreign/log --save '' && sleep 0.5`,
    )
    foreignPid = (await sh(h3, 'cat /tmp/foreign/redis.pid')).trim()
    const r = await cli(['down', '-i', inv, '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    await nothingDeployed()
    for (const h of fleet.hosts) {
      const listening = await sh(h, `ss -ltn | awk '{print $4}' | grep -E ':(${PORT}|${PORT + 1}|${SPORT})$' || true`)
      assert.equal(listening.trim(), h.name === 'h3' ? `${h3.ip}:${PORT}` : '', `${h.name} still listens: ${listening}`)
      assert.equal((await sh(h, `iptables -S | grep -c 'BAREMETAL-${NAME}' || true`)).trim(), '0', `${h.name} keeps our rules`)
    }
    assert.equal((await sh(h3, `kill -0 ${foreignPid} && echo alive`)).trim(), 'alive')
    assert.match(await sh(h3, `${BIN}/redis-cli -h ${h3.ip} -p ${PORT} PING`), /PONG/)
  })

  it('a Sentinel group of its own: data on h1-h2, Sentinels on h1-h3 (h3 runs only a Sentinel); down removes all of it', async () => {
    const [h1, h2, h3] = [host('h1'), host('h2'), host('h3')]
    inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel.yml'), vars: {...base, redis_sentinel_groups: 1, ...build}, hosts: [h1, h2]})
    appendFileSync(inv, ['    sentinel:', '      hosts:', '        h1:', '        h2:', `        h3: {ansible_host: ${h3.ip}}`, ''].join('\n'))
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.equal(await sentinelSays(`${NAME}-${PORT}`), `${h1.ip}:${PORT}`)
    assert.equal((await cliOn(h3, SPORT, `SENTINEL master ${NAME}-${PORT}`, false)).match(/num-other-sentinels\n(\d+)/)?.[1], '2')
    assert.match(await sh(h1, 'iptables -S'), new RegExp(`-A BAREMETAL-${NAME} -s ${h3.ip}/32 .*-j ACCEPT`))
    const d = await cli(['down', '-i', inv, '--json'], {timeoutMs: 300_000})
    assert.equal(d.code, 0, show(d))
    await nothingDeployed()
    assert.equal((await sh(h3, `kill -0 ${foreignPid} && echo alive`)).trim(), 'alive')
  })
})
