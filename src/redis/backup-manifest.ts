import {CLUSTER_SLOTS, type SlotRange} from './nodes.js'

// The backup manifest as data: what `backup` writes and what `restore` checks before it
// changes anything. Pure: no file or network access here, so the refusals are unit-tested.

export const MANIFEST_FORMAT = 'baremetal-backup/1'
export const MANIFEST_FILE = 'manifest.json'

export interface ManifestRange {
  from: number
  to: number
  /** CLUSTER COUNTKEYSINSLOT summed over the range, read just before the BGSAVE. */
  keys: number
}

export interface ManifestFile {
  /** File name inside the backup directory. */
  file: string
  sha256: string
  bytes: number
  /** The RDB format version from the file's header (REDIS0010 → 10). */
  rdbVersion: number
  /** The shard's master id; the snapshot's node (a replica with --from-replicas) below. */
  masterId: string
  nodeId: string
  node: string
  role: 'master' | 'replica'
  redisVersion: string
  /** When the node started this snapshot (its own clock, TIME), ISO 8601. */
  snapshotAt: string
  /** DBSIZE and keys with a TTL, read in the same pipeline as the BGSAVE. */
  keys: number
  expires: number
  ranges: ManifestRange[]
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT
  cluster: string
  createdAt: string
  redisVersion: string
  shape: {masters: number; replicas: number}
  nodes: Array<{id: string; addr: string; role: 'master' | 'replica'; masterId: string | null}>
  files: ManifestFile[]
}

/** Which RDB format a Redis version writes: a server loads its own format and older ones only. */
export function rdbVersionOf(redisVersion: string): number {
  const m = /^(\d+)\.(\d+)/.exec(redisVersion)
  if (!m) return Number.NaN
  const v = Number(m[1]) * 100 + Number(m[2])
  if (v >= 704) return 12
  if (v >= 702) return 11
  if (v >= 700) return 10
  if (v >= 400) return 9
  if (v >= 302) return 8
  if (v >= 206) return 7
  return 6
}

/** The format version in an RDB file's first 9 bytes ("REDIS" and 4 digits), undefined when it is not an RDB. */
export function rdbHeaderVersion(head: Buffer): number | undefined {
  const s = head.subarray(0, 9).toString('latin1')
  const m = /^REDIS(\d{4})$/.exec(s)
  return m ? Number(m[1]) : undefined
}

/** Sum per-slot counts (index = slot) into the ranges of a shard. */
export function rangeCounts(ranges: readonly SlotRange[], perSlot: ReadonlyArray<number>): ManifestRange[] {
  return ranges.map(([from, to]) => {
    let keys = 0
    for (let s = from; s <= to; s++) keys += perSlot[s] ?? 0
    return {from, to, keys}
  })
}

/** The slots every file's ranges cover, checked: each slot once, all 16384 (a backup of a whole cluster). */
export function coverageProblems(files: ReadonlyArray<{file: string; ranges: ReadonlyArray<{from: number; to: number}>}>): string[] {
  const owner = new Array<string | undefined>(CLUSTER_SLOTS)
  const problems: string[] = []
  for (const f of files) {
    for (const r of f.ranges) {
      if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || r.from < 0 || r.to >= CLUSTER_SLOTS || r.from > r.to) {
        problems.push(`${f.file}: slot range ${r.from}-${r.to} is not within 0-${CLUSTER_SLOTS - 1}`)
        continue
      }
      for (let s = r.from; s <= r.to; s++) {
        if (owner[s] !== undefined) {
          problems.push(`slot ${s} is in both ${owner[s]} and ${f.file}`)
          break
        }
        owner[s] = f.file
      }
    }
  }
  let missing = 0
  for (let s = 0; s < CLUSTER_SLOTS; s++) if (owner[s] === undefined) missing++
  if (missing) problems.push(`${missing} slot(s) are in no file: the manifest is not of a whole cluster`)
  return problems
}

const HEX64 = /^[0-9a-f]{64}$/
const SAFE_NAME = /^[A-Za-z0-9._-]+\.rdb$/

/**
 * A parsed manifest.json, checked field by field; throws a list of what is wrong (the
 * restore refuses before connecting anywhere). File names are plain names: a manifest
 * never makes restore read outside its directory.
 */
export function parseManifest(value: unknown): {manifest?: Manifest; problems: string[]} {
  const problems: string[] = []
  const m = value as Partial<Manifest> | null
  if (!m || typeof m !== 'object') return {problems: ['not a JSON object']}
  if (m.format !== MANIFEST_FORMAT) problems.push(`format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`)
  if (typeof m.cluster !== 'string' || !m.cluster) problems.push('cluster (name) is missing')
  if (typeof m.redisVersion !== 'string') problems.push('redisVersion is missing')
  if (!m.shape || !Number.isInteger(m.shape.masters) || !Number.isInteger(m.shape.replicas)) problems.push('shape {masters, replicas} is missing')
  if (!Array.isArray(m.files) || m.files.length === 0) return {problems: [...problems, 'files: no snapshot listed']}
  const names = new Set<string>()
  for (const [i, f] of m.files.entries()) {
    const at = `files[${i}]`
    if (!f || typeof f !== 'object') {
      problems.push(`${at} is not an object`)
      continue
    }
    if (typeof f.file !== 'string' || !SAFE_NAME.test(f.file)) problems.push(`${at}.file ${JSON.stringify(f.file)} is not a plain *.rdb file name`)
    else if (names.has(f.file)) problems.push(`${at}.file ${f.file} is listed twice`)
    else names.add(f.file)
    if (typeof f.sha256 !== 'string' || !HEX64.test(f.sha256)) problems.push(`${at}.sha256 is not 64 hex digits`)
    if (!Number.isInteger(f.bytes) || f.bytes < 0) problems.push(`${at}.bytes is not a size`)
    if (!Number.isInteger(f.keys) || f.keys < 0 || !Number.isInteger(f.expires) || f.expires < 0) problems.push(`${at}.keys/expires are not counts`)
    if (!Array.isArray(f.ranges) || f.ranges.length === 0) problems.push(`${at}.ranges: no slot range`)
    else if (f.ranges.some((r) => !r || !Number.isInteger(r.keys) || r.keys < 0)) problems.push(`${at}.ranges: a range without a key count`)
  }
  if (problems.length) return {problems}
  problems.push(...coverageProblems(m.files))
  if (m.shape!.masters !== m.files.length) problems.push(`shape says ${m.shape!.masters} masters but ${m.files.length} files are listed`)
  return problems.length ? {problems} : {manifest: m as Manifest, problems}
}

/** What the file on disk is, against what the manifest says it is. */
export function fileProblems(f: ManifestFile, found: {bytes: number; sha256: string; rdbVersion?: number} | undefined): string[] {
  if (!found) return [`${f.file}: missing from the backup directory`]
  const out: string[] = []
  if (found.bytes !== f.bytes) out.push(`${f.file}: ${found.bytes} bytes, the manifest says ${f.bytes}`)
  if (found.sha256 !== f.sha256) out.push(`${f.file}: sha256 ${found.sha256.slice(0, 12)}…, the manifest says ${f.sha256.slice(0, 12)}… (changed or damaged)`)
  else if (found.rdbVersion !== f.rdbVersion) out.push(`${f.file}: RDB format ${found.rdbVersion ?? 'unknown'}, the manifest says ${f.rdbVersion}`)
  return out
}

/**
 * Can keys of this backup reach the target? The loader (a temporary redis-server) must read
 * the backup's RDB format, and the target must RESTORE the loader's DUMP payloads (which
 * carry the loader's format): backup ≤ loader ≤ target. An empty list: yes.
 */
export function versionProblems(backupRdb: number, loader: {version: string}, target: {version: string}): string[] {
  const l = rdbVersionOf(loader.version)
  const t = rdbVersionOf(target.version)
  if (backupRdb > t) {
    return [
      `the snapshots are RDB format ${backupRdb}, the target runs Redis ${target.version} (format ${t}): a backup of a newer Redis cannot be restored into an older one (neither RDB nor DUMP formats load backwards)`,
    ]
  }
  const out: string[] = []
  if (backupRdb > l) out.push(`the snapshots are RDB format ${backupRdb}, which redis-server ${loader.version} (the loader) cannot read: give --redis-server of the backup's version or newer`)
  if (l > t)
    out.push(`DUMP payloads of redis-server ${loader.version} (the loader, RDB format ${l}) cannot be RESTOREd into Redis ${target.version} (format ${t}): give --redis-server of the target's version`)
  return out
}

export interface RangeCheck {
  from: number
  to: number
  /** What the manifest recorded at backup time. */
  manifest: number
  /** Keys found in the snapshot and restored. */
  restored: number
  /** Keys the target holds in the range at the end. */
  target: number
}

/**
 * The end-of-restore judgement, per manifest range: the target must hold every key that was
 * restored (exactly, onto an empty target; at least, with --force onto a non-empty one),
 * and a snapshot may hold fewer keys than the manifest only by keys with a TTL (expired
 * since the backup), file by file. More keys than the manifest is no loss: the counts are
 * read just before the fork, so writes in that moment land in the snapshot only.
 */
export function countMismatches(files: ReadonlyArray<{file: string; expires: number; ranges: readonly RangeCheck[]}>, o: {targetWasEmpty: boolean}): string[] {
  const out: string[] = []
  for (const f of files) {
    let shortfall = 0
    for (const r of f.ranges) {
      const bad = o.targetWasEmpty ? r.target !== r.restored : r.target < r.restored
      if (bad) out.push(`slots ${r.from}-${r.to} (${f.file}): the target holds ${r.target} keys, ${r.restored} were restored`)
      shortfall += Math.max(0, r.manifest - r.restored)
    }
    if (shortfall > f.expires) out.push(`${f.file}: ${shortfall} keys of the manifest are not in the snapshot, more than the ${f.expires} keys with a TTL at backup time`)
  }
  return out
}

// CRC16-CCITT (XMODEM), the hash Redis Cluster maps keys with (cluster.c keyHashSlot).
const CRC16 = (() => {
  const t = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff
    t[i] = c
  }
  return t
})()

function crc16(b: Uint8Array, from: number, to: number): number {
  let crc = 0
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ b[i]) & 0xff]
  return crc
}

/** The hash slot of a key, hash tags included: the part between the first { and the next }, when not empty. */
export function keySlot(key: Buffer | string): number {
  const b = typeof key === 'string' ? Buffer.from(key) : key
  const open = b.indexOf(0x7b)
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(b, open + 1, close) % CLUSTER_SLOTS
  }
  return crc16(b, 0, b.length) % CLUSTER_SLOTS
}
