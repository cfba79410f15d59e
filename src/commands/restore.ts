import {Flags} from '@oclif/core'
import {resolve} from 'node:path'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {sshOptions} from '../cli/common.js'
import {connectionFlags, extraVarsFlag, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {topologyOf} from '../cli/sentinel-target.js'
import {EXIT, InputError} from '../errors.js'
import {versionProblems} from '../redis/backup-manifest.js'
import {checkCounts, findLoader, loadBackup, readTarget, runRestore, type RestoreProgress, type RestoreResult, type TargetState} from '../redis/restore.js'
import {factProblems, nodeFacts, placeFiles, placePlan, type NodeFacts, type PlacedShard} from '../redis/restore-place.js'
import type {Manifest} from '../redis/backup-manifest.js'
import type {ClusterNode} from '../redis/plan.js'
import {selectHosts, type Inventory} from '../inventory/inventory.js'
import {withLimit} from '../inventory/pattern.js'
import {closeAll, transportFor, type ConnectOptions} from '../play/runner.js'
import type {Transport} from '../transport/types.js'
import {mb} from './backup.js'

interface RestoreJson extends RestoreResult {
  ok: boolean
  from: string
  cluster: string
  backupCluster: string
}

export default class Restore extends BaseCommand<RestoreJson> {
  static override summary = 'Restore a backup into a running cluster: onto the same shape by placing the RDB files, onto any other by streaming DUMP/RESTORE … REPLACE; TTLs kept, key counts checked'
  static override description = `Before anything changes (exit 5 otherwise): the manifest is read and checked, every file's size, sha256 and RDB header is compared with it, the target cluster must be healthy, empty (unless --force) and able to load the backup's format.
Same shape (every file's slot ranges are exactly one target master's, the target is empty, no node runs appendonly yes, every node can load the RDB format): per shard, its replicas then its master are stopped (SHUTDOWN NOSAVE of our own instances), the file is uploaded over SSH to each as its dump.rdb (temp name, sha256 checked on the host, renamed), the master started (same nodes.conf: same id, same slots), then the replicas, waited on until in sync; at the end cluster_state:ok everywhere and every shard still has its master.
Otherwise (the output says why) each snapshot is loaded into a temporary redis-server on the controller (127.0.0.1, a spare port, cluster off, never saving; stopped by SHUTDOWN NOSAVE or its pidfile) and its keys are copied into the cluster through cluster routing: SCAN, DUMP and PTTL there, RESTORE … REPLACE (remaining TTL kept; keys that expired since the backup are not restored) pipelined per node.
At the end the keys per slot range are counted in the target (CLUSTER COUNTKEYSINSLOT) and compared with what was restored and with the manifest: a difference is named, exit 2.
Interrupted: run it again with --force (REPLACE makes it idempotent).`
  static override examples = ['<%= config.bin %> restore -i hosts.yml --from /backups/2024-05-01', '<%= config.bin %> restore -i new.yml --from ./bk --force --json']
  static override flags = {
    ...connectionFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
    from: Flags.string({description: 'backup directory written by baremetal backup --to', required: true}),
    force: Flags.boolean({description: 'restore into a cluster that already holds keys (a key of the backup replaces one of the same name)', default: false}),
    'from-cluster': Flags.string({
      description: 'restore a backup of another cluster (its name, as the manifest says) into this one: the name must be given, so a backup is never poured into the wrong cluster by mistake',
    }),
    'redis-server': Flags.string({
      description:
        "redis-server on the controller that loads the snapshots (default: the inventory's redis_bin_dir if the controller has it, else PATH); of the backup's version or newer, not newer than the target",
    }),
  }

  protected async work(): Promise<Outcome<RestoreJson>> {
    const {flags} = await this.parse(Restore)
    const topo = await topologyOf(flags)
    if (topo.topology === 'sentinel') throw new InputError('restore is for a Redis Cluster; this inventory is redis_topology: sentinel', {where: {file: topo.inv.file}})
    const from = resolve(flags.from)
    const manifest = await loadBackup(from)
    const {inv, hosts, nodes, password} = await redisTarget(flags, sshOptions(flags))
    const target = await readTarget(nodes, password)
    const cluster = String(hosts[0]?.vars.redis_cluster_name ?? '')
    // Restoring into another cluster (another shape, a new name) is a deliberate act: say
    // which backup, by name. A typo'd --from must not fill the wrong cluster.
    if (manifest.cluster !== cluster && flags['from-cluster'] !== manifest.cluster) {
      throw new InputError(`${from} is a backup of cluster ${manifest.cluster}, and this inventory's cluster is ${cluster}: refused, nothing changed`, {
        hint: `to restore it into ${cluster} all the same, add --from-cluster ${manifest.cluster}`,
      })
    }
    const backupRdb = Math.max(...manifest.files.map((f) => f.rdbVersion))
    const tooNew = versionProblems(backupRdb, {version: target.version}, {version: target.version})
    if (tooNew.length) throw versionRefusal(manifest.redisVersion, tooNew)
    if (target.keys > 0 && !flags.force) {
      throw new InputError(`the target cluster ${cluster} holds ${target.keys} keys: refusing to restore over them, nothing changed`, {
        hint: 'restore into an empty cluster, or add --force (keys of the backup replace keys of the same name; others stay); a restore that was interrupted is re-run with --force',
      })
    }
    const plan = await choosePath(manifest, target, nodes, password)
    const show = progressLine(!this.jsonEnabled())
    if (!this.jsonEnabled()) process.stderr.write(`restore: path ${plan.shards ? 'rdb' : 'stream'}: ${plan.reason}\n`)
    let r: RestoreResult
    try {
      if (plan.shards) {
        r = await placeAll({
          ssh: sshOptions(flags),
          group: flags.group,
          limit: flags.limit,
          facts: plan.facts!,
          inv,
          from,
          manifest,
          target,
          nodes,
          password,
          shards: plan.shards,
          reason: plan.reason,
          progress: show,
        })
      } else {
        const loader = findLoader(flags['redis-server'], [...new Set(hosts.map((h) => String(h.vars.redis_bin_dir ?? '')))])
        const refused = versionProblems(backupRdb, loader, {version: target.version})
        if (refused.length) throw versionRefusal(manifest.redisVersion, refused)
        r = {...(await runRestore({manifest, dir: from, target, password, loaderBin: loader.bin, progress: show})), reason: plan.reason}
      }
    } finally {
      show.end()
    }
    const ok = r.mismatches.length === 0
    const s = r.ms / 1000
    const text = [
      `path ${r.path}: ${r.reason}`,
      `restored ${r.keys} keys (${mb(r.bytes)} of ${r.path === 'rdb' ? 'RDB files placed' : 'DUMP payloads'}) from ${from} (cluster ${manifest.cluster}, Redis ${manifest.redisVersion}, ${manifest.files.length} snapshots) into ${cluster} in ${s.toFixed(1)} s: ${Math.round(r.keys / Math.max(s, 0.001))} keys/s, ${mb(r.bytes / Math.max(s, 0.001))}/s`,
      ok ? `key counts match in all ${r.ranges.length} slot ranges` : `key counts differ:\n${r.mismatches.map((m) => `  ${m}`).join('\n')}`,
    ].join('\n')
    return {result: {ok, from, cluster, backupCluster: manifest.cluster, ...r}, exitCode: ok ? EXIT.ok : EXIT.failed, text}
  }
}

function progressLine(on: boolean): ((p: RestoreProgress) => void) & {end(): void} {
  const tty = Boolean(process.stderr.isTTY)
  let last = 0
  const f = (p: RestoreProgress) => {
    if (!on) return
    const now = Date.now()
    if (now - last < (tty ? 200 : 5000) && p.done !== p.files) return
    last = now
    const line = `restore: ${p.done}/${p.files} snapshots (${p.file}), ${p.keys} keys, ${mb(p.bytes)}`
    process.stderr.write(tty ? `\r${line}` : `${line}\n`)
  }
  f.end = () => {
    if (on && tty) process.stderr.write('\n')
  }
  return f
}

function versionRefusal(redisVersion: string, problems: string[]): InputError {
  return new InputError(`cannot restore a Redis ${redisVersion} backup into this cluster, nothing changed: ${problems.join('; ')}`, {
    hint: 'restore into a cluster of the backup version or newer',
  })
}

// The same-shape fast path when the live cluster allows it; otherwise streaming, and why.
async function choosePath(
  manifest: Manifest,
  target: TargetState,
  nodes: readonly ClusterNode[],
  password?: string,
): Promise<{shards?: PlacedShard[]; facts?: Map<string, NodeFacts>; reason: string}> {
  const plan = placePlan(manifest, target.entries, {targetKeys: target.keys, inventory: new Set(nodes.map((n) => `${n.ip}:${n.port}`))})
  if (!plan.shards) return {reason: `not the backup's shape: ${plan.reason}`}
  const facts = new Map<string, NodeFacts>()
  for (const e of plan.shards.flatMap((s) => [s.master, ...s.replicas])) facts.set(e.addr, await nodeFacts(e, password))
  const problems = factProblems(plan.shards, facts)
  if (problems.length) return {reason: `the files cannot be placed: ${problems.join('; ')}`}
  return {shards: plan.shards, facts, reason: plan.reason}
}

async function placeAll(o: {
  ssh: ConnectOptions
  group: string
  limit?: string
  inv: Inventory
  from: string
  manifest: Manifest
  target: TargetState
  nodes: readonly ClusterNode[]
  password?: string
  shards: PlacedShard[]
  facts: ReadonlyMap<string, NodeFacts>
  reason: string
  progress: (p: RestoreProgress) => void
}): Promise<RestoreResult> {
  const invHosts = new Map(selectHosts(o.inv, withLimit(o.group, o.limit)).map((h) => [h.name, h]))
  const transports = new Map<string, {transport: Transport}>()
  const transportOf = (name: string) => {
    let e = transports.get(name)
    if (!e) transports.set(name, (e = {transport: transportFor(invHosts.get(name)!, o.ssh)}))
    return e.transport
  }
  const started = Date.now()
  const bytes = o.manifest.files.reduce((s, f) => s + f.bytes, 0)
  const prog: RestoreProgress = {file: 'placing', files: o.shards.length, done: 0, keys: 0, bytes: 0}
  o.progress(prog)
  try {
    await placeFiles({dir: o.from, shards: o.shards, facts: o.facts, nodes: o.nodes, password: o.password, transportOf, progress: (done) => o.progress({...prog, done})})
  } finally {
    await closeAll(transports)
  }
  const ms = Date.now() - started
  const counted = await checkCounts(o.manifest, o.target, undefined, o.password)
  const keys = counted.ranges.reduce((s, r) => s + r.target, 0)
  return {path: 'rdb', reason: o.reason, keys, bytes, ms, ...counted}
}
