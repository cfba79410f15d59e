import {readdirSync, readFileSync, statSync} from 'node:fs'
import {extname, join} from 'node:path'
import {InventoryError} from '../errors.js'
import {parseYaml} from '../yamlfile.js'
import type {VarLayer, VarsDirs} from './model.js'

// group_vars/ and host_vars/ as Ansible's host_group_vars plugin finds them
// (DataLoader.find_vars_files): for an entity NAME the first of NAME, NAME.yml,
// NAME.yaml, NAME.json that exists; a directory contributes every file in it and its
// subdirectories, in sorted order, skipping hidden files, backups (~) and other
// extensions. Each file must be a mapping (or empty); errors carry the file's own line.

const EXTS = ['.yml', '.yaml', '.json']

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}
const exists = (p: string) => {
  try {
    statSync(p)
    return true
  } catch {
    return false
  }
}

function dirFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || name.endsWith('~')) continue
    const p = join(dir, name)
    const ext = extname(name)
    if (isDir(p)) {
      if (!ext) out.push(...dirFiles(p))
    } else if (!ext || EXTS.includes(ext)) out.push(p)
  }
  return out
}

/** The files that hold an entity's variables, in the order they merge. */
export function varsFilesFor(base: string, name: string): string[] {
  for (const ext of ['', ...EXTS]) {
    const p = join(base, name + ext)
    if (!exists(p)) continue
    return isDir(p) ? dirFiles(p) : [p]
  }
  return []
}

/** Read one vars file as YAML 1.1 (like Ansible); a vault file or a non-mapping is refused. */
export function readVarsFile(file: string): VarLayer {
  const text = readFileSync(file, 'utf8')
  if (text.startsWith('$ANSIBLE_VAULT;')) {
    throw new InventoryError('Ansible Vault files cannot be read', {where: {file, line: 1, col: 1}, hint: 'decrypt it (ansible-vault decrypt) or pass secrets with -e @file / BAREMETAL_REDIS_PASSWORD'})
  }
  const src = parseYaml(text, file, InventoryError)
  if (src.value === null || src.value === undefined) return {vars: {}, where: () => ({file})}
  if (typeof src.value !== 'object' || Array.isArray(src.value)) {
    throw new InventoryError(`${file} must hold a mapping of variables, not ${Array.isArray(src.value) ? 'a list' : 'a single value'}`, {
      where: src.where([]),
      hint: 'write one "name: value" per line',
    })
  }
  return {vars: src.value as Record<string, unknown>, where: (k) => src.where([k])}
}

/** group_vars/host_vars beside the inventory sources and the playbooks. */
export function varsDirs(inventoryDirs: string[], playbookDirs: string[]): VarsDirs {
  return {
    inventoryDirs: [...new Set(inventoryDirs)],
    playbookDirs: [...new Set(playbookDirs)],
    load: (dir, kind, name) => (name.startsWith('/') ? [] : varsFilesFor(join(dir, kind), name).map(readVarsFile)),
  }
}

/** Entries of group_vars/ and host_vars/ that name no group or host: loaded by nobody (Ansible is silent). */
export function unusedVarsEntries(dirs: VarsDirs, groups: Iterable<string>, hosts: Iterable<string>): string[] {
  const known = {group_vars: new Set(groups), host_vars: new Set(hosts)}
  const out: string[] = []
  for (const dir of [...dirs.inventoryDirs, ...dirs.playbookDirs]) {
    for (const kind of ['group_vars', 'host_vars'] as const) {
      const base = join(dir, kind)
      if (!isDir(base)) continue
      for (const entry of readdirSync(base).sort()) {
        if (entry.startsWith('.') || entry.endsWith('~')) continue
        const ext = extname(entry)
        const name = EXTS.includes(ext) ? entry.slice(0, -ext.length) : entry
        if (!known[kind].has(name) && !known[kind].has(entry)) out.push(join(base, entry))
      }
    }
  }
  return out
}
