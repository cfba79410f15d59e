import {quote} from '../shell.js'
import type {ExecOptions, ExecResult, HeldCommand, Transport} from './types.js'
import {WrappedTransport} from './wrapped.js'

// A task's `environment:`: every command of the task starts by exporting the variables,
// so a module's several commands (and a become shell, which this wraps from the outside)
// all see them. The result names the command as the module wrote it: the values, which
// may be secrets, never reach a record.
export class EnvTransport extends WrappedTransport {
  private readonly prefix: string

  constructor(inner: Transport, env: Record<string, string>) {
    super(inner)
    const pairs = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`)
    this.prefix = pairs.length ? `export ${pairs.join(' ')}; ` : ''
  }

  override async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.inner.exec(this.prefix + command, opts)
    return {...r, command}
  }

  get hold(): Transport['hold'] {
    const inner = this.inner
    if (!inner.hold) return undefined
    return (command: string, ready: string, timeoutMs?: number): Promise<HeldCommand> => inner.hold!(this.prefix + command, ready, timeoutMs)
  }
}
