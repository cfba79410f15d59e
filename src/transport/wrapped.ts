import type {ExecOptions, ExecResult, Transport, TransportStats, UploadFile} from './types.js'

// A transport that adds one thing to another (sudo, a task's environment, a trace) and
// leaves the connection, its counters and everything it does not change to it. `hold` is
// not passed on here: a wrapper that can keep its meaning for a held command says so.
export abstract class WrappedTransport implements Transport {
  constructor(protected readonly inner: Transport) {}

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

  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(command, opts)
  }

  upload(files: UploadFile[]): Promise<void> {
    return this.inner.upload(files)
  }

  putFile(localPath: string, remotePath: string, mode?: number): Promise<void> {
    return this.inner.putFile(localPath, remotePath, mode)
  }

  getFile(remotePath: string, localPath: string): Promise<void> {
    if (!this.inner.getFile) throw new Error(`${this.host}: this connection cannot download files`)
    return this.inner.getFile(remotePath, localPath)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
