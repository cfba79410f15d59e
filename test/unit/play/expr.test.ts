import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {evaluate} from '../../../src/play/expr.js'

describe('conditions (when/changed_when/failed_when)', () => {
  const vars = {a: 1, s: 'x', list: [1, 2], empty: [], t: true, f: false, r: {rc: 0, stdout: 'ok done'}, no: 'no'}
  const cases: Array<[string, boolean]> = [
    ['a == 1', true],
    ['a != 1', false],
    ['a > 0 and s == "x"', true],
    ['not t or f', false],
    ['missing is defined', false],
    ['missing is not defined', true],
    ['a is defined', true],
    ['2 in list', true],
    ['3 not in list', true],
    ["'ok' in r.stdout", true],
    ['r.rc == 0', true],
    ['list | length == 2', true],
    ['empty', false],
    ['no | bool', false],
    ['(a == 2) or (s == "x")', true],
    ['missing | default(5) == 5', true],
    ['{{ t }}', true],
  ]
  for (const [expr, want] of cases) it(`${expr} → ${want}`, () => assert.equal(evaluate(expr, vars), want))

  it('rejects an undefined bare name and unknown syntax with a readable message', () => {
    assert.throws(() => evaluate('missing', vars), /undefined variable/)
    assert.throws(() => evaluate('a |> b', vars), /unexpected|unsupported/)
    assert.throws(() => evaluate('a | nosuch', vars), /unknown filter "nosuch"/)
  })
})
