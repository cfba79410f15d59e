// blockinfile: keep a block of lines between two marker lines in a file, as Ansible's
// blockinfile. Same engine as lineinfile: all loop items' files read in one round trip,
// edits made on the controller in loop order, each changed file written once, atomically.
//
// Parameters:
//   path          the file (aliases: dest, destfile, name)
//   block         the lines to keep between the markers (alias content); empty removes the block
//   marker        the marker line, {mark} replaced by marker_begin / marker_end
//                 (default "# {mark} ANSIBLE MANAGED BLOCK")
//   marker_begin  default BEGIN; marker_end default END
//   state         present | absent (default present)
//   insertafter   EOF (default) or a regexp: a new block goes after its last matching line
//   insertbefore  BOF or a regexp: before its last matching line (an existing block stays where it is)
//   append_newline / prepend_newline  an empty line after / before a new block
//   create        create the file when missing (default no: a missing file fails)
//   mode, owner, group   the file's attributes
//   backup, validate     refused when the playbook loads (not supported)
//
// Example:
//   - name: redis limits
//     blockinfile:
//       path: /etc/security/limits.d/redis.conf
//       create: yes
//       block: |
//         redis soft nofile 65536
//         redis hard nofile 65536

import {str} from './remote.js'
import {bare, defineTextModule, FILE_ARGS, pyRegex, splitLines, type EditResult, type TextState} from './textfile.js'

export interface BlockEdit {
  state: 'present' | 'absent'
  block: string
  begin: string
  end: string
  insertafter?: string
  insertbefore?: string
  insertRe?: RegExp
  appendNewline: boolean
  prependNewline: boolean
}

export function blockEdit(a: Record<string, unknown>): BlockEdit | {error: string} {
  const marker = str(a.marker) ?? '# {mark} ANSIBLE MANAGED BLOCK'
  const ia = str(a.insertafter)
  const ib = str(a.insertbefore)
  if (ia !== undefined && ib !== undefined) return {error: 'insertafter and insertbefore are mutually exclusive'}
  const begin = marker.replaceAll('{mark}', str(a.marker_begin) ?? 'BEGIN')
  const end = marker.replaceAll('{mark}', str(a.marker_end) ?? 'END')
  if (begin === end) return {error: `the begin and end markers are the same line (${JSON.stringify(begin)}): put {mark} in marker`}
  let insertRe: RegExp | undefined
  try {
    const ins = ib !== undefined && ib !== 'BOF' ? ib : ia !== undefined && ia !== 'EOF' ? ia : undefined
    insertRe = ins !== undefined ? pyRegex(ins) : undefined
  } catch (error) {
    return {error: (error as Error).message}
  }
  return {
    state: (str(a.state) ?? 'present') as BlockEdit['state'],
    block: str(a.block) ?? '',
    begin,
    end,
    insertafter: ia,
    insertbefore: ib,
    insertRe,
    appendNewline: a.append_newline === true,
    prependNewline: a.prepend_newline === true,
  }
}

// Where a new block goes (Ansible: the last line matching insertafter/insertbefore, else EOF).
function insertAt(e: BlockEdit, lines: string[]): number {
  if (e.insertRe) {
    let at = -1
    lines.forEach((l, i) => {
      if (e.insertRe!.test(bare(l))) at = i
    })
    if (at < 0) return lines.length
    return e.insertafter !== undefined ? at + 1 : at
  }
  return e.insertbefore !== undefined ? 0 : lines.length
}

/** Pure: Ansible's blockinfile on a file's content. */
export function applyBlock(e: BlockEdit, s: TextState, path: string, create: boolean): EditResult | {noop: string} {
  if (!s.exists && !create) return {fail: `path ${path} does not exist (create: yes creates it)`}
  const lines = splitLines(s.content)
  const present = e.state === 'present' && e.block !== ''
  const body = e.block.endsWith('\n') ? e.block : `${e.block}\n`
  const blockLines = present ? [`${e.begin}\n`, ...splitLines(body), `${e.end}\n`] : []
  let n0 = -1
  let n1 = -1
  lines.forEach((l, i) => {
    if (bare(l) === e.begin) n0 = i
    if (bare(l) === e.end) n1 = i
  })
  let at: number
  let fresh = false
  if (n0 < 0 || n1 < 0) {
    at = insertAt(e, lines)
    fresh = true
  } else {
    at = Math.min(n0, n1)
    lines.splice(at, Math.abs(n1 - n0) + 1)
  }
  if (at > 0 && !lines[at - 1].endsWith('\n')) lines[at - 1] += '\n'
  if (fresh && present && e.prependNewline && at > 0) blockLines.unshift('\n')
  if (fresh && present && e.appendNewline && at < lines.length) blockLines.push('\n')
  lines.splice(at, 0, ...blockLines)
  const result = lines.join('')
  if (result === s.content && s.exists) return {noop: present ? 'block already present' : 'no block to remove'}
  if (!s.exists) return present ? {content: result, msg: 'file created'} : {noop: 'file not present'}
  return {content: result, msg: present ? (fresh ? 'block inserted' : 'block updated') : 'block removed'}
}

export const blockinfileModule = defineTextModule<BlockEdit>({
  name: 'blockinfile',
  description: 'Keep a block of lines between marker lines in a file; all loop items in two round trips',
  args: {
    ...FILE_ARGS,
    block: {type: 'string', aliases: ['content'], default: ''},
    marker: {type: 'string'},
    marker_begin: {type: 'string'},
    marker_end: {type: 'string'},
    state: {type: 'string', choices: ['present', 'absent'], default: 'present'},
    insertafter: {type: 'string'},
    insertbefore: {type: 'string'},
    append_newline: {type: 'bool', default: false},
    prepend_newline: {type: 'bool', default: false},
  },
  edit: blockEdit,
  apply: applyBlock,
})
