import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {parseKv, splitArgs} from '../../../src/play/kv.js'
import {parseExtraVar} from '../../../src/play/vars.js'

// -e as ansible-playbook reads it: several key=value pieces, quoted values, JSON or YAML, @file.
const e = (arg: string, files: Record<string, Record<string, unknown>> = {}) => parseExtraVar(arg, (f) => files[f] ?? {})

describe('cli: -e splitting', () => {
  it('splits "a=1 b=2" into two variables (it set a to "1 b=2")', () => {
    assert.deepEqual(e('a=1 b=2'), {a: '1', b: '2'})
    assert.deepEqual(e('  a=1\tb=2  '), {a: '1', b: '2'})
  })

  it('keeps quoted values whole and unquotes them', () => {
    assert.deepEqual(e(`msg='hello world' n=3`), {msg: 'hello world', n: '3'})
    assert.deepEqual(e(`msg="say \\"hi\\"" x=`), {msg: 'say "hi"', x: ''})
    assert.deepEqual(e(`p="a b"`), {p: 'a b'})
  })

  it("keeps {{ }} blocks whole, as Ansible's splitter does", () => {
    assert.deepEqual(e('a={{ x | default(1) }} b=2'), {a: '{{ x | default(1) }}', b: '2'})
  })

  it('an argument that is not all key=value pieces keeps the old reading: the rest after the first =', () => {
    assert.deepEqual(e('msg=hello world'), {msg: 'hello world'})
    assert.deepEqual(e('evil=$(touch /tmp/x)`id`'), {evil: '$(touch /tmp/x)`id`'})
    assert.deepEqual(e(`q='; touch x; echo "`), {q: `'; touch x; echo "`})
    assert.deepEqual(e('a=b=c'), {a: 'b=c'})
  })

  it('reads JSON, a YAML flow mapping and @file', () => {
    assert.deepEqual(e('{"a": 1, "b": [1, 2]}'), {a: 1, b: [1, 2]})
    assert.deepEqual(e('{a: 1, b: x}'), {a: 1, b: 'x'})
    assert.deepEqual(e('@vars.yml', {'vars.yml': {z: true}}), {z: true})
  })

  it('refuses what is not key=value, never echoing a secret', () => {
    assert.throws(() => e('novalue'), /is not key=value/)
    assert.throws(
      () => e('redis_password hunter2'),
      (err: Error) => /not key=value/.test(err.message) && !err.message.includes('hunter2'),
    )
  })

  it('splitArgs: unbalanced quotes or blocks are not split; parseKv needs a name before =', () => {
    assert.equal(splitArgs(`a='x`), undefined)
    assert.equal(splitArgs('a={{ x'), undefined)
    assert.deepEqual(splitArgs(`a='x y' b`), [`a='x y'`, 'b'])
    assert.equal(parseKv('=x'), undefined)
    assert.equal(parseKv('9a=x'), undefined)
  })
})
