import assert from 'node:assert/strict'
import {appendFileSync, existsSync, readdirSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {AckedKeys} from './acked.js'
import {cli, ROOT, show, type CliResult} from './cli.js'
import * as ops from './cluster-ops.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs, redisTarball, redisVersion} from './redis-fleet.js'

// Issue 11, cases 5, 6 and 7, on one small cluster (3 hosts × 2 ports, 1 replica each):
//   5. every bad input is refused with exit 5, naming the variable, its source and the fix,
//      before anything on any host changes (redis.conf hashes, iptables rules, files under
//      /root compared before and after);
//   7. redis_replicas changed on the live cluster (1 → 0) is refused, never "no changes",
//      with a WAIT-acknowledged writer running and every key intact;
//   6. deployed with a password, `up --check --diff --json` without one prints no line of
//      the old config's secrets.

const PORT = 7100
const COUNT = 2
const SECRET = 'Old-Pa55-w0rd-7c1e'

let fleet: Fleet
let inv: string
let build: Record<string, string> = {}

// The other version's tarball: 5.0.3 from ../shared, 7.0.15 from Debian's cache.
function otherTarball(): {path: string; version: string} {
  if (redisVersion() !== '5.0.3') return {path: resolve(ROOT, '../shared/redis/redis-5.0.3.tar.gz'), version: '5.0.3'}
  const dir = process.env.BAREMETAL_SRC_CACHE ?? '/var/cache/baremetal-src'
  const f = existsSync(dir) ? readdirSync(dir).filter((x) => /^redis_7\.0\.15\.orig\.tar\.gz$/.test(x))[0] : undefined
  assert.ok(f, `no Debian 7.0.15 tarball in ${dir}`)
  return {path: join(dir, f), version: '7.0.15'}
}

before(async () => {
  fleet = await createFleet(3)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  inv = fleet.writeInventory({path: join(fleet.dir, 'input.yml'), vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, ...build}})
})

after(() => ops.tearDown(fleet, inv))

const up = (args: string[], o: {inventory?: string; env?: Record<string, string>; vars?: Record<string, string>} = {}) =>
  cli(['up', '-i', o.inventory ?? inv, ...redisArgs(o.vars ?? {}), ...args], {timeoutMs: 600_000, env: o.env})
const sh = (h: TestHost, cmd: string) => ops.sh(fleet, h, cmd)
const all = (r: CliResult) => `${r.stdout}\n${r.stderr}`

// What `up` could change on a host: the instance files (hashes; logs, nodes.conf and RDBs
// are Redis' own and move by themselves), the firewall, and any file under /root newer
// than the marker written before the run.
async function hostState(h: TestHost): Promise<string> {
  return sh(h, 'cd /root && { find redis_cluster -type f ! -name "*.log" ! -name "nodes.conf" ! -name "*.rdb" -exec sha256sum {} + | sort; iptables -S | sort; } 2>&1')
}
async function marked<T>(run: () => Promise<T>): Promise<{result: T; changed: string[]}> {
  const before = await Promise.all(
    fleet.hosts.map(async (h) => {
      await sh(h, 'touch /tmp/isolation-marker && sleep 1')
      return hostState(h)
    }),
  )
  const result = await run()
  const changed: string[] = []
  for (const [i, h] of fleet.hosts.entries()) {
    const now = await hostState(h)
    if (now !== before[i]) changed.push(`${h.name}: instance files or firewall changed`)
    const newer = (await sh(h, 'find /root -newer /tmp/isolation-marker -type f ! -name "*.log" ! -name "nodes.conf" ! -name "*.rdb" ! -path "/root/.ssh/*" 2>/dev/null || true')).trim()
    if (newer) changed.push(`${h.name}: newer files: ${newer}`)
  }
  return {result, changed}
}

describe(`issue 11 cases 5-7 on Redis ${redisVersion()}: inputs checked first, secrets never printed, replicas reshape refused`, () => {
  const seeds = () => fleet.hosts.map((h) => ({host: h.ip, port: PORT}))
  let acked: AckedKeys

  it('up forms 3 masters with 1 replica each', async () => {
    const r = await up(['--json'])
    assert.equal(r.code, 0, show(r))
    const s = await ops.waitClusterOk(inv, 90_000)
    assert.equal(s.masters.length, 3)
    acked = new AckedKeys({seeds: seeds(), replicas: 1})
    await acked.writeKeys('base', 200)
  })

  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const refusals: Array<{name: string; args?: string[]; vars?: () => Record<string, string>; inventory?: () => string; re: () => RegExp}> = [
    {
      name: 'a bad redis_allowed_clients entry',
      args: ['-e', '{"redis_allowed_clients": ["10.1.0.0/33"]}'],
      re: () => /redis_allowed_clients \(-e\) entry "10\.1\.0\.0\/33": not a valid IPv4 address or CIDR[\s\S]*hint: write IPv4 addresses or CIDRs/,
    },
    {
      name: "redis_version other than the tarball's src/version.h",
      vars: () => ({redis_version: otherTarball().version}),
      re: () =>
        new RegExp(
          `redis_version \\(-e\\) is ${esc(otherTarball().version)}, but the tarball .* holds Redis ${esc(redisVersion())} \\(its src/version.h\\)[\\s\\S]*hint: set redis_version to "${esc(redisVersion())}"`,
        ),
    },
    // Host-local build directories: whatever happened, the shared build cache is never touched.
    {
      name: 'a tarball of another version than redis_version',
      vars: () => ({redis_source: otherTarball().path, redis_src_dir: '/root/vtest_src', redis_bin_dir: '/root/vtest_bin'}),
      re: () => new RegExp(`redis_version \\(-e\\) is ${esc(redisVersion())}, but the tarball ${esc(otherTarball().path)} holds Redis ${esc(otherTarball().version)}`),
    },
    {
      name: 'bus ports past 65535',
      vars: () => ({redis_port_start: '60000'}),
      re: () => /redis_port_start \(-e\) is 60000 \(ports 60000-60001\): their cluster bus ports 70000-70001 go past 65535[\s\S]*redis_port_start ≤ 55534/,
    },
    {name: 'redis_count: "ten"', vars: () => ({redis_count: 'ten'}), re: () => /redis_count \(-e\) is "ten": not a whole number/},
    {
      name: 'a list variable given as a string',
      args: ['--check'],
      vars: () => ({redis_extra_config: '["tcp-backlog 1024"]'}),
      re: () => /redis_extra_config \(-e\) is the string "\[\\"tcp-backlog 1024\\"\]", not a list[\s\S]*hint: give a list: -e '\{"redis_extra_config": \["tcp-backlog 1024"\]\}'/,
    },
    {
      name: 'two hosts with one address',
      inventory: () => {
        const path = join(fleet.dir, 'dup.yml')
        fleet.writeInventory({path, vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 1, ...build}})
        // The same host twice, under two names.
        appendFileSync(path, `        ${fleet.hosts[0].name}-again: {ansible_host: ${fleet.hosts[0].ip}}\n`)
        return path
      },
      re: () => /hosts h\d and h\d+-again have the same address/,
    },
  ]
  for (const c of refusals) {
    it(`case 5: ${c.name}: exit 5 with the fix, nothing on any host changed`, async (t) => {
      const vars = c.vars?.()
      const inventory = c.inventory?.()
      const {result: r, changed} = await marked(() => up(c.args ?? [], {inventory, vars}))
      t.diagnostic(r.stderr.trim())
      assert.equal(r.code, 5, show(r))
      assert.match(r.stderr, c.re())
      assert.doesNotMatch(r.stderr, /≤ -\d/)
      assert.deepEqual(changed, [])
    })
  }

  it('case 5: the same refusal as one JSON document', async () => {
    const r = await up(['--json'], {vars: {redis_count: 'ten'}})
    assert.equal(r.code, 5, show(r))
    const e = (r.json as {error: {code: string; message: string; hint: string}}).error
    assert.equal(e.code, 'INPUT')
    assert.match(e.message, /redis_count \(-e\) is "ten"/)
  })

  it('case 7: redis_replicas 1 → 0 on the live cluster is refused naming both shapes, never "no changes"; every key intact', async (t) => {
    const w = acked.background('reshape')
    const check = await up(['--check', '-e', 'redis_replicas=0'])
    const r = await up(['-e', 'redis_replicas=0'])
    const st = await w.stop()
    t.diagnostic(`writer: ${JSON.stringify(st)}`)
    for (const x of [check, r]) {
      assert.notEqual(x.code, 0, show(x))
      assert.doesNotMatch(all(x), /no changes/)
      assert.match(all(x), /redis_replicas is 0, but the live cluster has 3 master\(s\) with 1 replica\(s\) each/)
      assert.match(all(x), /set redis_replicas back to 1/)
    }
    assert.equal(r.code, 2, show(r))
    const s = await ops.waitClusterOk(inv, 60_000)
    assert.equal(s.masters.length, 3)
    assert.equal(s.replicas.length, 3)
    assert.ok(st.acked > 0, 'the writer wrote')
    // Every acknowledged key (the base ones and the writer's) reads back: 0 lost.
    const read = await acked.assertNoneLost()
    t.diagnostic(`${read} acknowledged key(s) read back, 0 lost`)
    assert.equal(read, 200 + st.acked)
  })

  it('case 7: redis_replicas 0 → 1 on a live cluster of 6 masters is refused the same way; every key intact', async (t) => {
    const d = await cli(['down', '-i', inv], {timeoutMs: 120_000})
    assert.equal(d.code, 0, show(d))
    inv = fleet.writeInventory({path: join(fleet.dir, 'input.yml'), vars: {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 0, ...build}})
    const r0 = await up(['--json'])
    assert.equal(r0.code, 0, show(r0))
    assert.equal((await ops.waitClusterOk(inv, 90_000)).masters.length, 6)
    const keys = new AckedKeys({seeds: seeds(), replicas: 0})
    await keys.writeKeys('r0', 200)
    const w = keys.background('reshape01')
    const r = await up(['-e', 'redis_replicas=1'])
    const st = await w.stop()
    t.diagnostic(`writer: ${JSON.stringify(st)}`)
    assert.equal(r.code, 2, show(r))
    assert.doesNotMatch(all(r), /no changes/)
    assert.match(all(r), /redis_replicas is 1, but the live cluster has 6 master\(s\) with 0 replica\(s\) each .*means 3 master\(s\)/)
    const s = await ops.waitClusterOk(inv, 60_000)
    assert.deepEqual([s.masters.length, s.replicas.length], [6, 0])
    assert.equal(await keys.assertNoneLost(), 200 + st.acked)
  })

  it('case 6: deployed with a password, `up --check --diff --json` without one prints no line of the old secret config', async () => {
    const env = {BAREMETAL_REDIS_PASSWORD: SECRET}
    const r = await up(['--json'], {env})
    assert.equal(r.code, 0, show(r))
    for (const args of [
      ['--check', '--diff', '--json'],
      ['--check', '--diff', '-v'],
    ]) {
      const c = await up(args)
      const out = all(c)
      assert.ok(!out.includes(SECRET), `the old password was printed by up ${args.join(' ')}:\n${out}`)
      for (const line of out.split('\n')) assert.doesNotMatch(line, /(requirepass|masterauth)\s+(?!\(changed\))\S/, `a secret directive line: ${line}`)
      assert.match(out, /content differs: secret file, not shown/)
    }
  })
})
