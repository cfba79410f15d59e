import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {runPlaybook, taskNameMatches, type Reporter, type RunOptions} from '../../../src/play/runner.js'
import type {ModuleSpec} from '../../../src/modules/types.js'

// The runner's phases on the controller (ansible_connection: local): connect, run a task on
// hosts, tally; --start-at-task; bad input after a change; -vvv tracing; an unreachable host.
const INV = 'all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {ansible_connection: local}\n'
const quiet: Reporter = {playStart() {}, taskStart() {}, hostResult() {}, taskEnd() {}, log() {}, warn() {}}

async function run(yaml: string, opts: Partial<RunOptions> = {}, inv = INV) {
  return runPlaybook({inventory: loadInventory('inv.yml', inv), playbook: loadPlaybook('/tmp/pb.yml', allModules(), yaml), reporter: quiet, ...opts})
}

describe('runner phases', () => {
  it('tallies the recap per host and the exit code from it', async () => {
    const r = await run('- hosts: all\n  tasks:\n    - name: one\n      command: "true"\n    - name: two\n      command: "false"\n      when: inventory_hostname == "b"\n')
    assert.deepEqual(r.recap.a, {ok: 0, changed: 1, failed: 0, skipped: 1, unreachable: 0, ignored: 0, rescued: 0})
    assert.deepEqual(r.recap.b, {ok: 0, changed: 1, failed: 1, skipped: 0, unreachable: 0, ignored: 0, rescued: 0})
    assert.equal(r.exitCode, 2)
    assert.ok(r.tasks.every((t) => typeof t.roundTrips === 'number'))
  })

  it('a host that cannot connect gets one "connect" record (module ssh) and exit 4', async () => {
    const inv = 'all:\n  hosts:\n    a: {ansible_connection: local}\n    gone: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: nobody}\n'
    const r = await run('- hosts: all\n  tasks:\n    - name: one\n      command: "true"\n', {ssh: {connectRetries: 0, connectTimeoutMs: 2000}}, inv)
    const connect = r.tasks.find((t) => t.host === 'gone')!
    assert.deepEqual([connect.task, connect.module, connect.status], ['connect', 'ssh', 'unreachable'])
    assert.equal(r.recap.a.changed, 1)
    assert.equal(r.exitCode, 4)
  })

  it('--start-at-task skips the tasks before the named one (exact or glob)', async () => {
    const pb = '- hosts: all\n  tasks:\n    - name: first\n      command: "true"\n    - name: Second step\n      command: "true"\n    - name: third\n      command: "true"\n'
    assert.deepEqual([...new Set((await run(pb, {startAtTask: 'Second step'})).tasks.map((t) => t.task))], ['Second step', 'third'])
    assert.deepEqual([...new Set((await run(pb, {startAtTask: 'Sec*'})).tasks.map((t) => t.task))], ['Second step', 'third'])
    assert.ok(taskNameMatches('Install Redis', 'Install*') && !taskNameMatches('Install', 'install'))
  })

  it('bad input from a task before any change is "nothing ran" (throws, exit 5); after a change it is a failure (exit 2)', async () => {
    const bad = '    - name: bad\n      command: "echo {{ nosuchvar }}"\n'
    await assert.rejects(run(`- hosts: all\n  tasks:\n${bad}`), (e: {exitCode: number}) => e.exitCode === 5)
    const r = await run(`- hosts: all\n  tasks:\n    - name: change\n      command: "true"\n${bad}    - name: after\n      command: "true"\n`)
    assert.equal(r.exitCode, 2)
    assert.deepEqual(
      r.tasks.filter((t) => t.task === 'bad').map((t) => t.status),
      ['failed', 'failed'],
    )
    assert.match(r.tasks.find((t) => t.task === 'bad')!.msg, /nosuchvar/)
    assert.equal(r.tasks.filter((t) => t.task === 'after').length, 0)
  })

  it('-vvv: every command a module runs is logged with its output, secrets masked', async () => {
    const logs: string[] = []
    const reporter: Reporter = {...quiet, log: (h, m) => logs.push(`${h}: ${m}`)}
    const r = await run('- hosts: a\n  vars:\n    api_token: s3cr3t-Zq\n  tasks:\n    - name: echo\n      command: "echo hello {{ api_token }}"\n', {reporter, verbosity: 3})
    assert.equal(r.exitCode, 0)
    assert.ok(
      logs.some((l) => /^a: \$ /.test(l)),
      logs.join('\n'),
    )
    assert.ok(
      logs.some((l) => /stdout: [\s\S]*hello/.test(l)),
      logs.join('\n'),
    )
    assert.ok(!logs.join('\n').includes('s3cr3t-Zq'), 'the secret is masked')
  })

  it('the mid-run module context carries the play peers (playHosts / groupHosts) with --limit', async () => {
    let seen: string[][] = []
    const probe: ModuleSpec = {
      name: 'peers',
      description: 'records peers',
      args: {},
      checkMode: true,
      async run(ctx) {
        seen = [ctx.playHosts.map((h) => h.host), (ctx.groupHosts ?? []).map((h) => h.host)]
        return [{status: 'ok'}]
      },
    }
    const modules = new Map([...allModules(), [probe.name, probe]])
    await runPlaybook({
      inventory: loadInventory('inv.yml', INV),
      playbook: loadPlaybook('/tmp/pb.yml', modules, '- hosts: all\n  tasks:\n    - name: p\n      peers: {}\n'),
      reporter: quiet,
      limit: '!a',
    })
    assert.deepEqual(seen, [['b'], ['a', 'b']])
  })
})
