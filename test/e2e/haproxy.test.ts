import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show} from './cli.js'
import {hostProcesses, sharedRedisBuild, sleep} from './fault-tools.js'
import {redisVersion} from './redis-fleet.js'

// The haproxy module through `baremetal run` on real test hosts: h1 and h2 run two
// master–replica groups by hand (A: 6390, no Sentinels; B: 6391, watched by 3 Sentinels on
// h1..h3), HAProxy on h3. Writes through HAProxy reach the master; a role swap moves them
// within a couple of seconds; two masters at once: A's writes go nowhere, B's only to the
// one the Sentinels name; re-run changes nothing; a config change reloads without refusing
// a connection; a dead HAProxy is restarted; absent leaves nothing; a package that cannot
// be installed is a clear error. Run on 7.0.15 and (e2e-503 pass) 5.0.3.

const PW = 'hap-e2e-Pw.77'
const A = 6390
const B = 6391
const SENT = 26390
const WA = 7390
const WB = 7391
const RB = 8391

let fleet: Fleet
let h1: TestHost, h2: TestHost, h3: TestHost
let bin: string
let inv: string
let pb: string

type Rec = {task: string; host: string; status: string; msg: string; data?: Record<string, unknown>}

/** Commands as RESP over a fresh connection, then QUIT; everything the server sent ('' when closed at once). */
function redis(ip: string, port: number, cmds: string[][], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({host: ip, port})
    let out = ''
    const done = (v: string) => {
      clearTimeout(timer)
      s.destroy()
      resolve(v)
    }
    const timer = setTimeout(() => done(out || 'TIMEOUT'), timeoutMs)
    s.on('connect', () => {
      const all = [...cmds, ['QUIT']]
      s.write(all.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join(''))
    })
    s.on('data', (d) => (out += d))
    s.on('close', () => done(out))
    s.on('error', (e: NodeJS.ErrnoException) => done(out || `ERR:${e.code}`))
  })
}

const runId = (info: string) => /run_id:([0-9a-f]+)/.exec(info)?.[1]

async function idOf(h: TestHost, port: number): Promise<string> {
  const id = runId(
    await redis(h.ip, port, [
      ['AUTH', PW],
      ['INFO', 'server'],
    ]),
  )
  assert.ok(id, `no run_id from ${h.name}:${port}`)
  return id
}

/** A write through HAProxy: which instance took it ('' refused or failed). */
async function writeVia(port: number, key: string): Promise<string> {
  const r = await redis(
    h3.ip,
    port,
    [
      ['AUTH', PW],
      ['SET', key, '1'],
      ['INFO', 'server'],
    ],
    1000,
  )
  return r.includes('+OK\r\n+OK\r\n') ? (runId(r) ?? '') : ''
}

async function sh(h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const rcli = (h: TestHost, port: number, args: string) => sh(h, `REDISCLI_AUTH=${PW} ${bin}/redis-cli -h ${h.ip} -p ${port} ${args}`)

function startRedis(h: TestHost, port: number, replicaOf?: TestHost): Promise<string> {
  const d = join(h.home, 'hapr')
  mkdirSync(d, {recursive: true})
  const conf = [
    `port ${port}`,
    `bind ${h.ip}`,
    `requirepass ${PW}`,
    `masterauth ${PW}`,
    'daemonize yes',
    `pidfile /root/hapr/r${port}.pid`,
    `logfile /root/hapr/r${port}.log`,
    'dir /root/hapr',
    `dbfilename d${port}.rdb`,
    'save ""',
    `replica-announce-ip ${h.ip}`,
  ]
  if (replicaOf) conf.push(`replicaof ${replicaOf.ip} ${port}`)
  writeFileSync(join(d, `r${port}.conf`), conf.join('\n') + '\n')
  return sh(h, `${bin}/redis-server /root/hapr/r${port}.conf`)
}

function startSentinel(h: TestHost): Promise<string> {
  const d = join(h.home, 'hapr')
  mkdirSync(d, {recursive: true})
  const g = `e2e-${B}`
  const conf = [`port ${SENT}`, `bind ${h.ip}`, 'daemonize yes', 'protected-mode no', 'pidfile /root/hapr/s.pid', 'logfile /root/hapr/s.log', 'dir /root/hapr', `sentinel announce-ip ${h.ip}`]
  conf.push(`sentinel monitor ${g} ${h1.ip} ${B} 2`, `sentinel auth-pass ${g} ${PW}`, `sentinel down-after-milliseconds ${g} 1000`, `sentinel failover-timeout ${g} 10000`)
  writeFileSync(join(d, 'sentinel.conf'), conf.join('\n') + '\n')
  return sh(h, `${bin}/redis-server /root/hapr/sentinel.conf --sentinel`)
}

const PLAYBOOK = `- hosts: all
  tasks:
    - name: haproxy for the groups
      haproxy:
        name: e2e
        state: "{{ hap_state }}"
        password: "{{ hap_password }}"
        check_interval: "{{ hap_inter }}"
        frontends:
          - name: e2e-${A}
            port: ${WA}
            servers: ["{{ h1 }}:${A}", "{{ h2 }}:${A}"]
          - name: e2e-${B}
            port: ${WB}
            read_port: ${RB}
            servers: ["{{ h1 }}:${B}", "{{ h2 }}:${B}"]
            sentinels: ["{{ h1 }}:${SENT}", "{{ h2 }}:${SENT}", "{{ h3 }}:${SENT}"]
`

// A package that no mirror has, through an offline mirror (the test hosts reach no other).
const MISSING = `- hosts: all
  tasks:
    - name: haproxy without a package
      environment:
        APT_CONFIG: /root/apt/apt.conf
      haproxy:
        name: e2e-missing
        bin: /root/no-haproxy/haproxy
        package: haproxy-e2e-nonexistent
        frontends: [{name: g, port: 7399, servers: ["127.0.0.1:6399"]}]
`

function offlineMirror(h: TestHost): void {
  const d = join(h.home, 'apt')
  for (const sub of ['repo', 'lists/partial', 'cache/archives/partial', 'sources.list.d']) mkdirSync(join(d, sub), {recursive: true})
  const packages = 'Package: baremetal-offline-mirror\nVersion: 1.0\nArchitecture: all\nFilename: ./none.deb\nSize: 1\nDescription: a local mirror\n\n'
  writeFileSync(join(d, 'repo', 'Packages'), packages)
  const sha = createHash('sha256').update(packages).digest('hex')
  writeFileSync(
    join(d, 'repo', 'Release'),
    `Origin: offline\nLabel: offline\nSuite: offline\nCodename: offline\nDate: Tue, 01 Dec 2026 00:00:00 UTC\nArchitectures: all amd64\nSHA256:\n ${sha} ${Buffer.byteLength(packages)} Packages\n`,
  )
  writeFileSync(join(d, 'sources.list'), 'deb [trusted=yes] file:/root/apt/repo ./\n')
  writeFileSync(
    join(d, 'apt.conf'),
    'Dir::Etc::SourceList "/root/apt/sources.list";\nDir::Etc::SourceParts "/root/apt/sources.list.d";\nDir::State::Lists "/root/apt/lists";\nDir::Cache "/root/apt/cache";\n',
  )
}

const play = (extra: string[] = []) => cli(['run', '-i', inv, pb, '-e', 'hap_state=present', '-e', `hap_password=${PW}`, '-e', 'hap_inter=250', ...extra, '--json'], {timeoutMs: 180_000})
const task = (r: {json?: {tasks: Rec[]}}) => (r.json?.tasks ?? []).find((t) => t.task === 'haproxy for the groups')
const hapDir = () => join(h3.home, '.baremetal', 'haproxy', 'e2e')
const hapPid = () => readFileSync(join(hapDir(), 'haproxy.pid'), 'utf8').trim()

/** `show stat` over our admin socket (its path is the host's /root, seen from here): server → status. */
function stat(): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const s = connect(join(hapDir(), 'admin.sock'))
    let out = ''
    s.on('connect', () => s.write('show stat\n'))
    s.on('data', (d) => (out += d))
    s.on('error', reject)
    s.on('close', () => {
      const m = new Map<string, string>()
      for (const l of out.split('\n')) {
        const f = l.split(',')
        if (f.length > 17 && !['FRONTEND', 'BACKEND', 'svname'].includes(f[1])) m.set(`${f[0]}/${f[1]}`, f[17])
      }
      resolve(m)
    })
  })
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now()
  while (!(await ok())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not after ${timeoutMs} ms\n${JSON.stringify([...(await stat().catch(() => new Map()))])}`)
    await sleep(50)
  }
  return Date.now() - t0
}

describe(`haproxy module (Redis ${redisVersion()})`, () => {
  before(async () => {
    fleet = await createFleet(3)
    ;[h1, h2, h3] = fleet.hosts
    bin = (await sharedRedisBuild(fleet, h1)).redis_bin_dir
    for (const p of [A, B]) {
      await startRedis(h1, p)
      await startRedis(h2, p, h1)
    }
    for (const h of [h1, h2, h3]) await startSentinel(h)
    inv = fleet.writeInventory({hosts: [h3], vars: {h1: h1.ip, h2: h2.ip, h3: h3.ip}})
    pb = join(fleet.dir, 'haproxy.yml')
    writeFileSync(pb, PLAYBOOK)
    await until('replicas in sync', async () => (await rcli(h2, A, 'INFO replication')).includes('master_link_status:up') && (await rcli(h2, B, 'INFO replication')).includes('master_link_status:up'))
  })

  after(async () => {
    if (!fleet) return
    for (const h of [h1, h2]) for (const p of [A, B]) await fleet.nsExec(h, `REDISCLI_AUTH=${PW} ${bin}/redis-cli -h ${h.ip} -p ${p} SHUTDOWN NOSAVE`)
    for (const h of [h1, h2, h3]) await fleet.nsExec(h, '[ -f /root/hapr/s.pid ] && kill "$(cat /root/hapr/s.pid)"')
    if (existsSync(hapDir())) await cli(['run', '-i', inv, pb, '-e', 'hap_state=absent', '-e', 'hap_password=', '-e', 'hap_inter=250'])
    await fleet.destroy()
  })

  it('check mode changes nothing; the first run starts HAProxy and writes reach the masters', async () => {
    const c = await play(['--check'])
    assert.equal(c.code, 0, show(c))
    assert.match(task(c)!.msg, /would .*write the configuration.*start/)
    assert.equal(existsSync(hapDir()), false, 'check mode created files')
    const r = await play(['--diff'])
    assert.equal(r.code, 0, show(r))
    assert.equal(task(r)?.status, 'changed', show(r))
    assert.ok(!r.stdout.includes(PW) && !r.stderr.includes(PW), 'the password was printed')
    assert.ok(!r.stdout.includes(Buffer.from(PW).toString('hex')), 'the password was printed in hex')
    assert.equal(statSync(join(hapDir(), 'haproxy.cfg')).mode & 0o777, 0o600)
    const [ma, mb] = [await idOf(h1, A), await idOf(h1, B)]
    await until('group A writes through HAProxy', async () => (await writeVia(WA, 'a0')) === ma)
    await until('group B writes through HAProxy', async () => (await writeVia(WB, 'b0')) === mb)
    await until(
      'group B reads go to the replica',
      async () =>
        runId(
          await redis(h3.ip, RB, [
            ['AUTH', PW],
            ['INFO', 'server'],
          ]),
        ) === (await idOf(h2, B)),
    )
  })

  it('a second run changes nothing', async () => {
    const pid = hapPid()
    const r = await play()
    assert.equal(r.code, 0, show(r))
    assert.equal(task(r)?.status, 'ok', show(r))
    assert.equal(hapPid(), pid)
  })

  it('group A (no Sentinels): two masters get no writes; the promoted replica gets them within a couple of seconds', async () => {
    const [old, neu] = [await idOf(h1, A), await idOf(h2, A)]
    await rcli(h2, A, 'REPLICAOF NO ONE')
    const t0 = Date.now()
    await until('HAProxy sees two masters', async () => (await stat()).get(`e2e-${A}_write/s1`) === 'UP')
    for (let i = 0; i < 10; i++) assert.equal(await writeVia(WA, `two${i}`), '', 'a write went to one of two masters')
    await rcli(h1, A, `REPLICAOF ${h2.ip} ${A}`)
    await until('writes on the new master', async () => (await writeVia(WA, 'a1')) === neu)
    console.log(`# group A: writes reach the promoted replica ${Date.now() - t0} ms after REPLICAOF NO ONE (two masters meanwhile, writes refused)`)
    assert.notEqual(neu, old)
    // Back as it was, for the next cases.
    await rcli(h1, A, 'REPLICAOF NO ONE')
    await rcli(h2, A, `REPLICAOF ${h1.ip} ${A}`)
    const ms = await until('writes back on h1', async () => (await writeVia(WA, 'a2')) === old)
    console.log(`# group A: swap back, writes on h1 after ${ms} ms`)
    assert.ok(ms < 3000, `${ms} ms`)
  })

  it('group B: with two masters, writes go only to the one the Sentinels name; a Sentinel failover moves them', async () => {
    const [named, other] = [await idOf(h1, B), await idOf(h2, B)]
    await rcli(h2, B, 'REPLICAOF NO ONE')
    await until('HAProxy sees two masters', async () => (await stat()).get(`e2e-${B}_write/s1`) === 'UP')
    for (let i = 0; i < 20; i++) assert.equal(await writeVia(WB, `named${i}`), named, 'a write did not go to the named master')
    assert.equal((await rcli(h2, B, 'EXISTS named0')).trim(), '0')
    await rcli(h2, B, `REPLICAOF ${h1.ip} ${B}`)
    await until('replica in sync again', async () => (await rcli(h2, B, 'INFO replication')).includes('master_link_status:up'))
    const t0 = Date.now()
    const reply = await sh(h3, `${bin}/redis-cli -h ${h3.ip} -p ${SENT} SENTINEL FAILOVER e2e-${B}`)
    assert.match(reply, /OK/)
    await until('writes on the promoted replica', async () => (await writeVia(WB, 'b1')) === other, 30_000)
    console.log(`# group B: SENTINEL FAILOVER → first write on the new master through HAProxy ${Date.now() - t0} ms`)
  })

  it('a changed config reloads: new process, no connection refused meanwhile', async () => {
    const pid = hapPid()
    let refused = 0
    let tries = 0
    let stop = false
    const prober = (async () => {
      while (!stop) {
        const r = await redis(h3.ip, WA, [['AUTH', PW], ['PING']], 1000)
        tries++
        if (!r.includes('+PONG')) refused++
        await sleep(10)
      }
    })()
    const r = await play(['-e', 'hap_inter=300'])
    await sleep(300)
    stop = true
    await prober
    assert.equal(r.code, 0, show(r))
    assert.equal(task(r)?.status, 'changed')
    assert.match(task(r)!.msg, /reloaded/)
    assert.notEqual(hapPid(), pid)
    assert.equal(refused, 0, `${refused} of ${tries} connections refused or closed during the reload`)
    assert.match(readFileSync(join(hapDir(), 'haproxy.cfg'), 'utf8'), /inter 300ms/)
  })

  it('a dead HAProxy is started again', async () => {
    await sh(h3, `kill -9 ${hapPid()}`)
    await sleep(200)
    const r = await play(['-e', 'hap_inter=300'])
    assert.equal(r.code, 0, show(r))
    assert.match(task(r)!.msg, /started/)
    await until('writes again', async () => (await writeVia(WA, 'a3')) !== '')
  })

  it('a package that cannot be installed fails clearly, before anything changes', async () => {
    offlineMirror(h3)
    const p = join(fleet.dir, 'missing.yml')
    writeFileSync(p, MISSING)
    const r = await cli(['run', '-i', inv, p, '--json'], {timeoutMs: 180_000})
    assert.notEqual(r.code, 0, show(r))
    const t = (r.json?.tasks as Rec[]).find((x) => x.task === 'haproxy without a package')!
    assert.equal(t.status, 'failed')
    assert.match(t.msg, /haproxy is not installed on .* and the haproxy-e2e-nonexistent package could not be installed/)
    assert.match(t.msg, /fix: /)
    assert.equal(existsSync(join(h3.home, '.baremetal', 'haproxy', 'e2e-missing')), false)
  })

  it('state: absent stops it and leaves nothing of ours', async () => {
    const pid = hapPid()
    const r = await cli(['run', '-i', inv, pb, '-e', 'hap_state=absent', '-e', 'hap_password=', '-e', 'hap_inter=250', '--json'])
    assert.equal(r.code, 0, show(r))
    assert.equal(task(r)?.status, 'changed', show(r))
    // Seen from the host itself.
    await sh(h3, 'test ! -e /root/.baremetal/haproxy')
    const procs = await hostProcesses(h3)
    assert.ok(!procs.some((p) => p.includes('haproxy')), procs.join('\n'))
    // Gone, or a zombie its reaper has not collected yet.
    let st = ''
    try {
      st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {}
    assert.ok(st === '' || /\) [ZX] /.test(st), st)
    // The instances are not ours to stop.
    assert.match(await rcli(h1, A, 'PING'), /PONG/)
    const again = await cli(['run', '-i', inv, pb, '-e', 'hap_state=absent', '-e', 'hap_password=', '-e', 'hap_inter=250', '--json'])
    assert.equal(task(again)?.status, 'ok', show(again))
  })
})
