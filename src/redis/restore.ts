import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, readdir, readlink, rm, symlink, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {Cluster, type Redis} from 'ioredis'
import {ClusterError, InputError} from '../errors.js'
import {countMismatches, fileProblems, keySlot, MANIFEST_FILE, parseManifest, rdbHeaderVersion, type Manifest, type RangeCheck} from './backup-manifest.js'
import {connectNode, readClusterView, readHeader, sha256File} from './backup.js'
import {CLUSTER_SLOTS, parseClusterInfo, type NodeEntry} from './nodes.js'
import type {ClusterNode} from './plan.js'

// `baremetal restore`: every file checked against the manifest first, then each snapshot
// loaded into a temporary redis-server on the controller (loopback, cluster off, never
// saving) and its keys streamed into the live cluster with DUMP/PTTL → RESTORE … REPLACE
// through cluster routing: any target shape, and re-runnable (REPLACE) after an interrupt.

/** The backup directory, checked: the manifest's fields and every file's size, sha256 and RDB header. */
export async function loadBackup(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE)
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new InputError(`${path}: ${code === 'ENOENT' ? 'no manifest (not a backup directory, or the backup did not finish)' : `not readable JSON: ${(error as Error).message}`}`, {
      where: {file: path},
      hint: 'give --from the directory `baremetal backup --to` wrote',
    })
  }
  const {manifest, problems} = parseManifest(value)
  if (!manifest) throw new InputError(`${path}: not a usable backup manifest: ${problems.join('; ')}`, {where: {file: path}, hint: 'restore from an unchanged backup directory'})
  const bad: string[] = []
  for (const f of manifest.files) {
    const p = join(dir, f.file)
    const found = existsSync(p) ? {...(await sha256File(p)), rdbVersion: rdbHeaderVersion(await readHeader(p))} : undefined
    bad.push(...fileProblems(f, found))
  }
  if (bad.length)
    throw new InputError(`the backup in ${dir} is damaged, nothing was restored: ${bad.join('; ')}`, {
      where: {file: path},
      hint: 'restore from another copy of the backup; no file of it may be changed',
    })
  return manifest
}

/** The redis-server that loads the snapshots: --redis-server, else the inventory's redis_bin_dir when the controller has it, else PATH. */
export function findLoader(given: string | undefined, binDirs: string[]): {bin: string; version: string} {
  const candidates = given ? [given] : [...binDirs.filter((d) => d.startsWith('/')).map((d) => join(d, 'redis-server')), 'redis-server']
  for (const bin of candidates) {
    if (bin.includes('/') && !existsSync(bin)) continue
    const r = spawnSync(bin, ['--version'], {encoding: 'utf8'})
    const v = /v=(\d+\.\d+\.\d+)/.exec(r.stdout ?? '')
    if (r.status === 0 && v) return {bin: bin.includes('/') ? resolve(bin) : bin, version: v[1]}
  }
  throw new InputError(`no redis-server on the controller to load the snapshots with (tried ${candidates.join(', ')})`, {
    hint: 'give --redis-server PATH: a redis-server binary of the backup version or newer, and not newer than the target cluster',
  })
}

function sparePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port
      s.close(() => res(port))
    })
  })
}

export interface Loader {
  port: number
  pidfile: string
  client: Redis
  stop(): Promise<void>
}

// Loopback only, no password needed: nothing but this process can reach it, and it never
// writes (save "", appendonly no, SHUTDOWN NOSAVE). Stopped by its pidfile if SHUTDOWN fails.
export async function startLoader(bin: string, rdb: string): Promise<Loader> {
  await reapStaleLoaders()
  const dir = await mkdtemp(join(tmpdir(), LOADER_PREFIX))
  await writeFile(join(dir, 'owner'), String(process.pid))
  await symlink(resolve(rdb), join(dir, 'dump.rdb'))
  const port = await sparePort()
  const pidfile = join(dir, 'redis.pid')
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--dbfilename',
    'dump.rdb',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
    '--pidfile',
    pidfile,
    '--logfile',
    join(dir, 'redis.log'),
  ]
  const r = spawnSync(bin, args, {encoding: 'utf8'})
  if (r.status !== 0) throw new ClusterError(`the temporary redis-server did not start: ${(r.stderr || r.stdout).trim().slice(-300)}`)
  const stop = async () => {
    const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8')) : 0
    await client.call('SHUTDOWN', 'NOSAVE').catch(() => {})
    client.disconnect()
    for (let i = 0; pid > 0 && alive(pid) && i < 50; i++) await sleep(100)
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL')
    await rm(dir, {recursive: true, force: true})
  }
  const client = connectNode('127.0.0.1', port)
  for (let i = 0; ; i++) {
    try {
      if (client.status !== 'ready') await client.connect()
      const info = parseClusterInfo(await client.info('persistence'))
      if (info.loading === '0') return {port, pidfile, client, stop}
    } catch (error) {
      if (i > 600) {
        await stop()
        throw new ClusterError(`the temporary redis-server did not load ${rdb}: ${(error as Error).message}; see ${join(dir, 'redis.log')}`)
      }
    }
    await sleep(100)
  }
}

const LOADER_PREFIX = 'baremetal-restore-'

// A restore killed with -9 leaves its loader running: the next restore stops it, by its
// pidfile, only when the restore that started it is gone and the pid is still a process
// whose working directory is that loader's directory (Redis chdirs to --dir).
async function reapStaleLoaders(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(LOADER_PREFIX)) continue
    const dir = join(tmpdir(), name)
    const num = (f: string) => Number(readFileSync(join(dir, f), 'utf8').trim()) || 0
    let owner = 0
    let pid = 0
    try {
      owner = num('owner')
      pid = existsSync(join(dir, 'redis.pid')) ? num('redis.pid') : 0
    } catch {
      continue
    }
    if (owner && alive(owner)) continue
    if (pid && alive(pid) && (await readlink(`/proc/${pid}/cwd`).catch(() => '')) === dir) process.kill(pid, 'SIGTERM')
    for (let i = 0; pid && alive(pid) && i < 50; i++) await sleep(100)
    if (!pid || !alive(pid)) await rm(dir, {recursive: true, force: true})
  }
}

// A zombie (exited, not yet reaped by its parent: the daemon's is init) counts as gone.
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    // Gone between the two looks, or a system without /proc (kill 0 is all there is).
    return !existsSync('/proc/self')
  }
}

export interface RestoreProgress {
  file: string
  files: number
  done: number
  keys: number
  bytes: number
}

// SCAN the loader, DUMP + PTTL each key (one pipeline per batch), RESTORE … REPLACE into the
// cluster (auto-pipelined per node); up to WRITES_IN_FLIGHT batches are written while the
// next is read.
const WRITES_IN_FLIGHT = 4

async function streamKeys(loader: Loader, cluster: Cluster, counts: number[], onBatch: (keys: number, bytes: number) => void): Promise<void> {
  let cursor = '0'
  const writing: Array<Promise<unknown>> = []
  try {
    do {
      const [next, keys] = (await loader.client.scanBuffer(cursor, 'COUNT', 1000)) as [Buffer, Buffer[]]
      cursor = next.toString()
      if (!keys.length) continue
      const p = loader.client.pipeline()
      for (const k of keys) p.dumpBuffer(k).pttl(k)
      const res = (await p.exec()) ?? []
      if (writing.length >= WRITES_IN_FLIGHT) await writing.shift()
      const batch: Array<Promise<unknown>> = []
      let bytes = 0
      for (const [i, k] of keys.entries()) {
        const payload = res[2 * i]?.[1] as Buffer | null
        const ttl = Number(res[2 * i + 1]?.[1])
        if (!payload || ttl === -2) continue // expired between SCAN and DUMP
        counts[keySlot(k)]++
        bytes += payload.length
        batch.push(cluster.restore(k, ttl > 0 ? ttl : 0, payload, 'REPLACE'))
      }
      const w = Promise.all(batch).then(() => onBatch(batch.length, bytes))
      w.catch(() => {}) // settled below: not an unhandled rejection meanwhile
      writing.push(w)
    } while (cursor !== '0')
  } finally {
    // Every write settles before the loader stops or an error propagates.
    const settled = await Promise.allSettled(writing)
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected')
    if (failed) throw failed.reason
  }
}

/** Keys per slot in the target, from each master for the slots it serves. */
async function targetCounts(entries: NodeEntry[], password?: string): Promise<number[]> {
  const per = new Array<number>(CLUSTER_SLOTS).fill(0)
  for (const m of entries.filter((e) => e.master && e.slots.length)) {
    const r = connectNode(m.ip, m.port, password)
    try {
      await r.connect()
      const p = r.pipeline()
      for (const [a, b] of m.slots) for (let s = a; s <= b; s++) p.call('CLUSTER', 'COUNTKEYSINSLOT', String(s))
      const res = (await p.exec()) ?? []
      let i = 0
      for (const [a, b] of m.slots) for (let s = a; s <= b; s++) per[s] = Number(res[i++]?.[1] ?? 0)
    } finally {
      r.disconnect()
    }
  }
  return per
}

export interface TargetState {
  entries: NodeEntry[]
  version: string
  keys: number
}

/** The target cluster as restore needs it: healthy, its oldest Redis version, and how many keys it holds. */
export async function readTarget(nodes: readonly ClusterNode[], password?: string): Promise<TargetState> {
  const entries = await readClusterView(nodes, password)
  let version = ''
  let keys = 0
  for (const m of entries.filter((e) => e.master && e.slots.length)) {
    const r = connectNode(m.ip, m.port, password)
    try {
      await r.connect()
      const v = parseClusterInfo(await r.info('server')).redis_version ?? ''
      if (!version || v.localeCompare(version, undefined, {numeric: true}) < 0) version = v
      keys += await r.dbsize()
    } finally {
      r.disconnect()
    }
  }
  return {entries, version, keys}
}

export interface RestoreResult {
  /** rdb: the files placed as each shard's dump.rdb (same shape); stream: DUMP/RESTORE through a loader. */
  path: 'rdb' | 'stream'
  /** Why that path. */
  reason: string
  keys: number
  bytes: number
  ms: number
  ranges: Array<RangeCheck & {file: string}>
  mismatches: string[]
}

export async function runRestore(o: {manifest: Manifest; dir: string; target: TargetState; password?: string; loaderBin: string; progress: (p: RestoreProgress) => void}): Promise<RestoreResult> {
  const started = Date.now()
  const masters = o.target.entries.filter((e) => e.master && e.slots.length)
  const cluster = new Cluster(
    masters.map((m) => ({host: m.ip, port: m.port})),
    {redisOptions: {password: o.password || undefined, disableClientInfo: true}, enableAutoPipelining: true, enableReadyCheck: true, maxRedirections: 32},
  )
  cluster.on('error', () => {})
  const counts = new Array<number>(CLUSTER_SLOTS).fill(0)
  const prog: RestoreProgress = {file: '', files: o.manifest.files.length, done: 0, keys: 0, bytes: 0}
  try {
    for (const f of o.manifest.files) {
      prog.file = f.file
      o.progress(prog)
      const loader = await startLoader(o.loaderBin, join(o.dir, f.file))
      try {
        await streamKeys(loader, cluster, counts, (k, b) => {
          prog.keys += k
          prog.bytes += b
          o.progress(prog)
        })
      } finally {
        await loader.stop()
      }
      prog.done++
      o.progress(prog)
    }
  } finally {
    cluster.disconnect()
  }
  const ms = Date.now() - started
  return {path: 'stream', reason: '', keys: prog.keys, bytes: prog.bytes, ms, ...(await checkCounts(o.manifest, o.target, counts, o.password))}
}

/**
 * The end of both paths: each target master's COUNTKEYSINSLOT against what was restored
 * (restored undefined: the placed files, so what the target holds is what was loaded) and
 * against the manifest, range by range.
 */
export async function checkCounts(manifest: Manifest, t: TargetState, counts: number[] | undefined, password?: string): Promise<Pick<RestoreResult, 'ranges' | 'mismatches'>> {
  const target = await targetCounts(t.entries, password)
  const restored = counts ?? target
  const sum = (a: number[], from: number, to: number) => a.slice(from, to + 1).reduce((x, y) => x + y, 0)
  const files = manifest.files.map((f) => ({
    file: f.file,
    expires: f.expires,
    ranges: f.ranges.map((r) => ({from: r.from, to: r.to, manifest: r.keys, restored: sum(restored, r.from, r.to), target: sum(target, r.from, r.to)})),
  }))
  return {
    ranges: files.flatMap((f) => f.ranges.map((r) => ({...r, file: f.file}))),
    mismatches: countMismatches(files, {targetWasEmpty: t.keys === 0}),
  }
}
