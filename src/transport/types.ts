// What every transport gives the modules. Shaped like execa's results: a failure has
// the same fields as a success plus failed: true, so callers never need try/catch
// to read stdout of a failed command.

export interface ExecResult {
  command: string
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  failed: boolean
  timedOut: boolean
}

export interface ExecOptions {
  /** Bytes fed to the command's standard input (scripts, file payloads). */
  stdin?: string | Buffer
  /** Kill the command after this many ms; the result has timedOut: true. */
  timeoutMs?: number
}

export interface UploadFile {
  /** Absolute path on the host (after ~ expansion by the caller or the transport). */
  path: string
  content: string | Buffer
  /** Octal number, e.g. 0o600. Default 0o644. */
  mode?: number
}

/** Counters the e2e tests and benchmarks read: round trips are the unit of cost. */
export interface TransportStats {
  connections: number
  execs: number
  uploads: number
}

export interface Transport {
  readonly host: string
  readonly address: string
  readonly stats: TransportStats
  connect(): Promise<void>
  /** Runs `sh -c command` on the host (login shell not used). Never rejects on a non-zero exit. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>
  /** Writes all files in one round trip, each via temp file + rename (no partial file on a drop). */
  upload(files: UploadFile[]): Promise<void>
  /** Copies a controller file to the host (streamed; large files like tarballs). temp + rename. */
  putFile(localPath: string, remotePath: string, mode?: number): Promise<void>
  /** Copies a host file to the controller (streamed; backups). Written to localPath + '.part', renamed when complete. */
  getFile?(remotePath: string, localPath: string): Promise<void>
  close(): Promise<void>
  /**
   * Start a command whose stdin stays open until release() (or the connection ends): a
   * lock held for the run. Resolves once a line starting with `ready` is printed (held:
   * true), or when the command exits first (held: false, with its output).
   */
  hold?(command: string, ready: string, timeoutMs?: number): Promise<HeldCommand>
  /**
   * Connect to a unix socket on the host through the connection itself (no command run),
   * write request, and resolve with everything read until the other end closes. Rejects
   * with a StreamLocalRefused when the host's sshd forbids it.
   */
  unixSocket?(path: string, request: string, timeoutMs?: number): Promise<string>
}

/** sshd refused the stream-local channel by policy (AllowStreamLocalForwarding no, DisableForwarding yes), not for want of a socket. */
export class StreamLocalRefused extends Error {}

export interface HeldCommand {
  held: boolean
  output: string
  exitCode: number | null
  release(): void
}
