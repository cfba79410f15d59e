import {holdWatcher} from './held.js'
import {spawn} from 'node:child_process'
import {createReadStream, createWriteStream} from 'node:fs'
import {chmod, rename, unlink} from 'node:fs/promises'
import {pipeline} from 'node:stream/promises'
import {buildUploadScript, UPLOAD_DONE} from './upload-script.js'
import type {ExecOptions, ExecResult, HeldCommand, Transport, TransportStats, UploadFile} from './types.js'

// `ansible_connection: local`: the same contract as SSH, run through /bin/sh, so
// modules cannot tell the difference and the local default cluster uses the same code.
export class LocalTransport implements Transport {
  readonly stats: TransportStats = {connections: 0, execs: 0, uploads: 0}
  constructor(
    readonly host: string,
    readonly address = '127.0.0.1',
  ) {}

  async connect(): Promise<void> {
    this.stats.connections++
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.stats.execs++
    return runLocal(command, opts)
  }

  async upload(files: UploadFile[]): Promise<void> {
    if (files.length === 0) return
    this.stats.uploads++
    const r = await runLocal('sh -s', {stdin: buildUploadScript(files)})
    if (r.failed || !r.stdout.includes(UPLOAD_DONE)) throw new Error(`upload failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-5).join('\n')}`)
  }

  async putFile(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    this.stats.uploads++
    const tmp = `${remotePath}.baremetal-tmp-${process.pid}`
    try {
      await pipeline(createReadStream(localPath), createWriteStream(tmp))
      await chmod(tmp, mode)
      await rename(tmp, remotePath)
    } catch (error) {
      await unlink(tmp).catch(() => {})
      throw error
    }
  }

  async getFile(remotePath: string, localPath: string): Promise<void> {
    const part = `${localPath}.part`
    await pipeline(createReadStream(remotePath), createWriteStream(part))
    await rename(part, localPath)
  }

  async close(): Promise<void> {}

  // stdin is a pipe from this process: when it dies the pipe closes and the command ends.
  hold(command: string, ready: string, timeoutMs = 30_000): Promise<HeldCommand> {
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']})
      const w = holdWatcher(ready, timeoutMs, () => child.stdin.end(), resolve)
      child.stdin.on('error', () => {})
      child.stdout.on('data', w.stdout)
      child.stderr.on('data', w.stderr)
      child.on('error', (e) => {
        w.stderr(String(e))
        w.finish(false, null)
      })
      child.on('close', (code) => w.finish(false, code))
    })
  }
}

export function runLocal(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    let timer: NodeJS.Timeout | undefined
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, opts.timeoutMs)
    }
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.stdin.on('error', () => {})
    child.on('error', (e) => err.push(Buffer.from(String(e))))
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      const exitCode = timedOut ? 124 : code
      resolve({
        command,
        exitCode,
        signal: signal ?? null,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        failed: exitCode !== 0,
        timedOut,
      })
    })
    child.stdin.end(opts.stdin ?? '')
  })
}
