import {connect, type Socket} from 'node:net'

// The data connection of `baremetal load`. A writer that only ever sends SET (and ASKING
// before a SET, and AUTH first) needs none of a general client's machinery: every reply is a
// simple string or an error, in the order the commands went out. So a request is five numbers
// in a ring of typed arrays (who, which counter, when, hops, what kind), a `+OK` completes the
// oldest, a `-ERR …` fails it with Redis's own text (MOVED, ASK, TRYAGAIN, CLUSTERDOWN… as
// errorKind reads them), and no object, string or promise is made per request: at ~100k
// SET/s a Node process otherwise spends its core on garbage, not on the wire. Anything else on
// the wire is not a reply we could have caused: the connection is dropped and every request
// still waiting fails (counted, never acknowledged). What is issued in one turn of the event
// loop leaves in one write per connection.

const CRLF = Buffer.from('\r\n')

/** RESP encoding of one command (an array of bulk strings). */
export function encodeCommand(args: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = Buffer.from(a)
    parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF)
  }
  return Buffer.concat(parts)
}

/** Decimal digits of a non-negative integer. */
export function digitCount(n: number): number {
  let d = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    d++
  }
  return d
}

/** Writes the decimal digits of n at off; returns the offset after them. */
export function writeUint(buf: Uint8Array, off: number, n: number): number {
  const end = off + digitCount(n)
  let i = end
  do {
    const q = Math.floor(n / 10)
    buf[--i] = 48 + (n - q * 10)
    n = q
  } while (n > 0)
  return end
}

const SET_HEAD = Buffer.from('*3\r\n$3\r\nSET\r\n$')
export const ASKING = encodeCommand(['ASKING'])

/**
 * Encodes `SET <prefix><counter> <value>` at off (the buffer must have room: setLength).
 * The value is the key repeated and cut to `size` bytes, or the key twice when size < 0,
 * the same value keys.ts valueOf derives, so nothing but the counter is kept per request.
 */
export function writeSet(buf: Buffer, off: number, prefix: Buffer, counter: number, size: number): number {
  const klen = prefix.length + digitCount(counter)
  const vlen = size < 0 ? 2 * klen : size
  buf.set(SET_HEAD, off)
  off = writeUint(buf, off + SET_HEAD.length, klen)
  buf[off++] = 13
  buf[off++] = 10
  const key = off
  off = writeKey(buf, off, prefix, counter)
  buf[off++] = 13
  buf[off++] = 10
  buf[off++] = 36
  off = writeUint(buf, off, vlen)
  buf[off++] = 13
  buf[off++] = 10
  off = repeatKey(buf, off, key, klen, vlen)
  buf[off++] = 13
  buf[off++] = 10
  return off
}

function writeKey(buf: Buffer, off: number, prefix: Buffer, counter: number): number {
  buf.set(prefix, off)
  return writeUint(buf, off + prefix.length, counter)
}

// The key at buf[key..key+klen) repeated to vlen bytes at off, by doubling copies:
// log2(size / key) of them whatever the data size.
function repeatKey(buf: Buffer, off: number, key: number, klen: number, vlen: number): number {
  let have = 0
  while (have < vlen) {
    const n = Math.min(have === 0 ? klen : have, vlen - have)
    buf.copyWithin(off + have, have === 0 ? key : off, (have === 0 ? key : off) + n)
    have += n
  }
  return off + vlen
}

/** The value of `<prefix><counter>` (as writeSet sends it) at the start of buf; returns its length. buf needs valueLength(…) + key bytes. */
export function writeValue(buf: Buffer, prefix: Buffer, counter: number, size: number): number {
  const klen = prefix.length + digitCount(counter)
  const vlen = size < 0 ? 2 * klen : size
  // The key goes after the value's room, then is repeated into it.
  writeKey(buf, vlen, prefix, counter)
  repeatKey(buf, 0, vlen, klen, vlen)
  return vlen
}

const GET_HEAD = Buffer.from('*2\r\n$3\r\nGET\r\n$')

/** Encodes `GET <prefix><counter>` at off. */
export function writeGet(buf: Buffer, off: number, prefix: Buffer, counter: number): number {
  buf.set(GET_HEAD, off)
  off = writeUint(buf, off + GET_HEAD.length, prefix.length + digitCount(counter))
  buf[off++] = 13
  buf[off++] = 10
  off = writeKey(buf, off, prefix, counter)
  buf[off++] = 13
  buf[off++] = 10
  return off
}

/** Bytes writeSet needs, at most. */
export function setLength(prefixLength: number, counter: number, size: number): number {
  const klen = prefixLength + digitCount(counter)
  const vlen = size < 0 ? 2 * klen : size
  return SET_HEAD.length + 40 + klen + vlen
}

/** What a reply parser reports: one call per reply, in order. */
export interface ReplySink {
  ok(): void
  error(text: string): void
  /** A bulk string (buf[start..end), valid during the call only), or null for a nil; only a connection that sends GET accepts them. */
  bulk?(buf: Buffer, start: number, end: number): void
  nil?(): void
  /** A reply this connection cannot have caused. */
  protocol(message: string): void
}

/**
 * Streaming parser of simple strings and errors. `+OK` costs a five-byte compare; only an
 * error reply's text becomes a string. A reply split across reads waits for its end.
 */
export class ReplyParser {
  private tail: Buffer | undefined

  /** bulks: bulk strings are replies this connection can have caused (it sends GET). */
  constructor(private readonly bulks = false) {}

  feed(chunk: Buffer, sink: ReplySink): boolean {
    let buf = chunk
    if (this.tail) {
      buf = Buffer.concat([this.tail, chunk])
      this.tail = undefined
    }
    const len = buf.length
    let i = 0
    while (i < len) {
      const kind = buf[i]
      if (kind === 0x2b && i + 4 < len && buf[i + 1] === 0x4f && buf[i + 2] === 0x4b && buf[i + 3] === 13 && buf[i + 4] === 10) {
        i += 5
        sink.ok()
        continue
      }
      if (kind === 0x24 && this.bulks) {
        const next = this.bulk(buf, i, sink)
        if (next < 0) break
        i = next
        continue
      }
      if (kind !== 0x2b && kind !== 0x2d) {
        sink.protocol(`unexpected reply type ${JSON.stringify(String.fromCharCode(kind))} on a ${this.bulks ? 'GET' : 'SET'}-only connection`)
        return false
      }
      const end = buf.indexOf(CRLF, i)
      if (end < 0) break
      if (kind === 0x2b) sink.ok()
      else sink.error(buf.toString('utf8', i + 1, end))
      i = end + 2
    }
    if (i < len) this.tail = Buffer.from(buf.subarray(i))
    return true
  }

  // `$<len>\r\n<bytes>\r\n` or `$-1\r\n` at i: the offset after it, or -1 while incomplete.
  private bulk(buf: Buffer, i: number, sink: ReplySink): number {
    const end = buf.indexOf(CRLF, i)
    if (end < 0) return -1
    if (buf[i + 1] === 0x2d) {
      sink.nil!()
      return end + 2
    }
    let n = 0
    for (let k = i + 1; k < end; k++) n = n * 10 + buf[k] - 48
    if (end + 2 + n + 2 > buf.length) return -1
    sink.bulk!(buf, end + 2, end + 2 + n)
    return end + 2 + n + 2
  }

  reset(): void {
    this.tail = undefined
  }
}

export const KIND_SET = 0
export const KIND_ASKING = 1
export const KIND_AUTH = 2
export const KIND_GET = 3

/** The requests a connection waits replies for, oldest first: typed arrays, grown by doubling. */
export class Ring {
  client = new Int32Array(64)
  counter = new Float64Array(64)
  t0 = new Float64Array(64)
  hops = new Uint8Array(64)
  kind = new Uint8Array(64)
  private head = 0
  size = 0

  push(client: number, counter: number, t0: number, hops: number, kind: number): void {
    if (this.size === this.client.length) this.grow()
    const at = (this.head + this.size) & (this.client.length - 1)
    this.client[at] = client
    this.counter[at] = counter
    this.t0[at] = t0
    this.hops[at] = hops
    this.kind[at] = kind
    this.size++
  }

  /** Index of the oldest entry (valid until the next push or shift). */
  first(): number {
    return this.head
  }

  shift(): void {
    this.head = (this.head + 1) & (this.client.length - 1)
    this.size--
  }

  // Doubling keeps the capacity a power of two (the index mask) and the order oldest first.
  private grow(): void {
    const cap = this.client.length
    const h = this.head
    const client = new Int32Array(cap * 2)
    const counter = new Float64Array(cap * 2)
    const t0 = new Float64Array(cap * 2)
    const hops = new Uint8Array(cap * 2)
    const kind = new Uint8Array(cap * 2)
    for (let k = 0; k < cap; k++) {
      const j = (h + k) & (cap - 1)
      client[k] = this.client[j]
      counter[k] = this.counter[j]
      t0[k] = this.t0[j]
      hops[k] = this.hops[j]
      kind[k] = this.kind[j]
    }
    this.client = client
    this.counter = counter
    this.t0 = t0
    this.hops = hops
    this.kind = kind
    this.head = 0
  }
}

/** Whoever issued the requests on a connection hears of each outcome here. */
export interface DataOwner {
  /** A SET's `+OK`. */
  acked(client: number, counter: number, t0: number): void
  /** A GET's value (valid during the call only), or null: the key does not exist. */
  got(client: number, counter: number, value: Buffer | null): void
  /** A SET that failed: Redis's error line or the connection's failure. */
  failed(client: number, counter: number, t0: number, hops: number, text: string): void
  /** The current time (ms, performance.now()): read once per turn of the loop, not per request. */
  now(): number
}

const AUTH_REFUSED = /^(NOAUTH|WRONGPASS|ERR invalid password)/

export class DataConnection implements ReplySink {
  private socket?: Socket
  private readonly ring = new Ring()
  private readonly parser: ReplyParser
  private out: Buffer = Buffer.allocUnsafe(16 * 1024)
  private readonly spare: Buffer[] = []
  private outLen = 0
  private flushing = false
  private retryAt = 0
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly password: string | undefined,
    private readonly owner: DataOwner,
    /** GET instead of SET: the connection of verify. */
    private readonly reads = false,
    private readonly timeoutMs = 10_000,
  ) {
    this.parser = new ReplyParser(reads)
    // A reply that does not come within the timeout means the link is gone: fail them all.
    this.timer = setInterval(() => {
      if (this.ring.size && this.owner.now() - this.ring.t0[this.ring.first()] > this.timeoutMs) this.drop(`Command timed out after ${this.timeoutMs} ms`)
    }, 500)
    this.timer.unref()
  }

  /** Queue one SET, or GET (after ASKING when asking); its outcome goes to the owner, never synchronously. */
  send(client: number, prefix: Buffer, counter: number, size: number, t0: number, hops: number, asking: boolean): void {
    if (!this.open()) {
      // Fail fast for a moment after a failure instead of reconnecting per request.
      const text = `connect ECONNREFUSED ${this.host}:${this.port} (retrying)`
      setImmediate(() => this.owner.failed(client, counter, t0, hops, text))
      return
    }
    this.reserve(setLength(prefix.length, counter, size) + ASKING.length)
    if (asking) {
      this.out.set(ASKING, this.outLen)
      this.outLen += ASKING.length
      this.ring.push(client, counter, t0, hops, KIND_ASKING)
    }
    this.outLen = this.reads ? writeGet(this.out, this.outLen, prefix, counter) : writeSet(this.out, this.outLen, prefix, counter, size)
    this.ring.push(client, counter, t0, hops, this.reads ? KIND_GET : KIND_SET)
    this.scheduleFlush()
  }

  private reserve(n: number): void {
    if (this.outLen + n <= this.out.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLen + n))
    this.out.copy(bigger, 0, 0, this.outLen)
    this.out = bigger
  }

  private scheduleFlush(): void {
    if (this.flushing) return
    this.flushing = true
    setImmediate(() => this.flush())
  }

  // The socket keeps the buffer it is given until written: a small batch is copied out (into
  // Node's pooled slab, no allocation of its own), a large one is handed over and its buffer
  // comes back to a free list once written, so steady writing allocates nothing big.
  private flush(): void {
    this.flushing = false
    const s = this.socket
    const n = this.outLen
    if (!s || n === 0) return
    this.outLen = 0
    if (n <= 2048) {
      const chunk = Buffer.allocUnsafe(n)
      this.out.copy(chunk, 0, 0, n)
      s.write(chunk)
      return
    }
    const buf = this.out
    this.out = this.spare.pop() ?? Buffer.allocUnsafe(buf.length)
    s.write(buf.subarray(0, n), () => {
      if (this.spare.length < 4 && buf.length === this.out.length) this.spare.push(buf)
    })
  }

  private open(): boolean {
    if (this.socket) return true
    if (this.owner.now() < this.retryAt) return false
    const s = connect({host: this.host, port: this.port, noDelay: true})
    this.socket = s
    s.on('data', (d: Buffer) => {
      if (s === this.socket) this.parser.feed(d, this)
    })
    s.on('error', (e) => s === this.socket && this.drop(e.message))
    s.on('close', () => s === this.socket && this.drop('Connection is closed'))
    if (this.password) {
      // AUTH goes first on the wire; a refusal fails every request behind it.
      const auth = encodeCommand(['AUTH', this.password])
      this.reserve(auth.length)
      this.out.set(auth, this.outLen)
      this.outLen += auth.length
      this.ring.push(-1, 0, this.owner.now(), 0, KIND_AUTH)
      this.scheduleFlush()
    }
    return true
  }

  ok(): void {
    // Dropped while parsing this read: what follows in it belongs to no one.
    if (!this.socket) return
    const r = this.ring
    if (r.size === 0) return this.protocol('a reply with no request waiting')
    const at = r.first()
    const kind = r.kind[at]
    const client = r.client[at]
    const counter = r.counter[at]
    const t0 = r.t0[at]
    r.shift()
    if (kind === KIND_SET) this.owner.acked(client, counter, t0)
    else if (kind === KIND_GET) this.drop('a simple string for a GET')
  }

  bulk(buf: Buffer, start: number, end: number): void {
    this.value(buf.subarray(start, end))
  }

  nil(): void {
    this.value(null)
  }

  private value(v: Buffer | null): void {
    if (!this.socket) return
    const r = this.ring
    if (r.size === 0) return this.protocol('a reply with no request waiting')
    const at = r.first()
    if (r.kind[at] !== KIND_GET) return this.drop('a bulk string for a SET')
    const client = r.client[at]
    const counter = r.counter[at]
    r.shift()
    this.owner.got(client, counter, v)
  }

  error(text: string): void {
    if (!this.socket) return
    const r = this.ring
    if (r.size === 0) return this.protocol('a reply with no request waiting')
    const at = r.first()
    const kind = r.kind[at]
    if (kind === KIND_AUTH && AUTH_REFUSED.test(text)) return this.drop(text)
    const client = r.client[at]
    const counter = r.counter[at]
    const t0 = r.t0[at]
    const hops = r.hops[at]
    r.shift()
    // ASKING's own error is not the SET's outcome: the SET's reply follows.
    if (kind === KIND_SET || kind === KIND_GET) this.owner.failed(client, counter, t0, hops, text)
  }

  protocol(message: string): void {
    this.drop(message)
  }

  private drop(text: string): void {
    const s = this.socket
    this.socket = undefined
    this.parser.reset()
    this.outLen = 0
    if (s) {
      this.retryAt = this.owner.now() + 100
      s.destroy()
    }
    const r = this.ring
    const failed: Array<[number, number, number, number]> = []
    while (r.size) {
      const at = r.first()
      if (r.kind[at] === KIND_SET || r.kind[at] === KIND_GET) failed.push([r.client[at], r.counter[at], r.t0[at], r.hops[at]])
      r.shift()
    }
    for (const [client, counter, t0, hops] of failed) this.owner.failed(client, counter, t0, hops, text)
  }

  close(): void {
    clearInterval(this.timer)
    this.drop('Connection is closed')
  }
}
