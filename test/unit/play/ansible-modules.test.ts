import assert from 'node:assert/strict'
import {hostname} from 'node:os'
import {describe, it} from 'node:test'
import {InputError} from '../../../src/errors.js'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {runPlaybook, type Reporter} from '../../../src/play/runner.js'

// debug / set_fact / assert / fail and the gathered facts through the runner, on the controller (local hosts).
const INV = 'all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {ansible_connection: local, who: bee}\n'
const quiet: Reporter = {playStart() {}, taskStart() {}, hostResult() {}, taskEnd() {}, log() {}, warn() {}}
const load = (yaml: string) => loadPlaybook('/tmp/pb.yml', allModules(), yaml)
const run = (yaml: string, extraVars: Record<string, unknown> = {}) => runPlaybook({inventory: loadInventory('inv.yml', INV), playbook: load(yaml), reporter: quiet, extraVars})

describe('Ansible controller modules through the runner', () => {
  it('set_fact is per host, typed, visible to later tasks and plays, above play vars; assert and debug read it', async () => {
    const r = await run(`- hosts: all
  gather_facts: false
  vars: {x: play}
  tasks:
    - set_fact:
        x: "fact-{{ inventory_hostname }}"
        count3: "{{ [1, 2, 3] | length }}"
    - set_fact: {last: "{{ item }}"}
      loop: [1, 2, 3]
    - assert:
        that:
          - x == "fact-" ~ inventory_hostname
          - count3 == 3
          - last == 3
    - debug: var=x
      register: shown
    - assert: {that: 'shown.x == x'}
- hosts: a
  gather_facts: false
  tasks:
    - assert: {that: 'x == "fact-a"', fail_msg: "x is {{ x }}"}
`)
    const bad = r.tasks.filter((t) => t.status === 'failed')
    assert.deepEqual(bad, [])
    assert.equal(r.tasks.find((t) => t.module === 'debug' && t.host === 'b')?.msg, 'x = fact-b')
    assert.equal(r.exitCode, 0)
  })

  it('assert fails the host with fail_msg (exit 2); fail fails with msg; assert in a loop sees the item', async () => {
    const r = await run(`- hosts: all
  gather_facts: false
  tasks:
    - assert:
        that: item < 3
        fail_msg: "item {{ item }} too big"
      loop: [1, 2, 3]
      ignore_errors: true
    - fail: {msg: "no bees"}
      when: who is defined
`)
    const loop = r.tasks.filter((t) => t.module === 'assert')
    assert.match(loop[0].msg, /3 items: 2 ok, 1 failed — first failure: item 3 too big/)
    const f = r.tasks.find((t) => t.module === 'fail' && t.host === 'b')
    assert.deepEqual([f?.status, f?.msg], ['failed', 'no bees'])
    assert.equal(r.exitCode, 2)
  })

  it('gather_facts exposes ansible_* and ansible_facts (hostname from the host); gather_facts: false leaves them undefined', async () => {
    const on = await run(
      `- hosts: a
  tasks:
    - assert:
        that:
          - ansible_hostname == expected
          - ansible_facts.hostname == expected
          - ansible_os_family | length > 0
          - ansible_distribution_major_version | length > 0
          - ansible_user_dir == ansible_env.HOME
          - ansible_processor_vcpus >= 1
`,
      {expected: hostname().split('.')[0]},
    )
    assert.deepEqual(
      on.tasks.map((t) => `${t.status} ${t.msg}`),
      ['ok All assertions passed'],
    )
    const off = await run('- hosts: a\n  gather_facts: no\n  tasks:\n    - assert: {that: [ansible_hostname is not defined, ansible_user_dir is defined]}\n')
    assert.equal(off.tasks[0].status, 'ok', off.tasks[0].msg)
  })

  it('setup gathers the facts in a gather_facts: false play; -e wins over set_fact', async () => {
    const r = await run(
      `- hosts: a
  gather_facts: false
  tasks:
    - setup:
    - set_fact: {pinned: from-fact, free: from-fact}
    - assert:
        that:
          - ansible_hostname == expected
          - ansible_facts.os_family | length > 0
          - pinned == "from-e"
          - free == "from-fact"
`,
      {expected: hostname().split('.')[0], pinned: 'from-e'},
    )
    assert.deepEqual(
      r.tasks.map((t) => `${t.module} ${t.status} ${t.roundTrips}`),
      ['setup ok 1', 'set_fact ok 0', 'assert ok 0'],
      r.tasks.map((t) => t.msg).join('\n'),
    )
  })

  it('refuses at load, with the line and what to write instead: backup, bad set_fact names, bad assert syntax', () => {
    const cases: Array<[string, RegExp]> = [
      ['lineinfile: {path: /tmp/x, line: a, backup: yes}', /argument "backup" of lineinfile is not supported[\s\S]*copy: remote_src/],
      ['blockinfile: {path: /tmp/x, block: a, validate: "x %s"}', /validate is not supported/],
      ['set_fact: {"bad-name": 1}', /not a valid variable name/],
      ['assert: {that: "x ==="}', /condition/],
      ['stat: {path: /tmp/x, get_mime: yes}', /unknown argument "get_mime"/],
      ['service: {name: x, state: running}', /use one of: started, stopped, restarted, reloaded/],
    ]
    for (const [task, re] of cases) {
      assert.throws(
        () => load(`- hosts: all\n  tasks:\n    - ${task}\n`),
        (e: unknown) => e instanceof InputError && re.test(e.describe()) && e.where?.line === 3,
        task,
      )
    }
  })
})
