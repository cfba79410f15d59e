import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {PlaybookError} from '../../../src/errors.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'

// Ansible play and task keywords: honoured as Ansible documents them, or refused at their
// line — never accepted and ignored (serial: 1 ran every host at once before).
const modules = allModules()
const load = (text: string, file = 'site.yml') => loadPlaybook(file, modules, text)
const refused = (text: string, re: RegExp, line: number) =>
  assert.throws(
    () => load(text),
    (e: unknown) => e instanceof PlaybookError && re.test(e.message) && e.where?.line === line,
  )

describe('play keywords', () => {
  it('vars_files: mappings beside the playbook, above play vars', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-vf-'))
    writeFileSync(join(dir, 'a.yml'), 'x: from-file\nw: 2\n')
    const pb = load('- hosts: all\n  vars: {x: play, z: 3}\n  vars_files: [a.yml]\n  tasks: []\n', join(dir, 'site.yml'))
    assert.deepEqual(pb.plays[0].vars, {x: 'from-file', w: 2, z: 3})
  })
  it('vars_files: a missing file or a template in the name is an error', () => {
    assert.throws(() => load('- hosts: all\n  vars_files: [nope.yml]\n  tasks: []\n'), PlaybookError)
    refused('- hosts: all\n  vars_files: ["{{ env }}.yml"]\n  tasks: []\n', /file name/, 2)
  })
  it("play tags are every task's tags", () => {
    const pb = load('- hosts: all\n  tags: [redis]\n  tasks:\n    - command: echo a\n      tags: [a]\n    - command: echo b\n')
    assert.deepEqual(
      pb.plays[0].tasks.map((t) => t.tags),
      [['a', 'redis'], ['redis']],
    )
  })
  it('remote_user is kept for the connection', () => {
    assert.equal(load('- hosts: all\n  remote_user: ubuntu\n  tasks: []\n').plays[0].remoteUser, 'ubuntu')
    refused('- hosts: all\n  remote_user: "{{ u }}"\n  tasks: []\n', /remote_user must be a user name/, 2)
  })
  it('a strategy other than linear stays refused at its line; serial and become_user load', () => {
    refused('- hosts: all\n  strategy: free\n  tasks: []\n', /strategy "free" is not supported/, 2)
    assert.equal(load('- hosts: all\n  strategy: linear\n  become_user: root\n  tasks: []\n').plays.length, 1)
    assert.deepEqual(load('- hosts: all\n  serial: [1, "50%"]\n  tasks: []\n').plays[0].serial, [1, '50%'])
    refused('- hosts: all\n  serial: "{{ n }}"\n  tasks: []\n', /is not a batch size/, 2)
    assert.equal(load('- hosts: all\n  become_user: redis\n  tasks: [{command: id}]\n').plays[0].tasks[0].becomeUser, 'redis')
  })
  it('task environment and become_user load; bad forms and unknown loop_control keys are refused at their line', () => {
    assert.deepEqual(load('- hosts: all\n  environment: {A: 1, B: x}\n  tasks:\n    - command: env\n      environment: {A: 2}\n').plays[0].tasks[0].environment, {A: 2, B: 'x'})
    refused('- hosts: all\n  tasks:\n    - command: env\n      environment: "{{ envs }}"\n', /environment must be a mapping/, 4)
    refused('- hosts: all\n  tasks:\n    - command: env\n      environment: {1A: x}\n', /not an environment variable name/, 4)
    refused('- hosts: all\n  tasks:\n    - command: id\n      become: true\n      become_user: "{{ u }}"\n', /become_user must be a user name/, 5)
    refused('- hosts: all\n  tasks:\n    - command: id\n      become: true\n      become_method: doas\n', /become_method "doas" is not supported/, 5)
    refused('- hosts: all\n  tasks:\n    - command: echo {{ item }}\n      loop: [1]\n      loop_control: {label: x}\n', /loop_control.label is not supported/, 5)
  })
})
