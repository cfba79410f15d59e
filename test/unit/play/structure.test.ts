import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, it} from 'node:test'
import {InputError, PlaybookError} from '../../../src/errors.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook, type Block} from '../../../src/play/playbook.js'
import {serialBatches} from '../../../src/play/structure.js'

// Play structure at load: imports, roles, blocks and handlers expanded and checked before any
// host is touched; what is not supported fails at its file:line.
const modules = allModules()
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bm-struct-'))
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), {recursive: true})
    writeFileSync(join(dir, f), text)
  }
  return dir
}
const load = (dir: string, file = 'site.yml') => loadPlaybook(join(dir, file), modules)
const refusedAt = (f: () => unknown, re: RegExp, file: string, line: number) =>
  assert.throws(f, (e: unknown) => e instanceof PlaybookError && re.test(e.message) && e.where?.file?.endsWith(file) === true && e.where?.line === line, `expected ${re} at ${file}:${line}`)

describe('play structure at load', () => {
  it('block keywords are inherited by its tasks (when, tags, vars, become, ignore_errors); the task own keyword wins', () => {
    const dir = project({
      'site.yml':
        '- hosts: all\n  tasks:\n    - name: b\n      when: x == 1\n      tags: [t]\n      vars: {a: 1, b: 1}\n      become: true\n      ignore_errors: true\n      block:\n        - command: echo 1\n          vars: {b: 2}\n          when: z\n          ignore_errors: false\n      rescue:\n        - command: echo r\n',
    })
    const play = load(dir).plays[0]
    const [t, r] = play.tasks
    assert.deepEqual(t.when, ['x == 1', 'z'])
    assert.deepEqual(t.tags, ['t'])
    assert.deepEqual(t.vars, {a: 1, b: 2})
    assert.equal(t.become, true)
    assert.equal(t.ignoreErrors, false)
    assert.equal(r.ignoreErrors, true)
    assert.equal((play.sections!.main[0] as Block).rescue.length, 1)
  })

  it('import_tasks is expanded relative to the importing file; an error inside carries that file and line; a loop is refused', () => {
    const dir = project({
      'site.yml': '- hosts: all\n  tasks:\n    - import_tasks: sub/a.yml\n      tags: [imp]\n',
      'sub/a.yml': '- import_tasks: b.yml\n',
      'sub/b.yml': '- command: echo b\n',
    })
    assert.deepEqual(
      load(dir).plays[0].tasks.map((t) => [t.args.cmd, t.tags]),
      [['echo b', ['imp']]],
    )
    const bad = project({'site.yml': '- hosts: all\n  tasks:\n    - import_tasks: a.yml\n', 'a.yml': '- name: x\n  command: echo\n- name: y\n  nosuchmodule: {}\n'})
    refusedAt(() => load(bad), /unknown module/, 'a.yml', 4)
    const loop = project({'site.yml': '- hosts: all\n  tasks:\n    - import_tasks: a.yml\n      loop: [1]\n', 'a.yml': '[]\n'})
    refusedAt(() => load(loop), /import_tasks with loop is not supported/, 'site.yml', 4)
    const self = project({'site.yml': '- hosts: all\n  tasks:\n    - import_tasks: a.yml\n', 'a.yml': '- import_tasks: a.yml\n'})
    refusedAt(() => load(self), /imports itself/, 'a.yml', 1)
    const tpl = project({'site.yml': '- hosts: all\n  tasks:\n    - include_tasks: "{{ f }}.yml"\n'})
    refusedAt(() => load(tpl), /templated file name/, 'site.yml', 3)
  })

  it('roles: dependencies first and once, defaults into play defaults, vars and params into task vars, handlers before the play ones', () => {
    const dir = project({
      'site.yml':
        '- hosts: all\n  roles:\n    - web\n    - {role: base, port: 9}\n  tasks:\n    - command: echo play\n      notify: play handler\n  handlers:\n    - name: play handler\n      command: echo ph\n',
      'roles/web/meta/main.yml': 'dependencies: [base]\n',
      'roles/web/tasks/main.yml': '- command: echo web\n  notify: restart web\n',
      'roles/web/handlers/main.yml': '- name: restart web\n  command: echo rw\n',
      'roles/web/defaults/main.yml': 'web_port: 80\n',
      'roles/web/vars/main.yaml': 'web_v: 1\n',
      'roles/base/tasks/main.yml': '- command: echo base\n',
    })
    const play = load(dir).plays[0]
    // base (dependency of web), web, base again (other params: runs again, as Ansible), play task.
    assert.deepEqual(
      play.tasks.map((t) => t.args.cmd),
      ['echo base', 'echo web', 'echo base', 'echo play'],
    )
    assert.equal(play.defaults.web_port, 80)
    assert.equal(play.tasks[1].vars.web_v, 1)
    assert.equal(play.tasks[2].vars.port, 9)
    assert.ok(play.tasks[1].roleDir?.endsWith('roles/web'))
    assert.deepEqual(
      play.handlers.map((h) => h.name),
      ['restart web', 'play handler'],
    )
    const badTpl = project({
      'site.yml': '- hosts: all\n  roles: [web]\n',
      'roles/web/tasks/main.yml': '- template: {src: a.j2, dest: /tmp/x}\n',
      'roles/web/templates/a.j2': 'line\n{% macro m() %}{% endmacro %}\n',
    })
    assert.throws(
      () => load(badTpl),
      (e: unknown) => e instanceof InputError && e.exitCode === 5 && e.where?.file?.endsWith('templates/a.j2') === true,
    )
    const missing = project({'site.yml': '- hosts: all\n  roles: [nope]\n'})
    refusedAt(() => load(missing), /role "nope" not found/, 'site.yml', 2)
    const inc = project({'site.yml': '- hosts: all\n  tasks:\n    - include_role: {name: x}\n'})
    refusedAt(() => load(inc), /include_role is not supported/, 'site.yml', 3)
  })

  it('notify must name a handler or listen topic; templated notify names and unsupported meta actions are refused', () => {
    const dir = project({
      'ok.yml': '- hosts: all\n  tasks:\n    - command: echo\n      notify: [restart]\n  handlers:\n    - name: h1\n      listen: restart\n      command: echo\n',
      'bad.yml': '- hosts: all\n  tasks:\n    - command: echo\n    - command: echo\n      notify: nope\n  handlers:\n    - name: h1\n      command: echo\n',
      'tpl.yml': '- hosts: all\n  tasks:\n    - command: echo\n      notify: "{{ h }}"\n',
      'meta.yml': '- hosts: all\n  tasks:\n    - meta: refresh_inventory\n',
      'listen.yml': '- hosts: all\n  tasks:\n    - command: echo\n      listen: x\n',
      'local.yml': '- hosts: all\n  tasks:\n    - local_action: command echo\n',
    })
    assert.deepEqual(load(dir, 'ok.yml').plays[0].handlers[0].listen, ['restart'])
    refusedAt(() => load(dir, 'bad.yml'), /notifies "nope", but no handler/, 'bad.yml', 4)
    refusedAt(() => load(dir, 'tpl.yml'), /templated notify name/, 'tpl.yml', 4)
    refusedAt(() => load(dir, 'meta.yml'), /meta: refresh_inventory is not supported/, 'meta.yml', 3)
    refusedAt(() => load(dir, 'listen.yml'), /listen is a handler keyword/, 'listen.yml', 4)
    refusedAt(() => load(dir, 'local.yml'), /local_action is not supported/, 'local.yml', 3)
  })

  it('import_playbook splices the other file in place; pre_tasks/post_tasks keep their sections', () => {
    const dir = project({
      'site.yml': '- import_playbook: sub/other.yml\n- hosts: all\n  pre_tasks: [{command: echo pre}]\n  tasks: [{command: echo main}]\n  post_tasks: [{command: echo post}]\n',
      'sub/other.yml': '- name: other\n  hosts: all\n  tasks: [{command: echo other}]\n',
    })
    const pb = load(dir)
    assert.deepEqual(
      pb.plays.map((p) => p.name),
      ['other', 'all'],
    )
    assert.ok(pb.plays[0].dir?.endsWith('/sub'))
    assert.deepEqual(
      pb.plays[1].tasks.map((t) => t.args.cmd),
      ['echo pre', 'echo main', 'echo post'],
    )
    const self = project({'site.yml': '- import_playbook: site.yml\n'})
    refusedAt(() => load(self), /imports itself/, 'site.yml', 1)
  })

  it('serial batches: a number, a percentage (at least 1), a list whose last size repeats', () => {
    const h = [1, 2, 3, 4, 5]
    assert.deepEqual(serialBatches(h, [2]), [[1, 2], [3, 4], [5]])
    assert.deepEqual(serialBatches(h, ['30%']), [[1], [2], [3], [4], [5]])
    assert.deepEqual(serialBatches(h, [1, '50%']), [[1], [2, 3], [4, 5]])
    assert.deepEqual(serialBatches(h, undefined), [h])
  })
})
