// Forming real Redis Clusters on loopback: six redis-server processes stand in for three
// hosts with two ports each. Only instances this file started are ever stopped (SHUTDOWN
// NOSAVE on their port, else the PID from their own pidfile).
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Cluster, Redis} from 'ioredis'
import {ClusterError} from '../../src/errors.js'
import {checkCluster, formCluster} from '../../src/redis/cluster.js'
import {planCluster, type ClusterNode} from '../../src/redis/plan.js'
import {problemTexts, renderClusterReport} from '../../src/redis/status.js'
import {redisClusterModule} from '../../src/modules/redis/cluster.js'
import type {ModuleContext, PlayHost} from '../../src/modules/types.js'

const hasRedis = await new Promise<boolean>((resolve) => execFile('redis-server', ['--version'], (err) => resolve(!err)))

function run(cmd: string, args: string[], env?: Record<string, string>): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(cmd, args, {encoding: 'utf8', timeout: 15_000, env: {...process.env, ...env}}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
    })
  })
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

// A run of `count` ports whose bus ports (+10000) are free too, from a high range.
async function freePorts(count: number, from: number): Promise<number> {
  for (let base = from; base < from + 2000; base += 100) {
    let ok = true
    for (let p = base; p < base + count && ok; p++) ok = (await portFree(p)) && (await portFree(p + 10000))
    if (ok) return base
  }
  throw new Error(`no ${count} free ports (and bus ports) from ${from}`)
}

interface Instance {
  port: number
  dir: string
  password?: string
}

const started: Instance[] = []

async function startInstance(port: number, password?: string, extra: string[] = []): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), `bm-redis-${port}-`))
  const args = [
    '--port',
    String(port),
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--dir',
    dir,
    '--daemonize',
    'yes',
    '--pidfile',
    join(dir, 'redis.pid'),
    '--save',
    '',
    '--appendonly',
    'no',
    '--bind',
    '127.0.0.1',
    '--logfile',
    join(dir, 'redis.log'),
    '--cluster-node-timeout',
    '5000',
  ]
  if (password) args.push('--requirepass', password, '--masterauth', password)
  args.push(...extra)
  const inst: Instance = {port, dir, password}
  started.push(inst)
  const r = await run('redis-server', args)
  assert.equal(r.code, 0, `redis-server on ${port} did not start: ${r.stderr}`)
  const deadline = Date.now() + 10_000
  for (;;) {
    const ping = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], password ? {REDISCLI_AUTH: password} : {})
    if (ping.stdout.trim() === 'PONG') return inst
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} does not answer: ${ping.stdout}${ping.stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function stopInstance(inst: Instance): Promise<void> {
  let pid: number | undefined
  try {
    pid = Number(readFileSync(join(inst.dir, 'redis.pid'), 'utf8').trim()) || undefined
  } catch {
    pid = undefined
  }
  await run('redis-cli', ['-h', '127.0.0.1', '-p', String(inst.port), 'SHUTDOWN', 'NOSAVE'], inst.password ? {REDISCLI_AUTH: inst.password} : {})
  if (pid) {
    const deadline = Date.now() + 5000
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  rmSync(inst.dir, {recursive: true, force: true})
}

// Zombies count as gone: nobody may reap a daemonized child in a container.
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function clusterInfo(port: number, password?: string): Promise<Record<string, string>> {
  const r = new Redis({host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null})
  try {
    await r.connect()
    const text = String(await r.call('CLUSTER', 'INFO'))
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter(Boolean)
        .map((l) => l.split(':') as [string, string]),
    )
  } finally {
    r.disconnect()
  }
}

// Three "hosts" of two ports each: the planner must treat them as separate machines.
function threeHosts(base: number): ClusterNode[] {
  return [0, 1, 2, 3, 4, 5].map((i) => ({host: `h${Math.floor(i / 2) + 1}`, ip: '127.0.0.1', port: base + i}))
}

function fakeCtx(playHosts: Array<Pick<PlayHost, 'host' | 'address' | 'vars'>>, check = false): ModuleContext {
  const facts = {home: '/root', user: 'root', os: 'linux', arch: 'x64', cores: 2, memMb: 1024}
  const hosts = playHosts.map((h) => ({...h, facts, transport: undefined as never}))
  return {
    host: hosts[0].host,
    address: hosts[0].address,
    transport: undefined as never,
    facts,
    check,
    diff: false,
    vars: hosts[0].vars,
    playbookDir: process.cwd(),
    secrets: new Set(),
    log: () => {},
    signal: new AbortController().signal,
    playHosts: hosts,
  }
}

async function writeAndRead(base: number, count: number, password?: string): Promise<void> {
  const cluster = new Cluster([{host: '127.0.0.1', port: base}], {redisOptions: {password}, enableReadyCheck: true})
  try {
    await Promise.all(Array.from({length: count}, (_, i) => cluster.set(`key:${i}`, `value-${i}`)))
    const values = await Promise.all(Array.from({length: count}, (_, i) => cluster.get(`key:${i}`)))
    values.forEach((v, i) => assert.equal(v, `value-${i}`))
    const masters = cluster.nodes('master')
    assert.equal(masters.length, 3)
    const sizes = await Promise.all(masters.map((m) => m.dbsize()))
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      count,
    )
    assert.ok(
      sizes.every((s) => s > 0),
      `keys spread over all masters: ${sizes}`,
    )
  } finally {
    cluster.disconnect()
  }
}

after(async () => {
  await Promise.all(started.splice(0).map(stopInstance))
})

describe('redis cluster on loopback', {skip: !hasRedis && 'redis-server not installed'}, () => {
  let base: number
  let nodes: ClusterNode[]

  before(async () => {
    base = await freePorts(7, 31000)
    nodes = threeHosts(base)
    await Promise.all(nodes.map((n) => startInstance(n.port)))
  })

  it('check mode plans the formation and sends nothing', async () => {
    const plan = planCluster(nodes, 1)
    const r = await formCluster(nodes, plan, {check: true, timeoutMs: 20_000})
    assert.equal(r.changed, true)
    assert.equal(r.action, 'formed')
    // 3 masters × ADDSLOTS chunks (6 of ≤1000 slots each) + 6 epochs + 15 MEETs (every pair of 6: the mesh) + 3 REPLICATE.
    assert.equal(r.commands, 3 * 6 + 6 + 15 + 3)
    const report = await checkCluster(nodes)
    assert.equal(report.newNodes.length, 6)
    assert.ok(!report.ok)
  })

  it('forms 3 masters + 3 replicas, each replica on another "host" than its master', async () => {
    const plan = planCluster(nodes, 1)
    const t = Date.now()
    const r = await formCluster(nodes, plan, {timeoutMs: 60_000})
    console.log(`# formed 6 nodes (3 masters, 3 replicas) in ${Date.now() - t} ms, ${r.commands} commands`)
    assert.equal(r.changed, true)
    assert.equal(r.action, 'formed')
    assert.deepEqual(r.report.problems, [])
    assert.equal(r.report.slotsCovered, 16384)
    assert.deepEqual(
      r.report.masters.map((m) => m.slots),
      ['0-5460', '5461-10922', '10923-16383'],
    )
    for (const n of nodes) assert.equal((await clusterInfo(n.port)).cluster_state, 'ok')
    const report = await checkCluster(nodes)
    assert.ok(report.ok, problemTexts(report.problems).join('\n'))
    assert.equal(report.replicas.length, 3)
    const hostOf = new Map(report.masters.map((m) => [m.id, m.host]))
    for (const rep of report.replicas) assert.notEqual(rep.host, hostOf.get(rep.masterId!), `${rep.addr} on its master's host`)
    assert.deepEqual(
      Object.values(report.perHost),
      [1, 2, 3].map(() => ({masters: 1, replicas: 1, new: 0, unreachable: 0})),
    )
    console.log(renderClusterReport(report).replace(/^/gm, '# '))
  })

  it('a cluster client writes and reads 1,000 keys', async () => {
    await writeAndRead(base, 1000)
  })

  it('forming again changes nothing', async () => {
    const r = await formCluster(nodes, planCluster(nodes, 1), {timeoutMs: 20_000})
    assert.equal(r.changed, false)
    assert.equal(r.action, 'none')
    assert.equal(r.commands, 0)
    assert.ok(r.report.ok)
  })

  it('the module reports ok, in check mode too', async () => {
    const playHosts = [1, 2, 3].map((i) => ({host: `h${i}`, address: 'localhost', vars: {redis_port_start: base + (i - 1) * 2, redis_count: 2, redis_bind: '127.0.0.1'}}))
    for (const check of [false, true]) {
      const [res] = await redisClusterModule.run(fakeCtx(playHosts, check), [{args: {replicas: 1}}])
      assert.equal(res.status, 'ok', res.msg)
      assert.equal(res.msg, 'cluster already formed: 3 masters, 3 replicas')
      const data = res.data as {masters: Array<{slots: string}>; perHost: Record<string, unknown>; seed: string}
      assert.deepEqual(
        data.masters.map((m) => m.slots),
        ['0-5460', '5461-10922', '10923-16383'],
      )
      assert.deepEqual(Object.keys(data.perHost), ['h1', 'h2', 'h3'])
      assert.match(data.seed, /^127\.0\.0\.1:/)
    }
  })

  it('a new empty node next to the formed cluster is reported and left alone', async () => {
    const extra: ClusterNode = {host: 'h4', ip: '127.0.0.1', port: base + 6}
    // DEBUG is allowed on this one only: a lone cluster node refuses SET, and the next
    // test needs it to hold keys the way a node with leftover data would.
    await startInstance(extra.port, undefined, ['--enable-debug-command', 'local'])
    const all = [...nodes, extra]
    const r = await formCluster(all, planCluster(all, 1), {timeoutMs: 20_000})
    assert.equal(r.changed, false)
    assert.deepEqual(r.newNodes, [`127.0.0.1:${extra.port}`])
    assert.equal((await clusterInfo(extra.port)).cluster_known_nodes, '1')
    assert.equal((await clusterInfo(base)).cluster_known_nodes, '6')
  })

  it('a lone node holding keys or foreign slots is refused, by name', async () => {
    const port = base + 6
    const all = [...nodes, {host: 'h4', ip: '127.0.0.1', port}]
    const r = new Redis({host: '127.0.0.1', port, lazyConnect: true})
    await r.connect()
    try {
      await r.call('DEBUG', 'POPULATE', '3')
      await assert.rejects(formCluster(all, planCluster(all, 1), {timeoutMs: 20_000}), (e: unknown) => {
        assert.ok(e instanceof ClusterError)
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port} \\(host h4\\): is not in a cluster but holds 3 key`))
        assert.equal(e.where.host, 'h4')
        return true
      })
      await r.flushall()
      await r.call('CLUSTER', 'ADDSLOTS', '0', '1', '2')
      await assert.rejects(formCluster(all, planCluster(all, 1), {timeoutMs: 20_000}), new RegExp(`${port} \\(host h4\\): is not in a cluster but serves slots 0-2`))
      // Nothing was sent to the cluster meanwhile.
      assert.ok((await checkCluster(nodes)).ok)
    } finally {
      await r.flushall()
      await r.call('CLUSTER', 'DELSLOTS', '0', '1', '2').catch(() => {})
      r.disconnect()
    }
  })
})

describe('redis cluster with a password', {skip: !hasRedis && 'redis-server not installed'}, () => {
  const password = 'e2e-secret-Pw'
  let base: number
  let nodes: ClusterNode[]

  before(async () => {
    base = await freePorts(6, 31200)
    nodes = threeHosts(base)
    await Promise.all(nodes.map((n) => startInstance(n.port, password)))
  })

  it('a wrong or missing password fails with a clear message', async () => {
    const plan = planCluster(nodes, 1)
    await assert.rejects(formCluster(nodes, plan, {password: 'nope', timeoutMs: 10_000}), /authentication failed/)
    await assert.rejects(formCluster(nodes, plan, {timeoutMs: 10_000}), /requires a password/)
  })

  it('a timeout names what is pending; the next run finishes the same plan', async () => {
    const plan = planCluster(nodes, 1)
    await assert.rejects(formCluster(nodes, plan, {password, timeoutMs: 1}), (e: unknown) => {
      assert.ok(e instanceof ClusterError)
      assert.match(e.message, /timed out waiting for nodes to meet: .*127\.0\.0\.1:\d+ knows \d of 6/)
      return true
    })
    const t = Date.now()
    const r = await formCluster(nodes, plan, {password, timeoutMs: 60_000})
    console.log(`# resumed 6 nodes with auth in ${Date.now() - t} ms, ${r.commands} commands`)
    assert.equal(r.action, 'resumed')
    assert.equal(r.changed, true)
    assert.ok(r.report.ok, problemTexts(r.report.problems).join('\n'))
  })

  it('replicas sync through masterauth and a client with the password reads and writes', async () => {
    const report = await checkCluster(nodes, {password})
    assert.ok(report.ok, problemTexts(report.problems).join('\n'))
    for (const rep of report.replicas) {
      const port = Number(rep.addr.split(':')[1])
      const deadline = Date.now() + 15_000
      for (;;) {
        const r = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', 'replication'], {REDISCLI_AUTH: password})
        if (/master_link_status:up/.test(r.stdout)) break
        assert.ok(Date.now() < deadline, `replica ${rep.addr} never synced: ${r.stdout}`)
        await new Promise((res) => setTimeout(res, 200))
      }
    }
    await writeAndRead(base, 300, password)
  })

  it('the module with the password: ok, and the password is registered as a secret', async () => {
    const playHosts = [1, 2, 3].map((i) => ({host: `h${i}`, address: '127.0.0.1', vars: {redis_port_start: base + (i - 1) * 2, redis_count: 2}}))
    const ctx = fakeCtx(playHosts)
    const [res] = await redisClusterModule.run(ctx, [{args: {replicas: 1, password}}])
    assert.equal(res.status, 'ok', res.msg)
    assert.ok(ctx.secrets.has(password))
    assert.ok(!JSON.stringify(res).includes(password))
  })
})
