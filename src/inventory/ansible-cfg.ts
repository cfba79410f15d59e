import {dirname, isAbsolute, join, resolve} from 'node:path'
import {type ErrorWhere, InventoryError} from '../errors.js'

// ansible.cfg, the settings this tool has an equivalent for. Found as Ansible finds it
// (config/manager.py find_ini_config_file): $ANSIBLE_CONFIG (a file, or a directory
// holding ansible.cfg), ./ansible.cfg unless the current directory is world-writable,
// ~/.ansible.cfg, /etc/ansible/ansible.cfg; the first that exists is the only one read.
// Read like Python's configparser (Ansible's): `key = value` or `key: value`, keys
// lowercased, whole-line # and ; comments, inline " ;" comments, indented continuation
// lines, %% for %. The ANSIBLE_* environment variables override the file, as in Ansible.
// Paths are relative to the cfg file's directory (to the current directory from the
// environment). Keys this tool does not know are ignored, as Ansible ignores them.

export interface AnsibleSettings {
  /** The ansible.cfg read, if any. */
  file?: string
  /** [defaults] inventory: absolute paths. */
  inventory?: string[]
  remoteUser?: string
  privateKeyFile?: string
  forks?: number
  hostKeyChecking?: boolean
  /** SSH connect timeout, seconds. */
  timeout?: number
  remotePort?: number
  /** Where each setting was written, for error messages. */
  where: Partial<Record<keyof Omit<AnsibleSettings, 'where' | 'file'>, ErrorWhere>>
}

export interface CfgEnv {
  env: Record<string, string | undefined>
  cwd: string
  home: string
  exists: (p: string) => boolean
  isDir: (p: string) => boolean
  /** The current directory is world-writable: Ansible skips ./ansible.cfg there. */
  cwdWorldWritable: boolean
}

/** Which ansible.cfg Ansible would read, or why none / why one is skipped. */
export function findAnsibleCfg(e: CfgEnv): {file?: string; notes: string[]} {
  const notes: string[] = []
  const fromEnv = e.env.ANSIBLE_CONFIG
  if (fromEnv !== undefined && fromEnv !== '') {
    let p = resolve(e.cwd, fromEnv.startsWith('~/') ? join(e.home, fromEnv.slice(2)) : fromEnv)
    if (e.isDir(p)) p = join(p, 'ansible.cfg')
    // Ansible falls through to the next place when this file is missing; a typo would then
    // silently pick another config, so it is an error here.
    if (!e.exists(p)) throw new InventoryError(`ANSIBLE_CONFIG is ${fromEnv}, but ${p} does not exist`, {hint: 'fix the path, or unset ANSIBLE_CONFIG to use ./ansible.cfg or ~/.ansible.cfg'})
    return {file: p, notes}
  }
  const here = join(e.cwd, 'ansible.cfg')
  if (e.exists(here)) {
    if (!e.cwdWorldWritable) return {file: here, notes}
    notes.push(`ignoring ${here}: the directory is world-writable (Ansible ignores it too); point ANSIBLE_CONFIG at it to use it`)
  }
  for (const p of [join(e.home, '.ansible.cfg'), '/etc/ansible/ansible.cfg']) if (e.exists(p)) return {file: p, notes}
  return {notes}
}

interface CfgValue {
  value: string
  where: ErrorWhere
}

/** configparser's reading of the file: section → key → value with its line. */
export function parseCfg(text: string, file: string): Map<string, Map<string, CfgValue>> {
  const sections = new Map<string, Map<string, CfgValue>>()
  let current: Map<string, CfgValue> | undefined
  let last: {v: CfgValue; indent: number} | undefined
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]
    const where: ErrorWhere = {file, line: n + 1, col: 1}
    const stripped = line.trim()
    const indent = line.length - line.trimStart().length
    if (stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')) {
      if (stripped === '') last = undefined
      continue
    }
    const valueText = stripped.replace(/\s;.*$/, '')
    if (last && indent > last.indent) {
      last.v.value += '\n' + valueText
      continue
    }
    const sec = /^\[([^\]]+)\]$/.exec(stripped)
    if (sec) {
      if (sections.has(sec[1])) throw new InventoryError(`section [${sec[1]}] appears twice`, {where, hint: 'merge the two sections into one'})
      current = new Map()
      sections.set(sec[1], current)
      last = undefined
      continue
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(valueText)
    if (!current) throw new InventoryError('a setting before any [section]', {where, hint: 'put settings under [defaults]'})
    if (!kv) throw new InventoryError(`expected "key = value", got "${stripped}"`, {where, hint: 'write one "key = value" per line'})
    const key = kv[1].toLowerCase()
    if (current.has(key)) throw new InventoryError(`"${key}" is set twice in this section`, {where, hint: 'keep one of them'})
    const v = {value: kv[2], where: {...where, col: indent + 1}}
    current.set(key, v)
    last = {v, indent}
  }
  for (const sec of sections.values()) for (const v of sec.values()) v.value = interpolate(v.value, v.where)
  return sections
}

function interpolate(v: string, where: ErrorWhere): string {
  return v.replace(/%(%|\([^)]*\)s|.?)/g, (m, x: string) => {
    if (x === '%') return '%'
    throw new InventoryError(`"${m}" in a value: ansible.cfg values are read with %-interpolation`, {where, hint: 'write %% for a literal %; %(name)s references are not supported'})
  })
}

const TRUE = ['y', 'yes', 'on', '1', 'true', 't']
const FALSE = ['n', 'no', 'off', '0', 'false', 'f']

/** The settings from a cfg file's text (or none) and the environment. Pure. */
export function ansibleSettings(cfg: {file: string; text: string} | undefined, env: Record<string, string | undefined>, cwd: string, home: string): AnsibleSettings {
  const s: AnsibleSettings = {file: cfg?.file, where: {}}
  const parsed = cfg ? parseCfg(cfg.text, cfg.file) : new Map<string, Map<string, CfgValue>>()
  const pick = (key: string, envName: string, section = 'defaults'): (CfgValue & {base: string}) | undefined => {
    const e = env[envName]
    if (e !== undefined && e !== '') return {value: e, where: {file: `$${envName}`}, base: cwd}
    const v = parsed.get(section)?.get(key)
    return v ? {...v, base: dirname(cfg!.file)} : undefined
  }
  const path = (p: string, base: string) => {
    const t = p.trim()
    if (t === '~' || t.startsWith('~/')) return join(home, t.slice(2))
    return isAbsolute(t) ? t : resolve(base, t)
  }
  const int = (v: CfgValue, key: string, min: number): number => {
    const n = Number(v.value.trim())
    if (!/^\s*\d+\s*$/.test(v.value) || n < min) throw new InventoryError(`ansible.cfg ${key} = ${v.value} is not a whole number ≥ ${min}`, {where: v.where, hint: `write e.g. ${key} = ${key === 'forks' ? 10 : key === 'timeout' ? 10 : 22}`})
    return n
  }
  const hb = pick('hash_behaviour', 'ANSIBLE_HASH_BEHAVIOUR')
  if (hb && hb.value.trim() !== 'replace') {
    throw new InventoryError(`hash_behaviour = ${hb.value.trim()} is not supported: variables always replace (Ansible's default)`, {where: hb.where, hint: 'remove hash_behaviour, and combine dictionaries explicitly where you need it'})
  }
  // become = True would run every task through sudo in Ansible; plays here become only
  // when they say so, so the setting would be silently lost.
  const become = pick('become', 'ANSIBLE_BECOME', 'privilege_escalation')
  if (become && TRUE.includes(become.value.trim().toLowerCase())) {
    throw new InventoryError('[privilege_escalation] become = True is not supported in ansible.cfg', {where: become.where, hint: 'write "become: true" in the plays (or tasks) that need it, and remove it from ansible.cfg'})
  }
  const inv = pick('inventory', 'ANSIBLE_INVENTORY')
  if (inv) {
    // A list of paths (Ansible's pathlist): `h1,h2,` here names files, not hosts, as in Ansible.
    s.inventory = inv.value.split(',').map((x) => x.trim()).filter(Boolean).map((p) => path(p, inv.base))
    s.where.inventory = inv.where
  }
  const user = pick('remote_user', 'ANSIBLE_REMOTE_USER')
  if (user && user.value.trim()) [s.remoteUser, s.where.remoteUser] = [user.value.trim(), user.where]
  const key = pick('private_key_file', 'ANSIBLE_PRIVATE_KEY_FILE')
  if (key && key.value.trim()) [s.privateKeyFile, s.where.privateKeyFile] = [path(key.value, key.base), key.where]
  const forks = pick('forks', 'ANSIBLE_FORKS')
  if (forks) [s.forks, s.where.forks] = [int(forks, 'forks', 1), forks.where]
  const timeout = pick('timeout', 'ANSIBLE_TIMEOUT')
  if (timeout) [s.timeout, s.where.timeout] = [int(timeout, 'timeout', 1), timeout.where]
  const port = pick('remote_port', 'ANSIBLE_REMOTE_PORT')
  if (port) [s.remotePort, s.where.remotePort] = [int(port, 'remote_port', 1), port.where]
  const hkc = pick('host_key_checking', 'ANSIBLE_HOST_KEY_CHECKING')
  if (hkc) {
    const b = hkc.value.trim().toLowerCase()
    // Ansible reads anything else as False; a typo must not quietly turn checking off.
    if (!TRUE.includes(b) && !FALSE.includes(b)) throw new InventoryError(`host_key_checking = ${hkc.value.trim()} is not a boolean`, {where: hkc.where, hint: 'write True or False'})
    ;[s.hostKeyChecking, s.where.hostKeyChecking] = [TRUE.includes(b), hkc.where]
  }
  return s
}
