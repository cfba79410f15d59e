import assert from 'node:assert/strict'
import {createServer, type Server, type Socket} from 'node:net'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {Histogram} from '../../../src/load/histogram.js'
import {keyOf, RangeSet, valueOf} from '../../../src/load/keys.js'
import {DataConnection, encodeCommand, ReplyParser, Ring, writeGet, writeSet, writeValue, type DataOwner} from '../../../src/load/resp.js'
import {counterSlot, crc16, keySlot} from '../../../src/load/router.js'
import {mergeThreads, splitWork} from '../../../src/load/run.js'

// The pure parts of the pipelined write path (issue 14): the bytes it sends, the replies it
// parses, the FIFO that pairs them, and how one thread's or several threads' results add up.

const UUID = '0b9f6d3e-2c4a-4f7e-9a1b-5d8c7e6f4a21'
const PREFIX = Buffer.from(`${UUID}-`)

describe('encoding without strings: the same bytes as the general encoder', () => {
  it('SET <uuid>-<counter> <value>, for any counter and data size (property)', () => {
    fc.assert(
      fc.property(fc.nat({max: 2 ** 40}), fc.oneof(fc.constant(-1), fc.nat({max: 3000})), (n, size) => {
        const key = keyOf(UUID, n)
        const buf = Buffer.alloc(size + 300)
        const end = writeSet(buf, 3, PREFIX, n, size)
        assert.equal(buf.subarray(3, end).toString(), encodeCommand(['SET', key, valueOf(key, size < 0 ? undefined : size)]).toString())
        const get = Buffer.alloc(200)
        assert.equal(get.subarray(0, writeGet(get, 0, PREFIX, n)).toString(), encodeCommand(['GET', key]).toString())
        const v = Buffer.alloc(size + 200)
        assert.equal(v.subarray(0, writeValue(v, PREFIX, n, size)).toString(), valueOf(key, size < 0 ? undefined : size))
      }),
    )
  })

  it("the slot of a counter from its prefix's CRC is the key's slot", () => {
    fc.assert(fc.property(fc.nat({max: 2 ** 45}), (n) => assert.equal(counterSlot(crc16(PREFIX), n), keySlot(keyOf(UUID, n)))))
  })
})

describe('reply parsing: bulk strings on a reading connection only', () => {
  it('values, nil and empty values, across reads split anywhere', () => {
    const wire = Buffer.from('$5\r\nhe\r\no\r\n$-1\r\n$0\r\n\r\n-MOVED 1 h:2\r\n')
    for (let cut = 0; cut <= wire.length; cut++) {
      const got: string[] = []
      const sink = {
        ok: () => got.push('ok'),
        error: (t: string) => got.push(`-${t}`),
        bulk: (b: Buffer, s: number, e: number) => got.push(`$${b.toString('utf8', s, e)}`),
        nil: () => got.push('nil'),
        protocol: (m: string) => got.push(m),
      }
      const p = new ReplyParser(true)
      p.feed(wire.subarray(0, cut), sink)
      p.feed(wire.subarray(cut), sink)
      assert.deepEqual(got, ['$he\r\no', 'nil', '$', '-MOVED 1 h:2'], `cut at ${cut}`)
    }
  })
  it('a writing connection refuses a bulk string', () => {
    const got: string[] = []
    assert.equal(new ReplyParser(false).feed(Buffer.from('$1\r\nx\r\n'), {ok: () => got.push('ok'), error: () => {}, protocol: (m) => got.push(m)}), false)
    assert.match(got[0], /unexpected reply type "\$" on a SET-only connection/)
  })
})

describe('the request FIFO', () => {
  it('keeps order across growth and wrap-around (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), {maxLength: 600}), (ops) => {
        const r = new Ring()
        const want: number[] = []
        let n = 0
        for (const push of ops) {
          if (push || want.length === 0) {
            r.push(n % 1000, n, n * 2, n % 7, n % 4)
            want.push(n++)
          } else {
            const at = r.first()
            const w = want.shift()!
            assert.deepEqual([r.client[at], r.counter[at], r.t0[at], r.hops[at], r.kind[at]], [w % 1000, w, w * 2, w % 7, w % 4])
            r.shift()
          }
          assert.equal(r.size, want.length)
        }
      }),
    )
  })
})

// A fake Redis on loopback: answers each command as `answer` says, `delayMs` later (null: end the connection).
function fakeRedis(answer: (args: string[]) => string | null, delayMs = 0): Promise<{server: Server; port: number; sockets: Socket[]}> {
  const sockets: Socket[] = []
  const server = createServer((s) => {
    sockets.push(s)
    let buf = Buffer.alloc(0)
    let ended = false
    s.on('data', (d) => {
      if (ended) return
      buf = Buffer.concat([buf, d])
      for (;;) {
        const cmd = parseCommand(buf)
        if (!cmd) break
        buf = buf.subarray(cmd.end)
        const reply = answer(cmd.args)
        if (reply === null) {
          // What was answered still reaches the client; then the connection ends.
          ended = true
          s.end()
          break
        } else if (delayMs) setTimeout(() => s.writable && s.write(reply), delayMs)
        else s.write(reply)
      }
    })
    s.on('error', () => {})
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({server, port: (server.address() as {port: number}).port, sockets})))
}

function parseCommand(buf: Buffer): {args: string[]; end: number} | undefined {
  let i = buf.indexOf('\r\n')
  if (i < 0) return undefined
  const n = Number(buf.toString('utf8', 1, i))
  let at = i + 2
  const args: string[] = []
  for (let k = 0; k < n; k++) {
    i = buf.indexOf('\r\n', at)
    if (i < 0) return undefined
    const len = Number(buf.toString('utf8', at + 1, i))
    if (i + 2 + len + 2 > buf.length) return undefined
    args.push(buf.toString('utf8', i + 2, i + 2 + len))
    at = i + 2 + len + 2
  }
  return {args, end: at}
}

class Tracker implements DataOwner {
  readonly acks = new RangeSet()
  readonly failures: Array<[number, string]> = []
  outcomes = 0
  acked(_c: number, counter: number): void {
    this.acks.add(counter)
    this.outcomes++
  }
  got(): void {}
  failed(_c: number, counter: number, _t0: number, _h: number, text: string): void {
    this.failures.push([counter, text])
    this.outcomes++
  }
  now(): number {
    return performance.now()
  }
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(cond(), 'timed out waiting')
}

const counterOf = (key: string) => Number(key.slice(UUID.length + 1))

describe('pipelined acknowledgement: a counter is acknowledged by its own +OK only', () => {
  it('two nodes, one slow, some SETs refused: the acknowledged set is exactly the OK-ed counters', async () => {
    const refused = (n: number) => n % 5 === 3
    const answer = (args: string[]) => (refused(counterOf(args[1])) ? '-TRYAGAIN Multiple keys request during rehashing of slot\r\n' : '+OK\r\n')
    const fast = await fakeRedis(answer)
    const slow = await fakeRedis(answer, 30)
    const t = new Tracker()
    const conns = [new DataConnection('127.0.0.1', fast.port, undefined, t), new DataConnection('127.0.0.1', slow.port, undefined, t)]
    try {
      const N = 3000
      // Interleaved counters, all in flight at once, answered out of order across the two.
      for (let n = 0; n < N; n++) conns[(n * 7919) % 3 === 0 ? 1 : 0].send(0, PREFIX, n, -1, t.now(), 0, false)
      await until(() => t.outcomes === N)
      const want = Array.from({length: N}, (_, n) => n).filter((n) => !refused(n))
      assert.deepEqual([...t.acks], want)
      assert.deepEqual(
        t.failures.map(([n]) => n).sort((a, b) => a - b),
        Array.from({length: N}, (_, n) => n).filter(refused),
      )
      assert.ok(t.failures.every(([, text]) => text.startsWith('TRYAGAIN')))
    } finally {
      for (const c of conns) c.close()
      fast.server.close()
      slow.server.close()
    }
  })

  it('a connection that drops fails every request still waiting: none of them acknowledged', async () => {
    let seen = 0
    const fake = await fakeRedis(() => (++seen > 100 ? null : '+OK\r\n'))
    const t = new Tracker()
    const c = new DataConnection('127.0.0.1', fake.port, undefined, t)
    try {
      for (let n = 0; n < 500; n++) c.send(0, PREFIX, n, 80, t.now(), 0, false)
      await until(() => t.outcomes === 500)
      assert.deepEqual(t.acks.ranges, [[0, 99]])
      assert.equal(t.failures.length, 400)
      assert.ok(
        t.failures.every(([n, text]) => n >= 100 && /Connection is closed|ECONNRESET/.test(text)),
        JSON.stringify(t.failures.slice(0, 3)),
      )
    } finally {
      c.close()
      fake.server.close()
    }
  })

  it('AUTH goes first; a refused password fails the requests behind it with NOAUTH, none acknowledged', async () => {
    const firsts: string[] = []
    const fake = await fakeRedis((args) => {
      firsts.push(args[0])
      return args[0] === 'AUTH' ? '-WRONGPASS invalid username-password pair or user is disabled.\r\n' : '+OK\r\n'
    })
    const t = new Tracker()
    const c = new DataConnection('127.0.0.1', fake.port, 's3cret', t)
    try {
      for (let n = 0; n < 20; n++) c.send(0, PREFIX, n, -1, t.now(), 0, false)
      await until(() => t.outcomes === 20)
      assert.equal(firsts[0], 'AUTH')
      assert.equal(t.acks.count, 0)
      assert.ok(t.failures.every(([, text]) => text.startsWith('WRONGPASS')))
    } finally {
      c.close()
      fake.server.close()
    }
  })

  it('ASKING before a SET is not the SET: only the SET reply acknowledges', async () => {
    const fake = await fakeRedis((args) => (args[0] === 'ASKING' ? '+OK\r\n' : '-MOVED 5 127.0.0.1:1\r\n'))
    const t = new Tracker()
    const c = new DataConnection('127.0.0.1', fake.port, undefined, t)
    try {
      c.send(0, PREFIX, 7, -1, t.now(), 1, true)
      await until(() => t.outcomes === 1)
      assert.equal(t.acks.count, 0)
      assert.deepEqual(t.failures, [[7, 'MOVED 5 127.0.0.1:1']])
    } finally {
      c.close()
      fake.server.close()
    }
  })
})

describe('threads: work split and results merged', () => {
  it('clients, connection sets and the request budget split without losing one', () => {
    const parts = splitWork({clients: 50, sets: 3, requests: 1001, threads: 4})
    assert.deepEqual(
      parts.map((p) => p.clients),
      [13, 13, 12, 12],
    )
    assert.equal(
      parts.reduce((n, p) => n + p.requests!, 0),
      1001,
    )
    assert.ok(parts.every((p) => p.sets >= 1 && p.sets <= p.clients))
    assert.equal(splitWork({clients: 2, sets: 2, threads: 8}).length, 2, 'never more threads than clients')
  })

  it('counts and errors add up, histograms merge, every client keeps its own ranges', () => {
    const h1 = new Histogram()
    const h2 = new Histogram()
    for (let i = 1; i <= 100; i++) (i % 2 ? h1 : h2).record(i * 10)
    const m = mergeThreads([
      {sent: 10, acked: 8, failed: 2, errors: {MOVED: 1, TRYAGAIN: 1}, redirects: {ASK: 2}, hist: h1.state(), keys: [{uuid: 'a', ranges: [[0, 7]]}]},
      {
        sent: 5,
        acked: 4,
        failed: 1,
        errors: {MOVED: 1},
        redirects: {ASK: 1, MOVED: 4},
        hist: h2.state(),
        keys: [
          {
            uuid: 'b',
            ranges: [
              [0, 1],
              [3, 4],
            ],
          },
        ],
      },
    ])
    assert.deepEqual([m.sent, m.acked, m.failed], [15, 12, 3])
    assert.deepEqual(m.errors, {MOVED: 2, TRYAGAIN: 1})
    assert.deepEqual(m.redirects, {ASK: 3, MOVED: 4})
    assert.equal(m.hist.count, 100)
    assert.equal(m.hist.max, 1000)
    assert.ok(m.hist.percentile(0.5) >= 500 && m.hist.percentile(0.5) <= 515, `p50 ${m.hist.percentile(0.5)}`)
    assert.deepEqual(
      m.workers.map((w) => [w.uuid, [...w.acked]]),
      [
        ['a', [0, 1, 2, 3, 4, 5, 6, 7]],
        ['b', [0, 1, 3, 4]],
      ],
    )
  })
})
