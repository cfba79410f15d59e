import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show} from './cli.js'

// ansible-playbook's everyday flags on two real sshd hosts (issue 13): each flag's effect
// on the hosts, and the exit codes the README promises.

let fleet: Fleet
let work: string
let inv: string

const pb = (name: string, yaml: string) => {
  const p = join(work, `${name}.yml`)
  writeFileSync(p, yaml)
  return p
}
const onHosts = async (cmd: string) => Promise.all(fleet.hosts.map(async (h) => (await fleet.nsExec(h, cmd)).stdout.trim()))
const clean = () => onHosts('rm -rf ~/habits && mkdir ~/habits')

// Two markers, one per task: which tasks ran on which host.
const MARKERS = `- hosts: all
  tasks:
    - name: first marker
      file: {path: ~/habits/first, state: touch}
    - name: second marker
      file: {path: ~/habits/second, state: touch}
`

before(async () => {
  fleet = await createFleet(2)
  work = join(fleet.dir, 'work')
  mkdirSync(work, {recursive: true})
  inv = fleet.writeInventory({path: join(work, 'inv.yml')})
})

after(async () => {
  await fleet?.destroy()
})

describe('cli habits e2e (2 hosts)', () => {
  it('an unknown flag exits 5 (bad input), not 2, and nothing runs', async () => {
    await clean()
    const r = await cli(['run', '-i', inv, pb('markers', MARKERS), '--no-such-flag'])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /Nonexistent flag: --no-such-flag/)
    assert.deepEqual(await onHosts('ls ~/habits 2>/dev/null | wc -l'), ['0', '0'])
  })

  it('-e "a=1 b=\'two words\'" sets two variables', async () => {
    await clean()
    const p = pb('evars', '- hosts: all\n  tasks:\n    - name: write\n      copy: {dest: ~/habits/vars.txt, content: "a={{ a }} b={{ b }}\\n"}\n')
    const r = await cli(['run', '-i', inv, p, '-e', "a=1 b='two words'", '--json'])
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(await onHosts('cat ~/habits/vars.txt'), ['a=1 b=two words', 'a=1 b=two words'])
  })

  it("--limit '!h2' runs on every host but h2; --list-hosts shows the same and touches nothing", async () => {
    await clean()
    const listed = await cli(['run', '-i', inv, pb('markers', MARKERS), '--list-hosts', '--limit', '!h2'])
    assert.equal(listed.code, 0, show(listed))
    assert.match(listed.stdout, /hosts \(1\):\n {6}h1\n?/)
    assert.deepEqual(await onHosts('ls ~/habits 2>/dev/null | wc -l'), ['0', '0'], '--list-hosts touched nothing')
    const r = await cli(['run', '-i', inv, pb('markers', MARKERS), '--limit', '!h2', '--json'])
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(Object.keys(r.json.recap), ['h1'])
    assert.deepEqual(await onHosts('ls ~/habits 2>/dev/null | wc -l'), ['2', '0'])
  })

  it('--syntax-check and --list-tasks load and validate, connect to no host, exit 0; a bad playbook exits 5', async () => {
    await clean()
    // An inventory whose hosts cannot be reached: a look-only flag never tries.
    const dead = join(work, 'dead.yml')
    writeFileSync(dead, 'all:\n  hosts:\n    x1: {ansible_host: 192.0.2.1}\n')
    const sc = await cli(['run', '-i', dead, pb('markers', MARKERS), '--syntax-check'], {timeoutMs: 20_000})
    assert.equal(sc.code, 0, show(sc))
    assert.match(sc.stdout, /playbook: .*markers\.yml/)
    const lt = await cli(['run', '-i', inv, pb('markers', MARKERS), '--list-tasks', '--json'])
    assert.equal(lt.code, 0, show(lt))
    assert.deepEqual(
      lt.json.plays[0].tasks.map((t: {name: string}) => t.name),
      ['first marker', 'second marker'],
    )
    assert.deepEqual(await onHosts('ls ~/habits 2>/dev/null | wc -l'), ['0', '0'])
    const bad = await cli(['run', '-i', inv, pb('bad', '- hosts: all\n  tasks:\n    - name: x\n      nosuchmodule: {}\n'), '--syntax-check'])
    assert.equal(bad.code, 5, show(bad))
  })

  it('--start-at-task NAME skips the tasks before it; an unknown name exits 5 before any host', async () => {
    await clean()
    const r = await cli(['run', '-i', inv, pb('markers', MARKERS), '--start-at-task', 'second marker', '--json'])
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(await onHosts('ls ~/habits | tr "\\n" " "'), ['second', 'second'])
    const none = await cli(['run', '-i', inv, pb('markers', MARKERS), '--start-at-task', 'no such task'])
    assert.equal(none.code, 5, show(none))
    assert.match(none.stderr, /no task of the playbook has that name/)
  })

  it('-u USER connects as USER where the inventory sets no ansible_user (and the inventory wins where it does); --private-key gives the key', async () => {
    const bare = join(work, 'bare.yml')
    const hosts = fleet.hosts.map((h) => `    ${h.name}: {ansible_host: ${h.ip}}`).join('\n')
    writeFileSync(bare, `all:\n  vars:\n    ansible_ssh_known_hosts_file: ${fleet.knownHostsPath}\n  hosts:\n${hosts}\n`)
    const whoami = pb('whoami', '- hosts: all\n  tasks:\n    - name: who\n      command: id -un\n')
    const asRoot = await cli(['run', '-i', bare, whoami, '-u', 'root', '--private-key', fleet.keyPath, '--json'])
    assert.equal(asRoot.code, 0, show(asRoot))
    assert.deepEqual(
      asRoot.json.tasks.map((t: {data: {stdout: string}}) => t.data.stdout.trim()),
      ['root', 'root'],
    )
    const asNobody = await cli(['run', '-i', bare, whoami, '-u', 'bm-no-such-user', '--private-key', fleet.keyPath, '--json'])
    assert.equal(asNobody.code, 4, show(asNobody))
    assert.ok(
      asNobody.json.tasks.every((t: {status: string}) => t.status === 'unreachable'),
      show(asNobody),
    )
    const noKey = await cli(['run', '-i', bare, whoami, '-u', 'root', '--json'], {env: {SSH_AUTH_SOCK: ''}})
    assert.equal(noKey.code, 4, show(noKey))
    const invWins = await cli(['run', '-i', inv, whoami, '-u', 'bm-no-such-user', '--json'])
    assert.equal(invWins.code, 0, show(invWins))
  })

  it("a play's remote_user is the SSH user (above -u, below the inventory's ansible_user); strategy: free (still unsupported) is refused at its line, exit 5", async () => {
    const bare = join(work, 'bare-ru.yml')
    const hosts = fleet.hosts.map((h) => `    ${h.name}: {ansible_host: ${h.ip}}`).join('\n')
    writeFileSync(bare, `all:\n  vars:\n    ansible_ssh_known_hosts_file: ${fleet.knownHostsPath}\n  hosts:\n${hosts}\n`)
    const asUser = (u: string) => pb(`ru-${u}`, `- hosts: all\n  remote_user: ${u}\n  tasks:\n    - name: who\n      command: id -un\n`)
    const root = await cli(['run', '-i', bare, asUser('root'), '-u', 'bm-no-such-user', '--private-key', fleet.keyPath, '--json'])
    assert.equal(root.code, 0, show(root))
    assert.deepEqual(
      root.json.tasks.map((t: {data: {stdout: string}}) => t.data.stdout.trim()),
      ['root', 'root'],
    )
    const nobody = await cli(['run', '-i', bare, asUser('bm-no-such-user'), '-u', 'root', '--private-key', fleet.keyPath, '--json'])
    assert.equal(nobody.code, 4, show(nobody))
    const invWins = await cli(['run', '-i', inv, asUser('bm-no-such-user'), '--json'])
    assert.equal(invWins.code, 0, show(invWins))
    await clean()
    const free = await cli(['run', '-i', inv, pb('free', MARKERS.replace('- hosts: all\n', '- hosts: all\n  strategy: free\n')), '--json'])
    assert.equal(free.code, 5, show(free))
    const e = free.json?.error ?? {}
    assert.match(e.message ?? '', /strategy "free" is not supported/, show(free))
    assert.ok(String(e.file).endsWith('free.yml') && e.line === 2, `at free.yml:2: ${JSON.stringify(e)}`)
    assert.deepEqual(await onHosts('ls ~/habits'), ['', ''], 'nothing ran')
  })

  it("-v shows a changed command's output; -vvv every command, secrets masked", async () => {
    const p = pb('echo', '- hosts: h1\n  tasks:\n    - name: say\n      command: "echo habit-out-{{ api_token }}"\n')
    const quiet = await cli(['run', '-i', inv, p, '-e', 'api_token=Zq-s3cret-77'])
    assert.equal(quiet.code, 0, show(quiet))
    assert.doesNotMatch(quiet.stdout, /stdout: habit-out/)
    const v = await cli(['run', '-i', inv, p, '-e', 'api_token=Zq-s3cret-77', '-v'])
    assert.equal(v.code, 0, show(v))
    assert.match(v.stdout, /stdout: habit-out-\*+/)
    const vvv = await cli(['run', '-i', inv, p, '-e', 'api_token=Zq-s3cret-77', '-vvv'])
    assert.equal(vvv.code, 0, show(vvv))
    assert.match(vvv.stdout, /h1: \$ /)
    assert.match(vvv.stdout, /h1: exit 0/)
    assert.ok(!(v.stdout + v.stderr + vvv.stdout + vvv.stderr).includes('Zq-s3cret-77'), 'the secret never printed')
  })

  it('a template error after a task changed the hosts exits 2 (a task failed), not 5 ("nothing ran")', async () => {
    await clean()
    const p = pb('late', '- hosts: all\n  tasks:\n    - name: change\n      file: {path: ~/habits/changed, state: touch}\n    - name: bad\n      command: "echo {{ no_such_var }}"\n')
    const r = await cli(['run', '-i', inv, p, '--json'])
    assert.equal(r.code, 2, show(r))
    assert.ok(
      r.json.tasks.some((t: {task: string; status: string; msg: string}) => t.task === 'bad' && t.status === 'failed' && /no_such_var/.test(t.msg)),
      show(r),
    )
    assert.deepEqual(await onHosts('ls ~/habits'), ['changed', 'changed'])
  })
})
