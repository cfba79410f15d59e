import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {applyMode, fmtMode, modeProblem, octalMode} from '../../../src/modules/mode.js'

// Ansible's own cases (test/units/module_utils/basic/test__symbolic_mode_to_octal.py):
// [st_mode, spec, expected permission bits].
const DIR = 0o040000
const FILE = 0o100000
const ANSIBLE: Array<[number, string, number]> = [
  [0o040000, 'a+rwx', 0o777],
  [0o040000, 'u+rwx,g+rwx,o+rwx', 0o777],
  [0o040000, 'o+rwx', 0o007],
  [0o040000, 'g+rwx', 0o070],
  [0o040000, 'u+rwx', 0o700],
  [0o040777, 'a-rwx', 0],
  [0o040777, 'u-rwx,g-rwx,o-rwx', 0],
  [0o040777, 'o-rwx', 0o770],
  [0o040777, 'g-rwx', 0o707],
  [0o040777, 'u-rwx', 0o077],
  [0o040000, 'a=rwx', 0o777],
  [0o040000, 'u=rwx,g=rwx,o=rwx', 0o777],
  [0o040000, 'o=rwx', 0o007],
  [0o040000, 'g=rwx', 0o070],
  [0o040000, 'u=rwx', 0o700],
  [0o040000, 'a+X', 0o111],
  [0o100000, 'a+X', 0],
  [0o040000, 'a=X', 0o111],
  [0o100000, 'a=X', 0],
  [0o040777, 'a-X', 0o666],
  [0o100777, 'a-X', 0o666],
  [0o040000, 'u=rw-x+X,g=r-x+X,o=r-x+X', 0o755],
  [0o100000, 'u=rw-x+X,g=r-x+X,o=r-x+X', 0o644],
  [0o040000, 'ug=rx,o=', 0o550],
  [0o100000, 'ug=rx,o=', 0o550],
  [0o040000, 'u=rx,g=r', 0o540],
  [0o100000, 'u=rx,g=r', 0o540],
  [0o040777, 'ug=rx,o=', 0o550],
  [0o100777, 'ug=rx,o=', 0o550],
  [0o040777, 'u=rx,g=r', 0o547],
  [0o100777, 'u=rx,g=r', 0o547],
]

describe('applyMode', () => {
  for (const [st, spec, want] of ANSIBLE) {
    it(`${fmtMode(st)} ${(st & DIR) === DIR && (st & FILE) !== FILE ? 'dir' : 'file'} ${spec} → ${fmtMode(want)}`, () => {
      assert.equal(applyMode(st & 0o7777, spec, (st & 0o170000) === DIR, 0), want)
    })
  }
  it('clauses without users keep the umask bits, as Ansible does (umask 007)', () => {
    assert.equal(applyMode(0, '+rwx', false, 0o007), 0o770)
    assert.equal(applyMode(0o777, '-rwx', false, 0o007), 0o007)
  })
  it('u+x on a 0644 file is 0744; copies and special bits', () => {
    assert.equal(applyMode(0o644, 'u+x', false), 0o744)
    assert.equal(applyMode(0o640, 'o=g', false), 0o644)
    assert.equal(applyMode(0o755, 'u+s,g+s,+t', true), 0o7755)
  })
  it('octal wins as written', () => {
    assert.equal(octalMode('0644'), 0o644)
    assert.equal(octalMode('755'), 0o755)
    assert.equal(octalMode('0o600'), 0o600)
    assert.equal(applyMode(0o777, '0600', false), 0o600)
  })
  it('bad modes name the clause (Ansible: "bad symbolic permission for mode")', () => {
    assert.equal(modeProblem('u+x'), '')
    assert.match(modeProblem('a=foo'), /bad clause "a=foo"/)
    assert.match(modeProblem('f=rwx'), /bad clause "f=rwx"/)
    assert.match(modeProblem('rw'), /neither octal .* nor symbolic/)
    assert.throws(() => applyMode(0, 'z+x', false), /bad clause/)
  })
})
