// lineinfile: make sure one line is in a file (or not), as Ansible's lineinfile. All loop
// items' files are read in one round trip, the edits are made on the controller in loop
// order (50 lines into one file: still one read and one write), and each changed file is
// written once, atomically (temp file + mv; mode and owner kept). --diff shows the change.
//
// Parameters:
//   path          the file (aliases: dest, destfile, name); symlinks are followed
//   line          the line to have (required with state: present)
//   regexp        a Python-style regular expression: with present, the LAST matching
//                 line is replaced (firstmatch: the first); with absent, every matching
//                 line is removed. Only when it matches nothing is line added
//   search_string like regexp, a literal substring
//   state         present | absent (default present)
//   insertafter   EOF (default) or a regexp: add after its last matching line (EOF when none matches)
//   insertbefore  BOF or a regexp: add before its last matching line
//   firstmatch    insertafter/insertbefore/regexp use the first match instead of the last
//   backrefs      line may use \1 / \g<name> from regexp; when regexp matches nothing the
//                 file is left alone
//   create        create the file (and its directory) when missing (default no: fails)
//   mode, owner, group   the file's attributes (octal or symbolic mode)
//   backup, validate     refused when the playbook loads (not supported)
//
// Example:
//   - name: kernel settings
//     lineinfile:
//       path: /etc/sysctl.d/90-redis.conf
//       regexp: "^{{ item.key }} ="
//       line: "{{ item.key }} = {{ item.value }}"
//       create: yes
//     loop: "{{ sysctls | dict2items }}"

import {str} from './remote.js'
import {bare, defineTextModule, FILE_ARGS, pyRegex, splitLines, type EditResult, type TextState} from './textfile.js'

export interface LineEdit {
  state: 'present' | 'absent'
  line?: string
  regexp?: RegExp
  search?: string
  insertafter?: string
  insertbefore?: string
  insertRe?: RegExp
  firstmatch: boolean
  backrefs: boolean
}

/** The task's arguments → the edit, or why they cannot work together (as Ansible refuses them). */
export function lineEdit(a: Record<string, unknown>): LineEdit | {error: string} {
  const state = (str(a.state) ?? 'present') as LineEdit['state']
  const line = str(a.line)
  const ia = str(a.insertafter)
  const ib = str(a.insertbefore)
  if (a.regexp !== undefined && a.search_string !== undefined) return {error: 'regexp and search_string are mutually exclusive'}
  if (ia !== undefined && ib !== undefined) return {error: 'insertafter and insertbefore are mutually exclusive'}
  if (state === 'present' && line === undefined) return {error: 'line is required with state=present'}
  if (state === 'absent' && line === undefined && a.regexp === undefined && a.search_string === undefined) return {error: 'one of line, regexp or search_string is required with state=absent'}
  if (a.backrefs === true && a.regexp === undefined) return {error: 'regexp is required with backrefs=true'}
  let regexp: RegExp | undefined
  let insertRe: RegExp | undefined
  try {
    regexp = a.regexp !== undefined ? pyRegex(String(a.regexp)) : undefined
    const ins = ib !== undefined && ib !== 'BOF' ? ib : ia !== undefined && ia !== 'EOF' && ia !== 'BOF' ? ia : undefined
    insertRe = ins !== undefined ? pyRegex(ins) : undefined
  } catch (error) {
    return {error: (error as Error).message}
  }
  return {state, line, regexp, search: str(a.search_string), insertafter: ia, insertbefore: ib, insertRe, firstmatch: a.firstmatch === true, backrefs: a.backrefs === true}
}

// Python's match.expand: \1 … \99, \g<1>, \g<name>, \\.
export function expandBackrefs(template: string, m: RegExpExecArray): string {
  return template.replace(/\\(?:g<(\w+)>|(\d{1,2})|\\|n|t)/g, (all, name: string | undefined, num: string | undefined) => {
    if (all === '\\\\') return '\\'
    if (all === '\\n') return '\n'
    if (all === '\\t') return '\t'
    const key = name ?? num!
    const v = /^\d+$/.test(key) ? m[Number(key)] : m.groups?.[key]
    return v ?? ''
  })
}

function matches(e: LineEdit, l: string): RegExpExecArray | boolean {
  if (e.regexp) return e.regexp.exec(l) ?? false
  if (e.search !== undefined) return l.includes(e.search)
  return l === e.line
}

function lastIndex(lines: string[], test: (l: string) => unknown, first: boolean): number {
  let at = -1
  for (let i = 0; i < lines.length; i++) {
    if (test(bare(lines[i]))) {
      at = i
      if (first) break
    }
  }
  return at
}

function absent(e: LineEdit, lines: string[], exists: boolean): EditResult | {noop: string} {
  if (!exists) return {noop: 'file not present'}
  const kept = lines.filter((l) => !matches(e, bare(l)))
  const n = lines.length - kept.length
  return n === 0 ? {noop: 'no matching line'} : {content: kept.join(''), msg: `${n} line(s) removed`}
}

/** Pure: Ansible's lineinfile on a file's content. */
export function applyLine(e: LineEdit, s: TextState, path: string, create: boolean): EditResult | {noop: string} {
  if (!s.exists && !(e.state === 'present' && create)) {
    if (e.state === 'absent') return {noop: 'file not present'}
    return {fail: `destination ${path} does not exist (create: yes creates it)`}
  }
  const lines = splitLines(s.content)
  if (e.state === 'absent') return absent(e, lines, s.exists)
  const line = e.line!
  const found = lastIndex(lines, (l) => matches(e, l), e.firstmatch)
  if (found >= 0) {
    const m = e.regexp && e.backrefs ? e.regexp.exec(bare(lines[found])) : null
    const next = m ? expandBackrefs(line, m) : line
    const ending = /\r?\n$/.exec(lines[found])?.[0] ?? '\n'
    if (bare(lines[found]) === next) return {noop: 'line already present'}
    lines[found] = next + ending
    return {content: lines.join(''), msg: 'line replaced'}
  }
  if (e.backrefs) return {noop: 'regexp matched nothing (backrefs: file left alone)'}
  if (e.insertbefore === 'BOF' || e.insertafter === 'BOF') return {content: line + '\n' + lines.join(''), msg: 'line added'}
  const at = e.insertRe ? lastIndex(lines, (l) => e.insertRe!.test(l), e.firstmatch) : -1
  if (at < 0 || e.insertafter === 'EOF' || (e.insertafter === undefined && e.insertbefore === undefined)) {
    const body = lines.join('')
    const sep = body !== '' && !body.endsWith('\n') ? '\n' : ''
    return {content: body + sep + line + '\n', msg: 'line added'}
  }
  const pos = e.insertbefore !== undefined ? at : at + 1
  if (pos === lines.length && lines.length > 0 && !lines[pos - 1].endsWith('\n')) lines[pos - 1] += '\n'
  lines.splice(pos, 0, line + '\n')
  return {content: lines.join(''), msg: 'line added'}
}

export const lineinfileModule = defineTextModule<LineEdit>({
  name: 'lineinfile',
  description: 'Make sure a line is in a file (or not), by regexp or exact text; all loop items in two round trips',
  args: {
    ...FILE_ARGS,
    line: {type: 'string', aliases: ['value']},
    regexp: {type: 'string', aliases: ['regex']},
    search_string: {type: 'string'},
    state: {type: 'string', choices: ['present', 'absent'], default: 'present'},
    insertafter: {type: 'string'},
    insertbefore: {type: 'string'},
    firstmatch: {type: 'bool', default: false},
    backrefs: {type: 'bool', default: false},
  },
  edit: lineEdit,
  apply: applyLine,
})
