import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {BIN, ROOT, type CliResult, show} from './cli.js'

// Issue 13's compatibility suite: an Ansible project as users write them
// (test/fixtures/ansible-compat: ansible.cfg, an INI and a YAML inventory, group_vars/ and
// host_vars/, import_playbook, serial, pre/post_tasks, a role with defaults, vars, meta
// dependencies, handlers, templates using {% %} and files, blocks with rescue/always,
// import/include_tasks, delegate_to: localhost, gather_facts, and the modules lineinfile,
// blockinfile, stat, set_fact, assert, debug, fail). `baremetal run` must leave on the hosts
// exactly what the project says, change nothing on a second run, and, where ansible-playbook
// is installed, leave the same files as Ansible does on the same hosts.

const FIXTURE = join(ROOT, 'test/fixtures/ansible-compat')
const HAVE_ANSIBLE = spawnSync('ansible-playbook', ['--version']).status === 0

let fleet: Fleet
let project: string
let ctl: string

function runIn(cwd: string, cmd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, {cwd, env: {...process.env, ANSIBLE_CONFIG: join(cwd, 'ansible.cfg'), ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      let json: unknown
      try {
        json = args.includes('--json') ? JSON.parse(stdout) : undefined
      } catch {}
      resolvePromise({code, stdout, stderr, json})
    })
  })
}

const baremetal = (inventory: string, extra: string[] = []) => runIn(project, process.execPath, [BIN, 'run', 'site.yml', '--json', ...(inventory ? ['-i', inventory] : []), ...extra])

// Every file the project manages, on each host and on the controller: path → mode and content.
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const h of fleet.hosts) {
    const r = spawnSync('find', [join(h.home, 'compat'), '-printf', '%P\\t%y\\t%m\\n'], {encoding: 'utf8'})
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [rel, type, mode] = line.split('\t')
      out[`${h.name}:${rel || '.'}`] = `${type} ${mode}${type === 'f' ? `\n${readFileSync(join(h.home, 'compat', rel), 'utf8')}` : ''}`
    }
  }
  out['controller:serial.txt'] = readFileSync(join(ctl, 'serial.txt'), 'utf8')
  return out
}

function wipe(): void {
  for (const h of fleet.hosts) rmSync(join(h.home, 'compat'), {recursive: true, force: true})
  rmSync(join(ctl, 'serial.txt'), {force: true})
}

const changedTasks = (r: CliResult): string[] => (r.json.tasks as Array<{task: string; host: string; status: string}>).filter((t) => t.status === 'changed').map((t) => `${t.task} on ${t.host}`)

describe('an Ansible project, run by baremetal (and by ansible-playbook where installed)', () => {
  before(async () => {
    fleet = await createFleet(2)
    project = join(fleet.dir, 'compat')
    cpSync(FIXTURE, project, {recursive: true})
    ctl = join(fleet.dir, 'controller')
    mkdirSync(ctl, {recursive: true})
    const [h1, h2] = fleet.hosts
    writeFileSync(
      join(project, 'ansible.cfg'),
      `[defaults]\ninventory = inventory/hosts.ini\nremote_user = root\nprivate_key_file = ${fleet.keyPath}\nforks = 5\ntimeout = 10\nretry_files_enabled = False\n`,
    )
    // Known hosts: baremetal reads its own variable; Ansible gets the same file through --ssh-common-args.
    writeFileSync(join(project, 'inventory/group_vars/all.yml'), readFileSync(join(FIXTURE, 'inventory/group_vars/all.yml'), 'utf8') + `ansible_ssh_known_hosts_file: ${fleet.knownHostsPath}\n`)
    writeFileSync(
      join(project, 'inventory/hosts.ini'),
      `[cache]\n${h1.name} ansible_host=${h1.ip} node_id=1\n${h2.name} ansible_host=${h2.ip}\n\n[cache:vars]\nzone=ini-group\ncontroller_dir=${ctl}\n`,
    )
    mkdirSync(join(project, 'inventory/host_vars'), {recursive: true})
    writeFileSync(join(project, 'inventory/host_vars', `${h2.name}.yml`), 'node_id: 2\n')
    // The same inventory in YAML, beside it (group_vars/ and host_vars/ apply to both).
    writeFileSync(
      join(project, 'inventory/hosts.yml'),
      `cache:\n  hosts:\n    ${h1.name}: {ansible_host: ${h1.ip}, node_id: 1}\n    ${h2.name}: {ansible_host: ${h2.ip}}\n  vars:\n    zone: ini-group\n    controller_dir: ${ctl}\n`,
    )
  })

  after(async () => {
    if (fleet) await fleet.destroy()
  })

  const expected = (h: TestHost, idx: number): Record<string, string> => {
    const [h1, h2] = fleet.hosts
    const f = (mode: string, text: string) => `f ${mode}\n${text}`
    return {
      [`${h.name}:.`]: 'd 750',
      [`${h.name}:order.txt`]: f('644', 'pre\ncommon\nkv\npost\n'),
      [`${h.name}:kv`]: 'd 755',
      [`${h.name}:kv/kv.conf`]: f(
        '640',
        `port 7001\nmaxmemory 64mb\n# no modules\n# peers: ${h1.ip}, ${h2.ip}\n# ${h.name.toUpperCase()} on Debian 12, ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)!.length} vcpus\nzone ini-group\n`,
      ),
      [`${h.name}:kv/motd`]: f('644', 'managed by the compatibility project\n'),
      [`${h.name}:handlers.log`]: f('644', 'restarted 7001\nmotd changed\n'),
      [`${h.name}:facts.txt`]: f('644', `summary=${h.name}:7001:Debian\n`),
      [`${h.name}:hosts.txt`]: f('644', `# BEGIN ANSIBLE MANAGED BLOCK\n${h1.ip} ${h1.name}\n${h2.ip} ${h2.name}\n# END ANSIBLE MANAGED BLOCK\n`),
      [`${h.name}:included.txt`]: f('644', `included ${idx + 1}\n`),
      [`${h.name}:block.txt`]: f('644', 'block ran\n'),
      [`${h.name}:rescue.txt`]: f('644', 'rescued\n'),
      [`${h.name}:always.txt`]: f('644', 'always\n'),
    }
  }

  const expectedAll = (): Record<string, string> => {
    const want: Record<string, string> = {}
    fleet.hosts.forEach((h, i) => Object.assign(want, expected(h, i)))
    // serial: 1 — the first host's batch ends before the second one's starts.
    want['controller:serial.txt'] = fleet.hosts.map((h) => `${h.name} starts\n${h.name} ends\n`).join('')
    return want
  }

  it('baremetal run: every construct leaves its effect; the INI and the YAML inventory give the same hosts; a second run changes nothing', async () => {
    const first = await baremetal('')
    assert.equal(first.code, 0, show(first))
    const want = expectedAll()
    assert.deepEqual(snapshot(), want, show(first))
    // The handler ran once per host (one line), though two tasks notified it.
    const recap = first.json.recap as Record<string, {failed: number; rescued?: number}>
    for (const h of fleet.hosts) assert.equal(recap[h.name].failed, 0, `a rescued failure is not a failure: ${JSON.stringify(recap[h.name])}`)

    const again = await baremetal('inventory/hosts.yml')
    assert.equal(again.code, 0, show(again))
    assert.deepEqual(changedTasks(again), [], 'a second run (YAML inventory) changes nothing, as under Ansible')
    assert.deepEqual(snapshot(), want)
  })

  // What stays unsupported fails at load through the real CLI: exit 5, its file:line:col,
  // and what to write instead; nothing runs.
  it('every construct that stays unsupported is refused at load with its line and a fix', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['strategy: free', '- hosts: cache\n  strategy: free\n  tasks: []\n', /strategy "free" is not supported/],
      ['include_role', '- hosts: cache\n  tasks:\n    - include_role: {name: kv}\n', /include_role is not supported/],
      ['local_action', '- hosts: cache\n  tasks:\n    - local_action: command echo hi\n', /local_action/],
      ['include_tasks with a loop', '- hosts: cache\n  tasks:\n    - include_tasks: tasks/extra.yml\n      loop: [1, 2]\n', /loop/],
      ['lineinfile backup', '- hosts: cache\n  tasks:\n    - lineinfile: {path: /tmp/x, line: a, backup: yes}\n', /backup/],
      ['setup gather_subset', '- hosts: cache\n  tasks:\n    - setup: {gather_subset: [network]}\n', /gather_subset/],
      ['meta: refresh_inventory', '- hosts: cache\n  tasks:\n    - meta: refresh_inventory\n', /refresh_inventory/],
      ['become_method: doas', '- hosts: cache\n  become: yes\n  become_method: doas\n  tasks: []\n', /doas/],
      ['lookup()', "- hosts: cache\n  tasks:\n    - debug: {msg: \"{{ lookup('file', '/etc/hostname') }}\"}\n", /lookup/],
    ]
    for (const [what, text, message] of cases) {
      writeFileSync(join(project, 'refused.yml'), text)
      const r = await runIn(project, process.execPath, [BIN, 'run', 'refused.yml', '--syntax-check'])
      assert.equal(r.code, 5, `${what}: ${show(r)}`)
      assert.match(r.stderr + r.stdout, message, what)
      assert.match(r.stderr + r.stdout, /refused\.yml:\d+:\d+/, `${what} names its file:line:col`)
    }
  })

  // Compared with the same expectation as baremetal's run: the two leave the same files.
  it('ansible-playbook on the same hosts leaves the same files', {skip: !HAVE_ANSIBLE && 'ansible-playbook is not installed (apt-get install ansible)'}, async () => {
    wipe()
    const r = await runIn(project, 'ansible-playbook', ['site.yml', `--ssh-common-args=-o UserKnownHostsFile=${fleet.knownHostsPath}`])
    assert.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr.slice(-2000))
    assert.deepEqual(snapshot(), expectedAll())
  })
})
