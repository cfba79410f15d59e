import {quote} from '../shell.js'
import type {ExecOptions, ExecResult, HeldCommand, Transport, TransportStats, UploadFile} from './types.js'

// A task's `environment:`: every command of the task starts by exporting the variables,
// so a module's several commands (and a become shell, which this wraps from the outside)
// all see them. The result names the command as the module wrote it: the values, which
// may be secrets, never reach a record.
export class EnvTransport implements Transport {
  private readonly prefix: string

  constructor(
    private inner: Transport,
    env: Record<string, string>,
  ) {
    const pairs = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`)
    this.prefix = pairs.length ? `export ${pairs.join(' ')}; ` : ''
  }

  get host(): string {
    return this.inner.host
  }
  get address(): string {
    return this.inner.address
  }
  get stats(): TransportStats {
    return this.inner.stats
  }

  connect(): Promise<void> {
    return this.inner.connect()
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.inner.exec(this.prefix + command, opts)
    return {...r, command}
  }

  upload(files: UploadFile[]): Promise<void> {
    return this.inner.upload(files)
  }

  putFile(localPath: string, remotePath: string, mode?: number): Promise<void> {
    return this.inner.putFile(localPath, remotePath, mode)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  get hold(): Transport['hold'] {
    const inner = this.inner
    if (!inner.hold) return undefined
    return (command: string, ready: string, timeoutMs?: number): Promise<HeldCommand> => inner.hold!(this.prefix + command, ready, timeoutMs)
  }
}
