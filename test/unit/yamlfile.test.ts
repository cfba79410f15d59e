import assert from 'node:assert/strict'
import {test} from 'node:test'
import {InputError} from '../../src/errors.js'
import {parseYaml} from '../../src/yamlfile.js'

test('YAML booleans as PyYAML (Ansible) reads them: yes/no/on/off/true/false, never y/n', () => {
  const v = parseYaml('a: {n: 1, y: 2}\nb: n\nc: yes\nd: Y\ne: No\nf: off\ng: "yes"\nh: True\n', 'x.yml', InputError).value
  assert.deepEqual(v, {a: {n: 1, y: 2}, b: 'n', c: true, d: 'Y', e: false, f: false, g: 'yes', h: true})
})

test('YAML: a timestamp stays the text written (no Date), octal-looking modes stay as YAML 1.1 reads them', () => {
  const v = parseYaml('t: 2001-12-14\nm: 0644\ns: "0644"\n', 'x.yml', InputError).value as Record<string, unknown>
  assert.equal(v.t, '2001-12-14')
  assert.equal(v.m, 0o644)
  assert.equal(v.s, '0644')
})
