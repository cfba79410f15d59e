import {Flags} from '@oclif/core'
import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {clusterNameOf} from '../cli/cluster-state.js'
import {sshOptions} from '../cli/common.js'
import {connectionFlags, extraVarsFlag, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {topologyOf} from '../cli/sentinel-target.js'
import {EXIT, InputError} from '../errors.js'
import {selectHosts} from '../inventory/inventory.js'
import {withLimit} from '../inventory/pattern.js'
import {closeAll, transportFor} from '../play/runner.js'
import type {Manifest} from '../redis/backup-manifest.js'
import {runBackup, type BackupProgress} from '../redis/backup.js'
import type {Transport} from '../transport/types.js'
import type {HostFacts} from '../modules/types.js'

interface BackupJson {
  ok: boolean
  dir: string
  files: number
  bytes: number
  keys: number
  ms: number
  manifest: Manifest
}

export default class Backup extends BaseCommand<BackupJson> {
  static override summary = 'Snapshot every shard (BGSAVE), fetch the RDB files over SSH and write DIR/manifest.json'
  static override description = `One BGSAVE per shard, on its master (or, with --from-replicas, on a replica whose link to the master is up), waited on (INFO persistence, LASTSAVE), then the RDB is pinned by a hard link on its host, fetched over the SSH connection and checked against the host's sha256.
Consistency: each file is its own shard's point-in-time snapshot; the shards' snapshots are taken moments apart (up to --parallel at once), so a write acknowledged between two of them is in one shard's file and not in another's. Nothing is consistent across shards (no multi-key transaction spans shards in Redis Cluster anyway).
The manifest lists the cluster's name and shape, every node id, each file's slot ranges with key counts, Redis version and RDB format, snapshot time, size and sha256. It is written last: a directory without it is no backup.`
  static override examples = ['<%= config.bin %> backup -i hosts.yml --to /backups/2024-05-01', '<%= config.bin %> backup -i hosts.yml --to ./bk --from-replicas --json']
  static override flags = {
    ...connectionFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
    to: Flags.string({description: 'directory to write the RDB files and manifest.json into (created; must hold no manifest.json yet)', required: true}),
    'from-replicas': Flags.boolean({description: 'snapshot an in-sync replica of each shard instead of its master (spares the masters the fork)', default: false}),
    parallel: Flags.integer({description: 'shards snapshotted and fetched at once', default: 4, min: 1}),
    'save-timeout': Flags.integer({description: 'seconds one BGSAVE may take', default: 3600, min: 1}),
  }

  protected async work(): Promise<Outcome<BackupJson>> {
    const {flags} = await this.parse(Backup)
    const topo = await topologyOf(flags)
    if (topo.topology === 'sentinel')
      throw new InputError('backup is for a Redis Cluster; this inventory is redis_topology: sentinel', {
        where: {file: topo.inv.file},
        hint: 'back up each Sentinel group with BGSAVE on its master for now',
      })
    const dir = resolve(flags.to)
    if (existsSync(resolve(dir, 'manifest.json'))) throw new InputError(`${dir} already holds a backup (manifest.json)`, {hint: 'give --to a new or empty directory: a backup is never overwritten'})
    const ssh = sshOptions(flags)
    const {inv, hosts, nodes, password} = await redisTarget(flags, ssh)
    const cluster = clusterNameOf(hosts, inv.file)
    const invHosts = new Map(selectHosts(inv, withLimit(flags.group, flags.limit)).map((h) => [h.name, h]))
    const transports = new Map<string, {transport: Transport; facts?: HostFacts}>()
    const transportOf = (name: string) => {
      let e = transports.get(name)
      if (!e) transports.set(name, (e = {transport: transportFor(invHosts.get(name)!, ssh)}))
      return e.transport
    }
    const started = Date.now()
    const show = progressLine(!this.jsonEnabled())
    try {
      const manifest = await runBackup({
        nodes,
        password,
        cluster,
        dir,
        fromReplicas: flags['from-replicas'],
        parallel: flags.parallel,
        saveTimeoutS: flags['save-timeout'],
        transportOf,
        progress: show,
      })
      const ms = Date.now() - started
      const bytes = manifest.files.reduce((s, f) => s + f.bytes, 0)
      const keys = manifest.files.reduce((s, f) => s + f.keys, 0)
      const text = [
        `backup of ${cluster} in ${dir}: ${manifest.files.length} snapshot(s) (${manifest.shape.masters} masters, ${manifest.shape.replicas} replicas), ${keys} keys, ${mb(bytes)} in ${(ms / 1000).toFixed(1)} s (${mb((bytes * 1000) / Math.max(ms, 1))}/s)`,
        ...manifest.files.map((f) => `  ${f.file}: ${f.role} ${f.node}, slots ${f.ranges.map((r) => `${r.from}-${r.to}`).join(',')}, ${f.keys} keys, ${mb(f.bytes)}, at ${f.snapshotAt}`),
        'each file is its own shard at its own moment: shards were snapshotted moments apart',
      ].join('\n')
      return {result: {ok: true, dir, files: manifest.files.length, bytes, keys, ms, manifest}, exitCode: EXIT.ok, text}
    } finally {
      show.end()
      await closeAll(transports)
    }
  }
}

export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}

// One line on stderr, rewritten in place on a terminal, else printed when a file is done.
function progressLine(on: boolean): ((p: BackupProgress) => void) & {end(): void} {
  const tty = Boolean(process.stderr.isTTY)
  let last = ''
  const f = (p: BackupProgress) => {
    if (!on) return
    const line = `backup: ${p.saved}/${p.shards} snapshots saved, ${p.fetched}/${p.shards} fetched, ${mb(p.bytes)}`
    if (line === last) return
    last = line
    process.stderr.write(tty ? `\r${line}` : `${line}\n`)
  }
  f.end = () => {
    if (on && tty && last) process.stderr.write('\n')
  }
  return f
}
