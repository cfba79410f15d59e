import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {type Inventory, selectHosts} from '../inventory/inventory.js'
import type {HostPattern} from '../inventory/pattern.js'
import {magicVars, resolveVars} from '../play/vars.js'
import type {ErrorWhere} from '../errors.js'
import {hostIp} from '../redis/inventory-nodes.js'
import {parseVersionH} from '../redis/validate.js'
import {loadYaml, type YamlSource} from '../yamlfile.js'
import {bundled} from './common.js'

// Commands that talk to the cluster from the controller (status) need each host's
// redis_* variables exactly as `up` sees them: defaults < inventory < -e.

export interface RedisHostVars {
  host: string
  address: string
  vars: Record<string, unknown>
}

/** Resolve every Redis host's variables without connecting to it. */
export async function redisHostVars(inv: Inventory, pattern: HostPattern, extra: Record<string, unknown>): Promise<RedisHostVars[]> {
  const defaults = loadYaml(bundled('playbooks/defaults.yml')).value as Record<string, unknown>
  const hosts = selectHosts(inv, pattern)
  const out: RedisHostVars[] = []
  for (const h of hosts) {
    const a = h.connection.address
    const ip = await hostIp(a)
    const vars = resolveVars([defaults, h.vars, {...magicVars(h, inv, hosts), ansible_host_ip: ip}], extra)
    out.push({host: h.name, address: a, vars})
  }
  return out
}

/**
 * Where the inventory sets a variable for a host, as file:line:col: the host's own entry
 * first (it wins), else the deepest group's vars that hold the host. Undefined when the
 * inventory does not set it (a default).
 */
export function inventoryVarWhere(file: string): (host: string, name: string) => ErrorWhere | undefined {
  let src: YamlSource | undefined
  try {
    src = loadYaml(file)
  } catch {
    return () => undefined
  }
  const s = src
  return (host, name) => {
    let hostPath: Array<string | number> | undefined
    let groupPath: Array<string | number> | undefined
    const walk = (def: unknown, path: Array<string | number>, depth: number, best: {d: number}): boolean => {
      if (!def || typeof def !== 'object' || Array.isArray(def)) return false
      const d = def as Record<string, unknown>
      let holds = false
      const hv = d.hosts && typeof d.hosts === 'object' ? (d.hosts as Record<string, unknown>) : undefined
      if (hv && host in hv) {
        holds = true
        const e = hv[host]
        if (e && typeof e === 'object' && name in (e as object)) hostPath = [...path, 'hosts', host, name]
      }
      if (d.children && typeof d.children === 'object') {
        for (const [c, cd] of Object.entries(d.children as Record<string, unknown>)) if (walk(cd, [...path, 'children', c], depth + 1, best)) holds = true
      }
      const vars = d.vars && typeof d.vars === 'object' ? (d.vars as Record<string, unknown>) : undefined
      if (holds && vars && name in vars && depth >= best.d) {
        best.d = depth
        groupPath = [...path, 'vars', name]
      }
      return holds
    }
    const root = s.value && typeof s.value === 'object' ? (s.value as Record<string, unknown>) : {}
    const best = {d: -1}
    for (const [g, def] of Object.entries(root)) walk(def, [g], 0, best)
    const path = hostPath ?? groupPath
    return path ? s.where(path) : undefined
  }
}

const tarVersions = new Map<string, {version?: string; error?: string}>()

/** The Redis version a source tarball on the controller holds: its src/version.h, read without unpacking. */
export function controllerTarballVersion(path: string): {version?: string; error?: string} {
  const known = tarVersions.get(path)
  if (known) return known
  let r: {version?: string; error?: string}
  if (!existsSync(path)) r = {error: 'no such file on the controller'}
  else {
    const out = spawnSync('tar', ['-xOf', path, '--wildcards', '--no-anchored', 'src/version.h'], {encoding: 'utf8', maxBuffer: 1 << 20})
    const version = out.status === 0 ? parseVersionH(out.stdout) : undefined
    r = version ? {version} : {error: `no src/version.h with REDIS_VERSION in it (tar: ${(out.stderr || `exit ${out.status}`).trim().split('\n').slice(-1)[0]})`}
  }
  tarVersions.set(path, r)
  return r
}
