import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, open, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {Redis} from 'ioredis'
import {ClusterError} from '../errors.js'
import {quote} from '../shell.js'
import type {Transport} from '../transport/types.js'
import {MANIFEST_FILE, MANIFEST_FORMAT, rangeCounts, rdbHeaderVersion, type Manifest, type ManifestFile} from './backup-manifest.js'
import {forEachNode, nodeError} from './helpers.js'
import {CLUSTER_SLOTS, parseClusterInfo, parseClusterNodes, type NodeEntry, type SlotRange} from './nodes.js'
import {DIRECT} from './pool.js'
import type {ClusterNode} from './plan.js'

// `baremetal backup`: one BGSAVE per shard (its master, or an in-sync replica), the RDB
// fetched over the SSH connection to the node's host, and a manifest that lets `restore`
// check every file and every key count. Each shard's snapshot is its own moment: the
// backup is consistent per shard, not across shards (writes in between land in some
// shards' files and not in others').

export interface BackupOptions {
  nodes: readonly ClusterNode[]
  password?: string
  cluster: string
  dir: string
  fromReplicas: boolean
  parallel: number
  transportOf: (host: string) => Transport
  progress: (p: BackupProgress) => void
  /** Seconds one BGSAVE may take. */
  saveTimeoutS?: number
}

export interface BackupProgress {
  shards: number
  saved: number
  fetched: number
  bytes: number
}

interface Shard {
  master: NodeEntry
  source: NodeEntry
  node: ClusterNode
  ranges: SlotRange[]
  file: string
}

export function connectNode(ip: string, port: number, password?: string): Redis {
  const r = new Redis({host: ip, port, password: password || undefined, ...DIRECT, connectTimeout: 5000, commandTimeout: 60_000})
  r.on('error', () => {})
  return r
}

async function withNode<T>(n: {ip: string; port: number}, password: string | undefined, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = connectNode(n.ip, n.port, password)
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

/** CLUSTER NODES from the first inventory node that answers, checked: every slot served by a master that is not failing. */
export async function readClusterView(nodes: readonly ClusterNode[], password?: string): Promise<NodeEntry[]> {
  let lastError = ''
  for (const n of nodes) {
    try {
      const entries = parseClusterNodes(String(await withNode(n, password, (r) => r.call('CLUSTER', 'NODES'))))
      const masters = entries.filter((e) => e.master && e.slots.length)
      const covered = masters.reduce((s, m) => s + m.slots.reduce((a, [x, y]) => a + y - x + 1, 0), 0)
      const failing = masters.filter((m) => m.fail || m.pfail)
      if (covered !== CLUSTER_SLOTS || failing.length) {
        throw new ClusterError(`the cluster is not healthy: ${covered}/${CLUSTER_SLOTS} slots served${failing.length ? `, failing masters ${failing.map((m) => m.addr).join(', ')}` : ''}`, {
          hint: 'baremetal status shows what is wrong; baremetal up repairs it',
        })
      }
      return entries
    } catch (error) {
      if (error instanceof ClusterError) throw error
      lastError = (error as Error).message
    }
  }
  throw new ClusterError(`no node of the inventory answered CLUSTER NODES (${lastError})`, {hint: 'baremetal status shows which nodes are reachable'})
}

// Per shard: its master, or with fromReplicas a replica whose link to the master is up.
async function planShards(entries: NodeEntry[], o: BackupOptions): Promise<Shard[]> {
  const byAddr = new Map(o.nodes.map((n) => [`${n.ip}:${n.port}`, n]))
  const masters = entries.filter((e) => e.master && e.slots.length).sort((a, b) => a.slots[0][0] - b.slots[0][0])
  const shards: Shard[] = []
  for (const [i, m] of masters.entries()) {
    let source = m
    if (o.fromReplicas) {
      const replicas = entries.filter((e) => e.replica && e.masterId === m.id && !e.fail && !e.pfail && byAddr.has(e.addr))
      const inSync: NodeEntry[] = []
      for (const rep of replicas) {
        const info = parseClusterInfo(String(await withNode(rep, o.password, (r) => r.info('replication')).catch(() => '')))
        if (info.master_link_status === 'up' && info.master_sync_in_progress === '0') inSync.push(rep)
      }
      if (!inSync.length)
        throw new ClusterError(`--from-replicas: the shard of master ${m.addr} (slots ${m.slots.map(([a, b]) => `${a}-${b}`).join(',')}) has no replica in sync`, {
          hint: 'leave out --from-replicas to snapshot that master, or repair the replica (baremetal up)',
        })
      source = inSync[0]
    }
    const node = byAddr.get(source.addr)
    if (!node)
      throw new ClusterError(`${source.addr} serves slots but is not in the inventory: its RDB file cannot be fetched`, {hint: 'list every host of the cluster in the inventory (or drop --limit)'})
    shards.push({master: m, source, node, ranges: m.slots, file: `shard-${String(i).padStart(3, '0')}-${m.id.slice(0, 8)}.rdb`})
  }
  return shards
}

interface Snapshot {
  redisVersion: string
  rdbPath: string
  snapshotAt: string
  keys: number
  expires: number
  perSlot: number[]
}

// Counts, then TIME, DBSIZE, INFO keyspace and BGSAVE in one pipeline (one read on the node:
// nothing of another client runs between them), then waits for that child to finish.
async function bgsave(r: Redis, s: Shard, timeoutS: number): Promise<Snapshot> {
  const redisVersion = parseClusterInfo(await r.info('server')).redis_version ?? 'unknown'
  const dir = ((await r.call('CONFIG', 'GET', 'dir')) as string[])[1]
  const dbfilename = ((await r.call('CONFIG', 'GET', 'dbfilename')) as string[])[1]
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const perSlot = new Array<number>(CLUSTER_SLOTS).fill(0)
    const counting = r.pipeline()
    for (const [a, b] of s.ranges) for (let slot = a; slot <= b; slot++) counting.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))
    const counted = (await counting.exec()) ?? []
    let k = 0
    for (const [a, b] of s.ranges) for (let slot = a; slot <= b; slot++) perSlot[slot] = Number(counted[k++]?.[1] ?? 0)
    const res = (await r.pipeline().time().dbsize().info('keyspace').bgsave().exec()) ?? []
    const [time, dbsize, keyspace, saved] = res
    if (!saved?.[0]) {
      const [sec, usec] = (time[1] as string[]).map(Number)
      await waitSaved(r, s, sec, deadline)
      const ks = /expires=(\d+)/.exec(String(keyspace[1]))
      return {redisVersion, rdbPath: join(dir, dbfilename), snapshotAt: new Date(sec * 1000 + Math.floor(usec / 1000)).toISOString(), keys: Number(dbsize[1]), expires: Number(ks?.[1] ?? 0), perSlot}
    }
    // Another child (a replica's sync, an AOF rewrite) is running: ours starts after it.
    if (Date.now() > deadline) throw nodeError(s.node, `BGSAVE refused for ${timeoutS} s: ${saved[0].message}`)
    await sleep(200)
  }
}

async function waitSaved(r: Redis, s: Shard, startedSec: number, deadline: number): Promise<void> {
  for (;;) {
    const p = parseClusterInfo(await r.info('persistence'))
    const last = Number(await r.lastsave())
    if (p.rdb_bgsave_in_progress === '0') {
      if (p.rdb_last_bgsave_status !== 'ok')
        throw nodeError(
          s.node,
          `BGSAVE failed (rdb_last_bgsave_status:${p.rdb_last_bgsave_status}): see the node's redis.log`,
          'a full disk or a fork refused (vm.overcommit_memory) are the usual causes',
        )
      if (last >= startedSec) return
    }
    if (Date.now() > deadline) throw nodeError(s.node, 'BGSAVE did not finish in time', 'raise --save-timeout for large datasets')
    await sleep(200)
  }
}

export async function sha256File(path: string): Promise<{sha256: string; bytes: number}> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  return {sha256: h.digest('hex'), bytes}
}

export async function readHeader(path: string): Promise<Buffer> {
  const f = await open(path, 'r')
  try {
    const b = Buffer.alloc(9)
    await f.read(b, 0, 9, 0)
    return b
  } finally {
    await f.close()
  }
}

// A hard link pins this snapshot on the host (a later BGSAVE renames a new file over the
// name, never into the link); the host's sha256 proves the transfer.
async function fetch(s: Shard, snap: Snapshot, o: BackupOptions): Promise<{sha256: string; bytes: number; rdbVersion: number}> {
  const t = o.transportOf(s.node.host)
  if (!t.getFile) throw nodeError(s.node, 'this connection cannot download files')
  const pinned = `${snap.rdbPath}.baremetal-backup-${process.pid}`
  const r = await t.exec(`ln -f ${quote(snap.rdbPath)} ${quote(pinned)} && sha256sum ${quote(pinned)}`, {timeoutMs: 600_000})
  try {
    if (r.failed) throw nodeError(s.node, `cannot pin ${snap.rdbPath}: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
    const hostSha = r.stdout.trim().split(/\s+/)[0]
    const local = join(o.dir, s.file)
    await t.getFile(pinned, local)
    const got = await sha256File(local)
    if (got.sha256 !== hostSha) throw nodeError(s.node, `${s.file}: the copy's sha256 differs from the host's: transfer damaged`, 'run the backup again')
    const rdbVersion = rdbHeaderVersion(await readHeader(local))
    if (rdbVersion === undefined) throw nodeError(s.node, `${snap.rdbPath} is not an RDB file`)
    return {...got, rdbVersion}
  } finally {
    await t.exec(`rm -f ${quote(pinned)}`).catch(() => {})
  }
}

export async function runBackup(o: BackupOptions): Promise<Manifest> {
  const entries = await readClusterView(o.nodes, o.password)
  const shards = await planShards(entries, o)
  await mkdir(o.dir, {recursive: true})
  const prog: BackupProgress = {shards: shards.length, saved: 0, fetched: 0, bytes: 0}
  o.progress(prog)
  const files = await forEachNode(shards, o.parallel, async (s): Promise<ManifestFile> => {
    const snap = await withNode(s.node, o.password, (r) => bgsave(r, s, o.saveTimeoutS ?? 3600))
    prog.saved++
    o.progress(prog)
    const got = await fetch(s, snap, o).catch(async (error) => {
      await rm(join(o.dir, `${s.file}.part`), {force: true})
      throw error
    })
    prog.fetched++
    prog.bytes += got.bytes
    o.progress(prog)
    return {
      file: s.file,
      ...got,
      masterId: s.master.id,
      nodeId: s.source.id,
      node: s.source.addr,
      role: s.source === s.master ? 'master' : 'replica',
      redisVersion: snap.redisVersion,
      snapshotAt: snap.snapshotAt,
      keys: snap.keys,
      expires: snap.expires,
      ranges: rangeCounts(s.ranges, snap.perSlot),
    }
  })
  const masters = entries.filter((e) => e.master && e.slots.length)
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    cluster: o.cluster,
    createdAt: new Date().toISOString(),
    redisVersion: files[0]?.redisVersion ?? 'unknown',
    shape: {masters: masters.length, replicas: entries.filter((e) => e.replica && masters.some((m) => m.id === e.masterId)).length},
    nodes: entries.filter((e) => !e.handshake && !e.noaddr).map((e) => ({id: e.id, addr: e.addr, role: e.master ? 'master' : 'replica', masterId: e.masterId})),
    files,
  }
  // Written last, via a temp name: a directory without manifest.json is no backup.
  const tmp = join(o.dir, `${MANIFEST_FILE}.part`)
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n')
  await rename(tmp, join(o.dir, MANIFEST_FILE))
  return manifest
}
