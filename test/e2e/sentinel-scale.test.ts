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

// Issue 15, scaling a running Sentinel deployment: replicas 1 → 2 → 1, Sentinels 3 → 4 → 3,
// groups 2 → 1, --check/--diff first each time. Data and Sentinels on h1-h3 (h4 joins the
// Sentinels and leaves again), HAProxy on h4. Group 0 (7600): h1, h2 (+ h3 at 2 replicas);
// group 1 (7601): h2, h3 (+ h1). Writers acknowledged by WAIT 1 run through every change.

const PORT = 7600
const SPORT = 26379
const PW = 'sentinel-scale-e2e-pw'
const DIR = '/root/redis_cluster'
const NAME = `redis-${PORT}`
const G0 = `${NAME}-${PORT}`
const G1 = `${NAME}-${PORT + 1}`

let fleet: Fleet
let inv = ''
let build: Record<string, string> = {}
let BIN = ''

const base = {
  redis_topology: 'sentinel',
  redis_port_start: PORT,
  redis_sentinel_groups: 2,
  redis_replicas: 1,
  redis_password: PW,
  redis_sentinel_down_after_ms: 2000,
  redis_min_replicas_to_write: 1,
}
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!
let sentinelHosts = ['h1', 'h2', 'h3']

/** Data on h1-h3, the Sentinel group on `sentinels`, HAProxy on h4. */
function layout(vars: Record<string, unknown> = {}, sentinels = ['h1', 'h2', 'h3']): string {
  sentinelHosts = sentinels
  inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel-scale.yml'), vars: {...base, ...vars, ...build}, hosts: fleet.hosts.slice(0, 3)})
  const entry = (n: string) => (n === 'h4' ? `        h4: {ansible_host: ${host('h4').ip}}` : `        ${n}:`)
  appendFileSync(inv, ['    sentinel:', '      hosts:', ...sentinels.map(entry), '    haproxy:', '      hosts:', entry('h4'), ''].join('\n'))
  return inv
}

before(async () => {
  fleet = await createFleet(4)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(async () => {
  if (fleet) layout({redis_sentinel_groups: 2}, ['h1', 'h2', 'h3', 'h4'])
  await ops.tearDown(fleet, inv)
})

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const out = (r: CliResult) => r.stdout + r.stderr
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const rcli = (h: TestHost, port: number, cmd: string, pw = true) => sh(h, `${pw ? `REDISCLI_AUTH=${PW} ` : ''}${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)
const sentinels = () => sentinelHosts.map(host)
/** CONFIG SET on an instance a failover may be reconfiguring (it drops client connections then): retried. */
async function configSet(h: TestHost, port: number, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await fleet.nsExec(h, `REDISCLI_AUTH=${PW} ${BIN}/redis-cli -h ${h.ip} -p ${port} CONFIG SET ${what}`)
    if (r.code === 0 && /^OK/.test(r.stdout)) return
    assert.ok(i < 20, `${h.name}:${port} CONFIG SET ${what}: ${r.stdout}${r.stderr}`)
    await sleep(500)
  }
}

/** SENTINEL FAILOVER (asked again while a Sentinel refuses it: a failover just ended, replicas not ready) until `done` holds for the master it names. */
async function failover(name: string, done: (addr: string) => boolean): Promise<void> {
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline) {
    if (done(await says(host('h2'), name))) return
    await rcli(host('h2'), SPORT, `SENTINEL FAILOVER ${name}`, false)
    for (let i = 0; i < 20 && !done(await says(host('h2'), name)); i++) await sleep(500)
  }
  assert.fail(`${name}: the Sentinels never promoted the wanted member (now ${await says(host('h2'), name)})`)
}

/** One field of SENTINEL MASTER name, as each Sentinel of the group says it. */
async function masterField(name: string, field: string): Promise<string[]> {
  return Promise.all(
    sentinels().map(async (s) => {
      const lines = (await rcli(s, SPORT, `SENTINEL MASTER ${name}`, false)).trim().split('\n')
      return lines[lines.indexOf(field) + 1]
    }),
  )
}
const says = async (s: TestHost, name: string) => (await rcli(s, SPORT, `SENTINEL get-master-addr-by-name ${name}`, false)).trim().split('\n').join(':')
const running = async (h: TestHost, port: number) => (await sh(h, `[ -e ${DIR}/${port} ] && echo yes || echo no; ${BIN}/redis-cli -h ${h.ip} -p ${port} PING 2>&1 || true`)).trim()
const hapCfg = () => sh(host('h4'), `cat /root/.baremetal/haproxy/${NAME}/haproxy.cfg`)
const serversOf = (cfg: string, port: number) => new Set([...cfg.matchAll(new RegExp(`server \\S+ (\\d+\\.\\d+\\.\\d+\\.\\d+):${port}\\b`, 'g'))].map((m) => m[1]))

/** Until every Sentinel of the group lists `replicas` replicas and the others (SENTINEL RESET is what makes them forget). */
async function waitKnown(name: string, replicas: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  let last: string[] = []
  while (Date.now() < deadline) {
    const [r, o] = [await masterField(name, 'num-slaves'), await masterField(name, 'num-other-sentinels')]
    last = [...r, ...o]
    if (r.every((x) => Number(x) === replicas) && o.every((x) => Number(x) === sentinelHosts.length - 1)) return
    await sleep(500)
  }
  assert.fail(`${name}: Sentinels list num-slaves/num-other-sentinels ${last.join(',')}, want ${replicas}/${sentinelHosts.length - 1}`)
}

describe(`sentinel topology on Redis ${redisVersion()}: scaling replicas, Sentinels and groups with writers acknowledged by WAIT 1`, () => {
  let w0: SentinelAcked
  let w1: SentinelAcked
  const writers = () => {
    const ss = sentinels().map((h) => ({host: h.ip, port: SPORT}))
    w0 = new SentinelAcked({sentinels: ss, name: G0, password: PW})
    w1 = new SentinelAcked({sentinels: ss, name: G1, password: PW})
  }
  /** Both writers in the background during `fn`; then every acknowledged key reads back. */
  async function withWriters<T>(prefix: string, fn: () => Promise<T>): Promise<T> {
    const b0 = w0.background(`${prefix}0`)
    const b1 = w1.background(`${prefix}1`)
    await sleep(300)
    const res = await fn()
    const [s0, s1] = [await b0.stop(), await b1.stop()]
    console.log(`${prefix}: group 0 ${s0.acked} acknowledged (gap ${s0.maxGapMs} ms), group 1 ${s1.acked} (gap ${s1.maxGapMs} ms)`)
    assert.ok(s0.acked > 0 && s1.acked > 0, 'writes were acknowledged meanwhile')
    await w0.assertNoneLost()
    await w1.assertNoneLost()
    return res
  }
  after(() => {
    w0?.close()
    w1?.close()
  })

  it('up: 2 groups × 1 replica, 3 Sentinels, HAProxy on h4', async () => {
    layout()
    const r = await up()
    assert.equal(r.code, 0, show(r))
    writers()
    await w0.writeKeys('base0', 100)
    await w1.writeKeys('base1', 100)
  })

  it('redis_replicas 1 → 2: --check changes nothing; up starts the new replicas, synced, listed by every Sentinel, in HAProxy; 0 lost', async () => {
    layout({redis_replicas: 2})
    const c = await up('--check', '--diff')
    assert.equal(c.code, 0, show(c))
    assert.match(await running(host('h3'), PORT), /^no/)
    const r = await withWriters('rep2', () => up())
    assert.equal(r.code, 0, show(r))
    for (const [h, port] of [
      ['h3', PORT],
      ['h1', PORT + 1],
    ] as const) {
      assert.match(await rcli(host(h), port, 'ROLE'), /^slave\n[\d.]+\n\d+\nconnected/)
      assert.ok(Number(await rcli(host(h), port, 'DBSIZE')) >= 100)
    }
    await waitKnown(G0, 2, 1000)
    await waitKnown(G1, 2, 1000)
    const cfg = await hapCfg()
    assert.equal(serversOf(cfg, PORT).size, 3, cfg)
    assert.equal(serversOf(cfg, PORT + 1).size, 3, cfg)
  })

  it("redis_replicas 2 → 1 while group 1's master is the member that would go: refused, exit 5, nothing changed", async () => {
    // h1 is group 1's third member: make the Sentinels promote it (h3 never, by priority).
    const [h1, h3] = [host('h1'), host('h3')]
    await configSet(h3, PORT + 1, 'replica-priority 0')
    await failover(G1, (a) => a === `${h1.ip}:${PORT + 1}`)
    await configSet(h3, PORT + 1, 'replica-priority 100')
    assert.equal(await says(host('h2'), G1), `${h1.ip}:${PORT + 1}`)
    await waitKnown(G1, 2)
    layout({redis_replicas: 1})
    const r = await up()
    assert.equal(r.code, 5, show(r))
    assert.match(out(r), new RegExp(`${h1.ip.replace(/\./g, '\\.')}:${PORT + 1}, the current master of ${G1}.*baremetal failover`, 's'))
    assert.deepEqual(changed(r), [])
    assert.match(await running(h1, PORT + 1), /^yes\nPONG|^yes/)
    // Back to a master that stays (h2 or h3), for what follows.
    await configSet(h1, PORT + 1, 'replica-priority 100')
    await failover(G1, (a) => a !== `${h1.ip}:${PORT + 1}`)
    // Every Sentinel names the same new master and h1 follows it (what up's plan reads).
    let seen = ''
    for (let i = 0; i < 120; i++) {
      const all = await Promise.all(sentinels().map((x) => says(x, G1)))
      seen = `${all.join(',')} / h1: ${(await rcli(h1, PORT + 1, 'ROLE')).split('\n')[0]}`
      if (new Set(all).size === 1 && all[0] !== `${h1.ip}:${PORT + 1}` && /^slave/.test(seen.split('h1: ')[1])) break
      await sleep(500)
    }
    assert.doesNotMatch(seen, new RegExp(`^${h1.ip.replace(/\./g, '\\.')}|master$`), seen)
    await waitKnown(G1, 2)
  })

  it('redis_replicas 2 → 1: --check says which replicas go and changes nothing; up stops them, deletes their files, every Sentinel forgets them; 0 lost', async () => {
    layout({redis_replicas: 1})
    const c = await up('--check', '--diff')
    assert.equal(c.code, 0, show(c))
    assert.match(out(c), new RegExp(`replica ${host('h3').ip.replace(/\./g, '\\.')}:${PORT} of ${G0} removed`))
    assert.match(out(c), /would SENTINEL RESET/)
    assert.match(await running(host('h3'), PORT), /^yes/)
    const r = await withWriters('rep1', () => up())
    assert.equal(r.code, 0, show(r))
    assert.match(await running(host('h3'), PORT), /^no/)
    assert.match(await running(host('h1'), PORT + 1), /^no/)
    await waitKnown(G0, 1, 1000)
    await waitKnown(G1, 1, 1000)
    const cfg = await hapCfg()
    assert.equal(serversOf(cfg, PORT).size, 2, cfg)
    const again = await up()
    assert.deepEqual(
      changed(again).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
  })

  it("a fourth Sentinel (h4) after a failover: it watches every group's current master, the others know it; 0 lost", async () => {
    await failover(G0, (a) => a === `${host('h2').ip}:${PORT}`)
    await waitKnown(G0, 1)
    // The old master synced as the new one's replica (until then min-replicas-to-write refuses writes): the failover's gap is not the new Sentinel's.
    for (let i = 0; i < 120 && !/connected_slaves:1/.test(await rcli(host('h2'), PORT, 'INFO replication')); i++) await sleep(250)
    layout({}, ['h1', 'h2', 'h3', 'h4'])
    const r = await withWriters('s4', () => up())
    assert.equal(r.code, 0, show(r))
    for (const g of [G0, G1]) {
      assert.equal(await says(host('h4'), g), await says(host('h1'), g))
      await waitKnown(g, 1, 1000)
    }
    assert.equal(await says(host('h4'), G0), `${host('h2').ip}:${PORT}`)
  })

  it('Sentinels 4 → 3 (h1 leaves): --check changes nothing; up stops it, deletes its files, the others forget it; fewer than 3 refused; 0 lost', async () => {
    layout({}, ['h2', 'h3', 'h4'])
    const c = await up('--check')
    assert.equal(c.code, 0, show(c))
    assert.match(out(c), new RegExp(`Sentinel ${host('h1').ip.replace(/\./g, '\\.')}:${SPORT} removed`))
    assert.match(await running(host('h1'), SPORT), /^yes/)
    const r = await withWriters('s3', () => up())
    assert.equal(r.code, 0, show(r))
    assert.match(await running(host('h1'), SPORT), /^no/)
    for (const g of [G0, G1]) await waitKnown(g, 1, 1000)
    layout({}, ['h2', 'h3'])
    const few = await up()
    assert.equal(few.code, 5, show(few))
    assert.deepEqual(changed(few), [])
    layout({}, ['h2', 'h3', 'h4'])
  })

  it('redis_sentinel_groups 2 → 1: refused while the group holds keys (exit 5, nothing changed); --allow-data-loss removes it everywhere', async () => {
    layout({redis_sentinel_groups: 1}, ['h2', 'h3', 'h4'])
    const r = await up()
    assert.equal(r.code, 5, show(r))
    assert.match(out(r), new RegExp(`removes ${G1} \\(\\d+ keys\\).*--allow-data-loss`, 's'))
    assert.deepEqual(changed(r), [])
    const c = await up('--check', '--allow-data-loss')
    assert.equal(c.code, 0, show(c))
    assert.match(out(c), new RegExp(`would SENTINEL REMOVE ${G1}`))
    const d = await up('--allow-data-loss')
    assert.equal(d.code, 0, show(d))
    for (const s of sentinels()) assert.doesNotMatch(await rcli(s, SPORT, 'SENTINEL MASTERS', false), new RegExp(G1))
    for (const h of ['h1', 'h2', 'h3']) assert.match(await running(host(h), PORT + 1), /^no/)
    const cfg = await hapCfg()
    assert.equal(serversOf(cfg, PORT + 1).size, 0, cfg)
    for (const h of fleet.hosts) assert.doesNotMatch(await sh(h, 'iptables -S'), new RegExp(`--dport ${PORT + 1} `), h.name)
    await w0.assertNoneLost()
    const again = await up()
    assert.deepEqual(
      changed(again).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
  })

  it("down from an inventory that no longer lists h4's Sentinel: it is stopped too, nothing of ours left", async () => {
    layout({redis_sentinel_groups: 1}, ['h1', 'h2', 'h3'])
    const r = await cli(['down', '-i', inv, '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    for (const h of fleet.hosts) {
      assert.equal((await sh(h, `[ -e ${DIR} ] && echo yes || echo no`)).trim(), 'no', `${h.name} has ${DIR}`)
      assert.equal((await sh(h, `iptables -S | grep -c 'BAREMETAL-${NAME}' || true`)).trim(), '0', `${h.name} keeps our rules`)
    }
    assert.match(await running(host('h4'), SPORT), /^no/)
  })
})
