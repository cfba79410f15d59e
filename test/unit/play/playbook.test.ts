import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {PlaybookError} from '../../../src/errors.js'
import {allModules} from '../../../src/modules/index.js'
import {coerceValue, expandSequence, loadPlaybook, parseKeyValues} from '../../../src/play/playbook.js'
import {parseExtraVar, resolveVars} from '../../../src/play/vars.js'
import {validateLayout} from '../../../src/redis/validate.js'
import {loadInventory} from '../../../src/inventory/inventory.js'

const modules = allModules()
const load = (text: string) => loadPlaybook('site.yml', modules, text)

describe('playbook loading', () => {
  it('parses plays and tasks in map, key=value and free forms', () => {
    const pb = load(`- name: p
  hosts: all
  vars: {x: 1}
  tasks:
    - name: dirs
      file: path=/tmp/a state=directory mode=0755
      with_sequence: start=1 count=3
    - command: echo hi
      register: out
      changed_when: false
    - ansible.builtin.file:
        path: /tmp/b
        state: absent
      when: x == 1
`)
    const [t1, t2, t3] = pb.plays[0].tasks
    assert.equal(t1.module.name, 'file')
    assert.deepEqual(t1.args, {path: '/tmp/a', state: 'directory', mode: '0755'})
    assert.equal(t1.loop?.kind, 'with_sequence')
    assert.equal(t2.module.name, 'command')
    assert.equal(t2.register, 'out')
    assert.equal(t2.changedWhen, false)
    assert.equal(t3.module.name, 'file')
    assert.deepEqual(t3.when, ['x == 1'])
  })

  it('rejects an unknown module with file:line and the allowed names', () => {
    assert.throws(
      () => load('- hosts: all\n  tasks:\n    - name: x\n      fiel: path=/tmp\n'),
      (e: unknown) => e instanceof PlaybookError && e.where.file === 'site.yml' && e.where.line === 4 && /unknown module/.test(e.message) && /did you mean "file"/.test(e.hint ?? ''),
    )
  })

  it("rejects an unknown argument with the module's argument names", () => {
    assert.throws(
      () => load('- hosts: all\n  tasks:\n    - file:\n        path: /tmp/x\n        sate: directory\n'),
      (e: unknown) => e instanceof PlaybookError && /unknown argument "sate" for module file/.test(e.message) && /state/.test(e.hint ?? '') && e.where.line === 3,
    )
  })

  it('rejects bad literal values and missing required arguments at load time', () => {
    assert.throws(
      () => load('- hosts: all\n  tasks:\n    - file: {path: /x, state: folder}\n'),
      (e: unknown) => e instanceof PlaybookError && /directory/.test(e.hint ?? ''),
    )
    assert.throws(
      () => load('- hosts: all\n  tasks:\n    - file: {state: directory}\n'),
      (e: unknown) => e instanceof PlaybookError && /requires argument "path"/.test(e.message),
    )
    assert.throws(
      () => load('- hosts: all\n  tasks:\n    - file: {path: /x, mode: 644}\n'),
      (e: unknown) => e instanceof PlaybookError && /ambiguous/.test(e.message),
    )
  })

  it('rejects malformed YAML with line and column', () => {
    assert.throws(
      () => load('- hosts: all\n  tasks:\n   - command: [a\n'),
      (e: unknown) => e instanceof PlaybookError && e.where.line !== undefined && e.where.col !== undefined,
    )
  })

  it('requires hosts and a task module', () => {
    assert.throws(() => load('- name: x\n  tasks: []\n'), /needs "hosts:"/)
    assert.throws(() => load('- hosts: all\n  tasks:\n    - name: nothing\n'), /task has no module/)
  })
})

describe('values', () => {
  it('expands with_sequence like Ansible', () => {
    assert.deepEqual(expandSequence('start=6379 count=3'), ['6379', '6380', '6381'])
    assert.deepEqual(expandSequence('start=1 end=5 stride=2 format=port%02d'), ['port01', 'port03', 'port05'])
    assert.throws(() => expandSequence('start=1'), /end= or count=/)
  })

  it('parses key=value with quotes', () => {
    assert.deepEqual(parseKeyValues(`a=1 b="two words" c='x y' d=`), {a: '1', b: 'two words', c: 'x y', d: ''})
    assert.deepEqual(parseKeyValues('path={{ base }}/p/{{ item }} state=directory'), {path: '{{ base }}/p/{{ item }}', state: 'directory'})
  })

  it('coerces modes: YAML octal and strings, refuses ambiguous decimals', () => {
    assert.equal(coerceValue({type: 'mode'}, 0o644), 0o644)
    assert.equal(coerceValue({type: 'mode'}, '0600'), 0o600)
    assert.throws(() => coerceValue({type: 'mode'}, 644), /ambiguous/)
    assert.deepEqual(coerceValue({type: 'list'}, [['a', 'b'], 'c', '']), ['a', 'b', 'c'])
  })

  it('-e takes key=value, JSON and rejects anything else', () => {
    assert.deepEqual(
      parseExtraVar('a=b=c', () => ({})),
      {a: 'b=c'},
    )
    assert.deepEqual(
      parseExtraVar('{"n": 1}', () => ({})),
      {n: 1},
    )
    assert.throws(() => parseExtraVar('novalue', () => ({})), /is not key=value/)
  })

  it('resolves variables that refer to others, leaving -e values unrendered', () => {
    const v = resolveVars([{a: '{{ b }}-x', b: '{{ c }}'}, {c: 'C'}], {e: '{{ a }}'})
    assert.equal(v.a, 'C-x')
    assert.equal(v.e, '{{ a }}')
  })

  it('validates the redis layout before anything runs', () => {
    const inv = loadInventory('i.yml', 'redis:\n  hosts:\n    a: {redis_count: 0}\n    b: {redis_port_start: 55500, redis_count: 100}\n')
    const defaults = {redis_port_start: 6379, redis_count: 100, redis_replicas: 0}
    assert.throws(() => validateLayout([inv.hosts.get('a')!], defaults, {}, 'i.yml'), /at least 1 instance/)
    assert.throws(() => validateLayout([inv.hosts.get('b')!], defaults, {}, 'i.yml'), /past 65535/)
    assert.equal(validateLayout([inv.hosts.get('b')!], defaults, {redis_count: '10'}, 'i.yml')[0].count, 10)
  })
})
