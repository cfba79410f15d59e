import {type ErrorWhere, InventoryError} from '../errors.js'
import {iniValue} from './pyliteral.js'
import {addChild, addHost, expandHostPattern, NAME_RE, type RawInventory, rawGroup, setGroupVar, splitHostPort} from './model.js'

// Ansible's INI inventory (plugins/inventory/ini.py), line by line as it parses:
// lines before any section are hosts of `ungrouped`; `[g]` hosts, `[g:vars]` key=value,
// `[g:children]` group names; whole-line comments start with # or ;. Host lines are
// split like a shell (shlex, `#` starts a comment); every value, inline or in :vars, goes
// through Python's literal_eval as Ansible's code does (its docs say :vars values are
// strings, but `[g:vars] port=7000` is the number 7000 there too): `7000`, `True`,
// `[1, 2]` are typed, `yes`, `0644`, `"7000"` (quoted, in :vars) are strings.

const SECTION_RE = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/
const GROUP_NAME_RE = /^([^:\]\s]+)\s*(?:#.*)?$/

interface Pending {
  state: 'vars' | 'children'
  where: ErrorWhere
  parents: string[]
}

/** Parse INI text into `raw`; every error names file:line:col and what to write instead. */
export function parseIniInventory(text: string, file: string, raw: RawInventory): void {
  const pending = new Map<string, Pending>()
  let group = 'ungrouped'
  let state = 'hosts'
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const rawLine = lines[n]
    const line = rawLine.trim()
    const col = rawLine.length - rawLine.trimStart().length + 1
    const where: ErrorWhere = {file, line: n + 1, col}
    if (!line || line[0] === '#' || line[0] === ';') continue
    const m = SECTION_RE.exec(line)
    if (m) {
      group = m[1]
      state = m[2] ?? 'hosts'
      if (!['hosts', 'vars', 'children'].includes(state)) {
        throw new InventoryError(`section [${group}:${state}] has unknown type "${state}"`, {where, hint: `write [${group}] for hosts, [${group}:vars] for variables or [${group}:children] for child groups`})
      }
      if (!raw.groups.has(group) && state === 'vars' && !pending.has(group)) pending.set(group, {state: 'vars', where, parents: []})
      rawGroup(raw, group, where)
      const p = pending.get(group)
      if (p && state !== 'vars') {
        if (p.state === 'children') resolvePending(raw, group, pending)
        else pending.delete(group)
      }
      continue
    }
    if (line.startsWith('[') && line.endsWith(']')) {
      throw new InventoryError(`invalid section header ${line}`, {where, hint: 'a section is [name], [name:vars] or [name:children], with no spaces inside the brackets'})
    }
    if (state === 'hosts') hostLine(rawLine, where, group, raw)
    else if (state === 'vars') varLine(line, where, raw, group)
    else {
      const c = GROUP_NAME_RE.exec(line)
      if (!c) throw new InventoryError(`expected a group name in [${group}:children], got "${line}"`, {where, hint: 'list one child group name per line; hosts go in a [group] section'})
      const child = c[1]
      if (!raw.groups.has(child)) {
        const p = pending.get(child)
        if (p && p.state === 'children') p.parents.push(group)
        else pending.set(child, {state: 'children', where, parents: [group]})
      } else addChild(raw, group, child, where)
    }
  }
  for (const [name, p] of pending) {
    if (p.state === 'vars') {
      throw new InventoryError(`section [${name}:vars] is for a group that is never defined`, {where: p.where, hint: `add a [${name}] section with its hosts (or list ${name} under some [parent:children]), or fix the name`})
    }
    throw new InventoryError(`[${p.parents[p.parents.length - 1]}:children] lists "${name}", a group that is never defined`, {
      where: p.where,
      hint: `add a [${name}] section with its hosts, or fix the name`,
    })
  }
}

function resolvePending(raw: RawInventory, group: string, pending: Map<string, Pending>): void {
  const p = pending.get(group)!
  pending.delete(group)
  for (const parent of p.parents) {
    addChild(raw, parent, group, p.where)
    if (pending.get(parent)?.state === 'children') resolvePending(raw, parent, pending)
  }
}

function varLine(line: string, where: ErrorWhere, raw: RawInventory, group: string): void {
  const eq = line.indexOf('=')
  if (eq < 0) throw new InventoryError(`expected key=value in [${group}:vars], got "${line}"`, {where, hint: 'write one variable per line: name=value'})
  const key = line.slice(0, eq).trim()
  setGroupVar(raw.groups.get(group)!, key, iniValue(line.slice(eq + 1).trim()), where)
}

function hostLine(rawLine: string, lineWhere: ErrorWhere, group: string, raw: RawInventory): void {
  const tokens = shlexSplit(rawLine, lineWhere)
  if (tokens.length === 0) return
  const [first, ...rest] = tokens
  const at = (t: {col: number}): ErrorWhere => ({...lineWhere, col: t.col})
  const bad = (why: string) => new InventoryError(`invalid host "${first.text}": ${why}`, {where: at(first), hint: 'write a host name, host:port, or a range like web[01:10] or db-[a:c]'})
  const {pattern, port} = splitHostPort(first.text, bad)
  const vars: Record<string, unknown> = {}
  const varWhere = new Map<string, ErrorWhere>()
  if (port !== undefined) {
    vars.ansible_port = port
    varWhere.set('ansible_port', at(first))
  }
  for (const t of rest) {
    const eq = t.text.indexOf('=')
    if (eq < 0) {
      throw new InventoryError(`expected key=value after host "${first.text}", got "${t.text}"`, {
        where: at(t),
        hint: 'host variables are name=value; quote a value holding spaces (name="a b"); one host per line',
      })
    }
    const k = t.text.slice(0, eq)
    vars[k] = iniValue(t.text.slice(eq + 1))
    varWhere.set(k, at(t))
  }
  for (const h of expandHostPattern(pattern, bad)) {
    if (!NAME_RE.test(h)) throw new InventoryError(`invalid host name "${h}"`, {where: at(first), hint: 'host names use letters, digits, ".", "_", "-" and ":" (IPv6)'})
    addHost(raw, group, h, vars, at(first), (k) => varWhere.get(k) ?? at(first))
  }
}

/** Python's shlex.split(line, comments=True) (POSIX mode), keeping each token's column. */
export function shlexSplit(line: string, where: ErrorWhere): Array<{text: string; col: number}> {
  const out: Array<{text: string; col: number}> = []
  let tok: string | undefined
  let start = 0
  let i = 0
  const emit = () => {
    if (tok !== undefined) out.push({text: tok, col: start + 1})
    tok = undefined
  }
  const begin = () => {
    if (tok === undefined) {
      tok = ''
      start = i
    }
  }
  while (i < line.length) {
    const c = line[i]
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      emit()
      i++
    } else if (c === '#') {
      break
    } else if (c === "'" || c === '"') {
      begin()
      const q = c
      i++
      for (;;) {
        if (i >= line.length) throw new InventoryError('no closing quotation', {where: {...where, col: start + 1}, hint: `close the ${q} quote on this line`})
        const d = line[i]
        if (d === q) break
        if (q === '"' && d === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          tok += line[i + 1]
          i += 2
          continue
        }
        tok += d
        i++
      }
      i++
    } else if (c === '\\') {
      begin()
      if (i + 1 >= line.length) throw new InventoryError('no escaped character after the final backslash', {where: {...where, col: i + 1}, hint: 'remove the trailing \\ or quote the value'})
      tok += line[i + 1]
      i += 2
    } else {
      begin()
      tok += c
      i++
    }
  }
  emit()
  return out
}
