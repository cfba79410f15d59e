import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, ROOT, show} from './cli.js'

// Issue 13's first "done when": the users' own 1000-node playbook (legacy-workflow.md),
// task by task, with the one edit an offline fleet needs (the git clone becomes an
// unarchive of the release tarball), run by `baremetal run`. Then `redis-cli --cluster
// create` over the nodes it started forms the cluster, as the users do it, and a second
// run changes only what Ansible changes on a second run: the command and shell tasks.
//
// Only the scale is ours: -e redis_count=4 (2 hosts × 4 ports, not 10 × 100), an extra
// var as users pass one. The test hosts have no ubuntu user (the play's remote_user), so
// group_vars/ beside the inventory sets ansible_user: root, which Ansible puts above a
// play's remote_user too. They have no init system: ~/.ssh/environment puts a systemctl
// on PATH that only records its call, so the "stop iptables" task meets what a real server
// has; its flush is the real Debian netfilter-persistent. And they have no route to a
// Debian mirror: as an offline fleet does, each uses a local one (APT_CONFIG, with its own
// package lists, for /var is shared here), so `update_cache: yes` really updates. Their
// gcc 12 cannot link 5.0.0–5.0.7 without -fcommon (gcc 10 changed the default; the
// users' servers predate it): REDIS_CFLAGS=-fcommon in the same environment, as such a
// host needs under Ansible too (baremetal's own redis_build adds it by itself).

const TARBALL = join(ROOT, '../shared/redis/redis-5.0.3.tar.gz')
const COUNT = 4
const PORT = 6379

const PLAYBOOK = `- hosts: redis
  remote_user: ubuntu
  vars:
    redis_src_dir: ~/redis_src
    redis_server: "{{ redis_src_dir }}/src/redis-server"
    redis_cluster_dir: ~/redis_cluster
    redis_port_start: 6379
    redis_count: 100
  tasks:
    - name: install os packages
      become: yes
      apt:
        name: [make, gcc]
        update_cache: yes
    # The one edit: no internet, so the release tarball instead of the git clone.
    - name: unpack redis source
      unarchive:
        src: redis-5.0.3.tar.gz
        dest: "{{ redis_src_dir }}"
        extra_opts: [--strip-components=1]
    - name: compile redis
      command: make
      args:
        chdir: "{{ redis_src_dir }}"
    - name: create cluster dirs
      file:
        path: "{{ redis_cluster_dir }}/{{ item }}"
        state: directory
      with_sequence: start={{ redis_port_start }} count={{ redis_count }}
    - name: copy redis-server to cluster dirs
      copy:
        remote_src: true
        src: "{{ redis_server }}"
        dest: "{{ redis_cluster_dir }}/{{ item }}/"
        mode: u+x
      with_sequence: start={{ redis_port_start }} count={{ redis_count }}
    - name: copy redis.conf to cluster dirs
      template:
        src: redis.conf.j2
        dest: "{{ redis_cluster_dir }}/{{ item }}/redis.conf"
      with_sequence: start={{ redis_port_start }} count={{ redis_count }}
    - name: create redis-cli symlink
      file:
        src: "{{ redis_src_dir }}/src/redis-cli"
        dest: ~/redis-cli
        state: link
    - name: stop iptables
      become: yes
      shell: "systemctl stop netfilter-persistent && /usr/sbin/netfilter-persistent flush"
    - name: start redis-server
      command: ./redis-server redis.conf
      args:
        chdir: "{{ redis_cluster_dir }}/{{ item }}"
      with_sequence: start={{ redis_port_start }} count={{ redis_count }}
`

const TEMPLATE = `port {{ item }}
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 5000
daemonize yes
logfile redis.log
appendonly no
protected-mode no
save ""
`

// A flat repository with a signed-by-nobody Release (trusted=yes), and apt's lists and
// cache under the host's own /root.
function offlineMirror(h: TestHost): void {
  const d = join(h.home, 'apt')
  for (const sub of ['repo', 'lists/partial', 'cache/archives/partial', 'sources.list.d']) mkdirSync(join(d, sub), {recursive: true})
  const packages = 'Package: baremetal-offline-mirror\nVersion: 1.0\nArchitecture: all\nFilename: ./none.deb\nSize: 1\nDescription: a local mirror\n\n'
  writeFileSync(join(d, 'repo', 'Packages'), packages)
  const sha = createHash('sha256').update(packages).digest('hex')
  writeFileSync(
    join(d, 'repo', 'Release'),
    `Origin: offline\nLabel: offline\nSuite: offline\nCodename: offline\nDate: Tue, 01 Dec 2026 00:00:00 UTC\nArchitectures: all amd64\nSHA256:\n ${sha} ${Buffer.byteLength(packages)} Packages\n`,
  )
  writeFileSync(join(d, 'sources.list'), 'deb [trusted=yes] file:/root/apt/repo ./\n')
  writeFileSync(
    join(d, 'apt.conf'),
    ['SourceList "/root/apt/sources.list"', 'SourceParts "/root/apt/sources.list.d"'].map((l) => `Dir::Etc::${l};`).join('\n') +
      '\nDir::State::Lists "/root/apt/lists";\nDir::Cache "/root/apt/cache";\n',
  )
}

let fleet: Fleet
let project: string

const ports = Array.from({length: COUNT}, (_, i) => PORT + i)

async function sh(h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const run = () => cli(['run', join(project, 'redis_playbook.yml'), '-i', join(project, 'hosts.yml'), '-e', `redis_count=${COUNT}`, '--json'], {timeoutMs: 900_000})

// Per task name: the statuses it had on the hosts.
function statuses(r: {json?: any}): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const t of r.json.tasks as Array<{task: string; status: string}>) (out[t.task] ??= []).push(t.status)
  return out
}

describe('the legacy 1000-node playbook, as the users have it', {skip: !existsSync(TARBALL) && `Redis 5.0.3 source not found at ${TARBALL}`}, () => {
  before(async () => {
    fleet = await createFleet(2)
    project = join(fleet.dir, 'legacy')
    mkdirSync(join(project, 'group_vars'), {recursive: true})
    writeFileSync(join(project, 'hosts.yml'), `redis:\n  hosts:\n${fleet.hosts.map((h) => `    ${h.ip}:\n`).join('')}`)
    writeFileSync(join(project, 'group_vars', 'all.yml'), `ansible_user: root\nansible_ssh_private_key_file: ${fleet.keyPath}\nansible_ssh_known_hosts_file: ${fleet.knownHostsPath}\n`)
    writeFileSync(join(project, 'redis_playbook.yml'), PLAYBOOK)
    writeFileSync(join(project, 'redis.conf.j2'), TEMPLATE)
    copyFileSync(TARBALL, join(project, 'redis-5.0.3.tar.gz'))
    for (const h of fleet.hosts) {
      const bin = join(h.home, 'init-tools')
      mkdirSync(bin, {recursive: true})
      writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${join('/root', 'systemctl.calls')}\n`)
      chmodSync(join(bin, 'systemctl'), 0o755)
      offlineMirror(h)
      writeFileSync(join(h.home, '.ssh', 'environment'), 'PATH=/root/init-tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nAPT_CONFIG=/root/apt/apt.conf\nREDIS_CFLAGS=-fcommon\n')
    }
  })

  after(async () => {
    if (!fleet) return
    for (const h of fleet.hosts) for (const p of ports) await fleet.nsExec(h, `/root/redis-cli -h ${h.ip} -p ${p} shutdown nosave 2>/dev/null`)
    await fleet.destroy()
  })

  it('runs with only the git → tarball edit, redis-cli --cluster create forms the cluster, and a second run changes only the commands', async () => {
    const first = await run()
    assert.equal(first.code, 0, show(first))
    const s1 = statuses(first)
    for (const task of [
      'unpack redis source',
      'compile redis',
      'create cluster dirs',
      'copy redis-server to cluster dirs',
      'copy redis.conf to cluster dirs',
      'create redis-cli symlink',
      'stop iptables',
      'start redis-server',
    ])
      assert.deepEqual(s1[task], ['changed', 'changed'], `${task}: ${s1[task]}\n${show(first)}`)

    for (const h of fleet.hosts) {
      // What the tasks left, read on the host itself.
      assert.match(await sh(h, '/root/redis_src/src/redis-server --version'), /v=5\.0\.3/)
      assert.equal((await sh(h, 'readlink /root/redis-cli')).trim(), '/root/redis_src/src/redis-cli')
      assert.equal((await sh(h, 'cat /root/systemctl.calls')).trim(), 'stop netfilter-persistent')
      for (const p of ports) {
        const dir = `/root/redis_cluster/${p}`
        assert.match(await sh(h, `stat -c %A ${dir}/redis-server`), /^-..x/, `${dir}/redis-server is executable for its owner (mode u+x)`)
        assert.equal(await sh(h, `cat ${dir}/redis.conf`), TEMPLATE.replace('{{ item }}', String(p)))
        assert.equal((await sh(h, `/root/redis-cli -h ${h.ip} -p ${p} ping`)).trim(), 'PONG')
      }
    }

    // The users' next step: one generated create command over every node, answered yes.
    const nodes = fleet.hosts.flatMap((h) => ports.map((p) => `${h.ip}:${p}`))
    const [h1] = fleet.hosts
    const create = await fleet.nsExec(h1, `echo yes | /root/redis-cli --cluster create ${nodes.join(' ')} --cluster-replicas 0`)
    assert.equal(create.code, 0, create.stdout + create.stderr)
    assert.match(create.stdout, /All 16384 slots covered/)
    const deadline = Date.now() + 60_000
    let states: string[] = []
    while (Date.now() < deadline) {
      states = await Promise.all(fleet.hosts.flatMap((h) => ports.map(async (p) => (await sh(h, `/root/redis-cli -h ${h.ip} -p ${p} cluster info`)).match(/cluster_state:(\w+)/)?.[1] ?? '?')))
      if (states.every((s) => s === 'ok')) break
      await new Promise((r) => setTimeout(r, 500))
    }
    assert.deepEqual(
      states,
      nodes.map(() => 'ok'),
    )
    const pidsBefore = await Promise.all(fleet.hosts.map((h) => sh(h, `for p in ${ports.join(' ')}; do /root/redis-cli -h ${h.ip} -p $p info server | grep process_id; done`)))

    // A second run: Ansible reports the command/shell tasks changed (they always run) and
    // nothing else; the daemons already running keep running (a second redis-server on a
    // busy port exits after daemonizing, as under Ansible).
    const second = await run()
    assert.equal(second.code, 0, show(second))
    const s2 = statuses(second)
    const changedTasks = Object.keys(s2).filter((t) => s2[t].includes('changed'))
    assert.deepEqual(changedTasks.sort(), ['compile redis', 'start redis-server', 'stop iptables'], show(second))
    for (const t of ['install os packages', 'unpack redis source', 'create cluster dirs', 'copy redis-server to cluster dirs', 'copy redis.conf to cluster dirs', 'create redis-cli symlink'])
      assert.deepEqual(s2[t], ['ok', 'ok'], `${t}: ${s2[t]}`)
    const pidsAfter = await Promise.all(fleet.hosts.map((h) => sh(h, `for p in ${ports.join(' ')}; do /root/redis-cli -h ${h.ip} -p $p info server | grep process_id; done`)))
    assert.deepEqual(pidsAfter, pidsBefore)
    for (const h of fleet.hosts) assert.match(await sh(h, `/root/redis-cli -h ${h.ip} -p ${PORT} cluster info`), /cluster_state:ok/)
  })
})
