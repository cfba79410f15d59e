import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {encodeCommand, ReplyParser} from '../../../src/load/resp.js'
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
  it('parses +OK and -ERR replies in order, across reads split anywhere', () => {
    const wire = Buffer.from('+OK\r\n-MOVED 3999 10.0.0.1:7001\r\n+OK\r\n+QUEUED\r\n-ASK 1 h:2\r\n')
    for (let cut = 0; cut <= wire.length; cut++) {
      const p = new ReplyParser()
      const got: string[] = []
      const sink = {ok: () => got.push('ok'), error: (t: string) => got.push(t), protocol: (m: string) => got.push(`protocol ${m}`)}
      p.feed(wire.subarray(0, cut), sink)
      p.feed(wire.subarray(cut), sink)
      assert.deepEqual(got, ['ok', 'MOVED 3999 10.0.0.1:7001', 'ok', 'ok', 'ASK 1 h:2'], `cut at ${cut}`)
    }
  })
  it('refuses any other reply type: a SET-only connection cannot have caused it', () => {
    for (const wire of ['+OK\r\n$3\r\nabc\r\n', ':1\r\n']) {
      const got: string[] = []
      const ok = new ReplyParser().feed(Buffer.from(wire), {ok: () => got.push('ok'), error: (t) => got.push(t), protocol: (m) => got.push(m)})
      assert.equal(ok, false)
      assert.match(got[got.length - 1], /unexpected reply type/)
    }
  })
})
