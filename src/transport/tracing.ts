import type {ExecOptions, ExecResult, HeldCommand, Transport, UploadFile} from './types.js'
import {WrappedTransport} from './wrapped.js'

// -vvv, as Ansible's: every command a module runs on the host, then its exit status and
// output. The caller's `log` masks secrets; what is printed is cut so a 250-line script
// or a build log stays readable.

const MAX = 4000

function cut(s: string): string {
  const t = s.replace(/\n$/, '')
  const shown = t.length > MAX ? `${t.slice(0, MAX)}… (${t.length - MAX} more characters)` : t
  return shown.replace(/\n/g, '\n      ')
}

// Scripts travel on stdin (`sh -s`): the script is the command a person wants to see.
function stdinText(stdin: string | Buffer | undefined): string | undefined {
  if (stdin === undefined) return undefined
  const text = typeof stdin === 'string' ? stdin : stdin.toString('utf8')
  return text.includes('\u0000') || text.includes('\ufffd') ? `(${stdin.length} bytes of binary data)` : text
}

export class TracingTransport extends WrappedTransport {
  constructor(
    inner: Transport,
    private log: (msg: string) => void,
  ) {
    super(inner)
  }

  override async exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    const input = stdinText(opts?.stdin)
    this.log(`$ ${cut(command)}${input !== undefined ? `\n      stdin: ${cut(input)}` : ''}`)
    const r = await this.inner.exec(command, opts)
    const parts = [`exit ${r.exitCode ?? r.signal ?? 'none'}${r.timedOut ? ' (timed out)' : ''}`]
    if (r.stdout) parts.push(`stdout: ${cut(r.stdout)}`)
    if (r.stderr) parts.push(`stderr: ${cut(r.stderr)}`)
    this.log(parts.join('\n      '))
    return r
  }

  override upload(files: UploadFile[]): Promise<void> {
    this.log(`upload ${files.map((f) => f.path).join(', ')}`)
    return this.inner.upload(files)
  }

  override putFile(localPath: string, remotePath: string, mode?: number): Promise<void> {
    this.log(`put ${localPath} → ${remotePath}`)
    return this.inner.putFile(localPath, remotePath, mode)
  }

  get hold(): Transport['hold'] {
    const inner = this.inner
    if (!inner.hold) return undefined
    return (command: string, ready: string, timeoutMs?: number): Promise<HeldCommand> => {
      this.log(`$ ${cut(command)} (held until the run ends)`)
      return inner.hold!(command, ready, timeoutMs)
    }
  }
}
