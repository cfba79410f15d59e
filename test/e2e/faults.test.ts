// Faults, end to end: the real CLI against real sshd hosts in network namespaces and
// real Redis. Links are taken down, SSH sessions killed mid-upload, the controller
// interrupted and killed, a redis-server killed while the cluster forms. Each case
// checks that the run ends in bounded time, says what happened, and that a re-run
// converges.
import assert from 'node:assert/strict'
import {randomBytes, createHash} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import {dropSshSessions, hostProcesses, shapeLink, sharedRedisBuild, sleep, startCli} from './fault-tools.js'
import {redisArgs} from './redis-fleet.js'

let fleet: Fleet
let build: Record<string, string>
let inv: string

// Small: 3 ports per host, below 22768 so the bus ports (+10000) stay out of the ephemeral range.
const PORT = 7000
const COUNT = 3
const up = (extra: Record<string, string | number | boolean> = {}) => redisArgs({...build, redis_port_start: PORT, redis_count: COUNT, ...extra})

type Task = {task: string; host: string; status: string; msg: string}
const tasksOf = (json: {tasks: Task[]}, name: string) => json.tasks.filter((t) => t.task === name)

before(async () => {
  fleet = await createFleet(3)
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml')})
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
})

after(async () => {
  if (!fleet) return
  for (const h of fleet.hosts) {
    await fleet.setLink(h, true).catch(() => {})
    await shapeLink(fleet, h).catch(() => {})
  }
  await cli(['down', '-i', inv, ...up()], {timeoutMs: 120_000}).catch(() => {})
  await fleet.destroy()
})

async function waitForProcess(host: TestHost, cmdline: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await hostProcesses(host)).includes(cmdline)) {
    if (Date.now() > deadline) throw new Error(`"${cmdline}" did not start on ${host.name} in ${timeoutMs} ms`)
    await sleep(100)
  }
}

async function clusterStatus() {
  const r = await cli(['status', '-i', inv, '--json', ...up()], {timeoutMs: 60_000})
  return {r, report: r.json as {ok: boolean; masters: Array<{addr: string; host: string}>; problems: string[]; slotsCovered: number}}
}

describe('faults: Redis Cluster up', () => {
  it('a host unreachable at start: the others complete, the recap and exit code say so; back, a re-run completes it and the cluster includes it', async () => {
    const h3 = fleet.hosts[2]
    await fleet.setLink(h3, false)
    let r: CliResult
    try {
      r = await cli(['up', '-i', inv, ...up(), '--json'], {timeoutMs: 300_000})
    } finally {
      await fleet.setLink(h3, true)
    }
    assert.equal(r.code, 4, show(r))
    assert.equal(r.json.recap.h3.unreachable, 1, JSON.stringify(r.json.recap))
    for (const h of ['h1', 'h2']) {
      assert.equal(r.json.recap[h].unreachable, 0)
      const started = tasksOf(r.json, 'Instances running').find((t) => t.host === h)
      assert.equal(started?.status, 'changed', `${h} started its instances: ${JSON.stringify(started)}`)
    }
    // No cluster over a partial set unless asked (--allow-partial): the task says why.
    const formed = tasksOf(r.json, 'Cluster formed')
    assert.equal(formed.length, 1)
    assert.equal(formed[0].status, 'failed')
    assert.match(formed[0].msg, /not forming the cluster: 1 host\(s\) failed earlier tasks \(h3\)/)
    assert.ok(
      (r.json.warnings as string[]).some((w) => /redis_password is not set.*unauthenticated/.test(w)),
      'no password: the recap warns',
    )

    const again = await cli(['up', '-i', inv, ...up(), '--json'], {timeoutMs: 300_000})
    assert.equal(again.code, 0, show(again))
    assert.equal(tasksOf(again.json, 'Instances running').find((t) => t.host === 'h3')?.status, 'changed')
    const {r: s, report} = await clusterStatus()
    assert.equal(s.code, 0, show(s))
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.masters.length, 9)
    assert.ok(
      report.masters.some((m) => m.addr.startsWith(`${h3.ip}:`)),
      'h3 is in the cluster',
    )
  })

  it('a redis node killed while the cluster forms: the failure names the node and the step; a re-run finishes', async (t) => {
    let r = await cli(['down', '-i', inv, ...up()], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    const h2 = fleet.hosts[1]
    const live = startCli(['up', '-i', inv, ...up({redis_cluster_timeout: 30})], {timeoutMs: 300_000})
    // Killed right when formation starts sending: its MEET, the wait for the nodes to meet or
    // the wait for agreement must fail on it (formation cannot finish without it).
    await live.waitFor(/redis_cluster: assigning slots and config epochs/)
    const kill = await fleet.nsExec(h2, `kill -9 $(cat ~/redis_cluster/${PORT + 1}/redis.pid)`)
    assert.equal(kill.code, 0, kill.stderr)
    r = await live.result
    assert.equal(r.code, 2, show(r))
    const addr = `${h2.ip}:${PORT + 1}`
    const failure = r.stdout.split('\n').find((l) => /failed\s+h1: /.test(l)) ?? ''
    t.diagnostic(failure.trim())
    assert.ok(failure.includes(addr), `names the node ${addr}: ${failure}`)
    assert.match(failure, /host h2/)
    assert.match(failure, /CLUSTER MEET.* failed|slot\/epoch setup failed|stopped answering while waiting for (nodes to meet|the cluster to agree)/)
    assert.ok((await live.result).ms < 90_000, 'reported well before the timeout of a hung formation')

    r = await cli(['up', '-i', inv, ...up(), '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    const {report} = await clusterStatus()
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.masters.length, 9)
  })

  it('the controller SIGKILLed while the cluster forms: the next run converges', async () => {
    let r = await cli(['down', '-i', inv, ...up()], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    const live = startCli(['up', '-i', inv, ...up()], {timeoutMs: 300_000})
    await live.waitFor(/redis_cluster: \d+ MEET\(s\) among \d+ node\(s\)|redis_cluster: \d+ node\(s\) meeting seed/)
    live.signal('SIGKILL')
    r = await live.result
    assert.equal(r.code, null, 'killed')
    assert.doesNotMatch(r.stdout, /RECAP/)

    r = await cli(['up', '-i', inv, ...up(), '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    const formed = tasksOf(r.json, 'Cluster formed')[0]
    assert.notEqual(formed.status, 'failed', formed.msg)
    const {report} = await clusterStatus()
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    assert.equal(report.masters.length, 9)
    // And a third run is a no-op.
    r = await cli(['up', '-i', inv, ...up(), '--json'], {timeoutMs: 300_000})
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      r.json.tasks.filter((t: Task) => t.status === 'changed'),
      [],
    )
  })
})

describe('faults: any play', () => {
  it('a host lost mid-task (link down): no hang, the others finish, the recap says unreachable; a re-run converges', async () => {
    const pb = join(fleet.dir, 'midplay.yml')
    writeFileSync(
      pb,
      `- hosts: all
  tasks:
    - name: dir
      file: {path: ~/midplay, state: directory}
    - name: slow
      command: sleep 8
    - name: stamp
      copy: {content: "done\\n", dest: ~/midplay/stamp}
`,
    )
    const h2 = fleet.hosts[1]
    const live = startCli(['run', '-i', inv, pb, '--json'], {timeoutMs: 180_000})
    let r: CliResult & {ms: number}
    try {
      // Pull the cable while h2 runs the slow command.
      await waitForProcess(h2, 'sleep 8')
      await fleet.setLink(h2, false)
      r = await live.result
    } finally {
      await fleet.setLink(h2, true)
    }
    assert.equal(r.code, 4, show(r))
    assert.ok(r.ms < 60_000, `took ${r.ms} ms`)
    assert.equal(r.json.recap.h2.unreachable, 1)
    const slow = tasksOf(r.json, 'slow').find((t) => t.host === 'h2')
    assert.equal(slow?.status, 'unreachable')
    assert.match(slow!.msg, /connection to .* lost while a command ran/)
    for (const h of ['h1', 'h3']) assert.equal(tasksOf(r.json, 'stamp').find((t) => t.host === h)?.status, 'changed', `${h} finished`)

    const again = await cli(['run', '-i', inv, pb, '--json'], {timeoutMs: 120_000})
    assert.equal(again.code, 0, show(again))
    const stamps = tasksOf(again.json, 'stamp')
    assert.equal(stamps.find((t) => t.host === 'h2')?.status, 'changed')
    assert.ok(stamps.filter((t) => t.host !== 'h2').every((t) => t.status === 'ok'))
  })

  it('the SSH connection dropped during an upload: the destination keeps its old content (temp + rename); a re-run converges', async () => {
    const h1 = fleet.hosts[0]
    const one = fleet.writeInventory({hosts: [h1], path: join(fleet.dir, 'one.yml')})
    // 2.5 MB goes in the batched upload (base64 heredoc); 6 MB is streamed over SFTP.
    const small = randomBytes(2_500_000)
    const big = randomBytes(6_000_000)
    writeFileSync(join(fleet.dir, 'small.bin'), small)
    writeFileSync(join(fleet.dir, 'big.bin'), big)
    const pb = join(fleet.dir, 'upload.yml')
    writeFileSync(
      pb,
      `- hosts: all
  tasks:
    - name: small upload
      copy: {src: small.bin, dest: ~/up/small.bin}
    - name: big upload
      copy: {src: big.bin, dest: ~/up/big.bin}
`,
    )
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    const remote = async () => (await fleet.nsExec(h1, 'cd ~/up && sha256sum small.bin big.bin | cut -c1-64; ls -A')).stdout
    const old = 'old\n'
    await fleet.nsExec(h1, `mkdir -p ~/up && printf 'old\\n' > ~/up/small.bin && printf 'old\\n' > ~/up/big.bin`)
    const oldSha = sha(Buffer.from(old))
    await shapeLink(fleet, h1, '4mbit')
    try {
      for (const task of ['small upload', 'big upload']) {
        const live = startCli(['run', '-i', one, pb], {timeoutMs: 180_000})
        await live.waitFor(new RegExp(`TASK \\[${task}\\]`))
        await sleep(1500)
        assert.ok((await dropSshSessions(fleet, h1)) > 0, 'an SSH session to drop')
        const r = await live.result
        assert.equal(r.code, 4, show(r))
        assert.match(r.stdout, new RegExp(`TASK \\[${task}\\]\\n\\s+unreachable h1: connection to .* lost`), show(r))
        const state = await remote()
        const [s, b] = state.split('\n')
        if (task === 'small upload') assert.equal(s, oldSha, `small.bin must keep its old content after the drop\n${state}`)
        else assert.equal(s, sha(small), 'small.bin was completed by this second run')
        assert.equal(b, oldSha, `big.bin must keep its old content after the drop\n${state}`)
      }
    } finally {
      await shapeLink(fleet, h1)
    }
    const r = await cli(['run', '-i', one, pb], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    const state = await remote()
    assert.equal(state, `${sha(small)}\n${sha(big)}\nbig.bin\nsmall.bin\n`, 'both complete, no temp file left')
  })

  it('Ctrl-C: no new task starts, commands in flight finish (or are aborted: at once on a second Ctrl-C, after the grace period otherwise), the recap is printed, exit 130', async () => {
    const pb = join(fleet.dir, 'interrupt.yml')
    writeFileSync(
      pb,
      `- hosts: all
  tasks:
    - name: slow
      command: sleep {{ secs }}
    - name: after
      file: {path: "~/after-interrupt", state: touch}
`,
    )
    const [h1, h2, h3] = fleet.hosts
    const invOf = (h: TestHost) => fleet.writeInventory({hosts: [h], path: join(fleet.dir, `int-${h.name}.yml`)})
    // Three runs at once, one per host: a short command, a long one, a long one with two Ctrl-C.
    const cases = [
      {host: h1, secs: 3, sigints: 1},
      {host: h2, secs: 300, sigints: 1},
      {host: h3, secs: 301, sigints: 2},
    ]
    await Promise.all(
      cases.map(async (c) => {
        const live = startCli(['run', '-i', invOf(c.host), pb, '-e', `secs=${c.secs}`], {timeoutMs: 120_000})
        await live.waitFor(/TASK \[slow\]/)
        // The command is running on the host.
        await waitForProcess(c.host, `sleep ${c.secs}`)
        const t0 = Date.now()
        live.signal('SIGINT')
        if (c.sigints === 2) {
          await sleep(1000)
          live.signal('SIGINT')
        }
        const r = await live.result
        const ms = Date.now() - t0
        const ctx = `${c.host.name} sleep ${c.secs}: ${ms} ms\n${show(r)}`
        assert.equal(r.code, 130, ctx)
        assert.match(r.stderr, /interrupted: no new work is started/, ctx)
        assert.match(r.stdout, /RECAP/, ctx)
        assert.match(r.stdout, /STOPPED: interrupted/, ctx)
        assert.doesNotMatch(r.stdout, /TASK \[after\]/, ctx)
        if (c.secs === 3) {
          assert.ok(ms < 12_000, `in-flight command allowed to finish, then exit: ${ctx}`)
          assert.match(r.stdout, new RegExp(`changed\\s+${c.host.name}`), ctx)
        } else if (c.sigints === 1) {
          assert.ok(ms >= 18_000 && ms < 35_000, `aborted after the 20 s grace period: ${ctx}`)
        } else {
          assert.ok(ms < 12_000, `second Ctrl-C aborts at once: ${ctx}`)
        }
        const m = await fleet.nsExec(c.host, 'test -e ~/after-interrupt && echo started || echo not-started')
        assert.equal(m.stdout.trim(), 'not-started', ctx)
        // An aborted command does not outlive the run on the host.
        await sleep(500)
        assert.ok(!(await hostProcesses(c.host)).some((p) => p === `sleep ${c.secs}`), `sleep ${c.secs} still runs on ${c.host.name}: ${ctx}`)
      }),
    )
  })

  it('max_fail_percentage: more than that share of hosts failing stops the play for all; at or below it the others go on', async () => {
    const pb = join(fleet.dir, 'mfp.yml')
    const play = (name: string, failOn: string) => `- name: ${name}
  hosts: all
  max_fail_percentage: 40
  tasks:
    - name: maybe fail
      command: "false"
      when: inventory_hostname in ${failOn}
    - name: next
      file: {path: "~/mfp-${name}", state: touch}
`
    writeFileSync(pb, play('two-of-three', "['h1', 'h2']"))
    let r = await cli(['run', '-i', inv, pb, '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 2, show(r))
    assert.deepEqual(tasksOf(r.json, 'next'), [], 'no host runs the next task (h3 did not fail, and still stops)')
    assert.match(r.json.aborted, /max_fail_percentage 40% exceeded: 2 of 3 hosts failed/)
    r = await cli(['run', '-i', inv, pb], {timeoutMs: 120_000})
    assert.match(r.stdout, /STOPPED: max_fail_percentage 40% exceeded/)

    writeFileSync(pb, play('one-of-three', "['h1']"))
    r = await cli(['run', '-i', inv, pb, '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 2, show(r))
    assert.deepEqual(
      tasksOf(r.json, 'next')
        .map((t) => t.host)
        .sort(),
      ['h2', 'h3'],
      '33% ≤ 40%: the others go on',
    )
    assert.equal(r.json.aborted, undefined)
  })
})
