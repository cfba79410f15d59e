import assert from 'node:assert/strict'
import {appendFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {errorKind} from './acked.js'
import {writeEach} from './acked-sentinel.js'
import {cli, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild, sleep} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Issue 15, the whole topology: 3 data hosts × 2 groups × 1 replica, 3 Sentinels on the
// data hosts, HAProxy on a fourth host deployed by up itself. Group 0 (7500): master h1,
// replica h2; group 1 (7501): master h2, replica h3. HAProxy's write ports on h4: 7500, 7501.
// Runs on 7.0.15 and on 5.0.3 (scripts/test.mjs, ON_503).

const PORT = 7500
const SPORT = 26379
const PW = 'sentinel-haproxy-e2e-pw'
const DIR = '/root/redis_cluster'
const NAME = `redis-${PORT}`
const DOWN_AFTER = 2000

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
  redis_sentinel_down_after_ms: DOWN_AFTER,
  redis_min_replicas_to_write: 1,
}
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!

/** Data (and Sentinels) on h1-h3, the haproxy group on `hap` (default h4). */
function layout(vars: Record<string, unknown> = {}, hap = ['h4']): string {
  inv = fleet.writeInventory({path: join(fleet.dir, 'sentinel-haproxy.yml'), vars: {...base, ...vars, ...build}, hosts: fleet.hosts.slice(0, 3)})
  appendFileSync(inv, ['    haproxy:', '      hosts:', ...hap.map((n) => (n === 'h4' ? `        h4: {ansible_host: ${host('h4').ip}}` : `        ${n}:`)), ''].join('\n'))
  return inv
}

before(async () => {
  fleet = await createFleet(4)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(async () => {
  if (fleet) layout()
  await ops.tearDown(fleet, inv)
})

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 600_000})
const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const cliOn = (h: TestHost, port: number, cmd: string, pw = true) => sh(h, `${pw ? `REDISCLI_AUTH=${PW} ` : ''}${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)
const sentinelSays = async (name: string) => (await cliOn(host('h3'), SPORT, `SENTINEL get-master-addr-by-name ${name}`, false)).trim().split('\n').join(':')

interface HapGroup {
  name: string
  health: string
  master: string | null
  reasons: string[]
  haproxy?: {writeTo: string | null; agree: boolean; hosts: Array<{host: string; via?: string; error?: string; writeTo: string | null}>}
}
/** status --json (and its text) polled until `done` holds of the groups (or 20 s pass): HAProxy's checks settle within a second or two. */
async function statusUntil(done: (gs: HapGroup[]) => boolean): Promise<{json: CliResult; text: CliResult; groups: HapGroup[]}> {
  let st: CliResult | undefined
  for (let i = 0; i < 40; i++) {
    st = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
    if (st.json?.groups && done(st.json.groups as HapGroup[])) break
    await sleep(500)
  }
  const text = await cli(['status', '-i', inv], {timeoutMs: 60_000})
  for (const r of [st!, text]) assert.ok(!(r.stdout + r.stderr).includes(PW), 'the password is never printed')
  return {json: st!, text, groups: (st!.json?.groups ?? []) as HapGroup[]}
}
const hapOf = (gs: HapGroup[], port: number) => gs.find((g) => g.name === `${NAME}-${port}`)?.haproxy

/** Nothing of this deployment on any host: no directory, no rules, no HAProxy of ours. */
async function nothingOfOurs(): Promise<void> {
  for (const h of fleet.hosts) {
    assert.equal((await sh(h, `[ -e ${DIR} ] && echo yes || echo no`)).trim(), 'no', `${h.name} has ${DIR}`)
    assert.equal((await sh(h, '[ -e /root/.baremetal/haproxy ] && echo yes || echo no')).trim(), 'no', `${h.name} has HAProxy files`)
    assert.equal((await sh(h, `iptables -S | grep -c 'BAREMETAL-${NAME}' || true`)).trim(), '0', `${h.name} keeps our rules`)
  }
  // A haproxy whose command line names our config, in h4's network namespace (the PID namespace is shared).
  const ours = await sh(
    host('h4'),
    `for p in $(ls /proc | grep -E '^[0-9]+$'); do [ /proc/$p/ns/net -ef /proc/$$/ns/net ] 2>/dev/null && case "$(readlink /proc/$p/exe 2>/dev/null)" in */haproxy) tr '\\0' ' ' < /proc/$p/cmdline | grep -q '/.baremetal/haproxy/' && echo $p;; esac; done; true`,
  )
  assert.equal(ours.trim(), '', `HAProxy of ours still runs on h4: ${ours}`)
}

/** A writer through one fixed address (HAProxy's write port): SET + WAIT 1, counted only when acknowledged. */
class ViaAcked {
  readonly acked = new Map<string, string>()
  /** When each acknowledged write started. */
  readonly ackedAt: number[] = []
  /** When each write that a master answered (acknowledged, or refused for want of a replica) started. */
  readonly masterAt: number[] = []
  private conn: Redis | undefined
  constructor(private readonly addr: {host: string; port: number}) {}

  async attempt(key: string, value: string): Promise<true | string> {
    const started = Date.now()
    try {
      if (this.conn?.status !== 'ready') {
        this.conn?.disconnect()
        this.conn = new Redis({
          ...this.addr,
          password: PW,
          connectTimeout: 2000,
          commandTimeout: 3000,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
          lazyConnect: true,
        })
        this.conn.on('error', () => {})
        await this.conn.connect()
      }
      const res = await this.conn.pipeline().set(key, value).call('WAIT', '1', '2000').exec()
      const err = res?.[0][0] ?? res?.[1][0]
      if (err && /^NOREPLICAS/.test(String((err as Error).message))) this.masterAt.push(started)
      if (err) throw err
      this.masterAt.push(started)
      if (Number(res?.[1][1]) < 1) return 'NOT_REPLICATED'
      this.acked.set(key, value)
      this.ackedAt.push(started)
      return true
    } catch (error) {
      this.conn?.disconnect()
      return errorKind(error)
    }
  }

  writeKeys(prefix: string, n: number): Promise<void> {
    return writeEach((k, v) => this.attempt(k, v), prefix, n, {retryMs: 200, what: ' through HAProxy'})
  }

  background(prefix: string): {stop(): Promise<{acked: number; failed: Record<string, number>}>} {
    let running = true
    let acked = 0
    const failed: Record<string, number> = {}
    const loop = (async () => {
      for (let i = 0; running; i++) {
        const r = await this.attempt(`${prefix}:${i}`, `w${i}`)
        if (r === true) acked++
        else {
          failed[r] = (failed[r] ?? 0) + 1
          await sleep(20)
        }
      }
    })()
    return {
      async stop() {
        running = false
        await loop
        return {acked, failed}
      },
    }
  }

  /** Every acknowledged key reads back through HAProxy (the current master). */
  async assertNoneLost(): Promise<number> {
    const c = new Redis({...this.addr, password: PW, lazyConnect: true, maxRetriesPerRequest: 1})
    c.on('error', () => {})
    await c.connect()
    const keys = [...this.acked.keys()]
    const missing: string[] = []
    for (let i = 0; i < keys.length; i += 100) {
      const vals = await c.mget(...keys.slice(i, i + 100))
      vals.forEach((v, j) => {
        if (v !== this.acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${String(v)}`)
      })
    }
    c.disconnect()
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
    return keys.length
  }

  close(): void {
    this.conn?.disconnect()
  }
}

describe(`sentinel topology with HAProxy on Redis ${redisVersion()}: up, failover through HAProxy, re-run, load, status, down`, () => {
  let w0: ViaAcked
  let w1: ViaAcked
  after(() => {
    w0?.close()
    w1?.close()
  })

  it('bad input: a HAProxy port on a data port of the same host (exit 5), a haproxy package that cannot be installed (exit 2); no host changed', async () => {
    layout({}, ['h1'])
    const clash = await up()
    assert.equal(clash.code, 5, show(clash))
    assert.match(clash.stderr + clash.stdout, /redis_haproxy_port_start: HAProxy's write port 7500 \(group 0\) on h1 is also its data instance port 7500/)
    // /usr is shared and holds a real haproxy: a binary path and a package that do not exist.
    layout({redis_haproxy_bin: '/root/no-haproxy/haproxy', redis_haproxy_package: 'haproxy-e2e-nonexistent'})
    const missing = await up()
    assert.equal(missing.code, 2, show(missing))
    assert.match(
      missing.stderr + missing.stdout,
      /HAProxy cannot be installed on h4: no haproxy binary at \/root\/no-haproxy\/haproxy and the haproxy-e2e-nonexistent package has no install candidate/,
    )
    assert.match(missing.stderr + missing.stdout, /apt-get update|redis_haproxy_bin/)
    assert.ok(!changed(missing).length, show(missing))
    await nothingOfOurs()
  })

  it('up: HAProxy on h4 sends each group to its master; writes through it acknowledged by WAIT 1; its ports open to the fleet only', async () => {
    layout()
    const h4 = host('h4')
    w0 = new ViaAcked({host: h4.ip, port: PORT})
    w1 = new ViaAcked({host: h4.ip, port: PORT + 1})
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.ok(!JSON.stringify(r.json).includes(PW), 'the password is never printed')
    assert.ok(
      tasks(r).some((t) => t.host === 'h4' && t.task === 'HAProxy in front of the groups' && t.status === 'changed'),
      show(r),
    )
    await w0.writeKeys('base0', 200)
    await w1.writeKeys('base1', 200)
    // Each write port reaches its own group's master.
    assert.match(await cliOn(host('h1'), PORT, 'DBSIZE'), /^200/)
    assert.match(await cliOn(host('h2'), PORT + 1, 'DBSIZE'), /^200/)
    const rules = await sh(h4, 'iptables -S')
    for (const p of [PORT, PORT + 1]) assert.match(rules, new RegExp(`-p tcp -m tcp --dport ${p} .*-j BAREMETAL-${NAME}`))
    assert.doesNotMatch(rules, new RegExp(`--dport ${SPORT} `))
    for (const h of fleet.hosts) assert.match(rules, new RegExp(`-A BAREMETAL-${NAME} -s ${h.ip}/32 .*-j ACCEPT`))
  })

  it('up twice: changed=0, HAProxy included', async () => {
    const r = await up()
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      changed(r).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
    )
    assert.ok(
      tasks(r).some((t) => t.host === 'h4' && t.task === 'HAProxy in front of the groups' && t.status === 'ok'),
      show(r),
    )
  })

  it("status shows HAProxy's view: h4 sends each group's writes to the master the Sentinels name, read over the SSH connection", async () => {
    const [h1, h2] = [host('h1'), host('h2')]
    const {json, text, groups} = await statusUntil((gs) => hapOf(gs, PORT)?.writeTo === `${h1.ip}:${PORT}` && hapOf(gs, PORT + 1)?.writeTo === `${h2.ip}:${PORT + 1}`)
    assert.equal(json.code, 0, show(json))
    assert.equal(json.json.health, 'ok', show(json))
    for (const [port, h] of [
      [PORT, h1],
      [PORT + 1, h2],
    ] as const) {
      const hp = hapOf(groups, port)!
      assert.equal(hp.writeTo, `${h.ip}:${port}`, show(json))
      assert.ok(hp.agree)
      assert.deepEqual(
        hp.hosts.map((x) => [x.host, x.via, x.writeTo]),
        [['h4', 'stream-local', `${h.ip}:${port}`]],
      )
      assert.ok(text.stdout.includes(`haproxy h4: writes → ${h.ip}:${port} (the master)`), show(text))
    }
  })

  it("kill -9 group 0's master: HAProxy sends writes to the promoted replica; up keeps it and brings the old one back as its replica; 0 acknowledged writes lost", async () => {
    const [h1, h2] = [host('h1'), host('h2')]
    const bg = w0.background('during')
    await sleep(500)
    const t0 = Date.now()
    await sh(h1, `${ops.ALIVE}; P=$(cat ${DIR}/${PORT}/redis.pid); kill -KILL $P; n=0; while alive $P && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done`)
    const dead = Date.now()
    // up at once: it waits for the promotion, then brings h1 back as the new master's
    // replica. With 1 replica and min-replicas-to-write 1 (and WAIT 1), the promoted master
    // acknowledges nothing until its replica is back: HAProxy's switch is measured by the
    // first write the new master answers (NOREPLICAS counts), the client's gap by the first
    // acknowledged one.
    const rerun = up()
    const after = (xs: number[]) => xs.find((t) => t >= dead)
    while (after(w0.masterAt) === undefined && Date.now() < dead + DOWN_AFTER + 10_000) await sleep(50)
    const routed = after(w0.masterAt)
    const r = await rerun
    assert.equal(r.code, 0, show(r))
    const upDone = Date.now()
    while (after(w0.ackedAt) === undefined && Date.now() < upDone + 10_000) await sleep(50)
    const first = after(w0.ackedAt)
    const s = await bg.stop()
    assert.ok(routed !== undefined, `HAProxy sent no write to the promoted master within down-after-milliseconds + 10 s; failures: ${JSON.stringify(s.failed)}`)
    assert.ok(first !== undefined, `no write acknowledged through HAProxy within 10 s of up; failures: ${JSON.stringify(s.failed)}`)
    console.log(
      `Redis ${redisVersion()}, down-after-milliseconds ${DOWN_AFTER}: kill → HAProxy sends writes to the promoted master: ${routed - t0} ms; ` +
        `kill → first acknowledged write through HAProxy (WAIT 1, its replica back by the up re-run started at the kill): ${first - t0} ms; ` +
        `kill → up done: ${upDone - t0} ms; writer: ${s.acked} acknowledged, failures ${JSON.stringify(s.failed)}`,
    )
    assert.equal(await sentinelSays(`${NAME}-${PORT}`), `${h2.ip}:${PORT}`, 'up keeps the promoted master')
    assert.match(await cliOn(h1, PORT, 'ROLE'), new RegExp(`^slave\\n${h2.ip.replace(/\./g, '\\.')}\\n${PORT}`))
    assert.ok((await w0.assertNoneLost()) >= 200)
    assert.ok((await w1.assertNoneLost()) >= 200)
    const again = await up()
    assert.equal(again.code, 0, show(again))
    assert.deepEqual(
      changed(again).map((t) => `${t.host}: ${t.task}: ${t.msg}`),
      [],
      'healthy after the failover: nothing to change',
    )
  })

  it("status after the kill -9 failover: HAProxy on h4 sends group 0's writes to the promoted h2", async () => {
    const h2 = host('h2')
    const {json, text, groups} = await statusUntil((gs) => hapOf(gs, PORT)?.writeTo === `${h2.ip}:${PORT}` && gs.every((g) => g.health === 'ok'))
    assert.equal(json.code, 0, show(json))
    assert.equal(groups.find((g) => g.name === `${NAME}-${PORT}`)?.master, `${h2.ip}:${PORT}`)
    assert.equal(hapOf(groups, PORT)?.writeTo, `${h2.ip}:${PORT}`, show(json))
    assert.ok(text.stdout.includes(`haproxy h4: writes → ${h2.ip}:${PORT} (the master)`), show(text))
  })

  it('load --via haproxy --verify: 0 lost; status ok', async () => {
    const r = await cli(['load', '-i', inv, '--via', 'haproxy', '--requests', '2000', '--clients', '2', '--verify', '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.verify.checked, 2000, show(r))
    assert.equal(r.json.verify.lost, 0)
    let st: CliResult | undefined
    for (let i = 0; i < 20; i++) {
      st = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
      if (st.code === 0 && st.json?.health === 'ok') break
      await sleep(500)
    }
    assert.equal(st!.code, 0, show(st!))
    assert.equal(st!.json.health, 'ok', show(st!))
    assert.ok(!st!.stdout.includes(PW))
  })

  it("status when HAProxy's checks cannot reach the master (no server for writes), and when HAProxy is killed (not answering): exit 2, said clearly", async () => {
    const [h2, h4] = [host('h2'), host('h4')]
    // h4 refuses its own connections to group 0's master (now h2): its check fails, nothing else changes.
    const rule = `OUTPUT -d ${h2.ip}/32 -p tcp --dport ${PORT} -m comment --comment sen-view-e2e -j REJECT --reject-with tcp-reset`
    await sh(h4, `iptables -I ${rule}`)
    try {
      const {json, text} = await statusUntil((gs) => hapOf(gs, PORT)?.hosts[0]?.writeTo === null)
      assert.equal(json.code, 2, show(json))
      assert.equal(json.json.health, 'degraded', show(json))
      const g0 = (json.json.groups as HapGroup[]).find((g) => g.name === `${NAME}-${PORT}`)!
      assert.equal(g0.master, `${h2.ip}:${PORT}`, 'the Sentinels still name h2')
      assert.equal(g0.haproxy?.writeTo, null)
      assert.ok(
        g0.reasons.some((r) => r.startsWith('HAProxy on h4 has no server for writes (it refuses them)') && r.includes(`${h2.ip}:${PORT} DOWN`)),
        show(json),
      )
      assert.equal(hapOf(json.json.groups, PORT + 1)?.writeTo, `${h2.ip}:${PORT + 1}`, 'group 1 unaffected')
      assert.ok(text.stdout.includes('haproxy h4: writes → no server (writes refused)'), show(text))
    } finally {
      await sh(h4, `iptables -D ${rule}`)
    }
    const back = await statusUntil((gs) => gs.every((g) => g.health === 'ok'))
    assert.equal(back.json.code, 0, show(back.json))
    await sh(h4, `${ops.ALIVE}; P=$(cat /root/.baremetal/haproxy/${NAME}/haproxy.pid); kill -KILL $P; n=0; while alive $P && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done`)
    const {json, text} = await statusUntil((gs) => gs.every((g) => g.haproxy?.hosts[0]?.error !== undefined))
    assert.equal(json.code, 2, show(json))
    for (const g of json.json.groups as HapGroup[]) {
      assert.equal(g.haproxy?.writeTo, null)
      assert.ok(
        g.reasons.some((r) => /^HAProxy on h4 does not answer: .*admin\.sock.*Connection refused/.test(r)),
        show(json),
      )
    }
    assert.match(text.stdout, /haproxy h4: not answering \(.*Connection refused/)
  })

  it('down: nothing of ours left on any host, the HAProxy host included', async () => {
    const r = await cli(['down', '-i', inv, '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    assert.ok(
      tasks(r).some((t) => t.host === 'h4' && t.task === 'HAProxy stopped' && t.status === 'changed'),
      show(r),
    )
    await nothingOfOurs()
    const listening = await sh(host('h4'), `ss -ltn | awk '{print $4}' | grep -E ':(${PORT}|${PORT + 1})$' || true`)
    assert.equal(listening.trim(), '')
  })
})
