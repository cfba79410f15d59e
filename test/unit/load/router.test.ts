import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {encodeCommand, splitReplies} from '../../../src/load/resp.js'
import {keySlot} from '../../../src/load/router.js'

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

describe('the SET-only RESP connection: encoding and reply splitting', () => {
  it('encodes a command as an array of bulk strings, by bytes', () => {
    assert.equal(encodeCommand(['SET', 'k', 'vé']).toString(), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nvé\r\n')
    assert.equal(encodeCommand(['SET', 'a\r\nb', '']).toString(), '*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n')
  })
  it('splits +OK and -ERR lines in order and keeps an incomplete tail', () => {
    const {lines, rest} = splitReplies(Buffer.from('+OK\r\n-MOVED 3999 10.0.0.1:7001\r\n+OK\r\n+O'))
    assert.deepEqual(lines, [
      {ok: true, text: 'OK'},
      {ok: false, text: 'MOVED 3999 10.0.0.1:7001'},
      {ok: true, text: 'OK'},
    ])
    assert.equal(rest.toString(), '+O')
    assert.deepEqual(splitReplies(Buffer.from('')).lines, [])
  })
  it('refuses any other reply type: a SET-only connection cannot have caused it', () => {
    assert.throws(() => splitReplies(Buffer.from('+OK\r\n$3\r\nabc\r\n')), /unexpected reply type "\$"/)
    assert.throws(() => splitReplies(Buffer.from(':1\r\n')), /unexpected reply type/)
  })
})
