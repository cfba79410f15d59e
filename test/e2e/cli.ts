import {spawn} from 'node:child_process'
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

// The e2e tests drive the real `baremetal` binary, as a user would.
export const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..')
export const BIN = resolve(ROOT, 'bin/run.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** Parsed stdout when --json was given. */
  json?: any
}

/** Run `baremetal ARGS…`; resolves with exit code and output, never rejects on failure. */
export function cli(args: string[], opts: {timeoutMs?: number; env?: Record<string, string>; onSpawn?: (pid: number) => void} = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, ...opts.env}, stdio: ['ignore', 'pipe', 'pipe']})
    if (child.pid && opts.onSpawn) opts.onSpawn(child.pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`baremetal ${args.join(' ')} did not finish in ${opts.timeoutMs} ms\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr.slice(-3000)}`))
    }, opts.timeoutMs ?? 600_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      let json: unknown
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout)
        } catch {}
      }
      resolvePromise({code, stdout, stderr, json})
    })
  })
}

/** Readable failure context for assertions on a CLI run. */
export function show(r: CliResult): string {
  // A JSON run's failed tasks first: CI keeps only the head of a failure's output.
  const failed = ((r.json?.tasks ?? []) as Array<{task: string; host: string; status: string; msg?: string}>).filter((t) => t.status === 'failed' || t.status === 'unreachable')
  const head = failed
    .map((t) => `${t.status}: ${t.task} on ${t.host}: ${t.msg ?? ''}`)
    .join('\n')
    .slice(0, 4000)
  return `exit ${r.code}${head ? `\n--- failed tasks\n${head}` : ''}\n--- stdout\n${r.stdout.slice(-6000)}\n--- stderr\n${r.stderr.slice(-3000)}`
}
