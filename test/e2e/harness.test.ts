// The e2e suites trust these hosts to behave like separate machines; this checks that they do.
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'

const isRoot = process.getuid?.() === 0

function sh(cmd: string, args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(cmd, args, {encoding: 'utf8', timeout: 20_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr})
    })
  })
}

function ssh(fleet: Fleet, host: TestHost, command: string) {
  return sh('ssh', [
    '-i',
    fleet.keyPath,
    '-o',
    `UserKnownHostsFile=${fleet.knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    `root@${host.ip}`,
    command,
  ])
}

// Redis PING over a raw socket from the root namespace, with a short timeout so a dead link fails fast.
function redisPing(ip: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({host: ip, port, timeout: timeoutMs})
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')))
    sock.once('timeout', () => done(false))
    sock.once('error', () => done(false))
  })
}

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

// Zombies count as gone: PID 1 in a container may never reap daemons we killed.
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

describe('test-host harness', {skip: !isRoot && 'needs root (network namespaces)'}, () => {
  let fleet: Fleet
  let h1: TestHost
  let h2: TestHost

  before(async () => {
    const started = Date.now()
    fleet = await createFleet(2)
    console.log(`# fleet ${fleet.name}: 2 hosts in ${Date.now() - started} ms`)
    ;[h1, h2] = fleet.hosts
  })

  after(async () => {
    await fleet?.destroy()
  })

  it('reaches every host over ssh with the fleet key and strict host key checking', async () => {
    for (const host of fleet.hosts) {
      const r = await ssh(fleet, host, 'hostname -I; echo $HOME; ls /root')
      assert.equal(r.code, 0, r.stderr)
      const lines = r.stdout.split('\n')
      assert.equal(lines[0].trim(), host.ip)
      assert.equal(lines[1], '/root')
    }
  })

  it('gives each host its own /root and /tmp', async () => {
    assert.equal((await ssh(fleet, h1, 'echo one > /root/marker && echo t > /tmp/tmarker')).code, 0)
    assert.equal((await ssh(fleet, h2, 'ls /root /tmp')).stdout.includes('marker'), false)
    assert.equal(readFileSync(`${h1.home}/marker`, 'utf8'), 'one\n')
    assert.equal(existsSync(`${h2.home}/marker`), false)
    assert.equal(existsSync(`${h1.tmp}/tmarker`), true)
    assert.equal(existsSync('/root/marker'), false)
    const viaBackdoor = await fleet.nsExec(h1, 'cat /root/marker; hostname -I')
    assert.equal(viaBackdoor.code, 0, viaBackdoor.stderr)
    assert.equal(viaBackdoor.stdout, `one\n${h1.ip} \n`)
  })

  it('serves a redis started on h2 to the root namespace and to h1', async () => {
    const start = await ssh(fleet, h2, `redis-server --bind ${h2.ip} --port 7000 --protected-mode no --daemonize yes --pidfile /root/r.pid --dir /root --save ''`)
    assert.equal(start.code, 0, start.stderr)
    assert.ok(await eventually(() => redisPing(h2.ip, 7000)), 'redis on h2 reachable from the root namespace')
    const fromH1 = await fleet.nsExec(h1, `redis-cli -h ${h2.ip} -p 7000 ping`)
    assert.equal(fromH1.stdout.trim(), 'PONG', fromH1.stderr)
  })

  it('simulates a lost host with setLink', async () => {
    await fleet.setLink(h2, false)
    assert.equal(await redisPing(h2.ip, 7000, 1000), false)
    const fromH1 = await fleet.nsExec(h1, `timeout 2 redis-cli -h ${h2.ip} -p 7000 ping`)
    assert.notEqual(fromH1.stdout.trim(), 'PONG')
    await fleet.setLink(h2, true)
    assert.ok(await eventually(() => redisPing(h2.ip, 7000)), 'h2 back after link up')
    assert.equal((await ssh(fleet, h2, 'true')).code, 0)
  })

  it('writes an Ansible inventory, whole or for a subset', () => {
    const inv = parse(readFileSync(fleet.inventoryPath, 'utf8'))
    assert.deepEqual(inv.all.vars, {
      ansible_user: 'root',
      ansible_ssh_private_key_file: fleet.keyPath,
      ansible_ssh_known_hosts_file: fleet.knownHostsPath,
    })
    assert.deepEqual(inv.all.children.redis.hosts, {h1: {ansible_host: h1.ip}, h2: {ansible_host: h2.ip}})
    const path = fleet.writeInventory({hosts: [h2], vars: {redis_port: 7000, note: 'a: b'}, group: 'cache', path: `${fleet.dir}/sub.yml`})
    const sub = parse(readFileSync(path, 'utf8'))
    assert.equal(sub.all.vars.redis_port, 7000)
    assert.equal(sub.all.vars.note, 'a: b')
    assert.deepEqual(sub.all.children.cache.hosts, {h2: {ansible_host: h2.ip}})
  })

  it('grows and shrinks the fleet on the same subnet', async () => {
    const [h3] = await fleet.addHosts(1)
    assert.equal(h3.ip.split('.').slice(0, 3).join('.'), fleet.controllerIp.split('.').slice(0, 3).join('.'))
    assert.equal((await ssh(fleet, h3, 'hostname -I')).stdout.trim(), h3.ip)
    assert.equal(fleet.hosts.length, 3)
    await fleet.removeHost(h3)
    assert.equal(fleet.hosts.length, 2)
    assert.equal((await sh('ip', ['netns', 'list'])).stdout.includes(h3.netns), false)
    assert.equal(readFileSync(fleet.knownHostsPath, 'utf8').includes(h3.ip), false)
  })

  it('destroy removes namespaces, processes, bridge, firewall rule and files', async () => {
    const pids: number[] = []
    for (const host of fleet.hosts) {
      pids.push(...(await sh('ip', ['netns', 'pids', host.netns])).stdout.split(/\s+/).filter(Boolean).map(Number))
    }
    const redisPid = Number(readFileSync(`${h2.home}/r.pid`, 'utf8'))
    assert.ok(pids.includes(redisPid), 'redis is inside h2 namespace')
    assert.ok(pids.length >= 3, 'an sshd per host plus redis')

    await fleet.destroy()
    const netns = (await sh('ip', ['netns', 'list'])).stdout
    for (const host of [h1, h2]) assert.equal(netns.includes(host.netns), false)
    for (const pid of pids) assert.equal(running(pid), false, `pid ${pid} still running`)
    assert.equal((await sh('ip', ['link', 'show', `${fleet.name}br`])).code !== 0, true)
    assert.equal((await sh('iptables', ['-S', 'FORWARD'])).stdout.includes(`baremetal-test-${fleet.name}`), false)
    assert.equal(existsSync(fleet.dir), false)
    await fleet.destroy() // idempotent
  })
})
