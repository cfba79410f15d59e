import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {ClusterError} from '../errors.js'
import {instancesScript, parseInstanceReport, summarizeInstances, type InstanceState} from '../modules/redis/instances.js'
import {quote} from '../shell.js'
import type {Transport} from '../transport/types.js'
import {rdbVersionOf, type Manifest, type ManifestFile} from './backup-manifest.js'
import {connectNode} from './backup.js'
import {forEachNode} from './helpers.js'
import {parseClusterInfo, parseClusterNodes, type NodeEntry} from './nodes.js'
import type {ClusterNode} from './plan.js'

// The same-shape restore: each snapshot becomes its shard's dump.rdb before the shard's
// instances start again. Redis Cluster, started with keys in its RDB, checks them against
// the slots nodes.conf gives it (verifyClusterConfigWithData): a master that already owns
// exactly the file's slots keeps its id, its slots and the keys. So the files go onto the
// members of a running cluster whose masters own the manifest's ranges one to one, and
// nowhere else: any other shape is streamed (restore.ts).

export interface PlacedShard {
  file: ManifestFile
  master: NodeEntry
  replicas: NodeEntry[]
}

const rangesKey = (rs: ReadonlyArray<readonly [number, number]>) =>
  [...rs]
    .map(([a, b]) => `${a}-${b}`)
    .sort()
    .join(',')

/**
 * Pure: can the files be placed? Each file's ranges must be exactly one target master's
 * slots (and every master gets one file), every node of those shards must be reachable by
 * the inventory (SSH), healthy, and the target empty: placing a file replaces all a shard's
 * keys, where streaming with --force keeps keys the backup does not have.
 */
export function placePlan(manifest: Manifest, entries: readonly NodeEntry[], o: {targetKeys: number; inventory: ReadonlySet<string>}): {shards?: PlacedShard[]; reason: string} {
  if (o.targetKeys > 0) return {reason: `the target holds ${o.targetKeys} keys: placing the files would drop those the backup does not have (streaming with --force keeps them)`}
  const masters = entries.filter((e) => e.master && e.slots.length)
  if (masters.length !== manifest.files.length) return {reason: `the target has ${masters.length} masters, the backup ${manifest.files.length} files`}
  const byRanges = new Map(masters.map((m) => [rangesKey(m.slots), m]))
  const shards: PlacedShard[] = []
  for (const f of manifest.files) {
    const master = byRanges.get(rangesKey(f.ranges.map((r) => [r.from, r.to] as const)))
    if (!master) return {reason: `no target master serves exactly the slots of ${f.file} (${rangesKey(f.ranges.map((r) => [r.from, r.to] as const))})`}
    const replicas = entries.filter((e) => e.replica && e.masterId === master.id)
    const shard = [master, ...replicas]
    const bad = shard.find((e) => e.fail || e.pfail || e.handshake || e.noaddr)
    if (bad) return {reason: `${bad.addr} (shard of ${f.file}) is not healthy (${bad.flags.join(',')})`}
    const outside = shard.find((e) => !o.inventory.has(e.addr))
    if (outside) return {reason: `${outside.addr} (shard of ${f.file}) is not in the inventory: its file cannot be placed over SSH`}
    shards.push({file: f, master, replicas})
  }
  return {shards, reason: `every one of the ${shards.length} files matches one target master's slot ranges exactly and the target is empty`}
}

export interface NodeFacts {
  addr: string
  version: string
  /** The instance directory (CONFIG GET dir) and its RDB file name. */
  dir: string
  dbfilename: string
  appendonly: boolean
  /** The directory of the redis-server it runs (INFO server executable). */
  bin: string
}

export async function nodeFacts(e: NodeEntry, password?: string): Promise<NodeFacts> {
  const r = connectNode(e.ip, e.port, password)
  try {
    await r.connect()
    const get = async (k: string) => ((await r.call('CONFIG', 'GET', k)) as string[])[1] ?? ''
    const info = parseClusterInfo(await r.info('server'))
    return {
      addr: e.addr,
      version: info.redis_version ?? '',
      dir: await get('dir'),
      dbfilename: await get('dbfilename'),
      appendonly: (await get('appendonly')) === 'yes',
      bin: dirname(info.executable ?? ''),
    }
  } finally {
    r.disconnect()
  }
}

/** Live reasons against placing: AOF (Redis would load it, not the RDB), a node too old for a file, an unknown binary. Empty: none. */
export function factProblems(shards: readonly PlacedShard[], facts: ReadonlyMap<string, NodeFacts>): string[] {
  const out: string[] = []
  for (const s of shards) {
    for (const e of [s.master, ...s.replicas]) {
      const f = facts.get(e.addr)!
      if (f.appendonly) out.push(`${e.addr} runs with appendonly yes: on start Redis loads its AOF, not a placed RDB`)
      if (s.file.rdbVersion > rdbVersionOf(f.version)) out.push(`${e.addr} runs Redis ${f.version}, which cannot load RDB format ${s.file.rdbVersion} (${s.file.file})`)
      if (!f.dir.startsWith('/') || !f.bin.startsWith('/') || !f.dbfilename) out.push(`${e.addr}: its data directory or binary is unknown (dir ${f.dir || '?'}, executable ${f.bin || '?'})`)
    }
  }
  return out
}

export interface PlaceOptions {
  dir: string
  shards: readonly PlacedShard[]
  facts: ReadonlyMap<string, NodeFacts>
  nodes: readonly ClusterNode[]
  password?: string
  transportOf: (host: string) => Transport
  progress: (done: number) => void
  waitMs?: number
}

// Our own instance script (pidfile-verified SHUTDOWN NOSAVE, or its start), one port.
async function instance(o: PlaceOptions, e: NodeEntry, state: InstanceState): Promise<void> {
  const f = o.facts.get(e.addr)!
  const node = o.nodes.find((n) => n.ip === e.ip && n.port === e.port)!
  const opts = {dir: dirname(f.dir), bin: f.bin, bind: e.ip, waitSeconds: 60, password: o.password, remove: false, keepData: true, save: false}
  const r = await o.transportOf(node.host).exec('sh -s', {stdin: instancesScript(state, [e.port], opts), timeoutMs: 300_000})
  const res = summarizeInstances(state, [e.port], parseInstanceReport(r.stdout))
  const text = o.password ? (res.msg ?? '').split(o.password).join('***') : (res.msg ?? '')
  if (res.status === 'failed') throw new ClusterError(`${e.addr} (${node.host}): ${state === 'stopped' ? 'could not be stopped' : 'did not start'}: ${text}`)
}

// Temp name, sha256 on the host, then rename over the dbfilename: never a half file under it.
async function place(o: PlaceOptions, s: PlacedShard, e: NodeEntry): Promise<void> {
  const f = o.facts.get(e.addr)!
  const node = o.nodes.find((n) => n.ip === e.ip && n.port === e.port)!
  const t = o.transportOf(node.host)
  const target = join(f.dir, f.dbfilename)
  const tmp = `${target}.baremetal-restore-${process.pid}`
  await t.putFile(join(o.dir, s.file.file), tmp, 0o600)
  const r = await t.exec(`sha256sum ${quote(tmp)}`, {timeoutMs: 600_000})
  const sha = r.stdout.trim().split(/\s+/)[0]
  if (r.failed || sha !== s.file.sha256) {
    await t.exec(`rm -f ${quote(tmp)}`)
    throw new ClusterError(`${e.addr} (${node.host}): ${s.file.file} arrived with sha256 ${sha || r.stderr.trim()}, not ${s.file.sha256}: transfer damaged, nothing started from it`)
  }
  const mv = await t.exec(`mv -f ${quote(tmp)} ${quote(target)}`)
  if (mv.failed) throw new ClusterError(`${e.addr} (${node.host}): cannot move ${s.file.file} into ${target}: ${mv.stderr.trim()}`)
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms
  let last = ''
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (error) {
      last = (error as Error).message
    }
    if (Date.now() > deadline) throw new ClusterError(`${what}: not within ${Math.round(ms / 1000)} s${last ? ` (${last})` : ''}`)
    await sleep(200)
  }
}

async function info(e: NodeEntry, password: string | undefined, section: string): Promise<Record<string, string>> {
  const r = connectNode(e.ip, e.port, password)
  try {
    await r.connect()
    return parseClusterInfo(section === 'cluster' ? String(await r.call('CLUSTER', 'INFO')) : await r.info(section))
  } finally {
    r.disconnect()
  }
}

// The replicas go down first and come up last: while the master is down no replica of its
// shard is running, so none can be elected in its place.
async function placeShard(o: PlaceOptions, s: PlacedShard): Promise<void> {
  const ms = o.waitMs ?? 120_000
  for (const rep of s.replicas) await instance(o, rep, 'stopped')
  await instance(o, s.master, 'stopped')
  for (const e of [s.master, ...s.replicas]) await place(o, s, e)
  await instance(o, s.master, 'started')
  await until(`${s.master.addr} loading ${s.file.file}`, ms, async () => {
    const p = await info(s.master, o.password, 'persistence')
    return p.loading === '0' ? true : undefined
  })
  for (const rep of s.replicas) await instance(o, rep, 'started')
  for (const rep of s.replicas) {
    await until(`${rep.addr} in sync with ${s.master.addr}`, ms, async () => {
      const [r, m] = [await info(rep, o.password, 'replication'), await info(s.master, o.password, 'replication')]
      return r.master_link_status === 'up' && r.master_sync_in_progress === '0' && r.slave_repl_offset === m.master_repl_offset ? true : undefined
    })
  }
}

/** Places every file (up to 4 shards at once), then waits for cluster_state:ok everywhere and checks no shard changed master or slots. */
export async function placeFiles(o: PlaceOptions): Promise<void> {
  let done = 0
  await forEachNode(o.shards, 4, async (s) => {
    await placeShard(o, s)
    o.progress(++done)
  })
  const all = o.shards.flatMap((s) => [s.master, ...s.replicas])
  for (const e of all) await until(`cluster_state:ok on ${e.addr}`, o.waitMs ?? 120_000, async () => ((await info(e, o.password, 'cluster')).cluster_state === 'ok' ? true : undefined))
  const r = connectNode(all[0].ip, all[0].port, o.password)
  let view: NodeEntry[]
  try {
    await r.connect()
    view = parseClusterNodes(String(await r.call('CLUSTER', 'NODES')))
  } finally {
    r.disconnect()
  }
  for (const s of o.shards) {
    const m = view.find((e) => e.id === s.master.id)
    if (!m?.master || rangesKey(m.slots) !== rangesKey(s.master.slots))
      throw new ClusterError(`${s.master.addr} no longer serves the slots of ${s.file.file} after the restart (a failover?): check baremetal status`)
  }
}
