import {connect, type Socket} from 'node:net'

// The data connection of `baremetal load`: a writer that only ever sends SET (and ASKING
// before a SET, and AUTH first) needs none of a general client's machinery. Every reply is
// then a simple string or an error, in the order the commands went out, so a FIFO of
// waiting promises is the whole protocol: `+OK` acknowledges the oldest request, `-ERR …`
// rejects it with Redis's own text (MOVED, ASK, TRYAGAIN, CLUSTERDOWN… as errorKind reads
// them). Anything else on the wire is not a reply we could have caused: the connection is
// dropped and every request still waiting fails (counted, never acknowledged). Writes issued
// in one tick go out in one syscall (cork/uncork), which is what pipelining a client's
// in-flight requests takes.

interface Waiting {
  resolve: (line: string) => void
  reject: (error: Error) => void
  at: number
}

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

/**
 * Split complete reply lines off a buffer: simple strings and errors only. Returns the
 * lines and what is left (an incomplete line); a line that is neither is an error.
 */
export function splitReplies(buf: Buffer): {lines: Array<{ok: boolean; text: string}>; rest: Buffer} {
  const lines: Array<{ok: boolean; text: string}> = []
  let start = 0
  for (;;) {
    const end = buf.indexOf(CRLF, start)
    if (end < 0) break
    const kind = buf[start]
    if (kind !== 0x2b && kind !== 0x2d) throw new Error(`unexpected reply type ${JSON.stringify(String.fromCharCode(kind))} on a SET-only connection`)
    lines.push({ok: kind === 0x2b, text: buf.toString('utf8', start + 1, end)})
    start = end + 2
  }
  return {lines, rest: buf.subarray(start)}
}

export class RespConnection {
  private socket?: Socket
  private waiting: Waiting[] = []
  private head = 0
  private pending = Buffer.alloc(0)
  private corked = false
  private retryAt = 0
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly password: string | undefined,
    private readonly timeoutMs = 10_000,
  ) {
    // A reply that does not come within the timeout means the link is gone: fail them all.
    this.timer = setInterval(() => {
      const oldest = this.waiting[this.head]
      if (oldest && Date.now() - oldest.at > this.timeoutMs) this.drop(new Error(`Command timed out after ${this.timeoutMs} ms`))
    }, 500)
    this.timer.unref()
  }

  /** Send one command; resolves with the `+` line, rejects with the `-` line or the connection's failure. */
  send(args: readonly string[]): Promise<string> {
    const s = this.open()
    if (!s) return Promise.reject(new Error(`connect ECONNREFUSED ${this.host}:${this.port} (retrying)`))
    return new Promise((resolve, reject) => {
      this.waiting.push({resolve, reject, at: Date.now()})
      if (!this.corked) {
        this.corked = true
        s.cork()
        process.nextTick(() => {
          this.corked = false
          s.uncork()
        })
      }
      s.write(encodeCommand(args))
    })
  }

  private open(): Socket | undefined {
    if (this.socket) return this.socket
    // After a failure, new requests fail fast for a moment instead of each reconnecting.
    if (Date.now() < this.retryAt) return undefined
    const s = connect({host: this.host, port: this.port, noDelay: true})
    this.socket = s
    s.on('data', (d: Buffer) => this.onData(s, d))
    s.on('error', (e) => this.drop(e, s))
    s.on('close', () => this.drop(new Error('Connection is closed'), s))
    if (this.password) {
      // AUTH goes first on the wire; a refusal fails every request behind it.
      this.waiting.push({resolve: () => {}, reject: () => {}, at: Date.now()})
      s.write(encodeCommand(['AUTH', this.password]))
    }
    return s
  }

  private onData(s: Socket, d: Buffer): void {
    if (s !== this.socket) return
    let parsed
    try {
      parsed = splitReplies(this.pending.length ? Buffer.concat([this.pending, d]) : d)
    } catch (error) {
      this.drop(error as Error)
      return
    }
    this.pending = parsed.rest.length ? Buffer.from(parsed.rest) : Buffer.alloc(0)
    for (const line of parsed.lines) {
      const w = this.waiting[this.head++]
      if (!w) {
        this.drop(new Error('a reply with no request waiting'))
        return
      }
      if (line.ok) w.resolve(line.text)
      else if (this.password && /^(NOAUTH|WRONGPASS|ERR invalid password)/.test(line.text) && this.head === 1) {
        this.drop(new Error(line.text))
        return
      } else w.reject(new Error(line.text))
    }
    // Keep the FIFO from growing without bound: compact once the consumed head is large.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head)
      this.head = 0
    }
  }

  private drop(error: Error, from?: Socket): void {
    if (from && from !== this.socket) return
    const s = this.socket
    this.socket = undefined
    this.pending = Buffer.alloc(0)
    if (s) {
      this.retryAt = Date.now() + 100
      s.destroy()
    }
    const left = this.waiting.slice(this.head)
    this.waiting = []
    this.head = 0
    for (const w of left) w.reject(error)
  }

  close(): void {
    clearInterval(this.timer)
    this.drop(new Error('Connection is closed'))
  }
}
