// command: run a program with its arguments, without a shell: `$(…)`, `;`, `|`, `>`,
// `*` and `$VAR` are plain text. All loop items run one after another in ONE script
// (one round trip per host), `creates`/`removes` checked in that same script.
//
// Parameters:
//   cmd      the command line (also the free form `command: …`), split into words like
//            a shell would (quotes and backslashes honored; only a leading ~ is expanded,
//            never $VAR or $(…)); trailing chdir=… creates=… removes=… words are options
//   argv     the words as a list instead of cmd (no splitting at all)
//   chdir    directory to run in
//   creates  do not run when this path exists
//   removes  do not run when this path does not exist
//   stdin    text fed to the command's standard input (a newline is added)
//
// Result (register:): rc, stdout, stderr (exactly as printed), stdout_lines, cmd.
// The task is 'changed' when the command ran, 'ok' when creates/removes skipped it,
// 'failed' on a non-zero exit (changed_when/failed_when are applied by the runner).
//
// Example:
//   - name: start one redis-server per port
//     command: ./redis-server redis.conf
//     args:
//       chdir: "~/redis_cluster/{{ item }}"
//       creates: "~/redis_cluster/{{ item }}/redis.pid"
//     loop: "{{ ports }}"

import {expandHome, mask, quote} from '../shell.js'
import {failureMessage, interrupted, lostStep, runSteps, str} from './remote.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

/** One command to run, as both command and shell modules describe it. */
export interface RunSpec {
  /** What the user wrote, for messages and `register: x.cmd`. */
  display: string
  /** The shell text that runs it (every user value already quoted). */
  line: string
  chdir?: string
  creates?: string
  removes?: string
  stdin?: string
}

// The free-form string is data: split it the way sh would, but expand nothing except
// an unquoted leading ~ (when home is given), as people type `command: ls ~/x`.
export function splitWords(s: string, home?: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  let i = 0
  while (i < s.length) {
    const c = s[i]
    if (c === '~' && !inWord && home !== undefined && (i + 1 === s.length || /[/\s]/.test(s[i + 1]))) {
      cur += home
      inWord = true
      i++
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1)
      if (end < 0) throw new Error('unterminated single quote')
      cur += s.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      i++
      inWord = true
      for (;;) {
        if (i >= s.length) throw new Error('unterminated double quote')
        const d = s[i]
        if (d === '"') break
        if (d === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1])) {
          if (s[i + 1] !== '\n') cur += s[i + 1]
          i += 2
          continue
        }
        cur += d
        i++
      }
      i++
    } else if (c === '\\') {
      if (i + 1 < s.length && s[i + 1] !== '\n') cur += s[i + 1]
      inWord = true
      i += 2
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
      i++
    } else {
      cur += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(cur)
  return words
}

// Each word quoted; a first word like FOO=bar is forced into quotes so sh never reads it
// as a variable assignment.
export function argvLine(words: string[]): string {
  return words.map((w, i) => (i === 0 && w.includes('=') ? `'${w.replace(/'/g, `'\\''`)}'` : quote(w))).join(' ')
}

// One item's step: guards first, then the command in a subshell (its `cd` and `exit`
// stay inside). In check mode only the guards run.
export function buildRunStep(r: RunSpec, check: boolean): string {
  let body = r.chdir ? `( cd ${quote(r.chdir)} && ${r.line} )` : `( ${r.line} )`
  if (r.stdin !== undefined) {
    const data = r.stdin.endsWith('\n') ? r.stdin : `${r.stdin}\n`
    body = `printf '%s\\n' ${quote(Buffer.from(data).toString('base64'))} | base64 -d | ${body}`
  }
  if (check) body = ':'
  const guards: string[] = []
  if (r.creates) guards.push(`[ -e ${quote(r.creates)} ]; then bm_note=creates`)
  if (r.removes) guards.push(`[ ! -e ${quote(r.removes)} ]; then bm_note=removes`)
  if (guards.length === 0) return body
  return `if ${guards.join('\nelif ')}\nelse ${body}\nfi`
}

// stdout_lines without the empty string a final newline would leave.
const lines = (s: string): string[] => (s === '' ? [] : s.replace(/\r?\n$/, '').split(/\r?\n/))

// Shared by command and shell: all items in one script, results mapped back in order.
export async function runCommands(ctx: ModuleContext, what: string, specs: Array<RunSpec | {error: string}>): Promise<ItemResult[]> {
  const stop = interrupted(ctx, specs.length)
  if (stop) return stop
  const runnable: Array<{index: number; spec: RunSpec}> = []
  specs.forEach((spec, index) => {
    if (!('error' in spec)) runnable.push({index, spec})
  })
  // Check mode runs only the creates/removes guards: no guards, no round trip.
  const needed = ctx.check ? runnable.filter((r) => r.spec.creates || r.spec.removes) : runnable
  const batch =
    needed.length === 0
      ? {steps: runnable.map(() => ({rc: 0, stdout: '', stderr: '', note: ''}))}
      : await runSteps(
          ctx.transport,
          runnable.map((r) => buildRunStep(r.spec, ctx.check)),
        )
  const results: ItemResult[] = specs.map((s) => ({status: 'failed', msg: 'error' in s ? s.error : 'not run'}))
  runnable.forEach(({index, spec}, k) => {
    const step = batch.steps[k]
    const cmd = mask(spec.display, ctx.secrets)
    if (!step) {
      results[index] = {status: 'failed', msg: `${lostStep(batch)}: ${cmd}`, rc: null, data: {cmd}}
      return
    }
    if (step.note === 'creates' || step.note === 'removes') {
      const why = step.note === 'creates' ? `${spec.creates} exists (creates)` : `${spec.removes} does not exist (removes)`
      results[index] = {status: 'ok', msg: `not run: ${why}`, rc: 0, stdout: '', stderr: '', data: {rc: 0, stdout: '', stderr: '', stdout_lines: [], cmd, skipped_reason: why}}
      return
    }
    if (ctx.check) {
      results[index] = {status: 'changed', msg: `would run: ${cmd}`, data: {cmd}}
      return
    }
    const {stdout, stderr} = step
    const data = {rc: step.rc, stdout, stderr, stdout_lines: lines(stdout), cmd}
    if (step.rc === 0) {
      results[index] = {status: 'changed', rc: 0, stdout, stderr, data}
    } else {
      results[index] = {status: 'failed', msg: failureMessage(what, cmd, step.rc, stderr, ctx.secrets), rc: step.rc, stdout, stderr, data}
    }
  })
  return results
}

const INLINE = /\s+(chdir|creates|removes)=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s'"]+)\s*$/

/**
 * Ansible habit: `command: ./redis-server redis.conf chdir=/srv/6379` — trailing
 * chdir=/creates=/removes= words of the free form are options, not arguments.
 */
export function inlineOptions(text: string): {text: string; options: Record<string, string>} {
  const options: Record<string, string> = {}
  let rest = text
  for (let m = INLINE.exec(rest); m; m = INLINE.exec(rest)) {
    if (!(m[1] in options)) options[m[1]] = splitWords(m[2])[0] ?? ''
    rest = rest.slice(0, m.index)
  }
  return {text: rest, options}
}

// Paths shared by command and shell, `~` expanded.
export function guardPaths(ctx: ModuleContext, args: Record<string, unknown>, inline: Record<string, string> = {}): Pick<RunSpec, 'chdir' | 'creates' | 'removes' | 'stdin'> {
  const p = (k: string): string | undefined => {
    const v = str(args[k]) ?? inline[k]
    return v ? expandHome(v, ctx.facts.home) : undefined
  }
  return {chdir: p('chdir'), creates: p('creates'), removes: p('removes'), stdin: str(args.stdin)}
}

// Free form or argv list → one RunSpec, or the reason it cannot run.
export function commandSpec(ctx: ModuleContext, item: TaskItem): RunSpec | {error: string} {
  const args = item.args
  let words: string[]
  let display: string
  let inline: Record<string, string> = {}
  if (Array.isArray(args.argv) && args.argv.length > 0) {
    words = args.argv.map(String)
    display = argvLine(words)
  } else {
    const raw = str(args.cmd)?.trim() ?? ''
    if (!raw) return {error: 'command: give cmd (or the free form `command: prog args`) or argv'}
    try {
      const parsed = inlineOptions(raw)
      inline = parsed.options
      display = parsed.text.trim()
      words = splitWords(display, ctx.facts.home)
    } catch (error) {
      return {error: `command: cannot split ${JSON.stringify(mask(raw, ctx.secrets))} into words: ${(error as Error).message}`}
    }
    if (words.length === 0) return {error: 'command: the command is empty'}
  }
  return {display, line: argvLine(words), ...guardPaths(ctx, args, inline)}
}

export const commandModule: ModuleSpec = {
  name: 'command',
  description: 'Run a program with arguments, no shell; all loop items in one round trip',
  freeForm: 'cmd',
  checkMode: true,
  args: {
    cmd: {type: 'string'},
    argv: {type: 'list'},
    chdir: {type: 'path'},
    creates: {type: 'path'},
    removes: {type: 'path'},
    stdin: {type: 'string'},
  },
  run(ctx, items) {
    return runCommands(
      ctx,
      'command',
      items.map((it) => commandSpec(ctx, it)),
    )
  },
}

// The user's text is one quoted argument of `sh -c`: a syntax error in one item cannot
// break the script that carries the other items.
export function shellSpec(ctx: ModuleContext, item: TaskItem): RunSpec | {error: string} {
  let text = str(item.args.cmd) ?? ''
  let inline: Record<string, string> = {}
  try {
    const parsed = inlineOptions(text)
    text = parsed.text
    inline = parsed.options
  } catch {
    // an unbalanced quote in what looked like an option: leave the text to sh
  }
  if (!text.trim()) return {error: 'shell: give the command text (cmd, or the free form `shell: …`)'}
  const exe = str(item.args.executable) || '/bin/sh'
  return {display: mask(text, ctx.secrets), line: `${quote(exe)} -c ${quote(text)}`, ...guardPaths(ctx, item.args, inline)}
}

// shell: run a command line through `sh -c`, for when you want shell features (pipes,
// redirections, `&&`, variables, globs). Same batching as command: all loop items in
// ONE script, one round trip per host. Insert variables as single words with
// `{{ quote var }}` so their content stays data.
//
// Parameters:
//   cmd         the shell text (also the free form `shell: …`); trailing chdir=…
//               creates=… removes=… words are options, as in Ansible
//   chdir       directory to run in
//   creates     do not run when this path exists
//   removes     do not run when this path does not exist
//   stdin       text fed to standard input (a newline is added)
//   executable  the shell (default /bin/sh)
//
// Example:
//   - name: flush the firewall
//     shell: iptables -F && iptables -X
//   - name: count running redis servers
//     shell: pgrep -c redis-server || true
//     register: running
export const shellModule: ModuleSpec = {
  name: 'shell',
  description: 'Run a command line through sh -c (pipes, redirections); all loop items in one round trip',
  freeForm: 'cmd',
  checkMode: true,
  args: {
    cmd: {type: 'string', required: true},
    chdir: {type: 'path'},
    creates: {type: 'path'},
    removes: {type: 'path'},
    stdin: {type: 'string'},
    executable: {type: 'path', default: '/bin/sh'},
  },
  run(ctx, items) {
    return runCommands(
      ctx,
      'shell command',
      items.map((it) => shellSpec(ctx, it)),
    )
  },
}
