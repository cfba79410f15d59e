import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, extname, join, resolve} from 'node:path'
import {InventoryError} from '../errors.js'
import {type AnsibleSettings, ansibleSettings, findAnsibleCfg} from './ansible-cfg.js'
import {addInventoryText} from './inventory.js'
import {addHost, type ConnectionDefaults, finalize, type Inventory, newRaw, type RawInventory, splitHostPort} from './model.js'
import {unusedVarsEntries, varsDirs} from './vars-dirs.js'

// Which inventory a command uses, as ansible-playbook decides: -i (a file, a directory of
// inventory files, or a comma list `h1,h2,`), else ansible.cfg's `inventory`, else
// (here) the bundled local inventory. group_vars/ and host_vars/ beside the inventory
// and beside the playbooks are merged in; ansible.cfg fills connection defaults.

export interface InventoryRequest {
  /** The -i value, when the user gave one. */
  given?: string
  /** Used when neither -i nor ansible.cfg names an inventory. */
  fallback: string
  playbooks?: string[]
  /** The command line, to tell whether -f was given (ansible.cfg forks applies only without it). */
  argv?: string[]
  env?: Record<string, string | undefined>
  cwd?: string
  home?: string
}

export interface LoadedInventory {
  inventory: Inventory
  settings: AnsibleSettings
  /** Lines for the user (stderr): where the inventory came from, files nobody loads. */
  notes: string[]
}

/** Did the command line set this flag (as oclif reads -x V, -xV, --long V, --long=V)? */
export function flagGiven(argv: string[], short: string, long: string): boolean {
  for (const a of argv) {
    if (a === '--') return false
    if (a === `-${short}` || a === `--${long}` || a.startsWith(`--${long}=`)) return true
    if (a.startsWith(`-${short}`) && !a.startsWith('--') && a.length > 2) return true
  }
  return false
}

export function loadInventorySources(r: InventoryRequest): LoadedInventory {
  const env = r.env ?? process.env
  const cwd = r.cwd ?? process.cwd()
  const home = r.home ?? homedir()
  const found = findAnsibleCfg({env, cwd, home, exists: existsSync, isDir, cwdWorldWritable: worldWritable(cwd)})
  const settings = ansibleSettings(found.file ? {file: found.file, text: readFileSync(found.file, 'utf8')} : undefined, env, cwd, home)
  const notes = [...found.notes]
  let sources: string[]
  if (r.given !== undefined) sources = [r.given]
  else if (settings.inventory?.length) {
    sources = settings.inventory
    const from = settings.where.inventory?.file === '$ANSIBLE_INVENTORY' ? '$ANSIBLE_INVENTORY' : `inventory = in ${settings.file}`
    notes.push(`inventory: ${sources.join(', ')} (from ${from}; -i overrides)`)
  } else sources = [r.fallback]
  const raw = newRaw(sourceFile(sources[0]))
  const inventoryDirs: string[] = []
  for (const s of sources) inventoryDirs.push(...addSource(raw, s, cwd))
  const dirs = varsDirs(inventoryDirs, (r.playbooks ?? []).map((p) => dirname(resolve(cwd, p))))
  const inventory = finalize(raw, dirs, connectionDefaults(settings))
  const key = settings.privateKeyFile
  const keyUser = [...inventory.hosts.values()].find((h) => h.connection.kind === 'ssh' && h.connection.privateKeyFile === key)
  if (key && keyUser && !existsSync(key)) {
    throw new InventoryError(`private_key_file ${key} does not exist (host ${keyUser.name} would use it)`, {where: settings.where.privateKeyFile, hint: 'fix the path (relative paths are from the ansible.cfg directory), or set ansible_ssh_private_key_file per host'})
  }
  if (settings.forks !== undefined && !flagGiven(r.argv ?? [], 'f', 'forks')) inventory.forks = settings.forks
  for (const f of unusedVarsEntries(dirs, inventory.groups.keys(), inventory.hosts.keys())) notes.push(`warning: ${f} names no group or host of the inventory: not loaded`)
  return {inventory, settings, notes}
}

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

function worldWritable(dir: string): boolean {
  try {
    return (statSync(dir).mode & 0o002) !== 0
  } catch {
    return false
  }
}

const isHostList = (s: string) => s.includes(',') && !existsSync(s)
const sourceFile = (s: string) => (isHostList(s) ? `-i ${s}` : s)

// Ansible skips these in an inventory directory (INVENTORY_IGNORE_EXTS).
const IGNORE_EXTS = ['.pyc', '.pyo', '.swp', '.bak', '.rpm', '.md', '.txt', '.rst', '.orig', '.cfg', '.retry']

/** Add one source; returns the directories whose group_vars/host_vars belong to it. */
function addSource(raw: RawInventory, source: string, cwd: string): string[] {
  if (isHostList(source)) {
    addHostList(raw, source)
    return []
  }
  const path = resolve(cwd, source)
  if (isDir(path)) {
    for (const name of readdirSync(path).sort()) {
      const p = join(path, name)
      if (name.startsWith('.') || name.endsWith('~') || name === 'group_vars' || name === 'host_vars' || IGNORE_EXTS.includes(extname(name)) || isDir(p)) continue
      addInventoryText(raw, join(source, name))
    }
    return [path]
  }
  addInventoryText(raw, source)
  return [dirname(path)]
}

/** `-i h1,h2,` / `-i 10.0.0.5:2222,`: hosts in `ungrouped`, as Ansible's host_list plugin. */
function addHostList(raw: RawInventory, list: string): void {
  const where = {file: `-i ${list}`}
  for (const part of list.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (/\[.*:.*\]/.test(part) && !/^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(part)) {
      throw new InventoryError(`host ranges like "${part}" are not expanded in a comma list (Ansible's host_list does not either)`, {where, hint: 'write the hosts out (-i h1,h2,h3,) or put the range in an INI or YAML inventory file'})
    }
    const {pattern, port} = splitHostPort(part, (why) => new InventoryError(`invalid host "${part}" in the comma list: ${why}`, {where, hint: 'write host or host:port, separated by commas'}))
    addHost(raw, 'ungrouped', pattern, port !== undefined ? {ansible_port: port} : {}, where)
  }
}

function connectionDefaults(s: AnsibleSettings): ConnectionDefaults {
  return {
    user: s.remoteUser,
    privateKeyFile: s.privateKeyFile,
    port: s.remotePort,
    connectTimeoutMs: s.timeout !== undefined ? s.timeout * 1000 : undefined,
    acceptNewHostKeys: s.hostKeyChecking === false ? true : undefined,
  }
}
