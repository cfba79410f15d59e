import {lookup} from 'node:dns/promises'
import {isIP} from 'node:net'
import {ClusterError} from '../errors.js'
import type {ClusterNode} from './plan.js'

// Inventory hosts → the Redis nodes on them, and the one place names become IPs: Redis
// 5.0.3 binds and MEETs by numeric IP only. The runner (ansible_host_ip), the CLI's
// controller-side commands and the cluster modules all resolve through here.

// Inventory hosts → cluster nodes: ports from redis_port_start/redis_count, IP from
// redis_bind or the host's address, resolved because MEET on 5.0.x takes numeric IPs only.
export async function clusterNodesFromHosts(hosts: ReadonlyArray<{host: string; address: string; vars: Record<string, unknown>}>): Promise<ClusterNode[]> {
  const out: ClusterNode[] = []
  for (const h of hosts) {
    const start = intVar(h, 'redis_port_start', 6379)
    const count = intVar(h, 'redis_count', 100)
    const ip = await resolveIp(pickBindAddress(h.vars.redis_bind) ?? h.address, h.host)
    for (let i = 0; i < count; i++) out.push({host: h.host, ip, port: start + i})
  }
  return out
}

function intVar(h: {host: string; vars: Record<string, unknown>}, name: string, dflt: number): number {
  const v = h.vars[name]
  if (v === undefined || v === null || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new ClusterError(`${name} must be a whole number, got ${JSON.stringify(v)}`, {where: {host: h.host}})
  return n
}

// `bind` may list several addresses, wildcards and Redis 7's optional "-addr": use the
// first concrete non-loopback one, loopback only when nothing else is listed.
export function pickBindAddress(bind: unknown): string | undefined {
  if (bind === undefined || bind === null) return undefined
  const list = (Array.isArray(bind) ? bind.map(String) : String(bind).split(/[\s,]+/)).map((a) => a.trim()).filter((a) => a && !['*', '0.0.0.0', '::', '::*'].includes(a.replace(/^-/, '')))
  const loopback = (a: string) => /^-?(127\.|::1$|localhost$)/.test(a)
  const optional = (a: string) => a.startsWith('-')
  const rank = (a: string) => (loopback(a) ? 2 : 0) + (optional(a) ? 1 : 0)
  const best = [...list].sort((a, b) => rank(a) - rank(b))[0]
  return best?.replace(/^-/, '')
}

// Numeric IPs pass through; names are looked up once, IPv4 preferred (what people put in `bind`).
export async function resolveIp(address: string, host = address): Promise<string> {
  if (isIP(address)) return address
  try {
    return (await lookup(address, {family: 4})).address
  } catch {
    try {
      return (await lookup(address)).address
    } catch (error) {
      throw new ClusterError(`cannot resolve "${address}" to an IP address: ${(error as Error).message}`, {
        where: {host},
        hint: 'set ansible_host or redis_bind to a numeric IP',
      })
    }
  }
}

// For a variable, not a connection: a name that does not resolve stays as written, and
// whatever uses it says what is wrong. IPv4 only, like resolveIp's first try.
export async function hostIp(address: string): Promise<string> {
  if (isIP(address)) return address
  return lookup(address, {family: 4}).then(
    (r) => r.address,
    () => address,
  )
}
