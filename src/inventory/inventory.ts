import {isAbsolute, resolve, dirname} from 'node:path'
import {InventoryError} from '../errors.js'
import {loadYaml, parseYaml, type YamlSource} from '../yamlfile.js'
import {applyTerms, type HostPattern, orderedTerms} from './pattern.js'

// Ansible's YAML inventory, so a user's hosts.yml works unchanged: groups with
// `hosts` (host → vars or empty), `vars`, `children`, the implicit `all`; variables
// merge all < parent groups < child groups < host, as in Ansible.

export interface Host {
  name: string
  /** Groups this host belongs to, including `all` and every ancestor. */
  groups: string[]
  /** Merged variables (group vars then host vars). */
  vars: Record<string, unknown>
  connection: Connection
}

export interface Connection {
  kind: 'ssh' | 'local'
  address: string
  port: number
  user: string
  privateKeyFile?: string
  knownHostsFile?: string
  password?: string
}

export interface Inventory {
  file: string
  hosts: Map<string, Host>
  groups: Map<string, Group>
}

interface Group {
  name: string
  vars: Record<string, unknown>
  children: Set<string>
  hosts: Map<string, Record<string, unknown>>
  depth: number
  parents: Set<string>
}

const GROUP_KEYS = ['hosts', 'vars', 'children']
const NAME_RE = /^[A-Za-z0-9_.\-:[\]]+$/

/** Load and validate an inventory file; every problem names file:line and the fix. */
export function loadInventory(file: string, text?: string): Inventory {
  const src = text === undefined ? loadYaml(file, InventoryError) : parseYaml(text, file, InventoryError)
  return buildInventory(src)
}

function buildInventory(src: YamlSource): Inventory {
  const root = src.value
  const err = (msg: string, path: Array<string | number>, hint?: string) =>
    new InventoryError(msg, {where: src.where(path), hint})
  if (root === null || root === undefined) throw err('inventory is empty', [], 'write at least: all: {hosts: {myhost: {ansible_host: 192.0.2.10}}}')
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw err('inventory must be a mapping of group names', [], 'start with "all:" and list hosts under "hosts:"')
  }
  const groups = new Map<string, Group>()
  const getGroup = (name: string): Group => {
    let g = groups.get(name)
    if (!g) {
      g = {name, vars: {}, children: new Set(), hosts: new Map(), depth: 0, parents: new Set()}
      groups.set(name, g)
    }
    return g
  }
  getGroup('all')

  const walk = (name: string, def: unknown, path: Array<string | number>) => {
    if (!NAME_RE.test(name)) throw err(`invalid group name "${name}"`, path, 'group names use letters, digits, "_" and "-"')
    const g = getGroup(name)
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
        Object.assign(g.vars, val)
      } else if (key === 'hosts') {
        if (typeof val !== 'object' || Array.isArray(val)) {
          throw err(`hosts of group "${name}" must be a mapping (host: vars), not a list`, [...path, key], 'write each host as "hostname:" on its own line (a trailing colon, vars optional)')
        }
        for (const [hostPattern, hv] of Object.entries(val as Record<string, unknown>)) {
          if (hv !== null && hv !== undefined && (typeof hv !== 'object' || Array.isArray(hv))) {
            throw err(`variables of host "${hostPattern}" must be a mapping`, [...path, key, hostPattern], `write "${hostPattern}:" alone, or "${hostPattern}: {ansible_host: …}"`)
          }
          for (const h of expandHostPattern(hostPattern, () => err(`invalid host range "${hostPattern}"`, [...path, key, hostPattern], 'ranges look like web[01:10] or h[1:3], at most 100000 hosts per name'))) {
            if (!NAME_RE.test(h)) throw err(`invalid host name "${h}"`, [...path, key, hostPattern])
            g.hosts.set(h, {...(g.hosts.get(h) ?? {}), ...((hv as Record<string, unknown>) ?? {})})
          }
        }
      } else if (key === 'children') {
        if (typeof val !== 'object' || Array.isArray(val)) throw err(`children of group "${name}" must be a mapping of group names`, [...path, key])
        for (const [child, cdef] of Object.entries(val as Record<string, unknown>)) {
          if (child === name) throw err(`group "${name}" lists itself as a child`, [...path, key, child])
          g.children.add(child)
          getGroup(child).parents.add(name)
          walk(child, cdef, [...path, key, child])
        }
      }
    }
  }
  for (const [name, def] of Object.entries(root as Record<string, unknown>)) walk(name, def, [name])

  // Every group is a descendant of all; depth orders variable precedence.
  for (const g of groups.values()) if (g.name !== 'all' && g.parents.size === 0) {
    g.parents.add('all')
    groups.get('all')!.children.add(g.name)
  }
  const depthOf = (name: string, seen: Set<string>): number => {
    if (name === 'all') return 0
    if (seen.has(name)) throw err(`group cycle through "${name}"`, [], 'a group cannot be its own ancestor')
    seen.add(name)
    const g = groups.get(name)!
    const d = 1 + Math.max(...[...g.parents].map((p) => depthOf(p, new Set(seen))))
    return d
  }
  for (const g of groups.values()) g.depth = depthOf(g.name, new Set())

  const hostGroups = new Map<string, Set<string>>()
  const addAncestors = (set: Set<string>, gname: string) => {
    if (set.has(gname)) return
    set.add(gname)
    for (const p of groups.get(gname)!.parents) addAncestors(set, p)
  }
  for (const g of groups.values()) {
    for (const h of g.hosts.keys()) {
      const set = hostGroups.get(h) ?? new Set<string>()
      addAncestors(set, g.name)
      set.add('all')
      hostGroups.set(h, set)
    }
  }

  const hosts = new Map<string, Host>()
  for (const [name, gset] of hostGroups) {
    const ordered = [...gset].map((n) => groups.get(n)!).sort((a, b) => a.depth - b.depth || a.name.localeCompare(b.name))
    const vars: Record<string, unknown> = {}
    for (const g of ordered) Object.assign(vars, g.vars)
    for (const g of ordered) Object.assign(vars, g.hosts.get(name) ?? {})
    const where = locateHost(src, root as Record<string, unknown>, name)
    hosts.set(name, {name, groups: ordered.map((g) => g.name), vars, connection: connectionOf(name, vars, src.file, where)})
  }
  return {file: src.file, hosts, groups}
}

function locateHost(src: YamlSource, root: Record<string, unknown>, host: string): ReturnType<YamlSource['where']> {
  const search = (def: unknown, path: Array<string | number>): Array<string | number> | undefined => {
    if (!def || typeof def !== 'object') return undefined
    const d = def as Record<string, unknown>
    if (d.hosts && typeof d.hosts === 'object' && host in (d.hosts as object)) return [...path, 'hosts', host]
    if (d.children && typeof d.children === 'object') {
      for (const [c, cd] of Object.entries(d.children as Record<string, unknown>)) {
        const r = search(cd, [...path, 'children', c])
        if (r) return r
      }
    }
    return undefined
  }
  for (const [g, def] of Object.entries(root)) {
    const p = search(def, [g])
    if (p) return src.where(p)
  }
  return {file: src.file}
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v))

function connectionOf(name: string, vars: Record<string, unknown>, file: string, where: ReturnType<YamlSource['where']>): Connection {
  const kind = str(vars.ansible_connection) ?? 'ssh'
  if (!['ssh', 'local', 'paramiko', 'smart'].includes(kind)) {
    throw new InventoryError(`host "${name}": ansible_connection "${kind}" is not supported`, {where, hint: 'use ssh (the default) or local'})
  }
  const portRaw = vars.ansible_port ?? vars.ansible_ssh_port ?? 22
  const port = Number(portRaw)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InventoryError(`host "${name}": ansible_port ${JSON.stringify(portRaw)} is not a TCP port`, {where, hint: 'use a whole number from 1 to 65535'})
  }
  const keyFile = str(vars.ansible_ssh_private_key_file ?? vars.ansible_private_key_file)
  const known = str(vars.ansible_ssh_known_hosts_file)
  const base = dirname(file)
  const abs = (p?: string) => (p === undefined ? undefined : p.startsWith('~/') ? resolve(process.env.HOME ?? '/', p.slice(2)) : isAbsolute(p) ? p : resolve(base, p))
  const local = kind === 'local'
  return {
    kind: local ? 'local' : 'ssh',
    address: str(vars.ansible_host ?? vars.ansible_ssh_host) ?? (local ? '127.0.0.1' : name),
    port,
    user: str(vars.ansible_user ?? vars.ansible_ssh_user) ?? process.env.USER ?? 'root',
    privateKeyFile: abs(keyFile),
    knownHostsFile: abs(known),
    password: str(vars.ansible_password ?? vars.ansible_ssh_pass),
  }
}

/** `web[01:03]` → web01 web02 web03, as Ansible expands numeric host ranges. */
export function expandHostPattern(pattern: string, bad: () => Error): string[] {
  const m = /^(.*)\[(\d+):(\d+)(?::(\d+))?\](.*)$/.exec(pattern)
  if (!m) return [pattern]
  const [, pre, a, b, step, post] = m
  const start = Number(a)
  const end = Number(b)
  const stride = step ? Number(step) : 1
  if (end < start || stride < 1 || end - start > 100000) throw bad()
  const width = a.length > 1 && a.startsWith('0') ? a.length : 0
  const out: string[] = []
  for (let i = start; i <= end; i += stride) {
    out.push(...expandHostPattern(`${pre}${String(i).padStart(width, '0')}${post}`, bad))
    // Several ranges in one name multiply (a[1:3000]b[1:3000] is 9 million hosts): cap the total.
    if (out.length > 100000) throw bad()
  }
  return out
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
