import {holdWatcher} from './held.js'
import {readFileSync} from 'node:fs'
import {rename} from 'node:fs/promises'
import {homedir} from 'node:os'
import {Readable} from 'node:stream'
import {NodeSSH} from 'node-ssh'
import pLimit, {type LimitFunction} from 'p-limit'
import {AuthError, BaremetalError, HostKeyError, TaskError, UnreachableError} from '../errors.js'
import {quote} from '../shell.js'
import type {Connection} from '../inventory/inventory.js'
import {addHostKey, fingerprint, knownHostsName, verifyHostKey} from './knownhosts.js'
import {buildUploadScript, UPLOAD_DONE} from './upload-script.js'
import {type ExecOptions, type ExecResult, type HeldCommand, StreamLocalRefused, type Transport, type TransportStats, type UploadFile} from './types.js'

export interface SshOptions {
  /** Add unknown host keys to known_hosts instead of failing (never accepts a changed key). */
  acceptNewHostKeys?: boolean
  connectTimeoutMs?: number
  connectRetries?: number
  /** Channels open at once on the connection: OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number
}

/**
 * Kill what a channel runs: sshd (OpenSSH ≥ 8.1) delivers the signal to the command's
 * whole process group. ssh2's Channel.signal() sends nothing once our side has sent
 * EOF, which it always has after writing stdin, so the request is sent directly.
 * sshd refuses signals in root sessions (no privilege-separated child), hence also
 * KILL_SESSIONS.
 */
function killChannel(ch: object): void {
  const c = ch as {type?: string; outgoing?: {id: number; state: string}; _client?: {_protocol?: {signal(id: number, name: string): void}}}
  try {
    if (c.type === 'session' && c.outgoing && (c.outgoing.state === 'open' || c.outgoing.state === 'eof')) c._client?._protocol?.signal(c.outgoing.id, 'KILL')
  } catch {}
}

/**
 * Run as its own command on the connection being aborted: every other session of this
 * connection is a child of the same sshd process ($PPID) and leads its own process group
 * (sshd calls setsid), so killing those groups ends the commands in flight and all their
 * children — but not daemons they started (redis-server has its own session).
 */
export const KILL_SESSIONS = 'for p in $(pgrep -P "$PPID" 2>/dev/null || ps -o pid= --ppid "$PPID"); do [ "$p" = "$$" ] || kill -KILL -- "-$p" 2>/dev/null; done; true'

/** What unixSocket() uses of ssh2's ClientChannel. */
interface StreamChannel {
  on(ev: 'data', f: (d: Buffer) => void): void
  on(ev: 'end' | 'close', f: () => void): void
  end(data: string): void
  close(): void
}

/** What hold() uses of ssh2's ClientChannel (node-ssh ships no ssh2 types). */
interface HeldChannel {
  on(ev: 'data', f: (d: Buffer) => void): void
  on(ev: 'exit', f: (code: number | null) => void): void
  on(ev: 'close', f: () => void): void
  stderr: {on(ev: 'data', f: (d: Buffer) => void): void}
  end(): void
  close(): void
}

// One SSH connection per host for the whole run, with channels bounded below sshd's
// MaxSessions: the 11th concurrent channel would fail with "Channel open failure".
export class SshTransport implements Transport {
  readonly stats: TransportStats = {connections: 0, execs: 0, uploads: 0}
  readonly address: string
  private ssh = new NodeSSH()
  private limit: LimitFunction
  private connecting?: Promise<void>
  private closed = false
  /** The connection dropped (keepalive timeout, reset): commands in flight have no result. */
  private lost?: string
  /** Channels running a command now: signalled when the run is aborted. */
  private channels = new Set<object>()
  /** Rejects when the connection closes: what a pending SFTP transfer is raced against. */
  private gone?: Promise<never>

  constructor(
    readonly host: string,
    private conn: Connection,
    private opts: SshOptions = {},
  ) {
    this.address = conn.address
    this.limit = pLimit(opts.maxChannels ?? 8)
  }

  connect(): Promise<void> {
    this.connecting ??= this.connectWithRetry()
    return this.connecting
  }

  private async connectWithRetry(): Promise<void> {
    const retries = this.opts.connectRetries ?? 4
    let lastError: unknown
    for (let attempt = 0; attempt <= retries; attempt++) {
      try {
        await this.connectOnce()
        this.stats.connections++
        return
      } catch (error) {
        lastError = error
        // Auth and host-key failures will not fix themselves; refused/reset may be
        // sshd's MaxStartups dropping a burst of handshakes, so back off and retry.
        if (error instanceof AuthError || error instanceof HostKeyError) throw error
        if (error instanceof UnreachableError && /timed out|EHOSTUNREACH|ENETUNREACH|ENOTFOUND/.test(error.message) && attempt >= 1) throw error
        this.ssh.dispose()
        this.ssh = new NodeSSH()
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 3000) + Math.random() * 200))
      }
    }
    throw lastError
  }

  private async connectOnce(): Promise<void> {
    const c = this.conn
    const knownHosts = c.knownHostsFile ?? `${homedir()}/.ssh/known_hosts`
    let hostKeyProblem: HostKeyError | undefined
    let privateKey: string | undefined
    const keyFile = c.privateKeyFile
    if (keyFile) {
      try {
        privateKey = readFileSync(keyFile, 'utf8')
      } catch (error) {
        throw new AuthError(`cannot read private key ${keyFile}: ${(error as NodeJS.ErrnoException).code ?? error}`, {
          where: {host: this.host},
          hint: 'fix ansible_ssh_private_key_file in the inventory',
        })
      }
    }
    try {
      await this.ssh.connect({
        host: c.address,
        port: c.port,
        username: c.user,
        privateKey,
        password: c.password,
        agent: !privateKey && !c.password ? process.env.SSH_AUTH_SOCK : undefined,
        readyTimeout: this.opts.connectTimeoutMs ?? c.connectTimeoutMs ?? 10000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(knownHosts, c.address, c.port, key)
          if (verdict === 'match') return true
          const name = knownHostsName(c.address, c.port)
          if (verdict === 'unknown' && (this.opts.acceptNewHostKeys || c.acceptNewHostKeys)) {
            addHostKey(knownHosts, c.address, c.port, key)
            return true
          }
          hostKeyProblem =
            verdict === 'changed'
              ? new HostKeyError(`host key for ${name} CHANGED (now ${fingerprint(key)}): refusing to connect`, {
                  where: {host: this.host},
                  hint: `if the host was reinstalled on purpose, remove the old key with: ssh-keygen -f ${knownHosts} -R '${name}' — then re-run with --accept-new-host-keys`,
                })
              : new HostKeyError(`host key for ${name} is not in ${knownHosts} (${fingerprint(key)})`, {
                  where: {host: this.host},
                  hint: `verify the fingerprint, then re-run with --accept-new-host-keys (or ssh to it once)`,
                })
          return false
        },
      } as Parameters<NodeSSH['connect']>[0])
    } catch (error) {
      if (hostKeyProblem) throw hostKeyProblem
      throw this.classify(error)
    }
    const client = this.ssh.connection
    client?.on('error', (e: Error) => {
      this.lost ??= e.message
    })
    this.gone = new Promise<never>((_, reject) => {
      client?.on('close', () => {
        this.lost ??= 'connection closed'
        reject(new Error(this.lost))
      })
    })
    this.gone.catch(() => {})
  }

  private classify(error: unknown): Error {
    const msg = error instanceof Error ? error.message : String(error)
    const where = {host: this.host}
    const target = `${this.conn.user}@${this.conn.address}:${this.conn.port}`
    if (/authentication methods failed|Authentication failed|privateKey|Cannot parse privateKey/i.test(msg)) {
      return new AuthError(`authentication failed for ${target}`, {
        where,
        hint: "check ansible_user and ansible_ssh_private_key_file, and that the key is in the host's ~/.ssh/authorized_keys",
        cause: error,
      })
    }
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused (is sshd running on that port?)'
        : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
          ? 'no route to host'
          : code === 'ENOTFOUND'
            ? 'host name not found'
            : /Timed out/i.test(msg)
              ? 'timed out while connecting'
              : msg
    return new UnreachableError(`cannot reach ${target}: ${why}`, {
      where,
      hint: 'check ansible_host/ansible_port in the inventory and that the host is up',
      cause: error,
    })
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.limit(() => this.execNow(command, opts))
  }

  private async execNow(command: string, opts: ExecOptions, attempt = 0): Promise<ExecResult> {
    await this.connect()
    this.stats.execs++
    let timedOut = false
    let timer: NodeJS.Timeout | undefined
    try {
      const r = await this.ssh.execCommand(command, {
        noTrim: true,
        stdin: opts.stdin === undefined ? undefined : Readable.from([Buffer.from(opts.stdin)]),
        onChannel: (ch) => {
          this.channels.add(ch)
          ch.on('close', () => this.channels.delete(ch))
          if (opts.timeoutMs) {
            timer = setTimeout(() => {
              timedOut = true
              killChannel(ch)
              ch.close()
            }, opts.timeoutMs)
          }
        },
      })
      // The channel closed without an exit status: the connection died under it
      // (keepalive timeout, reset) or the run was aborted. Never a silent "failed".
      if (!timedOut && r.code === null && r.signal === null) this.throwIfGone()
      const exitCode = timedOut ? 124 : r.code
      return {command, exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, failed: exitCode !== 0, timedOut}
    } catch (error) {
      if (error instanceof BaremetalError) throw error
      const msg = error instanceof Error ? error.message : String(error)
      if (/Channel open failure/i.test(msg) && attempt < 5) {
        this.stats.execs--
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
        return this.execNow(command, opts, attempt + 1)
      }
      if (this.closed) throw this.abortedError()
      if (/Not connected|No response from server|ECONNRESET|Keepalive timeout/i.test(msg) || !this.ssh.isConnected()) {
        throw new UnreachableError(`connection to ${this.conn.address} lost: ${msg}`, {
          where: {host: this.host},
          hint: 'the host stopped answering; re-run once it is back: the run converges',
          cause: error,
        })
      }
      throw error
    } finally {
      if (timer) clearTimeout(timer)
    }
  }

  private abortedError(): TaskError {
    return new TaskError('aborted: the controller closed the connection while the command ran (interrupted)', {
      where: {host: this.host},
      hint: 'run again: every task converges from wherever it stopped',
    })
  }

  private throwIfGone(): void {
    if (this.closed) throw this.abortedError()
    if (this.lost !== undefined || !this.ssh.isConnected()) {
      throw new UnreachableError(`connection to ${this.conn.address} lost while a command ran: ${this.lost ?? 'closed'}`, {
        where: {host: this.host},
        hint: 'the host stopped answering (SSH keepalive: 3 × 5 s); re-run once it is back: the run converges',
      })
    }
  }

  async upload(files: UploadFile[]): Promise<void> {
    if (files.length === 0) return
    this.stats.uploads++
    this.stats.execs--
    const r = await this.exec('sh -s', {stdin: buildUploadScript(files)})
    if (r.failed || !r.stdout.includes(UPLOAD_DONE)) throw new Error(`upload of ${files.length} file(s) failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-5).join('\n')}`)
  }

  async putFile(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    await this.connect()
    const tmp = `${remotePath}.baremetal-tmp`
    await this.limit(async () => {
      this.stats.uploads++
      try {
        // On a dropped connection the SFTP request never settles: race it with the close.
        await Promise.race([this.ssh.putFile(localPath, tmp), ...(this.gone ? [this.gone] : [])])
      } catch (error) {
        this.throwIfGone()
        throw error
      }
    })
    const r = await this.exec(`chmod ${mode.toString(8)} ${quote(tmp)} && mv -f ${quote(tmp)} ${quote(remotePath)}`)
    if (r.failed) throw new Error(`could not move ${tmp} into place: ${r.stderr.trim()}`)
  }

  async getFile(remotePath: string, localPath: string): Promise<void> {
    await this.connect()
    const part = `${localPath}.part`
    await this.limit(async () => {
      try {
        await Promise.race([this.ssh.getFile(part, remotePath), ...(this.gone ? [this.gone] : [])])
      } catch (error) {
        this.throwIfGone()
        throw error
      }
    })
    await rename(part, localPath)
  }

  // Outside the channel limit: one long-lived channel next to at most maxChannels (8) others
  // and the KILL_SESSIONS one of close(), still within sshd's MaxSessions 10.
  async hold(command: string, ready: string, timeoutMs = 30_000): Promise<HeldCommand> {
    await this.connect()
    const client = this.ssh.connection
    if (!client) throw this.classify(new Error('Not connected'))
    return new Promise<HeldCommand>((resolve, reject) => {
      ;(client as unknown as {exec(c: string, cb: (err: Error | undefined, stream: HeldChannel) => void): void}).exec(command, (err: Error | undefined, stream: HeldChannel) => {
        if (err) return reject(err)
        const w = holdWatcher(
          ready,
          timeoutMs,
          () => {
            try {
              stream.end()
              stream.close()
            } catch {}
          },
          resolve,
        )
        stream.on('data', w.stdout)
        stream.stderr.on('data', w.stderr)
        // 'exit' may come before the last output: settle on 'close', which comes after it.
        let code: number | null = null
        stream.on('exit', (c: number | null) => (code = c))
        stream.on('close', () => w.finish(false, code))
      })
    })
  }

  // OpenSSH's direct-streamlocal channel: sshd itself connects to the socket as the login
  // user, so nothing runs or is installed on the host. Any refusal to open the channel
  // (forwarding disabled, no such socket, connection refused) is a StreamLocalRefused: the
  // caller can ask the host by a command, which also tells those cases apart.
  unixSocket(path: string, request: string, timeoutMs = 5000): Promise<string> {
    return this.limit(async () => {
      await this.connect()
      const client = this.ssh.connection as unknown as {openssh_forwardOutStreamLocal(p: string, cb: (err: (Error & {reason?: unknown}) | undefined, ch: StreamChannel) => void): void} | null
      if (!client) throw this.classify(new Error('Not connected'))
      return new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = []
        let ch: StreamChannel | undefined
        const timer = setTimeout(() => {
          ch?.close()
          reject(new Error(`no answer from ${path} within ${timeoutMs} ms`))
        }, timeoutMs)
        client.openssh_forwardOutStreamLocal(path, (err, stream) => {
          if (err) {
            clearTimeout(timer)
            return reject(err.reason === undefined ? err : new StreamLocalRefused(err.message))
          }
          ch = stream
          const done = () => {
            clearTimeout(timer)
            resolve(Buffer.concat(chunks).toString('utf8'))
          }
          stream.on('data', (d: Buffer) => chunks.push(d))
          // The other end's EOF is the whole answer; 'close' alone would also wait for ours.
          stream.on('end', done)
          stream.on('close', done)
          stream.end(request)
        })
      })
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Commands still running were interrupted: kill them on the host (a signal request,
    // and KILL_SESSIONS for root sessions, bounded to 3 s), then drop the connection.
    if (this.channels.size > 0) {
      for (const ch of this.channels) killChannel(ch)
      if (this.ssh.isConnected() && this.lost === undefined) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([this.ssh.execCommand(KILL_SESSIONS).catch(() => {}), new Promise((r) => (timer = setTimeout(r, 3000)))])
        clearTimeout(timer)
      }
    }
    this.channels.clear()
    this.ssh.dispose()
  }
}
