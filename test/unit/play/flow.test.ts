import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, existsSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, it} from 'node:test'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {runPlaybook, type Reporter} from '../../../src/play/runner.js'

// The play's control flow on the controller (two ansible_connection: local hosts): what ran,
// where, in which order, and how the recap counts it.
const INV = 'all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {ansible_connection: local}\n'
const quiet: Reporter = {playStart() {}, taskStart() {}, hostResult() {}, taskEnd() {}, log() {}, warn() {}}

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bm-flow-'))
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), {recursive: true})
    writeFileSync(join(dir, f), text.replaceAll('OUT', dir))
  }
  return dir
}
async function run(dir: string, extra: {extraVars?: Record<string, unknown>; tags?: string[]} = {}) {
  return runPlaybook({inventory: loadInventory('inv.yml', INV), playbook: loadPlaybook(join(dir, 'site.yml'), allModules()), reporter: quiet, ...extra})
}
const lines = (dir: string, f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').trim().split('\n') : [])
const log = (what: string) => `shell: echo ${what} >> OUT/log-{{ inventory_hostname }}`

describe('play flow', () => {
  it('handlers: once per host, only where a notifying task changed, in definition order, after each section; flush_handlers flushes now', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  pre_tasks:
    - ${log('pre')}
      notify: h2
  tasks:
    - ${log('t1')}
      changed_when: inventory_hostname == 'a'
      notify: [h1, h2]
    - ${log('t2')}
      notify: h1
      changed_when: inventory_hostname == 'a'
    - meta: flush_handlers
    - ${log('t3')}
  post_tasks:
    - ${log('post')}
      notify: topic
  handlers:
    - name: h1
      ${log('h1')}
    - name: h2
      ${log('h2')}
    - name: h3
      listen: topic
      ${log('h3')}
`,
    })
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual(lines(dir, 'log-a'), ['pre', 'h2', 't1', 't2', 'h1', 'h2', 't3', 'post', 'h3'])
    assert.deepEqual(lines(dir, 'log-b'), ['pre', 'h2', 't1', 't2', 't3', 'post', 'h3'])
  })

  it('a failed host runs no handlers; force_handlers runs them', async () => {
    for (const force of [false, true]) {
      const dir = project({
        'site.yml': `- hosts: all
  force_handlers: ${force}
  tasks:
    - ${log('t1')}
      notify: h
    - command: "false"
      when: inventory_hostname == 'b'
  handlers:
    - name: h
      ${log('h')}
`,
      })
      const r = await run(dir)
      assert.equal(r.exitCode, 2)
      assert.deepEqual(lines(dir, 'log-a'), ['t1', 'h'])
      assert.deepEqual(lines(dir, 'log-b'), force ? ['t1', 'h'] : ['t1'])
    }
  })

  it('block/rescue/always: rescue where the block failed (rescued, not failed, exit 0), always everywhere; ansible_failed_task in rescue', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  tasks:
    - name: guarded
      block:
        - ${log('b1')}
        - name: breaks on b
          command: "false"
          when: inventory_hostname == 'b'
        - ${log('b2')}
      rescue:
        - ${log('rescue-{{ ansible_failed_task.name | replace(" ", "_") }}')}
      always:
        - ${log('always')}
    - ${log('after')}
`,
    })
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual(lines(dir, 'log-a'), ['b1', 'b2', 'always', 'after'])
    assert.deepEqual(lines(dir, 'log-b'), ['b1', 'rescue-breaks_on_b', 'always', 'after'])
    assert.equal(r.recap.b.failed, 0)
    assert.equal(r.recap.b.rescued, 1)
  })

  it('a block without rescue: always still runs on the failed host, which then stops; a failing rescue fails the host', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  tasks:
    - block:
        - command: "false"
          when: inventory_hostname == 'b'
      always:
        - ${log('always')}
    - block:
        - command: "false"
      rescue:
        - command: "false"
          when: inventory_hostname == 'a'
    - ${log('after')}
`,
    })
    const r = await run(dir)
    assert.equal(r.exitCode, 2)
    assert.deepEqual(lines(dir, 'log-a'), ['always'])
    assert.deepEqual(lines(dir, 'log-b'), ['always'])
    assert.deepEqual([r.recap.a.failed, r.recap.a.rescued, r.recap.b.failed, r.recap.b.rescued], [1, 1, 1, 0])
  })

  it('include_tasks: its when is evaluated once per host, its tags select only the include; import_tasks inherits when per task', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  tasks:
    - set_fact_free: placeholder
`.replace(
        '    - set_fact_free: placeholder\n',
        `    - include_tasks: inc.yml
      when: inventory_hostname == 'a'
    - import_tasks: inc.yml
      when: inventory_hostname == 'b'
`,
      ),
      'inc.yml': `- ${log('inc')}\n`,
    })
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual(lines(dir, 'log-a'), ['inc'])
    assert.deepEqual(lines(dir, 'log-b'), ['inc'])
  })

  it('roles: defaults below the inventory, vars above play vars, -e above all; templates from the role; dependencies first; handlers', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  vars: {greeting: play, who: play}
  roles:
    - web
`,
      'roles/web/meta/main.yml': 'dependencies: [base]\n',
      'roles/base/tasks/main.yml': `- ${log('base')}\n`,
      'roles/web/defaults/main.yml': 'port: 80\nwho: default\n',
      'roles/web/vars/main.yml': 'greeting: role\ntone: role\n',
      'roles/web/templates/conf.j2': '{{ greeting }} {{ who }} {{ port }} {{ tone }}\n',
      'roles/web/tasks/main.yml': `- template: {src: conf.j2, dest: "OUT/conf-{{ inventory_hostname }}"}\n  notify: reload\n`,
      'roles/web/handlers/main.yml': `- name: reload\n  ${log('reload')}\n`,
    })
    const r = await run(dir, {extraVars: {tone: 'cli'}})
    assert.equal(r.exitCode, 0, JSON.stringify(r.tasks.filter((t) => t.status === 'failed')))
    assert.deepEqual(lines(dir, 'conf-a'), ['role play 80 cli'])
    assert.deepEqual(lines(dir, 'log-a'), ['base', 'reload'])
    const again = await run(dir, {extraVars: {tone: 'cli'}})
    assert.deepEqual(lines(dir, 'log-a'), ['base', 'reload', 'base'], 'no change, no handler')
    assert.equal(again.exitCode, 0)
  })

  it('environment (play < task, templated) reaches every command; secret-named values are masked', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  environment: {GREETING: "hi {{ inventory_hostname }}", API_TOKEN: s3cr3t-value}
  tasks:
    - shell: echo "$GREETING $EXTRA $API_TOKEN" > OUT/env-{{ inventory_hostname }}; echo "$API_TOKEN"
      environment: {EXTRA: "it's"}
      register: out
    - debug_free: x
`.replace('    - debug_free: x\n', ''),
    })
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual(lines(dir, 'env-b'), ["hi b it's s3cr3t-value"])
    assert.ok(!JSON.stringify(r.tasks).includes('s3cr3t-value'), 'the token is masked in records')
  })

  it('delegate_to: localhost runs on the controller with the host vars; run_once + delegate_to runs once', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  tasks:
    - ${log('d-{{ inventory_hostname }}').replace('log-{{ inventory_hostname }}', 'delegated')}
      delegate_to: localhost
    - ${log('once').replace('log-{{ inventory_hostname }}', 'once')}
      delegate_to: 127.0.0.1
      run_once: true
    - command: echo
      delegate_to: "{{ 'nowhere' }}"
`,
    })
    const r = await run(dir)
    assert.deepEqual(lines(dir, 'delegated').sort(), ['d-a', 'd-b'])
    assert.deepEqual(lines(dir, 'once'), ['once'])
    assert.equal(r.exitCode, 2)
    assert.match(r.tasks.find((t) => t.status === 'failed')!.msg, /neither localhost nor a host of the inventory/)
  })

  it('serial: 1 runs the whole play host by host, handlers per batch; a batch that fails entirely stops the play', async () => {
    const dir = project({
      'site.yml': `- hosts: all
  serial: 1
  tasks:
    - shell: echo "{{ inventory_hostname }} t1 {{ ansible_play_batch | join(',') }}" >> OUT/order
      notify: h
    - shell: echo "{{ inventory_hostname }} t2" >> OUT/order
  handlers:
    - name: h
      shell: echo "{{ inventory_hostname }} h" >> OUT/order
`,
    })
    assert.equal((await run(dir)).exitCode, 0)
    assert.deepEqual(lines(dir, 'order'), ['a t1 a', 'a t2', 'a h', 'b t1 b', 'b t2', 'b h'])
    const fail = project({'site.yml': `- hosts: all\n  serial: 1\n  tasks:\n    - ${log('t')}\n    - command: "false"\n`})
    const r = await run(fail)
    assert.equal(r.exitCode, 2)
    assert.deepEqual([lines(fail, 'log-a'), lines(fail, 'log-b')], [['t'], []])
    assert.match(r.aborted ?? '', /every host of batch 1/)
  })

  it('meta end_host ends the play for that host only', async () => {
    const dir = project({'site.yml': `- hosts: all\n  tasks:\n    - meta: end_host\n      when: inventory_hostname == 'a'\n    - ${log('t')}\n`})
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual([lines(dir, 'log-a'), lines(dir, 'log-b')], [[], ['t']])
  })

  it('meta end_play ends the play for every host, the batches serial has not started included', async () => {
    const dir = project({'site.yml': `- hosts: all\n  serial: 1\n  tasks:\n    - ${log('t')}\n    - meta: end_play\n    - ${log('never')}\n`})
    const r = await run(dir)
    assert.equal(r.exitCode, 0)
    assert.deepEqual([lines(dir, 'log-a'), lines(dir, 'log-b')], [['t'], []])
  })
})
