// Printing figures the same way in every benchmark: aligned plain-text tables (pasted
// as-is into bench/README.md), seconds, ratios, megabytes, and which code was measured.
import {execFileSync} from 'node:child_process'
import {ROOT} from './tools.mjs'

/** HEAD plus "+dirty" when the working tree differs: the figures belong to that code. */
export function gitRevision() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {cwd: ROOT, encoding: 'utf8'}).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'playbooks', 'templates'], {cwd: ROOT, encoding: 'utf8'}).trim()
    return dirty ? `${head}+dirty` : head
  } catch {
    return '?'
  }
}

export function fmtS(s) {
  if (!Number.isFinite(s)) return '–'
  return s >= 100 ? `${s.toFixed(0)} s` : s >= 10 ? `${s.toFixed(1)} s` : `${s.toFixed(2)} s`
}

export function fmtRatio(r) {
  if (!Number.isFinite(r)) return '–'
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(1)}×`
}

export function fmtMb(mb) {
  return Number.isFinite(mb) ? `${mb.toFixed(0)} MB` : '–'
}

export function printTable(head, rows) {
  const all = [head, ...rows].map((r) => r.map((c) => String(c ?? '')))
  const width = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ').trimEnd()
  console.log(line(all[0]))
  console.log(width.map((w) => '-'.repeat(w)).join('  '))
  for (const r of all.slice(1)) console.log(line(r))
}
