import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'
import {countVerbose, verbosityOf} from '../../../src/cli/flags.js'
import {withLimit} from '../../../src/inventory/pattern.js'
import {sshOptions} from '../../../src/cli/common.js'
import {connectionOf} from '../../../src/play/runner.js'
import {loadInventory} from '../../../src/inventory/inventory.js'

// Flag handling: -vvv, -u/--private-key precedence, and the real binary's exit codes for
// bad command lines and the look-only flags (a local inventory: nothing leaves the machine).
const BIN = resolve(fileURLToPath(import.meta.url), '../../../../../bin/run.js')
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], {encoding: 'utf8'})

describe('cli: flag parsing', () => {
  it('-vv / -vvv become --verbosity N, not after --', () => {
    assert.deepEqual(countVerbose(['-vvv', 'x', '-v', '--', '-vv']), ['--verbosity=3', 'x', '-v', '--', '-vv'])
    assert.equal(verbosityOf({verbose: true}), 1)
    assert.equal(verbosityOf({verbose: false}), 0)
    assert.equal(verbosityOf({verbose: false, verbosity: 3}), 3)
  })

  it('-u and --private-key apply where the inventory sets no ansible_user / key', () => {
    const inv = loadInventory('/tmp/i.yml', 'all:\n  hosts:\n    a: {ansible_host: 192.0.2.1}\n    b: {ansible_host: 192.0.2.2, ansible_user: deploy, ansible_ssh_private_key_file: /k/b}\n')
    const conn = (h: string) => connectionOf(inv.hosts.get(h)!, sshOptions({'accept-new-host-keys': false, user: 'ops', 'private-key': '/k/ops'}))
    assert.deepEqual([conn('a').user, conn('a').privateKeyFile], ['ops', '/k/ops'])
    assert.deepEqual([conn('b').user, conn('b').privateKeyFile], ['deploy', '/k/b'])
    assert.equal(connectionOf(inv.hosts.get('a')!, {}).user, inv.hosts.get('a')!.connection.user)
  })

  it('withLimit keeps the group alone without a limit', () => {
    assert.equal(withLimit('redis'), 'redis')
    assert.deepEqual(withLimit('redis', 'h1'), ['redis', 'h1'])
  })

  it('unknown flags, bad values and missing arguments exit 5 (bad input), with --json an error document', () => {
    for (const args of [['run', '--no-such-flag', 'x.yml'], ['run', '-f', 'abc', 'x.yml'], ['run'], ['ping', '--bogus'], ['status', '--nope']]) {
      const r = cli(...args)
      assert.equal(r.status, 5, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /--help lists the flags/)
    }
    const j = cli('run', '--no-such-flag', 'x.yml', '--json')
    assert.equal(j.status, 5)
    assert.equal(JSON.parse(j.stdout).error.code, 'INPUT')
  })

  it('--syntax-check, --list-hosts and --list-tasks load, validate and exit 0; a bad playbook or --start-at-task exits 5', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-flags-'))
    const inv = join(dir, 'inv.yml')
    const pb = join(dir, 'pb.yml')
    const marker = join(dir, 'ran')
    writeFileSync(inv, 'all:\n  hosts:\n    l1: {ansible_connection: local}\n    l2: {ansible_connection: local}\n')
    writeFileSync(pb, `- hosts: all\n  tasks:\n    - name: touch\n      command: touch ${marker}\n      tags: [t1]\n`)
    assert.equal(cli('run', '-i', inv, pb, '--syntax-check').status, 0)
    const lh = cli('run', '-i', inv, pb, '--list-hosts', '-l', '!l1')
    assert.equal(lh.status, 0, lh.stderr)
    assert.match(lh.stdout, /hosts \(1\):\n {6}l2/)
    const lt = cli('run', '-i', inv, pb, '--list-tasks', '--json')
    assert.deepEqual(JSON.parse(lt.stdout).plays[0].tasks, [{name: 'touch', tags: ['t1']}])
    assert.equal(spawnSync('test', ['-e', marker]).status, 1, 'nothing ran')
    assert.equal(cli('run', '-i', inv, pb, '--start-at-task', 'nosuch').status, 5)
    writeFileSync(pb, '- hosts: all\n  tasks:\n    - name: x\n      nosuchmodule: {}\n')
    assert.equal(cli('run', '-i', inv, pb, '--syntax-check').status, 5)
  })
})
