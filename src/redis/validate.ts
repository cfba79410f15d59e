import {InputError} from '../errors.js'
import type {Host} from '../inventory/inventory.js'

// The shape of a deployment is checked before any host is touched: a port range
// whose bus ports (port + 10000) would pass 65535, or zero instances, is a typo that
// must not get halfway through a fleet.

export interface RedisLayout {
  host: string
  portStart: number
  count: number
  replicas: number
}

const intOf = (v: unknown): number => (typeof v === 'number' ? v : /^\s*-?\d+\s*$/.test(String(v)) ? Number(v) : NaN)

/** Validate each host's redis_* variables (defaults < inventory < -e); throws InputError naming host and fix. */
export function validateLayout(hosts: Host[], defaults: Record<string, unknown>, extra: Record<string, unknown>, inventoryFile: string): RedisLayout[] {
  const out: RedisLayout[] = []
  for (const h of hosts) {
    const v = {...defaults, ...h.vars, ...extra}
    const where = {file: inventoryFile, host: h.name}
    const count = intOf(v.redis_count)
    const start = intOf(v.redis_port_start)
    const replicas = intOf(v.redis_replicas)
    if (!Number.isInteger(count) || count < 1) {
      throw new InputError(`redis_count is ${JSON.stringify(v.redis_count)}: a host needs at least 1 instance`, {where, hint: 'set redis_count to a whole number ≥ 1 (default 100), or remove the host from the redis group'})
    }
    if (count > 1000) throw new InputError(`redis_count ${count} is more instances than one host should run`, {where, hint: 'use at most 1000 per host'})
    if (!Number.isInteger(start) || start < 1) throw new InputError(`redis_port_start is ${JSON.stringify(v.redis_port_start)}`, {where, hint: 'set redis_port_start to a TCP port, e.g. 6379'})
    const end = start + count - 1
    if (end + 10000 > 65535) {
      throw new InputError(`ports ${start}-${end} need cluster bus ports ${start + 10000}-${end + 10000}, past 65535`, {where, hint: `the last data port must be ≤ 55535: lower redis_port_start to ≤ ${55535 - count + 1} or redis_count to ≤ ${55535 - start + 1}`})
    }
    if (!Number.isInteger(replicas) || replicas < 0) throw new InputError(`redis_replicas is ${JSON.stringify(v.redis_replicas)}`, {where, hint: 'set redis_replicas to 0, 1, 2, …'})
    out.push({host: h.name, portStart: start, count, replicas})
  }
  const total = out.reduce((s, l) => s + l.count, 0)
  const replicas = out[0]?.replicas ?? 0
  if (out.length && Math.floor(total / (replicas + 1)) < 1) {
    throw new InputError(`${total} instance(s) cannot hold a master and ${replicas} replica(s) each`, {where: {file: inventoryFile}, hint: `lower redis_replicas or add instances`})
  }
  return out
}
