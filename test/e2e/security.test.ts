// Security, end to end: the Redis password never on a command line nor in any output,
// the firewall open to the inventory only, hostile values as data through every module,
// path safety of uploads. Three test hosts: h1 and h2 run the cluster, h3 is an outsider
// (not in the inventory) on the same network.
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chmodSync, readdirSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join, resolve} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, ROOT, show, type CliResult} from './cli.js'
import {sharedRedisBuild, sleep} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

const FIX = resolve(ROOT, 'test/fixtures/hostile')
// Every character that means something to sh, Handlebars, YAML or redis.conf.
const SECRET = `pw with spaces $(touch /tmp/pwned-pw) \`touch /tmp/pwned-bt\` 'sq' "dq" ;semi | & > x\nnewline {{ inventory_hostname }} \\ end-Zq9`
// What must never appear in any output, whole or in pieces.
const FRAGMENTS = [SECRET, ...SECRET.split('\n'), 'pwned-pw', 'pwned-bt', 'end-Zq9', JSON.stringify(SECRET).slice(1, -1)]
const PORT = 7100
const COUNT = 3

let fleet: Fleet
let build: Record<string, string>
let inv: string
let h1: TestHost, h2: TestHost, h3: TestHost
const env = {BAREMETAL_REDIS_PASSWORD: SECRET}
const up = (extra: Record<string, string | number | boolean> = {}) => redisArgs({...build, redis_port_start: PORT, redis_count: COUNT, ...extra})

before(async () => {
  fleet = await createFleet(3)
  ;[h1, h2, h3] = fleet.hosts
  inv = fleet.writeInventory({hosts: [h1, h2], path: join(fleet.dir, 'redis.yml')})
  build = await sharedRedisBuild(fleet, h1)
})

after(async () => {
  if (!fleet) return
  await cli(['down', '-i', inv, ...up()], {env, timeoutMs: 120_000}).catch(() => {})
  await fleet.destroy()
})

function assertNoSecret(where: string, text: string, fragments = FRAGMENTS): void {
  for (const f of fragments) assert.ok(!text.includes(f), `${where} contains ${JSON.stringify(f)}:\n${text.slice(Math.max(0, text.indexOf(f) - 300), text.indexOf(f) + 300)}`)
}

const allOutput = (r: CliResult) => r.stdout + '\n' + r.stderr

// Every command line on the machine (test hosts share its process table), sampled while `fn` runs.
async function watchCommandLines<T>(fn: () => Promise<T>): Promise<{value: T; samples: number; hits: string[]}> {
  let stop = false
  let samples = 0
  const hits: string[] = []
  const loop = (async () => {
    while (!stop) {
      const out = await new Promise<string>((res) => execFile('ps', ['-e', '-ww', '-o', 'args='], {maxBuffer: 64 << 20}, (_e, stdout) => res(stdout ?? '')))
      samples++
      for (const line of out.split('\n')) if (FRAGMENTS.slice(1).some((f) => line.includes(f))) hits.push(line)
      await sleep(100)
    }
  })()
  try {
    const value = await fn()
    return {value, samples, hits}
  } finally {
    stop = true
    await loop
  }
}

// One inline command over a plain socket: the first reply line.
function rawCommand(to: TestHost, port: number, cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const sock = connect({host: to.ip, port, timeout: 5000}, () => sock.write(cmd + '\r\n'))
    let buf = ''
    sock.on('data', (d) => {
      buf += d
      if (buf.includes('\r\n')) {
        sock.destroy()
        res(buf.split('\r\n')[0])
      }
    })
    sock.on('timeout', () => sock.destroy(new Error('timeout')))
    sock.on('error', rej)
  })
}

async function tcpOpen(from: TestHost, to: TestHost, port: number): Promise<boolean> {
  const r = await fleet.nsExec(from, `timeout 3 bash -c 'exec 3<>/dev/tcp/${to.ip}/${port}' && echo open || echo closed`)
  return r.stdout.trim() === 'open'
}

describe('secrets', () => {
  it('redis_password from the environment: requirepass and masterauth in 0600 files, never on a command line, never printed', async () => {
    const {value: r, samples, hits} = await watchCommandLines(() => cli(['up', '-i', inv, ...up(), '--json'], {env, timeoutMs: 600_000}))
    assert.equal(r.code, 0, show(r))
    assert.ok(samples > 10, `only ${samples} process samples`)
    assert.deepEqual(hits, [], 'the password appeared on a command line')
    assertNoSecret('up --json', allOutput(r))
    assert.ok(!(r.json.warnings as string[]).some((w) => /unauthenticated/.test(w)), 'a password is set: no warning')

    for (const h of [h1, h2]) {
      const conf = await fleet.nsExec(
        h,
        `stat -c '%a %n' ~/redis_cluster/${PORT} ~/redis_cluster/${PORT}/redis.conf; grep -c '^requirepass ' ~/redis_cluster/${PORT}/redis.conf; grep -c '^masterauth ' ~/redis_cluster/${PORT}/redis.conf`,
      )
      assert.match(conf.stdout, /^750 .*\n600 .*redis\.conf\n1\n1\n$/, conf.stdout)
      // Nothing in the password ran: no marker file on the host or the controller.
      const m = await fleet.nsExec(h, 'ls /tmp/pwned-* ~/pwned-* 2>/dev/null | wc -l')
      assert.equal(m.stdout.trim(), '0', `marker on ${h.name}`)
    }
    assert.ok(!readdirSync('/tmp').some((f) => f.startsWith('pwned-')), 'marker on the controller')

    // Redis got the password exactly, quotes, newline and all; without it nothing works.
    assert.match(await rawCommand(h1, PORT, 'PING'), /^-NOAUTH/)
    const authed = new Redis({host: h1.ip, port: PORT + 2, password: SECRET, lazyConnect: true, maxRetriesPerRequest: 0})
    await authed.connect()
    assert.deepEqual(await authed.config('GET', 'requirepass'), ['requirepass', SECRET])
    assert.deepEqual(await authed.config('GET', 'masterauth'), ['masterauth', SECRET])
    assert.match(String(await authed.call('CLUSTER', 'INFO')), /cluster_state:ok/)
    authed.disconnect()

    // A re-run, human output with --diff: no change, nothing printed.
    const again = await cli(['up', '-i', inv, ...up(), '--diff', '-v'], {env, timeoutMs: 300_000})
    assert.equal(again.code, 0, show(again))
    assert.match(again.stdout, /no changes/)
    assertNoSecret('up --diff -v', allOutput(again))

    const s = await cli(['status', '-i', inv, ...up(), '--json'], {env, timeoutMs: 60_000})
    assert.equal(s.code, 0, show(s))
    assert.equal(s.json.ok, true)
    assertNoSecret('status --json', allOutput(s))
  })

  it('redis_password_file: read on the controller, same cluster, nothing printed; a bad one or a mistyped -e is refused without echoing it', async () => {
    const file = join(fleet.dir, 'redis-password')
    writeFileSync(file, SECRET + '\n')
    chmodSync(file, 0o644)
    const r = await cli(['up', '-i', inv, ...up(), '-e', `redis_password_file=${file}`, '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      r.json.tasks.filter((t: {status: string}) => t.status === 'changed'),
      [],
      'the same password: nothing changes',
    )
    assert.ok(
      (r.json.warnings as string[]).some((w) => w.includes(`${file} is readable by other users`)),
      JSON.stringify(r.json.warnings),
    )
    assertNoSecret('up with redis_password_file', allOutput(r))

    // From the inventory, relative to it.
    chmodSync(file, 0o600)
    const withFile = fleet.writeInventory({hosts: [h1, h2], path: join(fleet.dir, 'pwfile.yml'), vars: {redis_password_file: 'redis-password'}})
    let s = await cli(['status', '-i', withFile, ...up(), '--json'], {timeoutMs: 60_000})
    assert.equal(s.code, 0, show(s))
    assertNoSecret("status with the inventory's redis_password_file", allOutput(s))

    // A wrong password: a clear failure, neither password printed.
    const wrong = join(fleet.dir, 'wrong-password')
    writeFileSync(wrong, 'wrong-Zq8\n', {mode: 0o600})
    for (const json of [false, true]) {
      s = await cli(['status', '-i', inv, ...up(), '-e', `redis_password_file=${wrong}`, ...(json ? ['--json'] : [])], {timeoutMs: 60_000})
      assert.notEqual(s.code, 0, show(s))
      assert.match(allOutput(s), /authentication failed|WRONGPASS|invalid password/i, show(s))
      assertNoSecret('status with a wrong password', allOutput(s), [...FRAGMENTS, 'wrong-Zq8'])
    }
    s = await cli(['status', '-i', inv, ...up(), '-e', `redis_password_file=${join(fleet.dir, 'missing')}`])
    assert.equal(s.code, 5, show(s))
    assert.match(s.stderr, /redis_password_file .*missing.* cannot be read: no such file/)

    const typo = await cli(['up', '-i', inv, ...up(), '-e', 'redis_password:leaked-Zq7'])
    assert.equal(typo.code, 5, show(typo))
    assertNoSecret('a mistyped -e', allOutput(typo), ['leaked-Zq7'])
  })
})

describe('firewall', () => {
  it("data and bus ports: open to the inventory's hosts and the controller, closed to an outsider until redis_allowed_clients lists it", async () => {
    // The cluster of the previous tests runs on h1 and h2; h3 is not in the inventory.
    assert.ok(await tcpOpen(h2, h1, PORT), "h2 (in the inventory) reaches h1's data port")
    assert.ok(await tcpOpen(h2, h1, PORT + 10000), "h2 reaches h1's bus port")
    assert.ok(!(await tcpOpen(h3, h1, PORT)), "h3 (outsider) must not reach h1's data port")
    assert.ok(!(await tcpOpen(h3, h1, PORT + 10000)), "h3 must not reach h1's bus port")
    // The controller (the address each host sees it from) is let in: this test talks to Redis.
    const c = new Redis({host: h2.ip, port: PORT, password: SECRET, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000})
    await c.connect()
    assert.equal(await c.ping(), 'PONG')
    c.disconnect()

    // This time the password comes from -e (on the controller's command line, as documented): still never printed.
    let r = await cli(['up', '-i', inv, ...up({redis_allowed_clients: `${h3.ip}/32`}), '-e', `redis_password=${SECRET}`, '--json', '--diff'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    assertNoSecret('up -e redis_password=… --json --diff', allOutput(r))
    assert.ok(r.json.tasks.some((t: {task: string; status: string}) => /^Firewall/.test(t.task) && t.status === 'changed'))
    assert.ok(await tcpOpen(h3, h1, PORT), 'listed in redis_allowed_clients: h3 reaches the data port')
    assert.ok(await tcpOpen(h3, h2, PORT + 10000), 'and the bus port')

    // Taken off the list, it is shut out again (rules are diffed, not only added).
    r = await cli(['up', '-i', inv, ...up(), '--json'], {env, timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    assert.ok(!(await tcpOpen(h3, h1, PORT)), 'h3 removed from redis_allowed_clients is closed out again')
  })
})

describe('hostile values and paths', () => {
  const EVIL = `$(touch /tmp/pwned-1)\`touch /tmp/pwned-2\`;touch /tmp/pwned-3 "dq" 'sq' | touch /tmp/pwned-4 && touch ~/pwned-5 > x`
  const SPACEY = `dir with spaces; $(touch pwned-6) 'q' \`touch pwned-7\``

  it('inventory, -e and command output values pass through command, shell, file, copy, template, redis_instances and firewall as data', async () => {
    const hinv = fleet.writeInventory({hosts: [h1, h2], path: join(fleet.dir, 'hostile.yml'), vars: {evil: EVIL, spacey: SPACEY}})
    for (const h of [h1, h2]) await fleet.nsExec(h, `printf '%s' '{{ inventory_hostname }}' > ~/tpl-source`)
    const r = await cli(['run', '-i', hinv, join(FIX, 'site.yml'), '-e', 'tpl_evil={{ inventory_hostname }}', '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    const tasks = r.json.tasks as Array<{task: string; host: string; status: string; msg: string; ignored?: boolean; data?: {stdout?: string}}>
    const on = (task: string, host = 'h1') => tasks.find((t) => t.task === task && t.host === host)!
    assert.equal(on('command argument as one word').data?.stdout, EVIL)
    assert.equal(on('shell with quote').data?.stdout, EVIL)
    // The firewall refuses what is not a port, an address or a tag name, before running anything.
    assert.match(on('firewall port from a hostile value').msg, /not a port or port range/)
    assert.match(on('firewall source from a hostile value').msg, /not an IPv4 address or CIDR/)
    assert.match(on('firewall tag from a hostile value').msg, /tag must be/)
    assert.equal(on('instances script with a hostile directory').status, 'ok')
    for (const h of [h1, h2]) {
      const m = await fleet.nsExec(h, 'ls -d /tmp/pwned-* ~/pwned-* ~/hostile/pwned-* ~/hostile/*/pwned-* ~/x 2>/dev/null | wc -l')
      assert.equal(m.stdout.trim(), '0', `a marker file appeared on ${h.name}: something executed`)
      const files = await fleet.nsExec(h, 'cd ~/hostile && ls -A && cat ./*.conf && ls -A ./*/')
      assert.ok(files.stdout.includes(`${SPACEY}.conf\n`), files.stdout)
      assert.ok(files.stdout.includes(`copied ${SPACEY}\n`), files.stdout)
      // Rendered once: {{ … }} inside a value from -e or from a command's output stays text.
      assert.ok(files.stdout.includes(`evil ${EVIL}\nspacey ${SPACEY}\ntpl {{ inventory_hostname }}\nreg {{ inventory_hostname }}\n`), files.stdout + files.stderr)
    }
    assert.ok(!readdirSync('/tmp').some((f) => f.startsWith('pwned-')), 'marker on the controller')
  })

  it('a symlink at dest is replaced, never written through; a symlink to a directory is a directory; ".." in dest is refused', async () => {
    const one = fleet.writeInventory({hosts: [h1], path: join(fleet.dir, 'paths.yml'), vars: {evil: 'e', spacey: 's'}})
    await fleet.nsExec(h1, 'rm -rf ~/ps ~/victim ~/escape.conf ~/escape2 && mkdir -p ~/ps/realdir && printf "victim\\n" > ~/victim && ln -s ~/victim ~/ps/link.conf && ln -s ~/ps/realdir ~/ps/dirlink')
    await fleet.nsExec(h1, `printf '%s' 'x' > ~/tpl-source`)
    const r = await cli(['run', '-i', one, join(FIX, 'paths.yml'), '-e', 'up=..', '-e', '{"tpl_evil": "t", "reg": {"stdout": "r"}}', '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    const tasks = r.json.tasks as Array<{task: string; status: string; msg: string}>
    const t = (name: string) => tasks.find((x) => x.task === name)!
    assert.equal(t('dest is a symlink to a file').status, 'changed')
    assert.match(t('dest with a .. component').msg, /contains a "\.\." component: refused/)
    assert.match(t('dest climbing out through a variable').msg, /contains a "\.\." component: refused/)
    const m = await fleet.nsExec(
      h1,
      'cat ~/victim; test -L ~/ps/link.conf && echo link || echo file; head -1 ~/ps/link.conf; head -1 ~/ps/realdir/h.conf.hbs; ls ~/escape.conf ~/escape2 2>&1 | grep -c "No such"',
    )
    assert.equal(m.stdout, 'victim\nfile\nevil e\nevil e\n2\n', m.stdout + m.stderr)
  })
})
