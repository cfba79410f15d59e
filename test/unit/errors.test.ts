import assert from 'node:assert/strict'
import {test} from 'node:test'
import {ClusterError, hintText, InputError} from '../../src/errors.js'

// What every error prints: where, what, the cause when the message does not carry it, and
// what to do — one hint, or several actions to pick from.
test('describe: location, message, cause, one hint', () => {
  const e = new ClusterError('MIGRATE failed', {where: {host: 'h1'}, hint: 'run up again', cause: new Error('connect ECONNREFUSED 10.0.0.1:7000')})
  assert.equal(e.describe(), 'host h1: MIGRATE failed\n  cause: connect ECONNREFUSED 10.0.0.1:7000\n  hint: run up again')
  assert.deepEqual(e.toJSON(), {error: 'ClusterError', code: 'CLUSTER', message: 'MIGRATE failed', host: 'h1', hint: 'run up again', cause: 'connect ECONNREFUSED 10.0.0.1:7000'})
})

test('a cause already in the message is not repeated; the innermost cause is the one named', () => {
  const inner = new Error('ETIMEDOUT')
  const e = new InputError('bad x: ETIMEDOUT', {where: {file: 'inv.yml', line: 3, col: 5}, cause: new Error('wrapped', {cause: inner})})
  assert.equal(e.describe(), 'inv.yml:3:5: bad x: ETIMEDOUT')
})

test('several actions: listed on their own lines, joined with "; or" on one line', () => {
  const e = new InputError('down --limit h2 would take members of a live cluster out', {hint: ['drain it first with up --remove-missing', 'run down without --limit']})
  assert.equal(e.describe(), 'down --limit h2 would take members of a live cluster out\n  fix, one of:\n    - drain it first with up --remove-missing\n    - run down without --limit')
  assert.equal(e.hint, 'drain it first with up --remove-missing; or run down without --limit')
  assert.deepEqual(e.toJSON().actions, ['drain it first with up --remove-missing', 'run down without --limit'])
  assert.equal(hintText(['a']), 'a')
  assert.equal(hintText(undefined), '')
})
