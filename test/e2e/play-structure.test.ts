import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, show} from './cli.js'

// Ansible play structure on two real sshd hosts (issue 13): a project with import_playbook,
// a role (meta dependency, defaults, vars, templates, handlers), pre/post_tasks, a block with
// rescue/always, import_tasks, environment, become_user and serial: 1 recorded on the
// controller through delegate_to: localhost. The old runner refused all of it at load.

let fleet: Fleet
let project: string
let inv: string

const write = (rel: string, text: string) => {
  mkdirSync(dirname(join(project, rel)), {recursive: true})
  writeFileSync(join(project, rel), text)
}
const onHosts = async (cmd: string) => Promise.all(fleet.hosts.map(async (h) => (await fleet.nsExec(h, cmd)).stdout.trim()))

const SITE = `- import_playbook: plays/prep.yml
- name: app
  hosts: all
  serial: 1
  environment: {PS_GREETING: "hello {{ inventory_hostname }}"}
  pre_tasks:
    - name: order start
      shell: echo "{{ inventory_hostname }} start" >> {{ ctl }}/order
      delegate_to: localhost
  roles:
    - app
  tasks:
    - name: guarded
      block:
        - name: fails on h2
          command: "false"
          when: inventory_hostname == 'h2'
      rescue:
        - shell: echo rescued >> ~/ps/events
      always:
        - shell: echo always >> ~/ps/events
    - import_tasks: tasks/extra.yml
      when: inventory_hostname == 'h1'
    - name: environment
      shell: echo "$PS_GREETING" > ~/ps/env
    - name: who
      command: id -un
      become: true
      become_method: su
      become_user: nobody
      register: who
    - copy: {dest: ~/ps/who, content: "{{ who.stdout }}\\n"}
  post_tasks:
    - name: order end
      shell: echo "{{ inventory_hostname }} end" >> {{ ctl }}/order
      delegate_to: localhost
`

before(async () => {
  fleet = await createFleet(2)
  project = join(fleet.dir, 'play-structure')
  mkdirSync(project, {recursive: true})
  inv = fleet.writeInventory({path: join(project, 'inv.yml'), vars: {app_name: 'inv'}})
  write('site.yml', SITE)
  write('plays/prep.yml', '- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {path: ~/ps, state: absent}\n    - file: {path: ~/ps, state: directory}\n')
  write('tasks/extra.yml', '- copy: {dest: ~/ps/extra, content: "x\\n"}\n')
  write('roles/common/tasks/main.yml', '- shell: echo common >> ~/ps/events\n')
  write('roles/app/meta/main.yml', 'dependencies: [common]\n')
  write('roles/app/defaults/main.yml', 'app_port: 80\napp_name: default\n')
  write('roles/app/vars/main.yml', 'app_color: blue\n')
  write('roles/app/templates/app.conf.j2', 'name={{ app_name }} port={{ app_port }} color={{ app_color }}\n')
  write('roles/app/tasks/main.yml', '- template: {src: app.conf.j2, dest: ~/ps/app.conf}\n  notify: restart app\n')
  write('roles/app/handlers/main.yml', '- name: restart app\n  shell: echo restarted >> ~/ps/handler\n')
})

after(async () => {
  await fleet?.destroy()
})

describe('play structure e2e (2 hosts)', () => {
  it('roles, handlers, block/rescue/always, imports, environment, become_user and serial have their effect on the hosts', async () => {
    writeFileSync(join(project, 'order'), '')
    const r = await cli(['run', '-i', inv, join(project, 'site.yml'), '-e', `ctl=${project}`, '--json'])
    assert.equal(r.code, 0, show(r))
    // h2's block failure was rescued: not a failure, counted as Ansible's rescued=1.
    assert.equal(r.json.recap.h2.failed, 0)
    assert.equal(r.json.recap.h2.rescued, 1)
    assert.deepEqual(await onHosts('cat ~/ps/events'), ['common\nalways', 'common\nrescued\nalways'])
    assert.deepEqual(await onHosts('cat ~/ps/app.conf'), ['name=inv port=80 color=blue', 'name=inv port=80 color=blue'])
    assert.deepEqual(await onHosts('cat ~/ps/handler'), ['restarted', 'restarted'])
    assert.deepEqual(await onHosts('cat ~/ps/extra 2>/dev/null || echo none'), ['x', 'none'])
    assert.deepEqual(await onHosts('cat ~/ps/env'), ['hello h1', 'hello h2'])
    assert.deepEqual(await onHosts('cat ~/ps/who'), ['nobody', 'nobody'])
    // serial: 1 — h1's whole play (pre_tasks to post_tasks) before h2 starts, seen from the controller.
    assert.deepEqual(readFileSync(join(project, 'order'), 'utf8').trim().split('\n'), ['h1 start', 'h1 end', 'h2 start', 'h2 end'])
  })

  it('a second run changes no template, so the handler does not run again', async () => {
    const r = await cli(['run', '-i', inv, join(project, 'site.yml'), '-e', `ctl=${project}`, '--json'])
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(await onHosts('cat ~/ps/handler'), ['restarted', 'restarted'])
  })

  it('a notify naming no handler fails at load (exit 5, file:line) and nothing runs', async () => {
    write('bad.yml', '- hosts: all\n  tasks:\n    - file: {path: ~/ps/bad, state: touch}\n    - command: "true"\n      notify: nosuch\n')
    const r = await cli(['run', '-i', inv, join(project, 'bad.yml')])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /bad\.yml:4:\d+/)
    assert.match(r.stderr, /notifies "nosuch"/)
    assert.deepEqual(await onHosts('test -e ~/ps/bad && echo yes || echo no'), ['no', 'no'])
  })
})
