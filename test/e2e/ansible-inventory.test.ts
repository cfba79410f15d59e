import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {BIN, type CliResult, show} from './cli.js'

// An Ansible-style project as users have it: hosts.ini, group_vars/, host_vars/ and an
// ansible.cfg naming the inventory, run with `baremetal run site.yml` from the project
// directory and no -i. The values the hosts end up with prove each piece was read, in
// Ansible's precedence; the old code ran the bundled local inventory instead.

let fleet: Fleet
let project: string

// cli() runs from the repository root; ./ansible.cfg is looked up in the current directory.
function runIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd, env: {...process.env, ANSIBLE_CONFIG: '', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolvePromise({code, stdout, stderr})
    })
  })
}

const write = (rel: string, text: string) => {
  mkdirSync(join(project, rel, '..'), {recursive: true})
  writeFileSync(join(project, rel), text)
}

before(async () => {
  fleet = await createFleet(2)
  project = join(fleet.dir, 'ansible-project')
  const [h1, h2] = fleet.hosts
  write(
    'ansible.cfg',
    `[defaults]
inventory = inventory/hosts.ini
remote_user = root
private_key_file = ${fleet.keyPath}
forks = 2
timeout = 10
retry_files_enabled = False
`,
  )
  write(
    'inventory/hosts.ini',
    `# the fleet
[app]
${h1.name} ansible_host=${h1.ip} app_port=7000
${h2.name} ansible_host=${h2.ip} app_port=7000

[appfleet:children]
app

[appfleet:vars]
zone=ini
tier=ini
ansible_ssh_known_hosts_file=${fleet.knownHostsPath}
`,
  )
  write('inventory/group_vars/all.yml', 'tier: inventory-all\nnote: inventory-all\n')
  write('inventory/group_vars/app/10-main.yml', 'zone: inventory-app\nrole: cache\n')
  write('inventory/host_vars/' + h2.name + '.yml', 'app_port: 7100\n')
  write('group_vars/app.yml', 'role: playbook-app\n')
  write('host_vars/' + h1.name, 'note: from-playbook-host-vars\n')
  write(
    'site.yml',
    `- hosts: appfleet
  tasks:
    - name: base
      file: {path: ~/bm-ansinv, state: directory}
    - name: write what the host sees
      copy:
        dest: ~/bm-ansinv/vars.txt
        content: "zone={{ zone }} tier={{ tier }} role={{ role }} port={{ app_port }} note={{ note }}\\n"
`,
  )
})

after(async () => {
  await fleet?.destroy()
})

describe('Ansible inventory and configuration (2 hosts)', () => {
  it('run without -i uses ansible.cfg, the INI inventory, group_vars/ and host_vars/ beside inventory and playbook', async () => {
    const r = await runIn(project, ['run', 'site.yml'])
    assert.equal(r.code, 0, show(r))
    assert.match(
      r.stderr,
      new RegExp(
        `inventory: ${join(project, 'inventory/hosts.ini').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(from inventory = in ${join(project, 'ansible.cfg').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`,
      ),
    )
    const [h1, h2] = fleet.hosts
    const v1 = await fleet.nsExec(h1, 'cat ~/bm-ansinv/vars.txt')
    const v2 = await fleet.nsExec(h2, 'cat ~/bm-ansinv/vars.txt')
    // zone: group_vars/app beats [appfleet:vars]; tier: group_vars/all beats the INI group vars;
    // role: the playbook's group_vars beat the inventory's; port: host_vars beat the INI host line.
    assert.equal(v1.stdout, 'zone=inventory-app tier=inventory-all role=playbook-app port=7000 note=from-playbook-host-vars\n', v1.stderr)
    assert.equal(v2.stdout, 'zone=inventory-app tier=inventory-all role=playbook-app port=7100 note=inventory-all\n', v2.stderr)
  })

  it('-i h1,h2, (a comma list of addresses) runs on those hosts with the cfg connection settings', async () => {
    const [h1, h2] = fleet.hosts
    write(
      'list.yml',
      `- hosts: ungrouped
  tasks:
    - name: mark
      copy: {dest: ~/bm-ansinv/list.txt, content: "{{ inventory_hostname }}\\n"}
`,
    )
    write('group_vars/all.yml', `ansible_ssh_known_hosts_file: ${fleet.knownHostsPath}\n`)
    const r = await runIn(project, ['run', '-i', `${h1.ip},${h2.ip},`, 'list.yml'])
    assert.equal(r.code, 0, show(r))
    assert.equal((await fleet.nsExec(h1, 'cat ~/bm-ansinv/list.txt')).stdout, `${h1.ip}\n`)
    assert.equal((await fleet.nsExec(h2, 'cat ~/bm-ansinv/list.txt')).stdout, `${h2.ip}\n`)
  })

  it('$ANSIBLE_CONFIG wins over ./ansible.cfg; its host_key_checking = False adds unknown host keys', async () => {
    const [h1, h2] = fleet.hosts
    const known = join(project, 'other/known_hosts')
    write('other/known_hosts', '')
    write('other/hosts', `[fresh]\n${h1.ip}\n${h2.ip}\n\n[fresh:vars]\nansible_ssh_known_hosts_file=${known}\n`)
    write('other/mark.yml', '- hosts: fresh\n  tasks:\n    - name: mark\n      copy: {dest: ~/bm-ansinv/other.txt, content: "ok\\n"}\n')
    const cfg = (hkc: string) => write('other/ansible.cfg', `[defaults]\ninventory = hosts\nprivate_key_file = ${fleet.keyPath}\nremote_user = root\n${hkc}`)
    cfg('')
    const strict = await runIn(project, ['run', 'other/mark.yml'], {ANSIBLE_CONFIG: join(project, 'other')})
    assert.equal(strict.code, 4, show(strict))
    assert.match(strict.stdout + strict.stderr, /is not in .*known_hosts/)
    cfg('host_key_checking = False\n')
    const r = await runIn(project, ['run', 'other/mark.yml'], {ANSIBLE_CONFIG: join(project, 'other')})
    assert.equal(r.code, 0, show(r))
    assert.match(r.stderr, /inventory: .*other\/hosts \(from inventory = in .*other\/ansible\.cfg/)
    assert.equal((await fleet.nsExec(h2, 'cat ~/bm-ansinv/other.txt')).stdout, 'ok\n')
    assert.equal(
      new Set(
        readFileSync(known, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ')[0]),
      ).size,
      2,
    )
    assert.equal((await runIn(project, ['exec', '--', 'true'], {ANSIBLE_CONFIG: join(project, 'other')})).code, 0)
  })

  it('a bad INI line fails with exit 5 and file:line:col before any host is touched', async () => {
    write('inventory/bad.ini', `[app]\n${fleet.hosts[0].name} ansible_host=${fleet.hosts[0].ip} oops\n`)
    write('touch.yml', '- hosts: all\n  tasks:\n    - name: t\n      copy: {dest: ~/bm-ansinv/touched, content: "x"}\n')
    const r = await runIn(project, ['run', '-i', 'inventory/bad.ini', 'touch.yml'])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, new RegExp(`inventory/bad\\.ini:2:${fleet.hosts[0].name.length + fleet.hosts[0].ip.length + 16}: expected key=value after host`))
    assert.equal((await fleet.nsExec(fleet.hosts[0], 'test -e ~/bm-ansinv/touched && echo yes || echo no')).stdout.trim(), 'no')
  })
})
