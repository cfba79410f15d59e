import {hostname} from 'node:os'
import {BaremetalError, EXIT, InputError} from '../errors.js'
import {type Host, type Inventory, selectHosts} from '../inventory/inventory.js'
import type {HostFacts} from '../modules/types.js'
import {closeAll, transportFor} from '../play/runner.js'
import {describeHolder, groupSlug, type HostRecords, parseHolder, parseRecords, RECORD_DIR, recordVars, selectRecord, type Selection, validateClusterName} from '../redis/cluster-record.js'
import {quote} from '../shell.js'
import type {SshOptions} from '../transport/ssh.js'
import type {HeldCommand, Transport} from '../transport/types.js'

// The edges of the cluster records and locks: connect to the group's hosts before the
// playbook (the same connections it then uses), read every record in one round trip per
// host, hold the cluster's lock for the run.

export type Transports = Map<string, {transport: Transport; facts?: HostFacts}>

/** A run holds the cluster's lock on a host: the second up/down fails fast (exit 2), nothing changed. */
export class LockedError extends BaremetalError {
  override code = 'LOCKED'
  override exitCode: number = EXIT.failed
}

function transportOf(transports: Transports, h: Host, ssh: SshOptions): Transport {
  let e = transports.get(h.name)
  if (!e) {
    e = {transport: transportFor(h, ssh)}
    transports.set(h.name, e)
  }
  return e.transport
}

const RECORDS_SCRIPT = `for f in "$HOME"/${RECORD_DIR}/*.json; do [ -f "$f" ] || continue; echo "@@ FILE $f"; cat "$f"; echo; done; true`

/**
 * Every cluster record on the hosts, read only (one round trip per host). A host that
 * cannot be reached is left out here: the playbook reports it unreachable as usual.
 */
export async function readRecords(hosts: Host[], transports: Transports, ssh: SshOptions, warnings: string[]): Promise<HostRecords[]> {
  const out = await Promise.all(
    hosts.map(async (h): Promise<HostRecords | undefined> => {
      try {
        const t = transportOf(transports, h, ssh)
        await t.connect()
        const r = await t.exec(RECORDS_SCRIPT, {timeoutMs: 30_000})
        if (r.failed) return undefined
        const {records, bad} = parseRecords(r.stdout)
        for (const b of bad) warnings.push(`${h.name}: ${b} is not a cluster record: ignored`)
        return {host: h.name, records}
      } catch {
        return undefined
      }
    }),
  )
  return out.filter((x): x is HostRecords => x !== undefined)
}

/** Keys the inventory (any host of the group) or -e sets: a record never overrides them. */
export function explicitKeys(hosts: Host[], extra: Record<string, unknown>): Set<string> {
  const keys = new Set(Object.keys(extra))
  for (const h of hosts) for (const k of Object.keys(h.vars)) keys.add(k)
  return keys
}

export interface ClusterTarget {
  /** Variables from the record (only those nothing explicit sets), plus baremetal_group. */
  vars: Record<string, unknown>
  selection: Selection
}

/**
 * What cluster a down/status/load is about: read the records, pick one (selectRecord),
 * and return its variables. Throws InputError (exit 5) when several could be meant.
 */
export async function targetCluster(o: {inv: Inventory; group: string; extra: Record<string, unknown>; transports: Transports; ssh: SshOptions; warnings: string[]}): Promise<ClusterTarget> {
  const hosts = selectHosts(o.inv, o.group)
  const keys = explicitKeys(hosts, o.extra)
  const pickFrom = (k: string) => (k in o.extra ? o.extra[k] : hosts.find((h) => k in h.vars)?.vars[k])
  const name = keys.has('redis_cluster_name') ? String(pickFrom('redis_cluster_name')) : undefined
  const ps = keys.has('redis_port_start') ? Number(pickFrom('redis_port_start')) : undefined
  const explicit = {name: name?.includes('{{') ? undefined : name, portStart: Number.isInteger(ps) ? ps : undefined}
  const found = await readRecords(hosts, o.transports, o.ssh, o.warnings)
  const selection = selectRecord(found, explicit, {file: o.inv.file})
  const vars: Record<string, unknown> = {baremetal_group: groupSlug(o.group)}
  if (selection.kind === 'record') Object.assign(vars, recordVars(selection.record, keys))
  return {vars, selection}
}

/** Every host's resolved redis_cluster_name, checked; one cluster has one name. */
export function clusterNameOf(resolved: Array<{host: string; vars: Record<string, unknown>}>, file: string): string {
  const names = new Set(resolved.map((h) => validateClusterName(h.vars.redis_cluster_name, {file, host: h.host})))
  if (names.size > 1) {
    throw new InputError(`the group's hosts have ${names.size} different redis_cluster_name values: ${[...names].join(', ')}`, {
      where: {file},
      hint: 'one cluster has one name: set redis_cluster_name (and redis_port_start) for the whole group, not per host',
    })
  }
  return [...names][0]
}

function lockScript(name: string, info: string): string {
  const file = `"$HOME"/${RECORD_DIR}/${name}.lock`
  return [
    'command -v flock >/dev/null 2>&1 || { echo "@@ NOFLOCK"; exit 3; }',
    `mkdir -p "$HOME"/${RECORD_DIR} || exit 1`,
    `exec 9>>${file} || exit 1`,
    `if ! flock -n 9; then echo "@@ BUSY"; cat ${file}; exit 75; fi`,
    `printf '%s host_pid=%s from=%s\\n' ${quote(info)} "$$" "\${SSH_CLIENT%% *}" > ${file}`,
    'echo "@@ LOCKED"',
    // cat holds fd 9 (the lock) until stdin closes: our release, or the connection's end.
    'exec cat >/dev/null',
  ].join('\n')
}

export interface ClusterLock {
  release(): void
}

/**
 * flock -n on ~/.baremetal/clusters/<name>.lock on every reachable host, held on its own
 * SSH channel for the whole run: it goes with the controller or the connection. Busy on
 * any host: every lock taken is released and LockedError names the holder.
 */
export async function lockCluster(hosts: Host[], transports: Transports, ssh: SshOptions, name: string, command: string): Promise<ClusterLock> {
  const info = `command=${command} controller=${hostname().replace(/\s+/g, '_')} pid=${process.pid} started=${new Date().toISOString()}`
  const held: HeldCommand[] = []
  const busy: string[] = []
  // Inventory hosts that reach one machine (several "hosts" on one address, as local layouts
  // have) share its lock file: taken once, or the run would find itself busy.
  const machines = new Map<string, Host>()
  for (const h of hosts) {
    const c = h.connection
    const key = c.kind === 'local' ? 'local' : `${c.user}@${c.address}:${c.port}`
    if (!machines.has(key)) machines.set(key, h)
  }
  await Promise.all(
    [...machines.values()].map(async (h) => {
      const t = transportOf(transports, h, ssh)
      try {
        await t.connect()
      } catch {
        return // unreachable: the playbook reports it, and runs nothing there
      }
      if (!t.hold) return
      const r = await t.hold(`sh -c ${quote(lockScript(name, info))}`, '@@ LOCKED')
      if (r.held) held.push(r)
      else if (r.output.includes('@@ BUSY')) busy.push(describeHolder(h.name, parseHolder(r.output.split('@@ BUSY')[1] ?? '')))
      else if (r.output.includes('@@ NOFLOCK')) busy.push(`${h.name} has no flock (util-linux): cannot lock the cluster there`)
      else busy.push(`${h.name}: the lock could not be taken (exit ${r.exitCode}): ${r.output.trim().slice(-200)}`)
    }),
  )
  const release = () => held.forEach((x) => x.release())
  if (busy.length > 0) {
    release()
    throw new LockedError(`cluster ${name} is busy: ${busy.join('; ')}`, {
      hint: 'another up or down of this cluster is running: wait for it to end (its lock goes with its SSH connection: nothing to clean up if it died)',
    })
  }
  return {release}
}

export async function closeTransports(transports: Transports): Promise<void> {
  await closeAll(transports)
}
