import {lookup} from 'node:dns/promises'
import {isIP} from 'node:net'
import {type Inventory, selectHosts} from '../inventory/inventory.js'
import {magicVars, resolveVars} from '../play/vars.js'
import {loadYaml} from '../yamlfile.js'
import {bundled} from './common.js'

// Commands that talk to the cluster from the controller (status) need each host's
// redis_* variables exactly as `up` sees them: defaults < inventory < -e.

export interface RedisHostVars {
  host: string
  address: string
  vars: Record<string, unknown>
}

/** Resolve every Redis host's variables without connecting to it. */
export async function redisHostVars(inv: Inventory, pattern: string, extra: Record<string, unknown>): Promise<RedisHostVars[]> {
  const defaults = loadYaml(bundled('playbooks/defaults.yml')).value as Record<string, unknown>
  const hosts = selectHosts(inv, pattern)
  const out: RedisHostVars[] = []
  for (const h of hosts) {
    const a = h.connection.address
    let ip = a
    if (!isIP(a)) ip = await lookup(a, {family: 4}).then((r) => r.address, () => a)
    const vars = resolveVars([defaults, h.vars, {...magicVars(h, inv, hosts), ansible_host_ip: ip}], extra)
    out.push({host: h.name, address: a, vars})
  }
  return out
}
