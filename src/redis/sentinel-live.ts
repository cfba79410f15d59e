import {Redis} from 'ioredis'
import {DIRECT} from './pool.js'
import type {GroupLive, MemberLive} from './sentinel-roles.js'
import type {SentinelLayout} from './sentinel-layout.js'
import type {SentinelKnows} from './sentinel-retire.js'
import {addrOf} from './sentinel-roles.js'

// The live side of "who is the master of group G now", from the controller: each Sentinel's
// SENTINEL get-master-addr-by-name, and ROLE on every member. Kept small and in one place:
// src/redis/sentinel-view.ts (status, failover) is the fuller view this folds into.

const TIMEOUT_MS = 2000

async function ask<T>(host: string, port: number, password: string | undefined, fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
  const r = new Redis({...DIRECT, host, port, password, connectTimeout: TIMEOUT_MS, commandTimeout: TIMEOUT_MS})
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } catch {
    return undefined
  } finally {
    r.disconnect()
  }
}

/** ROLE of one instance: alive with its role (and a replica's master), or not alive. */
export async function memberRole(ip: string, port: number, password?: string): Promise<MemberLive> {
  const role = await ask(ip, port, password, (r) => r.call('ROLE') as Promise<unknown[]>)
  if (!Array.isArray(role)) return {alive: false}
  if (role[0] === 'master') return {alive: true, role: 'master'}
  if (role[0] === 'slave') return {alive: true, role: 'slave', masterAddr: `${String(role[1])}:${String(role[2])}`}
  return {alive: true}
}

/** What one Sentinel names as the master of `name` ("ip:port"), undefined when it does not answer or know it. */
export async function sentinelNames(ip: string, port: number, name: string): Promise<string | undefined> {
  const a = await ask(ip, port, undefined, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<unknown>)
  return Array.isArray(a) && a.length === 2 ? `${String(a[0])}:${String(a[1])}` : undefined
}

/** The live facts of every group of the layout: all Sentinels and members asked at once. */
export async function liveGroups(layout: SentinelLayout, password?: string): Promise<Map<string, GroupLive>> {
  const out = new Map<string, GroupLive>()
  await Promise.all(
    layout.groups.map(async (g) => {
      const addrs = [g.master, ...g.replicas].map((h) => ({h, a: addrOf(h, g.port)}))
      const [says, roles] = await Promise.all([Promise.all(layout.sentinels.map((s) => sentinelNames(s.ip, s.port, g.name))), Promise.all(addrs.map(({h}) => memberRole(h.ip, g.port, password)))])
      out.set(g.name, {sentinelSays: says, members: new Map(addrs.map(({a}, i) => [a, roles[i]]))})
    }),
  )
  return out
}

export interface SentinelMasterInfo {
  ip: string
  port: number
  flags: string
  replicas: number
  otherSentinels: number
}

/** SENTINEL MASTER name as a few fields, undefined when the Sentinel does not answer or know it. */
export async function sentinelMasterInfo(ip: string, port: number, name: string): Promise<SentinelMasterInfo | undefined> {
  const a = await ask(ip, port, undefined, (r) => r.call('SENTINEL', 'MASTER', name) as Promise<unknown>)
  if (!Array.isArray(a)) return undefined
  const f = new Map<string, string>()
  for (let i = 0; i + 1 < a.length; i += 2) f.set(String(a[i]), String(a[i + 1]))
  return {ip: f.get('ip') ?? '', port: Number(f.get('port')), flags: f.get('flags') ?? '', replicas: Number(f.get('num-slaves') ?? 0), otherSentinels: Number(f.get('num-other-sentinels') ?? 0)}
}

/** Replicas of a master with their link up (ROLE's replica list: connected ones only). */
export async function connectedReplicas(ip: string, port: number, password?: string): Promise<number | undefined> {
  const role = await ask(ip, port, password, (r) => r.call('ROLE') as Promise<unknown[]>)
  return Array.isArray(role) && role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : undefined
}

/** One command to one Sentinel (SENTINEL SET, MONITOR, FLUSHCONFIG): its reply or the error's message. */
export function sentinelCommand(ip: string, port: number, args: string[]): Promise<{ok: boolean; reply: string}> {
  return command(ip, port, undefined, args)
}

/** CONFIG GET of one parameter on one data instance: its value, undefined when it does not answer. */
export async function configGet(ip: string, port: number, password: string | undefined, name: string): Promise<string | undefined> {
  const r = await ask(ip, port, password, (c) => c.call('CONFIG', 'GET', name) as Promise<unknown>)
  return Array.isArray(r) && r.length === 2 ? String(r[1]) : undefined
}

/** CONFIG SET on one data instance. */
export function configSet(ip: string, port: number, password: string | undefined, name: string, value: string): Promise<{ok: boolean; reply: string}> {
  return command(ip, port, password, ['CONFIG', 'SET', name, value])
}

async function command(ip: string, port: number, password: string | undefined, args: string[]): Promise<{ok: boolean; reply: string}> {
  let err = 'no answer'
  const reply = await ask(ip, port, password, async (r) => {
    try {
      return String(await r.call(args[0], ...args.slice(1)))
    } catch (error) {
      err = error instanceof Error ? error.message : String(error)
      return undefined
    }
  })
  return reply === undefined ? {ok: false, reply: err} : {ok: true, reply}
}

const pairs = (entry: unknown): Map<string, string> => {
  const f = new Map<string, string>()
  if (Array.isArray(entry)) for (let i = 0; i + 1 < entry.length; i += 2) f.set(String(entry[i]), String(entry[i + 1]))
  return f
}
const addrs = (list: unknown): string[] => (Array.isArray(list) ? list.map(pairs).map((f) => `${f.get('ip')}:${f.get('port')}`) : [])

/** What one Sentinel knows of the masters `ours` accepts: their masters, replicas and other Sentinels; undefined when it does not answer. */
export async function sentinelKnows(ip: string, port: number, ours: (name: string) => boolean): Promise<SentinelKnows | undefined> {
  return ask(ip, port, undefined, async (r) => {
    const k: SentinelKnows = {addr: `${ip}:${port}`, masters: new Map(), replicas: new Map(), sentinels: new Map()}
    const masters = (await r.call('SENTINEL', 'MASTERS')) as unknown[]
    for (const f of masters.map(pairs)) {
      const name = f.get('name') ?? ''
      if (!ours(name)) continue
      k.masters.set(name, `${f.get('ip')}:${f.get('port')}`)
      // SLAVES, not REPLICAS: 5.0.3 knows both, older ones only this.
      k.replicas.set(name, addrs(await r.call('SENTINEL', 'SLAVES', name)))
      k.sentinels.set(name, addrs(await r.call('SENTINEL', 'SENTINELS', name)))
    }
    return k
  })
}

/** DBSIZE of one data instance, undefined when it does not answer. */
export async function dbsize(ip: string, port: number, password?: string): Promise<number | undefined> {
  const n = await ask(ip, port, password, (r) => r.dbsize())
  return typeof n === 'number' ? n : undefined
}
