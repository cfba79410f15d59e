import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {iniValue, NOT_A_LITERAL, pyLiteral} from '../../../src/inventory/pyliteral.js'

// Expected values are what Python 3's ast.literal_eval returns (or raises on) for each text.
describe('pyLiteral (ast.literal_eval)', () => {
  it('types numbers as Python does, leaving invalid ones as text', () => {
    assert.equal(pyLiteral('7000'), 7000)
    assert.equal(pyLiteral('-5'), -5)
    assert.equal(pyLiteral('+5'), 5)
    assert.equal(pyLiteral('1_000'), 1000)
    assert.equal(pyLiteral('0x1F'), 31)
    assert.equal(pyLiteral('0o17'), 15)
    assert.equal(pyLiteral('0b101'), 5)
    assert.equal(pyLiteral('1.5'), 1.5)
    assert.equal(pyLiteral('1e3'), '1000.0')
    assert.equal(pyLiteral('7.0'), '7.0')
    assert.equal(pyLiteral('-2.0'), '-2.0')
    assert.equal(pyLiteral('1e16'), '1e+16')
    assert.equal(pyLiteral('.5'), 0.5)
    assert.equal(pyLiteral('00'), 0)
    for (const t of ['0644', '01', '1abc', '1j', '1+2', '1__0', '.', '10.0.0.1']) assert.equal(pyLiteral(t), NOT_A_LITERAL, t)
  })

  it('reads True/False/None but not yes/true/none', () => {
    assert.equal(pyLiteral('True'), true)
    assert.equal(pyLiteral('False'), false)
    assert.equal(pyLiteral('None'), null)
    for (const t of ['yes', 'true', 'none', 'FALSE', 'on']) assert.equal(pyLiteral(t), NOT_A_LITERAL, t)
  })

  it('reads strings with escapes, prefixes, concatenation and a trailing comment', () => {
    assert.equal(pyLiteral("'a b'"), 'a b')
    assert.equal(pyLiteral('"x\\ty"'), 'x\ty')
    assert.equal(pyLiteral("r'a\\d'"), 'a\\d')
    assert.equal(pyLiteral("'a\\d'"), 'a\\d')
    assert.equal(pyLiteral("'\\x41\\u00e9\\101'"), 'Aé\x41')
    assert.equal(pyLiteral("'a' 'b'"), 'ab')
    assert.equal(pyLiteral("u'x'"), 'x')
    assert.equal(pyLiteral("b'x'"), 'x')
    assert.equal(pyLiteral("'''t'''"), 't')
    assert.equal(pyLiteral("'x' # note"), 'x')
    for (const t of ["'open", "f'x'", "'a' b'c'", "'x' y"]) assert.equal(pyLiteral(t), NOT_A_LITERAL, t)
  })

  it('reads lists, tuples, dicts and sets; names inside make the whole value text', () => {
    assert.deepEqual(pyLiteral("[1, 'a', [True]]"), [1, 'a', [true]])
    assert.deepEqual(pyLiteral('(1, 2,)'), [1, 2])
    assert.deepEqual(pyLiteral('()'), [])
    assert.equal(pyLiteral('(3)'), 3)
    assert.deepEqual(pyLiteral("{'a': 1, 2: [None]}"), {a: 1, 2: [null]})
    assert.deepEqual(pyLiteral('{}'), {})
    assert.deepEqual(pyLiteral('{1, 2, 1}'), [1, 2])
    for (const t of ['{"a": true}', '{{ x }}', '[a]', '{1: 2, 3}', '[1 2]']) assert.equal(pyLiteral(t), NOT_A_LITERAL, t)
  })

  it('iniValue keeps the text where literal_eval fails, as Ansible', () => {
    assert.equal(iniValue('yes'), 'yes')
    assert.equal(iniValue('{{ redis_port + 1 }}'), '{{ redis_port + 1 }}')
    assert.equal(iniValue(''), '')
    assert.equal(iniValue('hello # not a comment'), 'hello # not a comment')
    assert.equal(iniValue('"7000"'), '7000')
    assert.equal(iniValue('7000'), 7000)
  })
})
