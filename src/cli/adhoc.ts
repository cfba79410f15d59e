import pLimit from 'p-limit'
import {EXIT, exitCodeMeaning} from '../errors.js'
import {type Host, type Inventory, selectHosts} from '../inventory/inventory.js'
import type {HostFacts} from '../modules/types.js'
import {gatherFacts, transportFor} from '../play/runner.js'
import type {ConnectOptions as SshOptions} from '../play/runner.js'
import type {ExecResult, Transport} from '../transport/types.js'
import {BaremetalError, hintText} from '../errors.js'

// Ad-hoc commands (ping, exec): the same transports as plays, all hosts at once.

export interface AdhocHostResult {
  host: string
  address: string
  status: 'ok' | 'failed' | 'unreachable'
  ms: number
  facts?: HostFacts
  exec?: Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr' | 'signal'>
  error?: string
}

/** Connect to every selected host in parallel and do `work` on each; never throws per host. */
export async function onEveryHost(
  inv: Inventory,
  pattern: string,
  opts: {forks: number; ssh: SshOptions},
  work: (t: Transport, host: Host) => Promise<Partial<AdhocHostResult>>,
): Promise<AdhocHostResult[]> {
  const hosts = selectHosts(inv, pattern)
  // ansible.cfg forks (set on the inventory only when -f was not given).
  const limit = pLimit(inv.forks ?? opts.forks)
  return Promise.all(
    hosts.map((h) =>
      limit(async (): Promise<AdhocHostResult> => {
        const t0 = Date.now()
        const t = transportFor(h, opts.ssh)
        try {
          const r = await work(t, h)
          return {host: h.name, address: h.connection.address, status: 'ok', ms: Date.now() - t0, ...r}
        } catch (error) {
          const msg = error instanceof BaremetalError ? `${error.message}${error.hint ? ` (hint: ${hintText(error.hint)})` : ''}` : String((error as Error).message ?? error)
          return {host: h.name, address: h.connection.address, status: 'unreachable', ms: Date.now() - t0, error: msg}
        } finally {
          await t.close()
        }
      }),
    ),
  )
}

export async function pingHosts(inv: Inventory, pattern: string, opts: {forks: number; ssh: SshOptions}): Promise<AdhocHostResult[]> {
  // ping prints what it always printed: the Ansible facts (the host's environment among them) stay in the runner.
  return onEveryHost(inv, pattern, opts, async (t) => {
    const {ansible: _ansible, ...facts} = await gatherFacts(t)
    return {facts}
  })
}

export async function execOnHosts(inv: Inventory, pattern: string, command: string, opts: {forks: number; ssh: SshOptions; timeoutMs?: number}): Promise<AdhocHostResult[]> {
  return onEveryHost(inv, pattern, opts, async (t) => {
    await t.connect()
    const r = await t.exec(command, {timeoutMs: opts.timeoutMs})
    return {status: r.failed ? 'failed' : 'ok', exec: {exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, signal: r.signal}}
  })
}

export function adhocExitCode(results: AdhocHostResult[]): number {
  if (results.some((r) => r.status === 'unreachable')) return EXIT.unreachable
  if (results.some((r) => r.status === 'failed')) return EXIT.failed
  return EXIT.ok
}

export function renderPing(results: AdhocHostResult[]): string {
  const rows = results.map((r) =>
    r.facts
      ? [r.host, r.address, 'ok', r.facts.os, r.facts.arch, String(r.facts.cores), `${(r.facts.memMb / 1024).toFixed(1)} GiB`, `${r.ms} ms`]
      : [r.host, r.address, 'UNREACHABLE', r.error ?? '', '', '', '', `${r.ms} ms`],
  )
  return table([['HOST', 'ADDRESS', 'STATUS', 'OS', 'ARCH', 'CORES', 'MEMORY', 'TIME'], ...rows])
}

export function renderExec(results: AdhocHostResult[]): string {
  const out: string[] = []
  for (const r of results) {
    if (r.status === 'unreachable') {
      out.push(`== ${r.host} (${r.address}): UNREACHABLE: ${r.error}`)
      continue
    }
    const e = r.exec!
    const head = e.exitCode === 0 ? 'ok' : `exit code ${e.exitCode} (${exitCodeMeaning(e.exitCode, e.signal)})`
    out.push(`== ${r.host} (${r.address}): ${head}, ${r.ms} ms`)
    if (e.stdout) out.push(e.stdout.replace(/\n$/, ''))
    if (e.stderr)
      out.push(
        e.stderr
          .replace(/\n$/, '')
          .split('\n')
          .map((l) => `stderr: ${l}`)
          .join('\n'),
      )
  }
  const failed = results.filter((r) => r.status !== 'ok').length
  out.push(`${results.length} host(s): ${results.length - failed} ok, ${failed} not ok`)
  return out.join('\n')
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}
