import {isAbsolute, resolve, dirname} from 'node:path'
import {type ErrorWhere, InventoryError} from '../errors.js'

// What every inventory format (YAML, INI, a comma list) parses into, and how that
// becomes hosts with merged variables. Variables merge in Ansible's order
// (VariableManager.get_vars with the default VARIABLE_PRECEDENCE), lowest first:
//   inventory-file vars of `all`, then of the host's other groups (by depth, then name),
//   group_vars/all beside the inventory, then beside the playbook,
//   group_vars/<group> beside the inventory, then beside the playbook (groups in the same order),
//   inventory-file host vars, host_vars/<host> beside the inventory, then beside the playbook.
// A later layer replaces a whole top-level value (hash_behaviour=replace, the default).

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
  /** SSH connect timeout (ansible.cfg timeout, ansible_ssh_timeout). */
  connectTimeoutMs?: number
  /** ansible.cfg host_key_checking = False: unknown keys are added; a changed key is still refused. */
  acceptNewHostKeys?: boolean
}

export interface GroupInfo {
  name: string
  depth: number
  parents: Set<string>
  children: Set<string>
}

export interface Inventory {
  file: string
  hosts: Map<string, Host>
  groups: Map<string, GroupInfo>
  /** ansible.cfg forks, when -f was not given. */
  forks?: number
}

/** Variables from one place, each key with where it was written. */
export interface VarLayer {
  vars: Record<string, unknown>
  where: (key: string) => ErrorWhere
}

export interface RawGroup {
  name: string
  vars: Record<string, unknown>
  varWhere: Map<string, ErrorWhere>
  children: Set<string>
  parents: Set<string>
  hosts: Set<string>
  where: ErrorWhere
}

export interface RawHost {
  name: string
  vars: Record<string, unknown>
  varWhere: Map<string, ErrorWhere>
  where: ErrorWhere
}

/** One inventory being built from one or more sources (files are merged in order, as Ansible does). */
export interface RawInventory {
  file: string
  groups: Map<string, RawGroup>
  hosts: Map<string, RawHost>
}

export function newRaw(file: string): RawInventory {
  const raw: RawInventory = {file, groups: new Map(), hosts: new Map()}
  rawGroup(raw, 'all', {file})
  rawGroup(raw, 'ungrouped', {file})
  return raw
}

export function rawGroup(raw: RawInventory, name: string, where: ErrorWhere): RawGroup {
  let g = raw.groups.get(name)
  if (!g) {
    g = {name, vars: {}, varWhere: new Map(), children: new Set(), parents: new Set(), hosts: new Set(), where}
    raw.groups.set(name, g)
  }
  return g
}

export function addChild(raw: RawInventory, parent: string, child: string, where: ErrorWhere): void {
  if (parent === child) throw new InventoryError(`group "${parent}" lists itself as a child`, {where, hint: 'a group cannot contain itself'})
  rawGroup(raw, parent, where).children.add(child)
  rawGroup(raw, child, where).parents.add(parent)
}

/** Put a host in a group, with variables it sets there (later definitions win, as Ansible parses). */
export function addHost(raw: RawInventory, group: string, name: string, vars: Record<string, unknown>, where: ErrorWhere, varWhere?: (k: string) => ErrorWhere): void {
  if (!NAME_RE.test(name)) throw new InventoryError(`invalid host name "${name}"`, {where, hint: 'host names use letters, digits, ".", "_", "-" and ":" (IPv6)'})
  rawGroup(raw, group, where).hosts.add(name)
  let h = raw.hosts.get(name)
  if (!h) {
    h = {name, vars: {}, varWhere: new Map(), where}
    raw.hosts.set(name, h)
  }
  for (const [k, v] of Object.entries(vars)) {
    h.vars[k] = v
    h.varWhere.set(k, varWhere?.(k) ?? where)
  }
}

export function setGroupVar(g: RawGroup, key: string, value: unknown, where: ErrorWhere): void {
  g.vars[key] = value
  g.varWhere.set(key, where)
}

export const NAME_RE = /^[A-Za-z0-9_.\-:[\]]+$/

/** Where group_vars/ and host_vars/ are looked for, and how their files are read. */
export interface VarsDirs {
  inventoryDirs: string[]
  playbookDirs: string[]
  load: (dir: string, kind: 'group_vars' | 'host_vars', name: string) => VarLayer[]
}

/** Settings from ansible.cfg that fill in what the inventory does not say. */
export interface ConnectionDefaults {
  user?: string
  privateKeyFile?: string
  port?: number
  connectTimeoutMs?: number
  acceptNewHostKeys?: boolean
}

const byDepthThenName = (a: GroupInfo, b: GroupInfo) => a.depth - b.depth || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/** Groups get their depth (all = 0), hosts their merged variables and connection. */
export function finalize(raw: RawInventory, dirs?: VarsDirs, defaults: ConnectionDefaults = {}): Inventory {
  const groups = groupTree(raw)
  const ungrouped = raw.groups.get('ungrouped')!
  for (const h of raw.hosts.keys()) {
    const member = [...raw.groups.values()].some((g) => g.name !== 'all' && g.name !== 'ungrouped' && g.hosts.has(h))
    if (member) ungrouped.hosts.delete(h)
    else ungrouped.hosts.add(h)
  }
  const memo = new Map<string, VarLayer[]>()
  const filesOf = (dir: string, kind: 'group_vars' | 'host_vars', name: string) => {
    const key = `${kind}\0${dir}\0${name}`
    let v = memo.get(key)
    if (!v) memo.set(key, (v = dirs ? dirs.load(dir, kind, name) : []))
    return v
  }
  const hosts = new Map<string, Host>()
  for (const rh of raw.hosts.values()) {
    const set = new Set<string>(['all'])
    const addAncestors = (name: string) => {
      if (set.has(name)) return
      set.add(name)
      for (const p of groups.get(name)!.parents) addAncestors(p)
    }
    for (const g of raw.groups.values()) if (g.hosts.has(rh.name)) addAncestors(g.name)
    const ordered = [...set].map((n) => groups.get(n)!).sort(byDepthThenName)
    const sub = ordered.filter((g) => g.name !== 'all')
    const rawLayer = (g: RawGroup | RawHost): VarLayer => ({vars: g.vars, where: (k) => g.varWhere.get(k) ?? g.where})
    const layers: VarLayer[] = [rawLayer(raw.groups.get('all')!), ...sub.map((g) => rawLayer(raw.groups.get(g.name)!))]
    const fromDirs = (kind: 'group_vars' | 'host_vars', names: string[]) => {
      for (const d of dirs?.inventoryDirs ?? []) for (const n of names) layers.push(...filesOf(d, kind, n))
      for (const d of dirs?.playbookDirs ?? []) for (const n of names) layers.push(...filesOf(d, kind, n))
    }
    fromDirs('group_vars', ['all'])
    fromDirs('group_vars', sub.map((g) => g.name))
    layers.push(rawLayer(rh))
    fromDirs('host_vars', [rh.name])
    const vars: Record<string, unknown> = {}
    const origin = new Map<string, ErrorWhere>()
    for (const l of layers) for (const [k, v] of Object.entries(l.vars)) {
      vars[k] = v
      origin.set(k, l.where(k))
    }
    hosts.set(rh.name, {name: rh.name, groups: ordered.map((g) => g.name), vars, connection: connectionOf(rh, vars, origin, defaults)})
  }
  return {file: raw.file, hosts, groups}
}

function groupTree(raw: RawInventory): Map<string, GroupInfo> {
  // Every group without a parent is a child of all; depth orders variable precedence.
  for (const g of raw.groups.values()) if (g.name !== 'all' && g.parents.size === 0) addChild(raw, 'all', g.name, g.where)
  const groups = new Map<string, GroupInfo>()
  for (const g of raw.groups.values()) groups.set(g.name, {name: g.name, depth: 0, parents: g.parents, children: g.children})
  const depthOf = (name: string, seen: Set<string>): number => {
    if (name === 'all') return 0
    const g = raw.groups.get(name)!
    if (seen.has(name)) throw new InventoryError(`group cycle through "${name}"`, {where: g.where, hint: 'a group cannot be its own ancestor'})
    seen.add(name)
    return 1 + Math.max(...[...g.parents].map((p) => depthOf(p, new Set(seen))))
  }
  for (const g of groups.values()) g.depth = depthOf(g.name, new Set())
  return groups
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v))

function connectionOf(h: RawHost, vars: Record<string, unknown>, origin: Map<string, ErrorWhere>, d: ConnectionDefaults): Connection {
  const name = h.name
  const at = (...keys: string[]) => keys.map((k) => origin.get(k)).find(Boolean) ?? h.where
  const kind = str(vars.ansible_connection) ?? 'ssh'
  if (!['ssh', 'local', 'paramiko', 'smart'].includes(kind)) {
    throw new InventoryError(`host "${name}": ansible_connection "${kind}" is not supported`, {where: at('ansible_connection'), hint: 'use ssh (the default) or local'})
  }
  const portRaw = vars.ansible_port ?? vars.ansible_ssh_port ?? d.port ?? 22
  const port = Number(portRaw)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InventoryError(`host "${name}": ansible_port ${JSON.stringify(portRaw)} is not a TCP port`, {where: at('ansible_port', 'ansible_ssh_port'), hint: 'use a whole number from 1 to 65535'})
  }
  const timeoutRaw = vars.ansible_ssh_timeout ?? vars.ansible_timeout
  let connectTimeoutMs = d.connectTimeoutMs
  if (timeoutRaw !== undefined && timeoutRaw !== null) {
    const t = Number(timeoutRaw)
    if (!Number.isFinite(t) || t <= 0) {
      throw new InventoryError(`host "${name}": ansible_ssh_timeout ${JSON.stringify(timeoutRaw)} is not a number of seconds`, {where: at('ansible_ssh_timeout', 'ansible_timeout'), hint: 'use a whole number of seconds, e.g. 10'})
    }
    connectTimeoutMs = t * 1000
  }
  const keyFile = str(vars.ansible_ssh_private_key_file ?? vars.ansible_private_key_file)
  const known = str(vars.ansible_ssh_known_hosts_file)
  // A relative path is relative to the inventory file that defines the host, wherever the
  // variable was set (Ansible resolves it from the current directory: see the README).
  const base = h.where.file && !h.where.file.startsWith('-i ') ? dirname(h.where.file) : '.'
  const abs = (p: string | undefined) => {
    if (p === undefined) return undefined
    if (p.startsWith('~/')) return resolve(process.env.HOME ?? '/', p.slice(2))
    return isAbsolute(p) ? p : resolve(base, p)
  }
  const local = kind === 'local'
  return {
    kind: local ? 'local' : 'ssh',
    address: str(vars.ansible_host ?? vars.ansible_ssh_host) ?? (local ? '127.0.0.1' : name),
    port,
    user: str(vars.ansible_user ?? vars.ansible_ssh_user) ?? d.user ?? process.env.USER ?? 'root',
    privateKeyFile: abs(keyFile) ?? d.privateKeyFile,
    knownHostsFile: abs(known),
    password: str(vars.ansible_password ?? vars.ansible_ssh_pass),
    ...(connectTimeoutMs !== undefined ? {connectTimeoutMs} : {}),
    ...(d.acceptNewHostKeys ? {acceptNewHostKeys: true} : {}),
  }
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'

/**
 * Host ranges as Ansible expands them (expand_hostname_range): `web[01:03]` → web01
 * web02 web03 (a leading zero pads, both ends the same width), `db-[a:c]` → db-a db-b
 * db-c, `[1:9:2]` steps, `[:3]` starts at 0, several ranges multiply. At most 100000 hosts.
 */
export function expandHostPattern(pattern: string, bad: (why: string) => Error): string[] {
  const open = pattern.indexOf('[')
  const close = open < 0 ? -1 : pattern.indexOf(']', open)
  if (open < 0 || close < 0 || !pattern.slice(open + 1, close).includes(':')) return [pattern]
  const head = pattern.slice(0, open)
  const tail = pattern.slice(close + 1)
  const bounds = pattern.slice(open + 1, close).split(':')
  if (bounds.length !== 2 && bounds.length !== 3) throw bad('a host range is [begin:end] or [begin:end:step]')
  const beg = bounds[0] || '0'
  const end = bounds[1]
  const step = bounds.length === 3 ? Number(bounds[2]) : 1
  if (!end) throw bad('a host range needs an end value, e.g. [1:3]')
  if (!Number.isInteger(step) || step < 1) throw bad('the step of a host range is a whole number ≥ 1')
  const pad = beg.length > 1 && beg.startsWith('0') ? beg.length : 0
  if (pad && pad !== end.length) throw bad(`padded ranges need begin and end of the same width ([${beg}:${'0'.repeat(Math.max(0, beg.length - end.length))}${end}])`)
  let seq: string[] = []
  const bi = LETTERS.indexOf(beg)
  const ei = LETTERS.indexOf(end)
  if (beg.length === 1 && end.length === 1 && bi >= 0 && ei >= 0) {
    if (bi > ei) throw bad('a host range needs begin <= end')
    for (let i = bi; i <= ei; i += step) seq.push(LETTERS[i])
  } else {
    if (!/^\d+$/.test(beg) || !/^\d+$/.test(end)) throw bad('a host range is numbers ([01:10]) or single letters ([a:f])')
    const a = Number(beg)
    const b = Number(end)
    if (b < a) throw bad('a host range needs begin <= end')
    if ((b - a) / step > 100000) throw bad('at most 100000 hosts per name')
    seq = []
    for (let i = a; i <= b; i += step) seq.push(pad ? String(i).padStart(pad, '0') : String(i))
  }
  const out: string[] = []
  for (const s of seq) {
    out.push(...expandHostPattern(head + s + tail, bad))
    // Several ranges in one name multiply (a[1:3000]b[1:3000] is 9 million hosts): cap the total.
    if (out.length > 100000) throw bad('at most 100000 hosts per name')
  }
  return out
}

/** `host:2222` and `[::1]:2222` carry a port (parse_address); ranges keep their colons. */
export function splitHostPort(spec: string, bad: (why: string) => Error): {pattern: string; port?: number} {
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(spec)
  if (v6) return {pattern: v6[1], port: Number(v6[2])}
  const m = /^(.+):(\d+)$/.exec(spec)
  if (m && !m[1].replace(/\[[^\]]*\]/g, '').includes(':')) return {pattern: m[1], port: Number(m[2])}
  if (spec.endsWith(':')) throw bad(`"${spec}" ends in ":", which is reserved for a port`)
  return {pattern: spec}
}
