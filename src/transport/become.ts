import {quote} from '../shell.js'
import {buildUploadScript} from './upload-script.js'
import type {ExecOptions, ExecResult, Transport, UploadFile} from './types.js'
import {WrappedTransport} from './wrapped.js'

// `become: yes` for a non-root SSH user: every command of the task runs through
// `sudo -n` (never prompting: a password prompt would hang a fleet-wide run). The
// connection and its counters are the wrapped transport's.
export class BecomeTransport extends WrappedTransport {
  constructor(
    inner: Transport,
    private user = 'root',
    private method: 'sudo' | 'su' = 'sudo',
  ) {
    super(inner)
  }

  // su runs /bin/sh, not the user's login shell: system users (nobody, daemon) have
  // nologin there, and modules write POSIX sh.
  private wrap(command: string): string {
    if (this.method === 'su') return `su -s /bin/sh ${quote(this.user)} -c ${quote(command)}`
    return `sudo -n -H -u ${quote(this.user)} -- sh -c ${quote(command)}`
  }

  override async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.inner.exec(this.wrap(command), opts)
    if (r.failed && /sudo: a (terminal|password) is required/.test(r.stderr)) {
      return {...r, stderr: `${r.stderr}\n(become: sudo needs a password for ${this.inner.host}; baremetal never types one: allow NOPASSWD for this user, or connect as root)`}
    }
    return {...r, command}
  }

  override async upload(files: UploadFile[]): Promise<void> {
    if (files.length === 0) return
    const r = await this.exec('sh -s', {stdin: buildUploadScript(files)})
    this.inner.stats.execs--
    this.inner.stats.uploads++
    if (r.failed) throw new Error(`upload of ${files.length} file(s) failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-5).join('\n')}`)
  }

  override async putFile(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    // Land it as the login user first, then move it into place as the become user.
    const staged = `/tmp/.baremetal-put-${process.pid}-${Date.now()}`
    await this.inner.putFile(localPath, staged, mode)
    const r = await this.exec(`mv -f ${quote(staged)} ${quote(remotePath)}`)
    if (r.failed) throw new Error(`could not move ${staged} into ${remotePath}: ${r.stderr.trim()}`)
  }
}
