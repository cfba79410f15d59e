// The Redis host modules against this machine through LocalTransport: a real tarball, a
// real build, real redis-server processes on free loopback ports, and iptables only
// inside a throwaway network namespace. Everything lives under one mkdtemp directory.

import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer as createHttpServer, type Server as HttpServer} from 'node:http'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {firewallModule} from '../../src/modules/firewall.js'
import {redisBuildModule} from '../../src/modules/redis/build.js'
import {redisInstancesModule} from '../../src/modules/redis/instances.js'
import {redisSourceModule} from '../../src/modules/redis/source.js'
import type {ItemResult, ModuleContext, ModuleSpec} from '../../src/modules/types.js'
import {quote} from '../../src/shell.js'
import {LocalTransport} from '../../src/transport/local.js'
import type {ExecOptions, ExecResult, Transport, UploadFile} from '../../src/transport/types.js'

const TARBALL = '/var/cache/baremetal-src/redis_7.0.15.orig.tar.gz'
const TARBALL_SHA = execFileSync('sha256sum', [TARBALL], {encoding: 'utf8'}).split(' ')[0]
const base = mkdtempSync(join(tmpdir(), 'bm-redis-host-'))
const home = join(base, 'home')
mkdirSync(home, {recursive: true})

function context(transport: Transport, over: Partial<ModuleContext> = {}): ModuleContext {
  return {
    host: 'local',
    address: '127.0.0.1',
    transport,
    facts: {home, user: 'root', os: 'linux', arch: process.arch, cores: 2, memMb: 1024},
    check: false,
    diff: false,
    vars: {},
    playbookDir: base,
    secrets: new Set(),
    log: () => {},
    signal: new AbortController().signal,
    playHosts: [],
    ...over,
  }
}

async function run1(mod: ModuleSpec, ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const [r] = await mod.run(ctx, [{args}])
  return r
}

const local = new LocalTransport('local')
const ctx = context(local)

describe('redis_source', () => {
  const dest = join(base, 'src')
  const args = {version: '7.0.15', source: TARBALL, sha256: TARBALL_SHA, dest}

  it('controller tarball: pushed and unpacked, then ok with nothing transferred', async () => {
    const r1 = await run1(redisSourceModule, ctx, args)
    assert.equal(r1.status, 'changed', r1.msg)
    assert.equal(local.stats.uploads, 1)
    assert.ok(existsSync(join(dest, 'src', 'version.h')), 'top directory stripped')
    assert.equal(readFileSync(join(dest, '.baremetal-source'), 'utf8').trim(), `sha256:${TARBALL_SHA}`)

    const execs = local.stats.execs
    const r2 = await run1(redisSourceModule, ctx, args)
    assert.equal(r2.status, 'ok', r2.msg)
    assert.match(r2.msg!, /already in/)
    assert.equal(local.stats.uploads, 1, 'no second push')
    assert.equal(local.stats.execs, execs + 1, 'facts only: one round trip')
  })

  it('wrong sha256: failed with expected and actual, nothing pushed or unpacked', async () => {
    const wrong = '0'.repeat(64)
    const fresh = join(base, 'src-wrong')
    const uploads = local.stats.uploads
    const r = await run1(redisSourceModule, ctx, {...args, sha256: wrong, dest: fresh})
    assert.equal(r.status, 'failed')
    assert.ok(r.msg!.includes(`expected ${wrong}`) && r.msg!.includes(`got ${TARBALL_SHA}`), r.msg)
    assert.equal(existsSync(fresh), false)
    assert.equal(local.stats.uploads, uploads)
    // The tree already in place is untouched too.
    const again = await run1(redisSourceModule, ctx, {...args, sha256: wrong})
    assert.equal(again.status, 'failed')
    assert.equal(readFileSync(join(dest, '.baremetal-source'), 'utf8').trim(), `sha256:${TARBALL_SHA}`)
  })

  describe('download on the host (loopback HTTP server)', () => {
    let server: HttpServer
    let url = ''
    before(async () => {
      server = createHttpServer((req, res) => {
        if (req.url === '/redis.tar.gz') res.end(readFileSync(TARBALL))
        else res.writeHead(404).end()
      })
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
      const addr = server.address()
      url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/redis.tar.gz`
    })
    after(() => server.close())

    it('host-side sha256 mismatch: failed before unpacking, previous dest untouched, no partial file', async () => {
      const d = join(base, 'src-dl')
      mkdirSync(d)
      writeFileSync(join(d, 'previous'), 'x')
      const wrong = 'f'.repeat(64)
      const r = await run1(redisSourceModule, ctx, {version: '7.0.15', source: url, sha256: wrong, dest: d})
      assert.equal(r.status, 'failed')
      assert.ok(r.msg!.includes(`expected ${wrong}, got ${TARBALL_SHA}`), r.msg)
      assert.ok(existsSync(join(d, 'previous')) && !existsSync(join(d, 'Makefile')), 'previous tree kept')
      assert.equal(existsSync(`${d}.baremetal-tarball.part`) || existsSync(`${d}.baremetal-new`), false)
    })

    it('verified download → changed, then ok', async () => {
      const d = join(base, 'src-dl')
      const r = await run1(redisSourceModule, ctx, {version: '7.0.15', source: url, sha256: TARBALL_SHA, dest: d})
      assert.equal(r.status, 'changed', r.msg)
      assert.ok(existsSync(join(d, 'Makefile')) && !existsSync(join(d, 'previous')), 'swapped in')
      assert.equal((await run1(redisSourceModule, ctx, {version: '7.0.15', source: url, sha256: TARBALL_SHA, dest: d})).status, 'ok')
    })

    it('check mode: would download, nothing written', async () => {
      const d = join(base, 'src-check')
      const r = await run1(redisSourceModule, context(local, {check: true}), {version: '7.0.15', source: url, sha256: TARBALL_SHA, dest: d})
      assert.equal(r.status, 'changed')
      assert.match(r.msg!, /^would download/)
      assert.equal(existsSync(d), false)
    })
  })

  it('git source: cloned at the tag, identity is the commit', async () => {
    const repo = join(base, 'repo')
    const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a], {encoding: 'utf8'}).trim()
    mkdirSync(repo)
    git('init', '-q')
    writeFileSync(join(repo, 'Makefile'), 'all:\n')
    // The tree says its version where Redis's does: redis_source checks it before any build.
    mkdirSync(join(repo, 'src'))
    writeFileSync(join(repo, 'src', 'version.h'), '#define REDIS_VERSION "9.9.9"\n')
    git('add', '.')
    git('commit', '-qm', 'tree')
    git('tag', '-a', '9.9.9', '-m', 'release')
    const commit = git('rev-parse', 'HEAD')
    const d = join(base, 'src-git')
    const a = {version: '9.9.9', source: `git+file://${repo}`, dest: d}
    const r1 = await run1(redisSourceModule, ctx, a)
    assert.equal(r1.status, 'changed', r1.msg)
    assert.equal(readFileSync(join(d, '.baremetal-source'), 'utf8').trim(), `git:${commit}`)
    const r2 = await run1(redisSourceModule, ctx, a)
    assert.equal(r2.status, 'ok', r2.msg)
  })
})

describe('redis_build', () => {
  const args = {src: join(base, 'src'), bin_dir: join(base, 'bin'), make_args: 'MALLOC=libc BUILD_TLS=no'}

  it('builds once, installs redis-server and redis-cli', async (t) => {
    const started = Date.now()
    const r = await run1(redisBuildModule, ctx, args)
    t.diagnostic(`build took ${Math.round((Date.now() - started) / 1000)}s`)
    assert.equal(r.status, 'changed', r.msg)
    const v = execFileSync(join(base, 'bin', 'redis-server'), ['--version'], {encoding: 'utf8'})
    assert.match(v, /v=7\.0\.15/)
    assert.ok(existsSync(join(base, 'bin', 'redis-cli')))
  })

  it('re-run: ok without make (facts only)', async () => {
    const execs = local.stats.execs
    const started = Date.now()
    const r = await run1(redisBuildModule, ctx, args)
    assert.equal(r.status, 'ok', r.msg)
    assert.equal(local.stats.execs, execs + 1)
    assert.ok(Date.now() - started < 5000)
  })

  it('a failing build reports the log tail', async () => {
    const r = await run1(redisBuildModule, ctx, {...args, bin_dir: join(base, 'bin-bad'), make_args: 'MALLOC=libc BUILD_TLS=no no-such-target'})
    assert.equal(r.status, 'failed')
    assert.match(r.msg!, /make -j2 MALLOC=libc BUILD_TLS=no no-such-target failed/)
    assert.match(r.msg!, /No rule to make target/)
  })
})

// Free loopback ports for the instances and their bus ports (+10000), all below the
// ephemeral range (32768+), where a passing outgoing connection could hold one.
async function isFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = createServer()
    s.once('error', () => ok(false))
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)))
  })
}
async function freeBase(count: number): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const b = 20000 + Math.floor(Math.random() * 270) * 10
    let ok = true
    for (let i = 0; i < count && ok; i++) ok = (await isFree(b + i)) && (await isFree(b + i + 10000))
    if (ok) return b
  }
  throw new Error('no free port range')
}

describe('redis_instances', () => {
  const dir = join(base, 'cluster')
  const bin = join(base, 'bin')
  let p0 = 0
  let ports: number[] = []
  const cli = (port: number, ...a: string[]) => {
    try {
      return execFileSync(join(bin, 'redis-cli'), ['-h', '127.0.0.1', '-p', String(port), ...a], {encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe']}).trim()
    } catch (error) {
      const e = error as {stdout?: string; stderr?: string}
      return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || String(error)
    }
  }
  const writeConf = (port: number, extra = '') => {
    mkdirSync(join(dir, String(port)), {recursive: true})
    writeFileSync(
      join(dir, String(port), 'redis.conf'),
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize yes',
        'pidfile redis.pid',
        'logfile redis.log',
        'dir ./',
        'cluster-enabled yes',
        'cluster-config-file nodes.conf',
        'save ""',
        'appendonly no',
        extra,
        '',
      ].join('\n'),
      {mode: 0o600},
    )
  }
  const args = () => ({ports, dir, bin_dir: bin, bind: '127.0.0.1', wait_timeout: 10})

  before(async () => {
    p0 = await freeBase(4)
    ports = [p0, p0 + 1, p0 + 2]
    ports.forEach((p) => writeConf(p))
  })
  after(async () => {
    // Whatever a failed assertion left running: stop ours through the module itself.
    await run1(redisInstancesModule, ctx, {...args(), ports: [...ports, p0 + 3], state: 'stopped'})
  })

  it('start → changed, all answer PING', async (t) => {
    const started = Date.now()
    const r = await run1(redisInstancesModule, ctx, {...args(), state: 'started'})
    t.diagnostic(`start of 3 instances took ${Date.now() - started} ms`)
    assert.equal(r.status, 'changed', r.msg)
    assert.deepEqual(r.data?.started, ports)
    for (const p of ports) assert.equal(cli(p, 'PING'), 'PONG')
  })

  it('start again → ok, one round trip', async () => {
    const execs = local.stats.execs
    const r = await run1(redisInstancesModule, ctx, {...args(), state: 'started'})
    assert.equal(r.status, 'ok', r.msg)
    assert.deepEqual(r.data?.running, ports)
    assert.equal(local.stats.execs, execs + 1)
  })

  it('check mode: would stop, nothing stopped', async () => {
    const r = await run1(redisInstancesModule, context(local, {check: true}), {...args(), state: 'stopped'})
    assert.equal(r.status, 'changed')
    assert.match(r.msg!, /^would stop 3/)
    assert.equal(cli(p0, 'PING'), 'PONG')
  })

  it('restarted: new processes on every port', async () => {
    const before = ports.map((p) => readFileSync(join(dir, String(p), 'redis.pid'), 'utf8').trim())
    const r = await run1(redisInstancesModule, ctx, {...args(), state: 'restarted'})
    assert.equal(r.status, 'changed', r.msg)
    const now = ports.map((p) => readFileSync(join(dir, String(p), 'redis.pid'), 'utf8').trim())
    now.forEach((pid, i) => assert.notEqual(pid, before[i]))
    for (const p of ports) assert.equal(cli(p, 'PING'), 'PONG')
  })

  it('stop → changed; stop again → ok', async () => {
    const r = await run1(redisInstancesModule, ctx, {...args(), state: 'stopped'})
    assert.equal(r.status, 'changed', r.msg)
    assert.deepEqual(r.data?.stopped, ports)
    for (const p of ports) assert.match(cli(p, 'PING'), /Could not connect|refused/)
    assert.equal((await run1(redisInstancesModule, ctx, {...args(), state: 'stopped'})).status, 'ok')
  })

  it('a port held by another process: that port failed with its log tail, the others started', async () => {
    // Accepts and stays silent, like any non-redis service; its sockets are read so that
    // close() can finish once the module's probe has hung up.
    const conns = new Set<Socket>()
    const taken: Server = createServer((sock) => {
      conns.add(sock)
      sock.on('close', () => conns.delete(sock)).resume()
    })
    await new Promise<void>((ok) => taken.listen(p0 + 1, '127.0.0.1', ok))
    try {
      const r = await run1(redisInstancesModule, ctx, {...args(), state: 'started'})
      assert.equal(r.status, 'failed')
      assert.deepEqual(r.data?.failed, [p0 + 1])
      assert.deepEqual(r.data?.started, [p0, p0 + 2])
      assert.match(r.msg!, new RegExp(`port ${p0 + 1}: `))
      assert.match(r.msg!, /Address already in use/)
      assert.match(r.msg!, /redis\.log/)
    } finally {
      conns.forEach((sock) => sock.destroy())
      await new Promise((ok) => taken.close(ok))
    }
    const again = await run1(redisInstancesModule, ctx, {...args(), state: 'started'})
    assert.equal(again.status, 'changed', again.msg)
    assert.deepEqual(again.data?.started, [p0 + 1])
  })

  it('stopped leaves a foreign redis-server alone, even on one of the ports', async () => {
    const fdir = join(base, 'foreign')
    mkdirSync(fdir)
    const fport = p0 + 3
    writeFileSync(join(fdir, 'f.conf'), `port ${fport}\nbind 127.0.0.1\ndaemonize yes\npidfile ${fdir}/f.pid\nlogfile ${fdir}/f.log\ndir ${fdir}\nsave ""\n`)
    execFileSync(join(bin, 'redis-server'), [join(fdir, 'f.conf')])
    for (let i = 0; i < 50 && cli(fport, 'PING') !== 'PONG'; i++) await new Promise((ok) => setTimeout(ok, 100))
    assert.equal(cli(fport, 'PING'), 'PONG')
    try {
      const r = await run1(redisInstancesModule, ctx, {...args(), ports: [...ports, fport], state: 'stopped'})
      assert.equal(r.status, 'changed', r.msg)
      assert.deepEqual(r.data?.stopped, ports)
      assert.match(r.msg!, new RegExp(`port ${fport} is served by a redis-server not started from .*left running`))
      assert.equal(cli(fport, 'PING'), 'PONG', 'the foreign instance survived')
    } finally {
      // Stop it ourselves, by the pid in its own pidfile.
      const pid = Number(readFileSync(join(fdir, 'f.pid'), 'utf8').trim())
      process.kill(pid, 'SIGTERM')
      for (let i = 0; i < 50 && cli(fport, 'PING') === 'PONG'; i++) await new Promise((ok) => setTimeout(ok, 100))
    }
    assert.match(cli(fport, 'PING'), /Could not connect|refused/)
  })

  it('with requirepass: start and stop work, the password appears nowhere in the results', async () => {
    const password = `pw-${process.pid}-s3cr3t`
    ports.forEach((p) => writeConf(p, `requirepass ${password}\nmasterauth ${password}`))
    const c = context(local, {secrets: new Set([password])})
    const started = await run1(redisInstancesModule, c, {...args(), password, state: 'started'})
    assert.equal(started.status, 'changed', started.msg)
    assert.match(cli(p0, 'PING'), /NOAUTH/)
    const again = await run1(redisInstancesModule, c, {...args(), password, state: 'started'})
    assert.equal(again.status, 'ok', again.msg)
    const wrong = await run1(redisInstancesModule, c, {...args(), password: 'not-it', state: 'stopped'})
    const stopped = await run1(redisInstancesModule, c, {...args(), password, state: 'stopped'})
    // A wrong password still stops our own instances: through their own pidfiles.
    assert.equal(wrong.status, 'changed', wrong.msg)
    assert.equal(stopped.status, 'ok', stopped.msg)
    // Without the argument, the password is read from each redis.conf (0600).
    assert.equal((await run1(redisInstancesModule, c, {...args(), state: 'started'})).status, 'changed')
    const viaConf = await run1(redisInstancesModule, c, {...args(), state: 'stopped'})
    assert.equal(viaConf.status, 'changed', viaConf.msg)
    assert.match(viaConf.msg!, /stopped 3/)
    for (const r of [started, again, wrong, stopped, viaConf]) assert.ok(!JSON.stringify(r).includes(password), JSON.stringify(r))
  })

  it('stopped + remove deletes the port dirs; keep_data keeps the data files', async () => {
    ports.forEach((p) => writeConf(p))
    assert.equal((await run1(redisInstancesModule, ctx, {...args(), state: 'started'})).status, 'changed')
    const keep = await run1(redisInstancesModule, ctx, {...args(), ports: [p0], state: 'stopped', remove: true, keep_data: true})
    assert.equal(keep.status, 'changed', keep.msg)
    assert.ok(existsSync(join(dir, String(p0), 'nodes.conf')) && !existsSync(join(dir, String(p0), 'redis.conf')))
    const r = await run1(redisInstancesModule, ctx, {...args(), state: 'stopped', remove: true})
    assert.equal(r.status, 'changed', r.msg)
    assert.deepEqual(r.data?.removed, ports)
    for (const p of ports) assert.equal(existsSync(join(dir, String(p))), false)
    assert.equal((await run1(redisInstancesModule, ctx, {...args(), state: 'stopped', remove: true})).status, 'ok')
  })
})

// Runs every command inside one network namespace: the root namespace's firewall is
// never touched, whatever the module does.
class NetnsTransport implements Transport {
  private inner = new LocalTransport('netns')
  readonly host = 'netns'
  readonly address = '127.0.0.1'
  get stats() {
    return this.inner.stats
  }
  constructor(private ns: string) {}
  connect() {
    return this.inner.connect()
  }
  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(`ip netns exec ${quote(this.ns)} sh -c ${quote(command)}`, opts)
  }
  upload(_files: UploadFile[]): Promise<void> {
    throw new Error('not used')
  }
  putFile(): Promise<void> {
    throw new Error('not used')
  }
  close() {
    return this.inner.close()
  }
}

describe('firewall (inside a throwaway network namespace)', () => {
  const ns = `bmfw${process.pid}`
  const t = new NetnsTransport(ns)
  const fctx = context(t)
  const sh = async (cmd: string) => {
    const r = await t.exec(cmd)
    assert.equal(r.exitCode, 0, `${cmd}: ${r.stderr}`)
    return r.stdout
  }
  const args = {ports: ['6379:6478', '16379:16478'], sources: ['198.51.100.7', '203.0.113.0/24'], state: 'present', tag: 'baremetal'}

  before(async () => {
    execFileSync('ip', ['netns', 'add', ns])
    // Refuse to go on unless commands really run in another namespace.
    const inside = (await sh('readlink /proc/self/ns/net')).trim()
    const root = execFileSync('readlink', ['/proc/self/ns/net'], {encoding: 'utf8'}).trim()
    assert.notEqual(inside, root)
    await sh('iptables -w -A INPUT -p tcp --dport 22 -m comment --comment unrelated -j ACCEPT')
  })
  after(() => {
    execFileSync('ip', ['netns', 'del', ns])
  })

  it('present → changed; present again → ok', async () => {
    const r1 = await run1(firewallModule, fctx, args)
    assert.equal(r1.status, 'changed', r1.msg)
    const r2 = await run1(firewallModule, fctx, args)
    assert.equal(r2.status, 'ok', r2.msg)
  })

  it('the rules are ours, tagged, DROP last, jumps first in INPUT', async () => {
    const chain = (await sh('iptables -w -S BAREMETAL-baremetal')).trim().split('\n')
    assert.equal(chain[0], '-N BAREMETAL-baremetal')
    for (const line of chain.slice(1)) assert.match(line, /--comment baremetal/)
    assert.match(chain.at(-1)!, /-j DROP$/)
    assert.ok(chain.some((l) => l.includes('-s 198.51.100.7/32')) && chain.some((l) => l.includes('-i lo')))
    const input = (await sh('iptables -w -S INPUT')).trim().split('\n')
    assert.match(input[1], /--dport (6379:6478|16379:16478) .*-j BAREMETAL-baremetal/)
    assert.match(input[2], /-j BAREMETAL-baremetal/)
    assert.ok(input.some((l) => l.includes('--comment unrelated')))
  })

  it('check mode with other sources: would change, nothing changed', async () => {
    const before = await sh('iptables -w -S')
    const r = await run1(firewallModule, context(t, {check: true}), {...args, sources: ['198.51.100.7']})
    assert.equal(r.status, 'changed')
    assert.match(r.msg!, /^would change/)
    assert.equal(await sh('iptables -w -S'), before)
  })

  it('sources changed: only the difference is applied', async () => {
    const r = await run1(firewallModule, fctx, {...args, sources: ['198.51.100.7', '192.0.2.5']})
    assert.equal(r.status, 'changed', r.msg)
    assert.equal((r.data?.added as string[]).length, 1)
    assert.equal((r.data?.removed as string[]).length, 1)
    const chain = await sh('iptables -w -S BAREMETAL-baremetal')
    assert.ok(chain.includes('192.0.2.5/32') && !chain.includes('203.0.113.0/24'))
    assert.equal((await run1(firewallModule, fctx, {...args, sources: ['198.51.100.7', '192.0.2.5']})).status, 'ok')
  })

  it('absent removes only our chain and jumps; the unrelated rule survives; absent again → ok', async () => {
    const r = await run1(firewallModule, fctx, {...args, state: 'absent'})
    assert.equal(r.status, 'changed', r.msg)
    const all = await sh('iptables -w -S')
    assert.ok(!all.includes('BAREMETAL'), all)
    assert.match(all, /-A INPUT -p tcp -m tcp --dport 22 -m comment --comment unrelated -j ACCEPT/)
    assert.match(all, /-P INPUT ACCEPT/)
    assert.equal((await run1(firewallModule, fctx, {...args, state: 'absent'})).status, 'ok')
  })
})

after(() => {
  rmSync(base, {recursive: true, force: true})
})
