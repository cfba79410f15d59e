import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {exitCodeMeaning} from '../errors.js'
import {mask, quote} from '../shell.js'
import type {ExecResult, Transport} from '../transport/types.js'
import type {ItemResult, ModuleContext} from './types.js'

// Shared plumbing of the core modules. A module turns all loop items of a task into
// "steps" (small shell snippets built with quote()), runs them as ONE script in one
// round trip, and gets each step's stdout, stderr and exit code back, split by a
// random marker that no command output can forge.

export interface StepResult {
  rc: number | null
  stdout: string
  stderr: string
  /** What the step wrote into $bm_note (e.g. "creates" when a command was skipped). */
  note: string
}

export interface Batch {
  /** One entry per step, in order; undefined when the script died before it finished. */
  steps: Array<StepResult | undefined>
  exec?: ExecResult
}

/**
 * Shell functions every script may call.
 * bm_stat PATH [hash]: one line `TYPE|MODE|USER|GROUP|UID|GID|SIZE|SHA256`, or `missing`,
 * or `link` (dangling symlink). TYPE is directory, file or other (symlinks followed).
 * For a handful of paths; many paths go through probeStep (one process for all).
 */
export const PRELUDE = `bm_stat() {
  if [ -e "$1" ]; then
    if [ -d "$1" ]; then bm_t=directory; elif [ -f "$1" ]; then bm_t=file; else bm_t=other; fi
    printf '%s|%s|' "$bm_t" "$(stat -L -c '%a|%U|%G|%u|%g|%s' -- "$1")"
    if [ "$2" = hash ] && [ "$bm_t" = file ]; then sha256sum < "$1" | cut -c1-64; else echo; fi
  elif [ -L "$1" ]; then echo link
  else echo missing
  fi
}
`

// The random marker makes the split unambiguous even if a command prints marker-like text.
export function newMarker(): string {
  return `__BM_${randomBytes(9).toString('hex')}__`
}

// One round trip for N steps: every module's facts and apply phases go through here.
export function buildScript(steps: string[], marker: string, prelude = ''): string {
  const lines = [`bm_m=${marker}`, PRELUDE, prelude]
  steps.forEach((step, i) => {
    lines.push(
      'bm_note=',
      `printf '%s B ${i}\\n' "$bm_m"; printf '%s B ${i}\\n' "$bm_m" >&2`,
      step,
      'bm_rc=$?',
      `printf '\\n%s E ${i} %s %s\\n' "$bm_m" "$bm_rc" "$bm_note"; printf '\\n%s E ${i}\\n' "$bm_m" >&2`,
    )
  })
  // The whole body is one compound command: sh parses it completely before running
  // anything, and no step can read the rest of the script from stdin.
  return `{\n${lines.join('\n')}\n} </dev/null\n`
}

// Inverse of buildScript: exact per-step outputs (the marker's own newline is removed).
export function parseSteps(count: number, marker: string, stdout: string, stderr: string): Array<StepResult | undefined> {
  const out: Array<StepResult | undefined> = []
  let pos = 0
  let epos = 0
  for (let i = 0; i < count; i++) {
    const begin = `${marker} B ${i}\n`
    const end = `\n${marker} E ${i} `
    const b = stdout.indexOf(begin, pos)
    const e = b < 0 ? -1 : stdout.indexOf(end, b + begin.length)
    if (e < 0) {
      out.push(undefined)
      continue
    }
    const nl = stdout.indexOf('\n', e + end.length)
    const tail = stdout.slice(e + end.length, nl < 0 ? undefined : nl)
    pos = nl < 0 ? stdout.length : nl
    const sp = tail.indexOf(' ')
    const rcText = sp < 0 ? tail : tail.slice(0, sp)
    const note = sp < 0 ? '' : tail.slice(sp + 1)
    let err = ''
    const eb = stderr.indexOf(begin, epos)
    if (eb >= 0) {
      const eEnd = `\n${marker} E ${i}\n`
      const ee = stderr.indexOf(eEnd, eb + begin.length)
      if (ee >= 0) {
        err = stderr.slice(eb + begin.length, ee)
        epos = ee + eEnd.length
      }
    }
    const rc = /^\d+$/.test(rcText) ? Number(rcText) : null
    out.push({rc, stdout: stdout.slice(b + begin.length, e), stderr: err, note})
  }
  return out
}

// Run steps in one exec; never throws for a failing step (only the transport can throw).
export async function runSteps(transport: Transport, steps: string[], prelude = ''): Promise<Batch> {
  if (steps.length === 0) return {steps: []}
  const marker = newMarker()
  const exec = await transport.exec('sh -s', {stdin: buildScript(steps, marker, prelude)})
  return {steps: parseSteps(steps.length, marker, exec.stdout, exec.stderr), exec}
}

/** Why a step has no result: the script or connection died mid-way. */
export function lostStep(batch: Batch): string {
  const e = batch.exec
  if (!e) return 'no result'
  const tail = lastLines(e.stderr, 3)
  return `no result: the script stopped early (exit ${e.exitCode ?? 'none'}, ${exitCodeMeaning(e.exitCode, e.signal)})${tail ? `: ${tail}` : ''}`
}

// The end of stderr is where the reason usually is.
export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n').trim()
}

// execa's wording: why (exit code meaning) before what, then the end of stderr.
// failureMessage('command', 'make -j8', 127, '...') → "command failed with exit code 127 (command not found): make -j8"
export function failureMessage(what: string, subject: string, rc: number | null, stderr: string, secrets: Iterable<string>, signal?: string | null): string {
  const tail = lastLines(stderr, 5)
  const why = rc === null && !signal ? 'with no exit status (connection lost?)' : `with exit code ${rc} (${exitCodeMeaning(rc, signal)})`
  const head = `${what} failed ${why}${subject ? `: ${subject}` : ''}`
  return mask(tail ? `${head}\n${tail}` : head, secrets)
}

/** `key=value` lines printed by fact steps; repeated keys keep the last value (lists: see kvAll). */
export function parseKv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

// Repeated keys (one per ls-remote line, …) as a list.
export function kvAll(text: string, key: string): string[] {
  const p = `${key}=`
  return text
    .split('\n')
    .filter((l) => l.startsWith(p))
    .map((l) => l.slice(p.length))
}

export type FileType = 'missing' | 'file' | 'directory' | 'other' | 'link'

export interface PathStat {
  type: FileType
  mode?: number
  user?: string
  group?: string
  uid?: number
  gid?: number
  size?: number
  sha256?: string
}

// Parse one bm_stat line (see PRELUDE).
export function parseStat(line: string | undefined): PathStat {
  const s = (line ?? '').trim()
  if (s === 'missing' || s === '') return {type: 'missing'}
  if (s === 'link') return {type: 'link'}
  const [type, mode, user, group, uid, gid, size, sha] = s.split('|')
  return {
    type: type === 'directory' || type === 'file' ? type : 'other',
    mode: mode ? parseInt(mode, 8) : undefined,
    user,
    group,
    uid: uid ? Number(uid) : undefined,
    gid: gid ? Number(gid) : undefined,
    size: size ? Number(size) : undefined,
    sha256: sha && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined,
  }
}

/**
 * One fact step for many paths: ONE `stat` and ONE `sha256sum` for all of them (not a
 * process per path), symlinks followed; dangling links are reported too. Paths must not
 * contain a newline (the modules refuse those).
 */
export function probeStep(paths: string[], hash: boolean): string {
  const uniq = [...new Set(paths)]
  if (uniq.length === 0) return ':'
  const lines = [
    `set -- ${uniq.map(quote).join(' ')}`,
    `stat -L -c 'S|%F|%a|%U|%G|%u|%g|%s|%n' -- "$@" 2>/dev/null`,
    `for bm_f do if [ -L "$bm_f" ] && [ ! -e "$bm_f" ]; then printf 'L|%s\\n' "$bm_f"; fi; done`,
  ]
  if (hash) lines.push(`for bm_f do if [ -f "$bm_f" ] && [ -r "$bm_f" ]; then printf '%s\\0' "$bm_f"; fi; done | xargs -0 -r sha256sum -- 2>/dev/null`)
  lines.push(':')
  return lines.join('\n')
}

// sha256sum escapes a name holding a backslash: leading "\", then \\ and \n inside.
function unescapeSumName(name: string): string {
  return name.replace(/\\(\\|n|r)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'))
}

/** probeStep's output → a stat per probed path (missing when stat said nothing). */
export function parseProbe(paths: string[], stdout: string): Map<string, PathStat> {
  const out = new Map<string, PathStat>()
  const sums = new Map<string, string>()
  for (const line of stdout.split('\n')) {
    if (line.startsWith('S|')) {
      const parts = line.split('|')
      const [, kind, mode, user, group, uid, gid, size] = parts
      const name = parts.slice(8).join('|')
      const type = kind === 'directory' ? 'directory' : kind === 'regular file' || kind === 'regular empty file' ? 'file' : 'other'
      out.set(name, {type, mode: parseInt(mode, 8), user, group, uid: Number(uid), gid: Number(gid), size: Number(size)})
    } else if (line.startsWith('L|')) {
      out.set(line.slice(2), {type: 'link'})
    } else {
      const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/.exec(line)
      if (m) sums.set(m[1] ? unescapeSumName(m[3]) : m[3], m[2])
    }
  }
  for (const [name, sha] of sums) {
    const st = out.get(name)
    if (st && st.type === 'file') st.sha256 = sha
  }
  for (const p of paths) if (!out.has(p)) out.set(p, {type: 'missing'})
  return out
}

/** A path the line-based probes cannot carry. */
export function badPath(p: string): string | undefined {
  return /[\n\r\0]/.test(p) ? `path ${JSON.stringify(p)} contains a newline or NUL: not supported` : undefined
}

/**
 * copy/template destinations: a `..` component would let a templated value (a port, a
 * host var) climb out of the directory the playbook names, so it is refused, not resolved.
 */
export function dotDotPath(p: string): string | undefined {
  return p.split('/').includes('..') ? `dest ${JSON.stringify(p)} contains a ".." component: refused (write the path without it)` : undefined
}

/** What a plan decided for one item: nothing to do (and why), something to do, or an error. */
export type Plan<T> = {kind: 'noop'; msg: string} | {kind: 'fail'; msg: string} | ({kind: 'change'; msg: string; would: string} & T)

// Modes are numbers (0o644) after the runner's coercion; accept octal strings too.
export function toMode(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v === 'number') return v
  const s = String(v).trim()
  if (/^0?o?[0-7]{1,4}$/.test(s)) return parseInt(s.replace(/^0?o/, ''), 8)
  throw new Error(`invalid mode ${JSON.stringify(v)}: write it in octal, e.g. '0644'`)
}

// Modes print the way users write them: 0755.
export function fmtMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}

// Args arrive coerced, but a missing one is undefined, never "undefined".
export function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined
  return String(v)
}

// Files are compared by content hash, never by size or mtime.
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

// Hash a controller file without loading it (tarballs can be large).
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')))
  })
}

/** "sha256:HEX" (or bare HEX) → lowercase hex; anything else is an error the user must fix. */
export function parseChecksum(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  const m = /^(?:sha256:)?([0-9a-fA-F]{64})$/.exec(String(v).trim())
  if (!m) throw new Error(`invalid checksum ${JSON.stringify(v)}: write sha256:<64 hex digits>`)
  return m[1].toLowerCase()
}

// Items after an interrupt are not started.
export function interrupted(ctx: ModuleContext, n: number): ItemResult[] | undefined {
  if (!ctx.signal.aborted) return undefined
  return Array.from({length: n}, () => ({status: 'skipped' as const, msg: 'interrupted'}))
}

// BaremetalErrors (template errors) describe themselves with file:line and hint.
export function errorMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'describe' in error && typeof (error as {describe: unknown}).describe === 'function') {
    return (error as {describe(): string}).describe()
  }
  return error instanceof Error ? error.message : String(error)
}
