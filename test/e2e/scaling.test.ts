import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {connect} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Redis} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {BIN, cli, ROOT, show, type CliResult} from './cli.js'
import {redisArgs} from './redis-fleet.js'

// Scaling online, end to end: one fleet of three SSH hosts, the inventory starting with
// two. 2 hosts → add the 3rd → remove the 1st (--remove-missing) → add it back with the
// controller SIGKILLed mid-move and re-run; a `baremetal load --verify` runs across each
// change and must lose no acknowledged key. With a password, so MIGRATE … AUTH is used.

const PORT = 7100
const COUNT = 3
const PASSWORD = 'scale-e2e-Secret-7f3a'

let fleet: Fleet
let h1: TestHost
let inv12: string
let inv123: string
let inv23: string

before(async () => {
  fleet = await createFleet(3)
  ;[h1] = fleet.hosts
  const vars = {redis_port_start: PORT, redis_count: COUNT, redis_replicas: 0, redis_password: PASSWORD}
  inv12 = fleet.writeInventory({hosts: fleet.hosts.slice(0, 2), vars, path: join(fleet.dir, 'inv12.yml')})
  inv123 = fleet.writeInventory({hosts: fleet.hosts, vars, path: join(fleet.dir, 'inv123.yml')})
  inv23 = fleet.writeInventory({hosts: fleet.hosts.slice(1), vars, path: join(fleet.dir, 'inv23.yml')})
  // Redis builds once per host, all three at once; the cluster starts on two.
  const build = await cli(['up', '-i', inv123, '--tags', 'build', ...redisArgs(), '--json'], {timeoutMs: 1_800_000})
  assert.equal(build.code, 0, show(build))
  const up = await cli(['up', '-i', inv12, ...redisArgs(), '--json'], {timeoutMs: 600_000})
  assert.equal(up.code, 0, show(up))
})

const running = new Set<number>()

after(async () => {
  // A failed assertion must not leave a load (or a killed-run's child) behind.
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  if (fleet) await fleet.destroy()
})

interface Background {
  done: Promise<CliResult>
  stop(): Promise<CliResult>
}

// `load --verify` in the background until stopped (SIGINT: it stops writing, verifies, reports).
// One request in flight per client on its own connections, the writer's pace before pipelining:
// the moves this file times out on scale with the keys written.
function backgroundLoad(inv: string): Background {
  let pid = 0
  const done = cli(['load', '-i', inv, '--clients', '6', '--pipeline', '1', '--connections', '6', '--duration', '1800', '--verify', '--json'], {
    timeoutMs: 2_400_000,
    onSpawn: (p) => running.add((pid = p)),
  })
  void done.finally(() => running.delete(pid))
  return {
    done,
    async stop() {
      process.kill(pid, 'SIGINT')
      return done
    },
  }
}

function assertNoLoss(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what}: ${show(r)}`)
  const {load, verify} = r.json
  assert.ok(load.acked > 500, `${what}: only ${load.acked} SETs acknowledged`)
  assert.equal(verify.checked, load.acked, `${what}: every acknowledged key read back`)
  assert.equal(verify.lost, 0, `${what}: lost keys, e.g. ${verify.lostSamples}`)
  assert.equal(verify.wrong, 0, `${what}: wrong values, e.g. ${verify.wrongSamples}`)
  assert.ok(!JSON.stringify(r.json).includes(PASSWORD))
}

async function status(inv: string) {
  const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
  return {r, report: r.json}
}

function assertBalanced(report: {masters: Array<{slotCount: number}>}, masters: number): void {
  assert.equal(report.masters.length, masters)
  const sizes = report.masters.map((m) => m.slotCount)
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    16384,
  )
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `slots per master ${sizes}`)
}

const clusterTask = (r: CliResult) => (r.json.tasks as Array<{task: string; status: string; msg: string}>).find((t) => t.task === 'Cluster formed')

// What one node lists in CLUSTER NODES (addresses), asked directly.
async function knownAddrs(ip: string, port: number): Promise<string[]> {
  const r = new Redis({host: ip, port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null})
  try {
    await r.connect()
    return String(await r.call('CLUSTER', 'NODES'))
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[1].split('@')[0])
  } finally {
    r.disconnect()
  }
}

// Nothing listens there any more (a refused TCP connection, not a timeout).
function refused(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({host: ip, port, timeout: 3000})
    sock.once('connect', () => (sock.destroy(), resolve(false)))
    sock.once('timeout', () => (sock.destroy(), resolve(false)))
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

describe('scaling online: 2 hosts → 3 → remove the first → add it back, killed mid-move', () => {
  it('scale-out: a third host joins, slots rebalance, no acknowledged key is lost', async () => {
    const load = backgroundLoad(inv12)
    await new Promise((r) => setTimeout(r, 3000))
    const up = await cli(['up', '-i', inv123, ...redisArgs(), '--json'], {timeoutMs: 600_000})
    await new Promise((r) => setTimeout(r, 2000))
    const l = await load.stop()
    assert.equal(up.code, 0, show(up))
    assert.equal(clusterTask(up)?.status, 'changed')
    assert.match(clusterTask(up)!.msg, /joined 3 node\(s\) \(3 as masters\), moved \d+ slot\(s\)/)
    process.stdout.write(
      `# scale-out: ${clusterTask(up)!.msg}\n# load across it: ${l.stdout.length ? `${l.json?.load?.acked} SETs acknowledged, errors ${JSON.stringify(l.json?.load?.errors)}` : ''}\n`,
    )
    assert.ok(!up.stdout.includes(PASSWORD))
    assertNoLoss(l, 'scale-out')

    const {r, report} = await status(inv123)
    assert.equal(r.code, 0, show(r))
    assert.equal(report.ok, true, report.problems.join('; '))
    assertBalanced(report, 9)

    // Re-run: nothing to do.
    const again = await cli(['up', '-i', inv123, ...redisArgs(), '--json'], {timeoutMs: 600_000})
    assert.equal(again.code, 0, show(again))
    assert.equal(clusterTask(again)?.status, 'ok', clusterTask(again)?.msg)
  })

  it('scale-in without --remove-missing changes nothing and says why', async () => {
    const r = await cli(['up', '-i', inv23, ...redisArgs()], {timeoutMs: 600_000})
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /3 node\(s\) of the cluster are not in the inventory: .*nothing was changed/)
    assert.match(r.stdout, /--remove-missing/)
    const {report} = await status(inv123)
    assert.equal(report.ok, true, report.problems.join('; '))
    assertBalanced(report, 9)
  })

  it('scale-in with --remove-missing: drained, forgotten by every node, stopped; no key lost', async () => {
    const load = backgroundLoad(inv23)
    await new Promise((r) => setTimeout(r, 3000))
    const up = await cli(['up', '-i', inv23, ...redisArgs(), '--remove-missing', '--json'], {timeoutMs: 600_000})
    await new Promise((r) => setTimeout(r, 2000))
    const l = await load.stop()
    assert.equal(up.code, 0, show(up))
    assert.match(clusterTask(up)!.msg, /removed 3 node\(s\) \(3 stopped\)/)
    assertNoLoss(l, 'scale-in')

    const {r, report} = await status(inv23)
    assert.equal(r.code, 0, show(r))
    assert.equal(report.ok, true, report.problems.join('; '))
    assertBalanced(report, 6)
    for (const h of fleet.hosts.slice(1)) {
      for (let p = PORT; p < PORT + COUNT; p++) {
        const addrs = await knownAddrs(h.ip, p)
        assert.ok(!addrs.some((a) => a.startsWith(`${h1.ip}:`)), `${h.ip}:${p} still remembers a node of ${h1.name}: ${addrs}`)
      }
      // The firewall of the staying hosts no longer lets the removed one in.
      const fw = await fleet.nsExec(h, 'iptables -S')
      assert.ok(!fw.stdout.includes(`${h1.ip}/32`), `${h.name} still allows ${h1.ip}`)
    }
    for (let p = PORT; p < PORT + COUNT; p++) assert.ok(await refused(h1.ip, p), `${h1.ip}:${p} still running`)
  })

  it('scale-out killed mid-move (SIGKILL), then re-run: open slots settled, balanced, no key lost', async () => {
    // Enough data that moving a third of it takes a few seconds.
    const record = join(fleet.dir, 'keys.json')
    const fill = await cli(['load', '-i', inv23, '--clients', '16', '--requests', '150000', '--data-size', '200', '--record', record, '--json'], {timeoutMs: 900_000})
    assert.equal(fill.code, 0, show(fill))
    const load = backgroundLoad(inv23)

    // The removed host comes back: its reset instances start empty and join.
    const killed = await new Promise<{out: string; sawMove: boolean}>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'up', '-i', inv123, ...redisArgs()], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
      if (child.pid) running.add(child.pid)
      let out = ''
      let sawMove = false
      const timer = setTimeout(() => child.kill('SIGKILL'), 600_000)
      child.stdout.on('data', (d) => {
        out += d
        if (!sawMove && /redis_cluster: moving \d+ slot/.test(out)) {
          sawMove = true
          setTimeout(() => child.kill('SIGKILL'), 400)
        }
      })
      child.stderr.on('data', (d) => (out += d))
      child.on('error', reject)
      child.on('close', () => {
        clearTimeout(timer)
        resolve({out, sawMove})
      })
    })
    assert.ok(killed.sawMove, `the migration never started:\n${killed.out.slice(-4000)}`)
    assert.doesNotMatch(killed.out, /moved \d+ slot\(s\) and \d+ key\(s\) in/, 'killed too late: the move had finished')

    const mid = await status(inv123)
    const sizes = mid.report.masters.map((m: {slotCount: number}) => m.slotCount)
    process.stdout.write(`# killed mid-move: ${mid.report.openSlots.length} open slot(s), slots per master ${Math.min(...sizes)}-${Math.max(...sizes)}\n`)
    assert.ok(mid.report.openSlots.length > 0 || Math.max(...sizes) - Math.min(...sizes) > 1, `mid-move state expected: ${JSON.stringify(mid.report.problems)}`)

    const rerun = await cli(['up', '-i', inv123, ...redisArgs(), '--json'], {timeoutMs: 600_000})
    await new Promise((r) => setTimeout(r, 2000))
    const l = await load.stop()
    assert.equal(rerun.code, 0, show(rerun))
    assert.equal(clusterTask(rerun)?.status, 'changed')
    process.stdout.write(`# re-run: ${clusterTask(rerun)!.msg}\n`)
    assertNoLoss(l, 'kill and re-run')

    const {r, report} = await status(inv123)
    assert.equal(r.code, 0, show(r))
    assert.equal(report.ok, true, report.problems.join('; '))
    assert.deepEqual(report.openSlots, [])
    assertBalanced(report, 9)

    const check = await cli(['load', '-i', inv123, '--verify-record', record, '--json'], {timeoutMs: 600_000})
    assert.equal(check.code, 0, show(check))
    assert.equal(check.json.verify.checked, fill.json.load.acked)
    assert.equal(check.json.verify.lost, 0)
    assert.equal(check.json.verify.wrong, 0)
  })
})
