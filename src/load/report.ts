import type {LoadProgress, LoadResult, VerifyResult} from './run.js'

// What `baremetal load` prints: a live bar on a terminal, then one summary (or one JSON
// document with the same fields).

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

export function progressLine(p: LoadProgress, width = 24): string {
  const filled = Math.round(p.fraction * width)
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled)
  return `[${bar}] ${String(Math.floor(p.fraction * 100)).padStart(3)}%  ${fmt(p.acked)} SETs  ${fmt(p.opsPerSec)} ops/s  p50 ${p.p50Ms.toFixed(2)} ms  p99 ${p.p99Ms.toFixed(2)} ms  errors ${fmt(p.errors)}`
}

export function errorsLine(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1])
  const total = entries.reduce((n, [, c]) => n + c, 0)
  return total === 0 ? '0' : `${fmt(total)} (${entries.map(([k, c]) => `${k} ${fmt(c)}`).join(', ')})`
}

export interface LoadReport {
  ok: boolean
  load?: Omit<LoadResult, 'workers'>
  verify?: VerifyResult
  record?: string
}

export function renderLoadReport(r: LoadReport): string {
  const lines: string[] = []
  if (r.load) {
    const l = r.load
    lines.push(
      `load: ${l.clients} client(s)${l.pipeline > 1 ? ` × ${l.pipeline} in flight` : ''}${l.connections < l.clients ? ` over ${l.connections} connection set(s)` : ''}${l.threads > 1 ? ` on ${l.threads} threads` : ''}, ${(l.durationMs / 1000).toFixed(1)} s, ${fmt(l.acked)} SETs acknowledged of ${fmt(l.sent)} sent (${fmt(l.opsPerSec)} ops/s), ` +
        `value ${l.dataSize === null ? 'the key twice' : `${l.dataSize} bytes`}`,
    )
    lines.push(`latency: p50 ${l.latencyMs.p50} ms, p90 ${l.latencyMs.p90} ms, p99 ${l.latencyMs.p99} ms, p99.9 ${l.latencyMs.p999} ms, max ${l.latencyMs.max} ms`)
    lines.push(`errors: ${errorsLine(l.errors)}${Object.keys(l.redirects ?? {}).length ? `; redirections followed: ${errorsLine(l.redirects)}` : ''}`)
    lines.push(`memory for verification: ${fmt(l.ranges)} counter range(s) over ${l.clients} uuid(s)`)
  }
  if (r.record) lines.push(`key record written to ${r.record}`)
  if (r.verify) {
    const v = r.verify
    lines.push(
      `verify: ${fmt(v.checked)} key(s) read back in ${(v.durationMs / 1000).toFixed(1)} s: ${fmt(v.lost)} lost, ${fmt(v.wrong)} wrong` +
        `${v.unreadable ? `, ${fmt(v.unreadable)} unreadable` : ''}${Object.keys(v.errors).length ? ` (read errors retried: ${errorsLine(v.errors)})` : ''}`,
    )
    if (v.lostSamples.length) lines.push(`  lost, e.g.: ${v.lostSamples.join(', ')}`)
    if (v.wrongSamples.length) lines.push(`  wrong, e.g.: ${v.wrongSamples.join(', ')}`)
    if (v.unreadableSamples.length) lines.push(`  unreadable, e.g.: ${v.unreadableSamples.join(', ')}`)
  }
  lines.push(r.ok ? 'ok' : 'FAILED')
  return lines.join('\n')
}
