import type {Play, Task} from './playbook.js'
import type {HostRecap, Reporter, RunResult, TaskRecord} from './runner.js'

// What a person watches: a line per task, per-host lines for what changed or failed
// (ok hosts are counted, not listed, once a fleet is large), and a recap. A TTY gets
// colours and a live "n/m hosts" counter; a pipe gets plain lines; --json gets one
// document at the end and nothing on stdout before it.

const C = {
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  red: '\x1b[31m',
  cyan: '\x1b[36m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  reset: '\x1b[0m',
}

export interface OutputOptions {
  json: boolean
  tty: boolean
  verbose?: boolean
  /** -v: the output of changed and failed commands; -vvv: the runner also logs every command. */
  verbosity?: number
  diff?: boolean
  write?: (s: string) => void
}

export class ConsoleReporter implements Reporter {
  private write: (s: string) => void
  private done = 0
  private total = 0
  private taskLabel = ''
  private progressShown = false
  private taskT0 = 0

  constructor(private o: OutputOptions) {
    this.write = o.write ?? ((s) => process.stdout.write(s))
  }

  private c(color: keyof typeof C, s: string): string {
    return this.o.tty ? `${C[color]}${s}${C.reset}` : s
  }

  private line(s: string): void {
    if (this.o.json) return
    this.clearProgress()
    this.write(s + '\n')
  }

  private clearProgress(): void {
    if (this.progressShown) {
      this.write('\r\x1b[2K')
      this.progressShown = false
    }
  }

  private progress(): void {
    if (this.o.json || !this.o.tty) return
    this.write(`\r\x1b[2K${this.c('dim', `  … ${this.taskLabel}: ${this.done}/${this.total} hosts done`)}`)
    this.progressShown = true
  }

  playStart(play: Play, hosts: string[]): void {
    const shown = hosts.length > 8 ? `${hosts.slice(0, 8).join(', ')}, … (${hosts.length} hosts)` : hosts.join(', ')
    this.line(this.c('bold', `PLAY [${play.name}]`) + ` ${shown || '(no hosts)'}`)
  }

  taskStart(task: Task, hostCount: number): void {
    this.done = 0
    this.total = hostCount
    this.taskLabel = task.name
    this.taskT0 = Date.now()
    this.line(this.c('bold', `TASK [${task.name}]`))
    this.progress()
  }

  hostResult(rec: TaskRecord): void {
    this.done++
    const many = this.total > 5
    const quiet = (rec.status === 'ok' || rec.status === 'skipped') && many && !this.o.verbose
    if (!quiet) {
      const color = rec.status === 'ok' ? 'green' : rec.status === 'changed' ? 'yellow' : rec.status === 'skipped' ? 'cyan' : 'red'
      const label = rec.ignored ? 'failed (ignored)' : rec.status
      this.line(`  ${this.c(color, label.padEnd(11))} ${rec.host}${rec.msg ? `: ${indentRest(rec.msg)}` : ''}`)
    }
    if (this.o.diff && rec.diff) for (const d of rec.diff) this.line(renderDiff(d.path, d.before, d.after, this.o.tty))
    if ((this.o.verbosity ?? 0) >= 1 && (rec.status === 'changed' || rec.status === 'failed')) for (const l of commandOutput(rec)) this.line(this.c('dim', l))
    this.progress()
  }

  taskEnd(_task: Task, records: TaskRecord[]): void {
    this.clearProgress()
    if (this.total > 5 && !this.o.verbose) {
      const ok = records.filter((r) => r.status === 'ok').length
      const sk = records.filter((r) => r.status === 'skipped').length
      if (ok || sk) this.line(this.c('dim', `  ${[ok ? `ok on ${ok} hosts` : '', sk ? `skipped on ${sk} hosts` : ''].filter(Boolean).join(', ')} (${((Date.now() - this.taskT0) / 1000).toFixed(1)}s)`))
    }
  }

  log(host: string, msg: string): void {
    this.line(this.c('dim', `  … ${host}: ${msg}`))
  }

  warn(msg: string): void {
    this.line(this.c('yellow', `WARNING: ${msg}`))
  }
}

// What a command printed (command/shell results carry stdout/stderr in their data; a
// loop's items each their own). no_log records have no data, so nothing is shown.
export function commandOutput(rec: TaskRecord): string[] {
  const data = rec.data
  if (!data) return []
  const items = Array.isArray(data.items) ? (data.items as Array<Record<string, unknown> | null>) : [data]
  const out: string[] = []
  items.forEach((d, i) => {
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = typeof d?.[stream] === 'string' ? (d[stream] as string).replace(/\n$/, '') : ''
      if (text) out.push(`      ${items.length > 1 ? `[${i}] ` : ''}${stream}: ${indentRest(text)}`)
    }
  })
  return out
}

function indentRest(s: string): string {
  return s.replace(/\n/g, '\n      ')
}

/** A unified diff of two texts (line based; small files like redis.conf). */
export function renderDiff(path: string, before: string, after: string, tty = false): string {
  const a = before.split('\n')
  const b = after.split('\n')
  // Longest common subsequence table: fine for config-sized files.
  const n = a.length
  const m = b.length
  if (n * m > 4_000_000) return `--- ${path}\n+++ ${path}\n(file too large to diff: ${n} → ${m} lines)`
  const lcs: number[][] = Array.from({length: n + 1}, () => new Array<number>(m + 1).fill(0))
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1])
  const out: string[] = [`--- ${path} (before)`, `+++ ${path} (after)`]
  let i = 0
  let j = 0
  const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s)
  const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s)
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++
      j++
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(green(`+${b[j]}`))
      j++
    } else {
      out.push(red(`-${a[i]}`))
      i++
    }
  }
  return out.map((l) => `      ${l}`).join('\n')
}

/** The recap: one line per host, then totals and time; the re-run case says so plainly. */
export function renderRecap(result: RunResult, tty: boolean): string {
  const lines: string[] = []
  const bold = (s: string) => (tty ? `${C.bold}${s}${C.reset}` : s)
  lines.push(bold(result.check ? 'RECAP (check mode: nothing was changed)' : 'RECAP'))
  const hosts = Object.entries(result.recap)
  const width = Math.max(4, ...hosts.map(([h]) => h.length))
  const fmt = (r: HostRecap) =>
    `ok=${r.ok} changed=${r.changed} failed=${r.failed} unreachable=${r.unreachable} skipped=${r.skipped}${r.ignored ? ` ignored=${r.ignored}` : ''}${r.rescued ? ` rescued=${r.rescued}` : ''}`
  const shown = hosts.length > 20 ? hosts.filter(([, r]) => r.failed || r.unreachable).slice(0, 50) : hosts
  for (const [h, r] of shown) lines.push(`  ${h.padEnd(width)}  ${fmt(r)}`)
  if (shown.length < hosts.length) lines.push(`  (${hosts.length - shown.length} more hosts with no failures)`)
  const total = hosts.reduce(
    (t, [, r]) => ({
      ok: t.ok + r.ok,
      changed: t.changed + r.changed,
      failed: t.failed + r.failed,
      unreachable: t.unreachable + r.unreachable,
      skipped: t.skipped + r.skipped,
      ignored: t.ignored + r.ignored,
      rescued: t.rescued + (r.rescued ?? 0),
    }),
    {ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0, ignored: 0, rescued: 0},
  )
  const secs = (result.durationMs / 1000).toFixed(1)
  if (total.changed === 0 && total.failed === 0 && total.unreachable === 0 && !result.aborted) {
    lines.push(`  ${hosts.length} host(s): no changes${result.check ? ' would be made' : ''} — everything already as declared (${secs}s)`)
  } else {
    lines.push(`  ${hosts.length} host(s), ${secs}s: ${fmt(total)}`)
    lines.push(...changedLines(result))
  }
  for (const w of result.warnings) lines.push(`  WARNING: ${w}`)
  if (result.aborted) lines.push(`  STOPPED: ${result.aborted}`)
  return lines.join('\n')
}

// What changed, named: one line per changed task (hosts listed, the first host's message),
// so a drift repair says in the recap what it repaired.
export function changedLines(result: RunResult, max = 12): string[] {
  const byTask = new Map<string, TaskRecord[]>()
  for (const t of result.tasks) if (t.status === 'changed') byTask.set(t.task, [...(byTask.get(t.task) ?? []), t])
  const out: string[] = []
  for (const [task, recs] of byTask) {
    const hosts =
      recs.length > 4
        ? `${recs
            .slice(0, 4)
            .map((r) => r.host)
            .join(', ')}, … (${recs.length} hosts)`
        : recs.map((r) => r.host).join(', ')
    const first = (recs[0].msg ?? '').split('\n')[0]
    out.push(`  ${result.check ? 'would change' : 'changed'}: ${task} on ${hosts}${first ? ` — ${first.length > 160 ? first.slice(0, 157) + '…' : first}` : ''}`)
  }
  return out.length > max ? [...out.slice(0, max), `  … and ${out.length - max} more changed task(s)`] : out
}
