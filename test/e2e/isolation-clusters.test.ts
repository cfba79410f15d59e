// Two clusters on the same hosts (issue 11, cases 1, 2 and 8), end to end. h1-h3 run
// cluster A (ports 7000-7003, inventory A) and cluster B (7100-7103, inventory B), both
// from the default group `redis` with no name set; h4 is an outsider on the same network,
// in neither inventory, and probes every port of both clusters after every up and down.
// Then a cluster deployed with -e only (7200): status and down find it from its record on
// the hosts; and two runs of one cluster at once: the second fails fast, naming the first.
import assert from 'node:assert/strict'
import {connect} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import {sharedRedisBuild, startCli} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

const COUNT = 4
const A = 7000
const B = 7100
const C = 7200

let fleet: Fleet
let build: Record<string, string>
let hosts: TestHost[]
let outsider: TestHost
let invA: string, invB: string, invC: string
const args = (extra: Record<string, string | number> = {}) => redisArgs({...build, redis_replicas: 0, ...extra})
const ports = (start: number) => Array.from({length: COUNT}, (_, i) => start + i)

before(async () => {
  fleet = await createFleet(4)
  hosts = fleet.hosts.slice(0, 3)
  outsider = fleet.hosts[3]
  invA = fleet.writeInventory({hosts, vars: {redis_port_start: A, redis_count: COUNT}, path: join(fleet.dir, 'a.yml')})
  invB = fleet.writeInventory({hosts, vars: {redis_port_start: B, redis_count: COUNT}, path: join(fleet.dir, 'b.yml')})
  // No ports: what runs is known from -e at up time, and from the hosts' records after.
  invC = fleet.writeInventory({hosts, path: join(fleet.dir, 'c.yml')})
  build = await sharedRedisBuild(fleet, hosts[0])
})

after(async () => {
  if (!fleet) return
  for (const [inv, start] of [
    [invA, A],
    [invB, B],
    [invC, C],
  ] as const) {
    await cli(['down', '-i', inv, ...args({redis_port_start: start, redis_count: COUNT})], {timeoutMs: 120_000}).catch(() => {})
  }
  await fleet.destroy()
})

async function sh(h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

// From the controller (allowed by every cluster's firewall): PONG, refused or silent.
function ping(ip: string, port: number): Promise<string> {
  return new Promise((res) => {
    const sock = connect({host: ip, port, timeout: 2000}, () => sock.write('PING\r\n'))
    let buf = ''
    const done = (v: string) => {
      sock.destroy()
      res(v)
    }
    sock.on('data', (d) => {
      buf += d
      if (buf.includes('\r\n')) done(buf.split('\r\n')[0])
    })
    sock.on('timeout', () => done('timeout'))
    sock.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'))
  })
}

// From the outsider: every data port of both clusters on every host, in one script.
async function outsiderProbe(): Promise<string[]> {
  const cliBin = join(build.redis_bin_dir, 'redis-cli')
  const targets = hosts.flatMap((h) => [...ports(A), ...ports(B), ...ports(C)].map((p) => `${h.ip}:${p}`))
  const script =
    targets
      .map((t) => {
        const [ip, port] = t.split(':')
        return `( r=$(timeout 2 ${cliBin} -h ${ip} -p ${port} PING 2>&1); echo "${t} $r" ) &`
      })
      .join('\n') + '\nwait'
  const out = await sh(outsider, script)
  return out.split('\n').filter((l) => /PONG/.test(l))
}

async function assertReach(running: number[], why: string): Promise<void> {
  const pong = await outsiderProbe()
  assert.deepEqual(pong, [], `${why}: the outsider ${outsider.name} got PONG:\n${pong.join('\n')}`)
  for (const start of [A, B, C]) {
    for (const h of hosts) {
      for (const p of ports(start)) {
        const r = await ping(h.ip, p)
        if (running.includes(start)) assert.equal(r, '+PONG', `${why}: ${h.name}:${p} should answer the controller, got ${r}`)
        else assert.notEqual(r, '+PONG', `${why}: ${h.name}:${p} should be stopped`)
      }
    }
  }
}

const chainOf = (h: TestHost, chain: string) => sh(h, `iptables -w -S ${chain} 2>/dev/null; iptables -w -S INPUT | grep -- '-j ${chain}' || true`)

function assertOk(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what}\n${show(r)}`)
}

describe('two clusters on the same hosts: own chain, own record; neither up nor down touches the other', () => {
  let chainA: string[]

  it('up A: ports answer the fleet and the controller, never the outsider; the pre-name chain is adopted', async () => {
    // As the previous version left a host after `up A`: one chain for every cluster.
    const legacy = (h: TestHost) =>
      sh(
        h,
        [
          'iptables -w -N BAREMETAL-baremetal',
          `iptables -w -A BAREMETAL-baremetal -s ${fleet.controllerIp}/32 -m comment --comment baremetal -j ACCEPT`,
          'iptables -w -A BAREMETAL-baremetal -i lo -m comment --comment baremetal -j ACCEPT',
          'iptables -w -A BAREMETAL-baremetal -m comment --comment baremetal -j DROP',
          'iptables -w -I INPUT 1 -p tcp -m tcp --dport 7000:7003 -m comment --comment baremetal -j BAREMETAL-baremetal',
          'iptables -w -I INPUT 1 -p tcp -m tcp --dport 17000:17003 -m comment --comment baremetal -j BAREMETAL-baremetal',
        ].join(' && '),
      )
    await Promise.all(hosts.map(legacy))
    assertOk(await cli(['up', '-i', invA, ...args()], {timeoutMs: 600_000}), 'up A')
    // What the outsider and the controller reach first: the behaviour, then the names.
    await assertReach([A], 'after up A')
    chainA = await Promise.all(hosts.map((h) => chainOf(h, 'BAREMETAL-redis-7000')))
    for (const c of chainA) assert.match(c, /-N BAREMETAL-redis-7000\n[\s\S]*--dport 7000:7003 .*--comment redis-7000 -j BAREMETAL-redis-7000/)
    assert.ok(!(await sh(hosts[0], 'iptables -w -S')).includes('BAREMETAL-baremetal'))
    const rec = JSON.parse(await sh(hosts[1], 'cat /root/.baremetal/clusters/redis-7000.json'))
    assert.equal(rec.name, 'redis-7000')
    assert.deepEqual(rec.ports, {start: A, count: COUNT})
    assert.equal(rec.firewall_chain, 'BAREMETAL-redis-7000')
    assert.equal(Object.keys(rec.node_ids).length, COUNT)
    assert.ok(!JSON.stringify(rec).toLowerCase().includes('password'))
  })

  it("up B leaves A's rules as they were", async () => {
    assertOk(await cli(['up', '-i', invB, ...args()], {timeoutMs: 600_000}), 'up B')
    await assertReach([A, B], 'after up B')
    assert.deepEqual(await Promise.all(hosts.map((h) => chainOf(h, 'BAREMETAL-redis-7000'))), chainA)
    for (const h of hosts) assert.match(await chainOf(h, 'BAREMETAL-redis-7100'), /--dport 7100:7103 .*-j BAREMETAL-redis-7100/)
  })

  it('an inventory that names neither cluster is refused (exit 5) naming both and the fix', async () => {
    for (const cmd of ['status', 'down']) {
      const r = await cli([cmd, '-i', invC], {timeoutMs: 60_000})
      assert.equal(r.code, 5, `${cmd}\n${show(r)}`)
      assert.match(r.stderr, /2 clusters are deployed on these hosts: redis-7000 \(ports 7000-7003\), redis-7100 \(ports 7100-7103\)/)
      assert.match(r.stderr, /-e redis_cluster_name=redis-7000/)
    }
    await assertReach([A, B], 'after the refused down')
  })

  it("down B leaves A's chain and instances as they were", async () => {
    assertOk(await cli(['down', '-i', invB, ...args()], {timeoutMs: 300_000}), 'down B')
    await assertReach([A], 'after down B')
    assert.deepEqual(await Promise.all(hosts.map((h) => chainOf(h, 'BAREMETAL-redis-7000'))), chainA)
    for (const h of hosts) {
      assert.equal((await chainOf(h, 'BAREMETAL-redis-7100')).trim(), '')
      assert.equal(
        (await sh(h, 'ls /root/.baremetal/clusters/'))
          .split('\n')
          .filter((f) => f.endsWith('.json'))
          .join(' '),
        'redis-7000.json',
      )
    }
  })

  it('down A --keep-data keeps its record, marked stopped; down A then: no chain, no record left', async () => {
    assertOk(await cli(['down', '-i', invA, '--keep-data', ...args()], {timeoutMs: 300_000}), 'down A --keep-data')
    for (const h of hosts) {
      const rec = JSON.parse(await sh(h, 'cat /root/.baremetal/clusters/redis-7000.json'))
      assert.equal(rec.state, 'stopped', h.name)
      assert.equal(Object.keys(rec.node_ids).length, COUNT, h.name)
    }
    assertOk(await cli(['down', '-i', invA, ...args()], {timeoutMs: 300_000}), 'down A')
    await assertReach([], 'after down A')
    for (const h of hosts) {
      assert.ok(!(await sh(h, 'iptables -w -S')).includes('BAREMETAL'), h.name)
      assert.equal((await sh(h, 'ls /root/.baremetal/clusters/ | grep json || true')).trim(), '')
    }
  })
})

describe('a cluster deployed with -e only: status and down find it from the hosts; one run at a time', () => {
  it('up -e redis_port_start=7200 -e redis_count=4 while a second up and a down of it fail fast naming the first', async () => {
    const first = startCli(['up', '-i', invC, ...args({redis_port_start: C, redis_count: COUNT})], {timeoutMs: 600_000})
    await first.waitFor(/TASK \[Instance directories\]/, 300_000)
    // Held there (it keeps the lock, its pid alive) while the two others try: a 6 s up could
    // otherwise finish before the down starts, and that down would rightly succeed.
    first.signal('SIGSTOP')
    try {
      for (const cmd of [
        ['up', ...args({redis_port_start: C, redis_count: COUNT})],
        ['down', '-e', `redis_port_start=${C}`],
      ]) {
        const t0 = Date.now()
        const r = await cli([cmd[0], '-i', invC, ...cmd.slice(1)], {timeoutMs: 120_000})
        const ms = Date.now() - t0
        assert.equal(r.code, 2, `${cmd[0]} during up\n${show(r)}`)
        assert.match(r.stderr, new RegExp(`cluster redis-7200 is busy: up started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z by pid ${first.pid} on controller \\S+ .*holds it on h\\d`), show(r))
        assert.ok(ms < 20_000, `${cmd[0]} took ${ms} ms to fail`)
      }
    } finally {
      first.signal('SIGCONT')
    }
    const r = await first.result
    assert.equal(r.code, 0, `the first up\n${show(r)}`)
    await assertReach([C], 'after up C')
  })

  it('status without -e reports that cluster (its record)', async () => {
    const st = await cli(['status', '-i', invC, '--json'], {timeoutMs: 60_000})
    assert.equal(st.code, 0, show(st))
    assert.equal(st.json.nodes, hosts.length * COUNT)
    assert.ok(
      st.json.masters.every((m: {addr: string}) => /:720[0-3]$/.test(m.addr)),
      JSON.stringify(st.json.masters.slice(0, 2)),
    )
  })

  it('down that leaves an instance running keeps every rule and the record (exit 2, naming the port)', async () => {
    // -e redis_count=3 wins over the record's 4: 7203 stays up, and the chain guards it.
    const r = await cli(['down', '-i', invC, '-e', 'redis_count=3'], {timeoutMs: 300_000})
    assert.deepEqual(await outsiderProbe(), [], 'the instance left running is still firewalled')
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /port\(s\) 7203, 17203 still listening/, show(r))
    for (const h of hosts) {
      assert.match(await chainOf(h, 'BAREMETAL-redis-7200'), /--dport 7200:7203 .*-j BAREMETAL-redis-7200/, h.name)
      assert.match(await sh(h, 'ls /root/.baremetal/clusters/'), /redis-7200\.json/, h.name)
      assert.equal(await ping(h.ip, C + 3), '+PONG', h.name)
    }
  })

  it('down without -e stops all of it and removes record and rules', async () => {
    const down = await cli(['down', '-i', invC], {timeoutMs: 300_000})
    assertOk(down, 'down without -e')
    for (const h of hosts) {
      assert.equal((await sh(h, `ls /root/.baremetal/clusters/ | grep json || true`)).trim(), '', h.name)
      assert.ok(!(await sh(h, 'iptables -w -S')).includes('BAREMETAL'), h.name)
      assert.equal((await sh(h, `ls /root/redis_cluster 2>/dev/null || true`)).trim(), '', h.name)
    }
    await assertReach([], 'after down C')
  })

  it('status says connection refused once', async () => {
    // Ports where nothing runs (and no record names): every node refuses.
    const st = await cli(['status', '-i', invC, '-e', 'redis_port_start=7300', '-e', `redis_count=${COUNT}`], {timeoutMs: 60_000})
    const all = st.stdout + st.stderr
    assert.ok(all.includes('connection refused'), show(st))
    assert.ok(!/connection refused \(connection refused/.test(all), all)
    assert.equal(all.split('is redis-server running on that port?').length - 1 <= (all.match(/connection refused/g) ?? []).length, true, all)
    for (const line of all.split('\n')) assert.ok(line.split('is redis-server running on that port?').length <= 2, line)
  })
})
