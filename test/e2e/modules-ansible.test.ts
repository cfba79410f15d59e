import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show} from './cli.js'

// The Ansible modules this tool used to refuse (debug, set_fact, assert, fail, lineinfile,
// blockinfile, stat, service/systemd) and gathered facts, on 2 real SSH hosts: their effects
// on the hosts' files, facts checked against what the host really has, and the cost: a
// 50-item lineinfile loop is one read and one write per host, not 50.

let fleet: Fleet
let inv: string

type Rec = {task: string; host: string; status: string; msg: string; roundTrips?: number; diff?: Array<{path: string; before: string; after: string}>; data?: Record<string, unknown>}

function playbook(name: string, text: string): string {
  const p = join(fleet.dir, name)
  writeFileSync(p, text)
  return p
}

const recs = (r: {json?: {tasks: Rec[]}}, task: string): Rec[] => (r.json?.tasks ?? []).filter((t) => t.task === task)

before(async () => {
  fleet = await createFleet(2)
  inv = fleet.writeInventory({vars: {secret_token: 'tok-Zq81'}})
})

after(async () => {
  await fleet?.destroy()
})

const SITE = `- hosts: all
  vars:
    conf: ~/bm-mods/app.conf
  tasks:
    - name: fifty lines
      lineinfile:
        path: "{{ conf }}"
        regexp: "^key{{ item }} ="
        line: "key{{ item }} = {{ item }}"
        create: yes
        mode: '0640'
      with_sequence: start=0 end=49
    - name: fifty lines again
      lineinfile:
        path: "{{ conf }}"
        regexp: "^key{{ item }} ="
        line: "key{{ item }} = {{ item }}"
      with_sequence: start=0 end=49
    - name: backrefs
      lineinfile: {path: "{{ conf }}", regexp: '^key7 = (\\d+)$', line: 'key7 = \\1\\1', backrefs: yes}
    - name: absent
      lineinfile: {path: "{{ conf }}", regexp: '^key1\\d ', state: absent}
    - name: bof
      lineinfile: {path: "{{ conf }}", line: '# top', insertbefore: BOF}
    - name: blocks
      blockinfile:
        path: "~/bm-mods/{{ item }}.conf"
        block: "host {{ inventory_hostname }}\\nfile {{ item }}"
        marker: "# {mark} bm"
        create: yes
      loop: [b1, b2]
    - name: stat them
      stat: {path: "{{ item }}"}
      loop: ["{{ conf }}", "~/bm-mods/b1.conf", "~/bm-mods/nope", "~/bm-mods"]
      register: st
    - name: remember
      set_fact:
        conf_mode: "{{ st.results[0].stat.mode }}"
        conf_sum: "{{ st.results[0].stat.checksum }}"
        missing: "{{ not st.results[2].stat.exists }}"
        is_dir: "{{ st.results[3].stat.isdir }}"
    - name: check
      assert:
        that:
          - conf_mode == '0640'
          - missing
          - is_dir
          - st.results[1].stat.isreg and st.results[1].stat.pw_name == 'root'
          - ansible_hostname | length > 0
        fail_msg: "stat said {{ conf_mode }}"
    - name: show
      debug: {var: conf_sum}
    - name: secret
      debug: {msg: "token {{ secret_token }}"}
    - name: never
      fail: {msg: "must not run"}
      when: not missing
    - name: facts
      copy:
        dest: ~/bm-mods/facts.txt
        content: "{{ ansible_hostname }}|{{ ansible_fqdn }}|{{ ansible_distribution }}|{{ ansible_distribution_version }}|{{ ansible_distribution_major_version }}|{{ ansible_distribution_release }}|{{ ansible_os_family }}|{{ ansible_facts.system }}|{{ ansible_architecture }}|{{ ansible_kernel }}|{{ ansible_processor_vcpus }}|{{ ansible_memtotal_mb > 0 }}|{{ ansible_all_ipv4_addresses | join(',') }}|{{ ansible_user_id }}|{{ ansible_user_dir }}|{{ ansible_env.HOME }}|{{ ansible_pkg_mgr }}\\n"
`

describe('Ansible modules and facts (2 hosts)', () => {
  it('lineinfile/blockinfile/stat/set_fact/assert/debug/fail run as Ansible documents them, a 50-item loop in 2 round trips per host', async () => {
    const r = await cli(['run', '-i', inv, playbook('site.yml', SITE), '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 0, show(r))
    for (const h of fleet.hosts) {
      const text = (await fleet.nsExec(h, 'cat ~/bm-mods/app.conf; stat -c %a ~/bm-mods/app.conf')).stdout
      const keys = Array.from({length: 50}, (_, i) => i)
        .filter((i) => i < 10 || i > 19)
        .map((i) => `key${i} = ${i === 7 ? '77' : i}`)
      assert.equal(text, ['# top', ...keys, '640'].join('\n') + '\n')
      assert.equal((await fleet.nsExec(h, 'cat ~/bm-mods/b2.conf')).stdout, `# BEGIN bm\nhost ${h.name}\nfile b2\n# END bm\n`)
      const [hostname, fqdn, dist, version, major, release, family, system, arch, kernel, vcpus, mem, ips, user, dir, home, pkg] = (await fleet.nsExec(h, 'cat ~/bm-mods/facts.txt')).stdout
        .trim()
        .split('|')
      const real = await fleet.nsExec(h, '. /etc/os-release; echo "$(hostname -s)|$ID|$VERSION_ID|$VERSION_CODENAME|$(uname -s)|$(uname -m)|$(uname -r)|$(nproc)"')
      const [rh, id, vid, codename, us, um, ur, np] = real.stdout.trim().split('|')
      // No /etc/hosts line names a test host (and no DNS is asked): the fqdn is the hostname, as
      // Python's getfqdn() gives Ansible then.
      assert.deepEqual([hostname, fqdn, system, arch, kernel, vcpus, release], [rh, rh, us, um, ur, np, codename])
      if (id === 'debian') assert.deepEqual([dist, family, major], ['Debian', 'Debian', vid])
      assert.ok(version.startsWith(vid), version)
      assert.equal(mem, 'True')
      assert.ok(ips.split(',').includes(h.ip), ips)
      assert.deepEqual([user, dir, home], ['root', '/root', '/root'])
      assert.equal(pkg, 'apt')
    }
    for (const t of recs(r, 'fifty lines')) {
      assert.equal(t.status, 'changed')
      assert.ok((t.roundTrips ?? 99) <= 2, `fifty lines cost ${t.roundTrips} round trips on ${t.host}`)
    }
    for (const t of recs(r, 'fifty lines again')) assert.deepEqual([t.status, t.roundTrips], ['ok', 1], t.msg)
    for (const name of ['remember', 'check', 'show', 'secret', 'never']) for (const t of recs(r, name)) assert.equal(t.roundTrips, 0, `${name} on ${t.host}`)
    const sum = (await fleet.nsExec(fleet.hosts[0], 'sha1sum < ~/bm-mods/app.conf')).stdout.split(' ')[0]
    const shown = recs(r, 'show').find((t) => t.host === fleet.hosts[0].name)
    assert.equal(shown?.msg, `conf_sum = ${sum}`)
    assert.ok(!r.stdout.includes('tok-Zq81'), 'the secret is masked')
    assert.deepEqual(
      recs(r, 'never').map((t) => t.status),
      ['skipped', 'skipped'],
    )
  })

  it('--check --diff: lineinfile says what it would change and shows the diff, changing nothing', async () => {
    const pb = playbook('check.yml', '- hosts: all\n  tasks:\n    - lineinfile: {path: ~/bm-mods/app.conf, regexp: "^key0 =", line: "key0 = zero"}\n')
    const r = await cli(['run', '-i', inv, pb, '--check', '--diff', '--json'], {timeoutMs: 60_000})
    assert.equal(r.code, 0, show(r))
    for (const t of r.json.tasks as Rec[]) {
      assert.equal(t.status, 'changed')
      assert.match(t.msg, /^would change: line replaced/)
      assert.match(t.diff?.[0].after ?? '', /^key0 = zero$/m)
    }
    assert.equal((await fleet.nsExec(fleet.hosts[0], 'grep -c "key0 = zero" ~/bm-mods/app.conf')).stdout.trim(), '0')
  })

  it('service/systemd on hosts without an init system fail on each host with what is missing and what to write instead (exit 2)', async () => {
    const pb = playbook('svc.yml', '- hosts: all\n  tasks:\n    - service: {name: cron, state: started}\n    - systemd: {name: cron, state: stopped}\n      ignore_errors: yes\n')
    const r = await cli(['run', '-i', inv, pb, '--json'], {timeoutMs: 60_000})
    assert.equal(r.code, 2, show(r))
    const failed = (r.json.tasks as Rec[]).filter((t) => t.status === 'failed')
    assert.equal(failed.length, 2)
    for (const t of failed)
      assert.match(t.msg, /no init system on this host to manage service "cron": PID 1 is ".*", not systemd or SysV init; \/run\/systemd\/system is missing.*pidfile.*redis_instances/)
  })

  it('refuses unsupported arguments when the playbook loads (exit 5), before any host changes', async () => {
    const pb = playbook('bad.yml', '- hosts: all\n  tasks:\n    - file: {path: ~/bm-mods/should-not-exist, state: touch}\n    - lineinfile: {path: ~/bm-mods/app.conf, line: x, backup: yes}\n')
    const r = await cli(['run', '-i', inv, pb], {timeoutMs: 60_000})
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr + r.stdout, /bad\.yml:4:\d+.*argument "backup" of lineinfile is not supported[\s\S]*copy/)
    assert.equal((await fleet.nsExec(fleet.hosts[0], 'ls ~/bm-mods/should-not-exist 2>&1 || true')).stdout.includes('No such file'), true)
  })
})
