import {readFileSync} from 'node:fs'
import {InventoryError} from '../errors.js'
import {parseYaml, type YamlSource} from '../yamlfile.js'
import {parseIniInventory} from './ini.js'
import {addChild, addHost, type ConnectionDefaults, expandHostPattern, finalize, type Host, type Inventory, NAME_RE, type RawInventory, rawGroup, setGroupVar, splitHostPort, type VarsDirs, newRaw} from './model.js'
import {applyTerms, type HostPattern, orderedTerms} from './pattern.js'

// The inventory formats Ansible reads by default, so a user's hosts.yml or hosts.ini
// works unchanged: YAML (groups with `hosts`, `vars`, `children`), INI, and a comma list
// (`-i h1,h2,`). Variables merge as Ansible merges them (see model.ts).

export type {Connection, GroupInfo, Host, Inventory} from './model.js'
export {expandHostPattern} from './model.js'

const GROUP_KEYS = ['hosts', 'vars', 'children']

/**
 * Load and validate one inventory file (format from its name and content); every problem
 * names file:line:col and the fix. loadInventorySources (sources.ts) adds group_vars,
 * host_vars, ansible.cfg and comma lists.
 */
export function loadInventory(file: string, text?: string, dirs?: VarsDirs, defaults?: ConnectionDefaults): Inventory {
  const raw = newRaw(file)
  addInventoryText(raw, file, text)
  return finalize(raw, dirs, defaults)
}

export type InventoryFormat = 'yaml' | 'ini'

/** Parse one inventory file into raw, choosing YAML or INI; a clear error when it is neither. */
export function addInventoryText(raw: RawInventory, file: string, text?: string): InventoryFormat {
  const src = text ?? readInventoryFile(file)
  const ext = /\.([A-Za-z0-9]+)$/.exec(file)?.[1]?.toLowerCase()
  if (ext === 'yml' || ext === 'yaml' || ext === 'json') {
    addYaml(raw, parseYaml(src, file, InventoryError))
    return 'yaml'
  }
  if (ext === 'ini') {
    parseIniInventory(src, file, raw)
    return 'ini'
  }
  if (ext === 'toml') throw new InventoryError('TOML inventories are not supported', {where: {file}, hint: 'convert it to YAML (hosts.yml) or INI (hosts.ini)'})
  if (src.startsWith('#!')) {
    throw new InventoryError('dynamic inventory scripts are not supported', {where: {file, line: 1, col: 1}, hint: 'run the script yourself (./script --list > inventory.json) and pass -i inventory.json, or write the hosts in YAML or INI'})
  }
  return addUnknownFormat(raw, file, src)
}

// No telling extension (hosts, inventory): a first section header means INI (YAML would
// read "[redis]" as a list); else YAML if it parses to a mapping; else INI. Ansible tries
// its plugins in the same spirit (yaml, then ini).
function addUnknownFormat(raw: RawInventory, file: string, src: string): InventoryFormat {
  const first = src.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'))
  if (first === undefined) return 'ini'
  if (/^\[[^\]\s]+\]\s*(?:#.*)?$/.test(first)) {
    parseIniInventory(src, file, raw)
    return 'ini'
  }
  let yamlError: InventoryError | undefined
  try {
    const y = parseYaml(src, file, InventoryError)
    if (y.value !== null && typeof y.value === 'object' && !Array.isArray(y.value)) {
      addYaml(raw, y)
      return 'yaml'
    }
  } catch (error) {
    if (!(error instanceof InventoryError)) throw error
    yamlError = error
  }
  try {
    parseIniInventory(src, file, raw)
    return 'ini'
  } catch (error) {
    if (!(error instanceof InventoryError)) throw error
    const y = yamlError ? `as YAML: ${yamlError.location()}: ${yamlError.message}` : 'as YAML: not a mapping of groups'
    throw new InventoryError(`${file} is neither a YAML nor an INI inventory (as INI: ${error.message}; ${y})`, {
      where: error.where,
      hint: 'name the file .yml or .ini so its format is known, then fix the error shown for that format',
    })
  }
}

function readInventoryFile(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    if (e.code === 'EISDIR') throw e
    throw new InventoryError(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
      where: {file},
      hint: e.code === 'ENOENT' ? 'check the path (relative paths are resolved from the current directory); for a single host write -i HOST, (with the trailing comma)' : undefined,
    })
  }
}

function addYaml(raw: RawInventory, src: YamlSource): void {
  const root = src.value
  const err = (msg: string, path: Array<string | number>, hint?: string) =>
    new InventoryError(msg, {where: src.where(path), hint})
  if (root === null || root === undefined) throw err('inventory is empty', [], 'write at least: all: {hosts: {myhost: {ansible_host: 192.0.2.10}}}')
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw err('inventory must be a mapping of group names', [], 'start with "all:" and list hosts under "hosts:"')
  }
  const walk = (name: string, def: unknown, path: Array<string | number>) => {
    if (!NAME_RE.test(name)) throw err(`invalid group name "${name}"`, path, 'group names use letters, digits, "_" and "-"')
    const g = rawGroup(raw, name, src.where(path))
    if (def === null || def === undefined) return
    if (typeof def !== 'object' || Array.isArray(def)) {
      throw err(`group "${name}" must be a mapping with hosts, vars or children`, path, `write "${name}:" then indented "hosts:" with one host per line`)
    }
    for (const [key, val] of Object.entries(def as Record<string, unknown>)) {
      if (!GROUP_KEYS.includes(key)) {
        throw err(`unknown key "${key}" in group "${name}"`, [...path, key], `a group has only ${GROUP_KEYS.join(', ')}; host variables go under hosts: {HOST: {${key}: …}} and group variables under vars:`)
      }
      if (val === null || val === undefined) continue
      if (key === 'vars') {
        if (typeof val !== 'object' || Array.isArray(val)) throw err(`vars of group "${name}" must be a mapping`, [...path, key])
        for (const [k, v] of Object.entries(val as Record<string, unknown>)) setGroupVar(g, k, v, src.where([...path, key, k]))
      } else if (key === 'hosts') {
        if (typeof val !== 'object' || Array.isArray(val)) {
          throw err(`hosts of group "${name}" must be a mapping (host: vars), not a list`, [...path, key], 'write each host as "hostname:" on its own line (a trailing colon, vars optional)')
        }
        for (const [spec, hv] of Object.entries(val as Record<string, unknown>)) yamlHost(raw, src, name, spec, hv, [...path, key, spec])
      } else {
        if (typeof val !== 'object' || Array.isArray(val)) throw err(`children of group "${name}" must be a mapping of group names`, [...path, key])
        for (const [child, cdef] of Object.entries(val as Record<string, unknown>)) {
          addChild(raw, name, child, src.where([...path, key, child]))
          walk(child, cdef, [...path, key, child])
        }
      }
    }
  }
  for (const [name, def] of Object.entries(root as Record<string, unknown>)) walk(name, def, [name])
}

function yamlHost(raw: RawInventory, src: YamlSource, group: string, spec: string, hv: unknown, path: Array<string | number>): void {
  const where = src.where(path)
  if (hv !== null && hv !== undefined && (typeof hv !== 'object' || Array.isArray(hv))) {
    throw new InventoryError(`variables of host "${spec}" must be a mapping`, {where, hint: `write "${spec}:" alone, or "${spec}: {ansible_host: …}"`})
  }
  const bad = (why: string) => new InventoryError(`invalid host range "${spec}": ${why}`, {where, hint: 'ranges look like web[01:10], h[1:3] or db-[a:c], at most 100000 hosts per name'})
  const {pattern, port} = splitHostPort(spec, bad)
  const vars = {...(port !== undefined ? {ansible_port: port} : {}), ...((hv as Record<string, unknown>) ?? {})}
  for (const h of expandHostPattern(pattern, bad)) addHost(raw, group, h, vars, where, (k) => (k in ((hv as object) ?? {}) ? src.where([...path, k]) : where))
}

/**
 * Hosts matching an Ansible pattern: `all`, `*`, group or host names, globs, unions
 * with `:` or `,`, intersection `&group`, exclusion `!group` (applied in Ansible's order, see
 * pattern.ts); a list of patterns must all match. Order follows the inventory.
 */
export function selectHosts(inv: Inventory, pattern: HostPattern, where?: {file?: string; line?: number}): Host[] {
  if (Array.isArray(pattern)) {
    const each = pattern.map((p) => new Set(selectHosts(inv, p, where).map((h) => h.name)))
    return [...inv.hosts.values()].filter((h) => each.every((s) => s.has(h.name)))
  }
  const terms = orderedTerms(pattern)
  if (terms.length === 0) throw new InventoryError(`empty host pattern`, {where, hint: 'use "all", a group name or a host name'})
  const matchTerm = (t: string): Set<string> => {
    if (t === 'all' || t === '*') return new Set(inv.hosts.keys())
    const g = inv.groups.get(t)
    if (g) return new Set([...inv.hosts.values()].filter((h) => h.groups.includes(t)).map((h) => h.name))
    if (inv.hosts.has(t)) return new Set([t])
    if (t.includes('*') || t.includes('?')) {
      const re = new RegExp('^' + t.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
      const out = new Set<string>()
      for (const h of inv.hosts.values()) {
        if (re.test(h.name)) out.add(h.name)
        for (const gn of h.groups) if (re.test(gn)) out.add(h.name)
      }
      return out
    }
    throw new InventoryError(`host pattern "${t}" matches no group or host in ${inv.file}`, {
      where,
      hint: `known groups: ${[...inv.groups.keys()].join(', ')}; hosts: ${[...inv.hosts.keys()].slice(0, 10).join(', ')}${inv.hosts.size > 10 ? ', …' : ''}`,
    })
  }
  const selected = applyTerms(terms, matchTerm)
  return [...inv.hosts.values()].filter((h) => selected.has(h.name))
}
