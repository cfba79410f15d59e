import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {keySlot} from '../../src/load/router.js'

// Values from redis-cli CLUSTER KEYSLOT (and the cluster spec's CRC16 check value).
describe('keySlot: the hash slot Redis computes', () => {
  it('matches CLUSTER KEYSLOT', () => {
    assert.equal(keySlot('123456789'), 0x31c3 % 16384)
    assert.equal(keySlot('foo'), 12182)
    assert.equal(keySlot('bar'), 5061)
    assert.equal(keySlot(''), 0)
  })
  it('hashes only a non-empty {tag}, the first one', () => {
    assert.equal(keySlot('{user1000}.following'), keySlot('user1000'))
    assert.equal(keySlot('a{b}c{d}'), keySlot('b'))
    assert.equal(keySlot('{}x'), keySlot('{}x'))
    assert.notEqual(keySlot('{}foo'), keySlot('foo'))
    assert.equal(keySlot('foo{'), keySlot(Buffer.from('foo{')))
  })
})
