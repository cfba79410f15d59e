import {Flags} from '@oclif/core'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {extraVarsFlag, inventoryFlags, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {sentinelTarget, topologyOf} from '../cli/sentinel-target.js'
import {EXIT, InputError} from '../errors.js'
import {loadRecord, saveRecord, toRecord} from '../load/keys.js'
import {loadProgressView, type LoadProgressView} from '../load/progress.js'
import {renderLoadReport, type LoadReport} from '../load/report.js'
import {DEFAULT_PIPELINE, DEFAULT_THREADS, runLoad, verifyKeys, type LoadResult} from '../load/run.js'
import {type RouteSpec, sentinelRoutes} from '../load/routes.js'
import type {ClusterNode} from '../redis/plan.js'

export default class Load extends BaseCommand<LoadReport> {
  static override summary = 'Write keys into the cluster from N cluster clients; report ops/s, latency, errors; with --verify, read every acknowledged key back'
  static override description = `Each client SETs <uuid>-<counter> to a value derived from the key (the key twice, or --data-size bytes of it), --pipeline requests in flight per client (1: one at a time), over --workers threads, until --duration or --requests.
The acknowledged keys are remembered as uuid + counter ranges (a few bytes per client), so --verify can read all of them back and report lost and wrong keys.
Ctrl-C (or SIGTERM) stops writing and still verifies and reports; a second one exits at once.`
  static override examples = [
    '<%= config.bin %> load -i hosts.yml --clients 50 --duration 30',
    '<%= config.bin %> load -i hosts.yml --requests 1000000 --data-size 100 --verify --json',
    '<%= config.bin %> load -i hosts.yml --requests 100000 --record keys.json   # later: load -i hosts.yml --verify-record keys.json',
  ]
  static override flags = {
    ...inventoryFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
    clients: Flags.integer({char: 'c', description: 'concurrent cluster clients', default: 50, min: 1}),
    connections: Flags.integer({
      description: 'sets of connections (one per master each) the clients share, round robin (default: one per worker thread; --connections equal to --clients: one set per client)',
      min: 1,
    }),
    pipeline: Flags.integer({
      char: 'P',
      description: 'requests in flight per client (as redis-benchmark -P; 1: one at a time); each acknowledgement is recorded as its own reply arrives',
      default: DEFAULT_PIPELINE,
      min: 1,
    }),
    workers: Flags.integer({description: 'worker threads the clients are split over (each its own connections)', default: DEFAULT_THREADS, min: 1}),
    duration: Flags.string({char: 'd', description: 'seconds to write for (default 10 when --requests is not given)'}),
    requests: Flags.integer({char: 'n', description: 'stop after this many SETs', min: 0}),
    'data-size': Flags.integer({description: 'value length in bytes (default: the key twice, ~80 bytes)', min: 0}),
    verify: Flags.boolean({description: 'read every acknowledged key back; exit 2 if any is lost or wrong', default: false}),
    record: Flags.string({description: 'write the acknowledged keys (uuid + counter ranges) to this file'}),
    'verify-record': Flags.string({description: 'write nothing: read back the keys of a record written by --record'}),
    via: Flags.string({
      description:
        "redis_topology: sentinel only: reach each group's master through HAProxy's write frontends or by asking the Sentinels (default: haproxy when the inventory has HAProxy hosts, else sentinel). Keys map to groups by hash slot, the slots split evenly in port order",
      options: ['haproxy', 'sentinel'],
    }),
  }

  protected async work(): Promise<Outcome<LoadReport>> {
    const {flags} = await this.parse(Load)
    const json = this.jsonEnabled()
    const view = loadProgressView({json, tty: Boolean(process.stderr.isTTY) && !json})
    const ac = new AbortController()
    let signals = 0
    const onSignal = () => {
      if (++signals > 1) process.exit(EXIT.interrupted)
      if (!json) process.stderr.write('\nstopping: in-flight requests finish, then the report (again to exit now)\n')
      ac.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      const duration = flags.duration === undefined ? undefined : Number(flags.duration)
      if (duration !== undefined && !(duration > 0)) throw new InputError(`--duration must be a positive number of seconds, got ${flags.duration}`)
      const {nodes, password, routes} = await loadTarget(flags)
      const report: LoadReport = {ok: true}
      let workers: LoadResult['workers']
      let dataSize = flags['data-size']
      if (flags['verify-record']) {
        const rec = loadRecord(flags['verify-record'])
        workers = rec.workers
        dataSize = rec.dataSize
      } else {
        const durationMs = duration !== undefined ? duration * 1000 : flags.requests === undefined ? 10_000 : undefined
        workers = await this.write(report, {nodes, password, routes, durationMs, dataSize, signal: ac.signal, view}, flags)
      }
      if (flags.verify || flags['verify-record']) {
        report.verify = await verifyKeys(nodes, workers, {password, dataSize, progress: view.verify, routes})
        view.clear()
        const v = report.verify
        if (v.lost > 0 || v.wrong > 0 || v.unreadable > 0) report.ok = false
      }
      return {result: report, exitCode: report.ok ? EXIT.ok : EXIT.failed, text: renderLoadReport(report)}
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }

  // The writing phase: its summary goes into the report, its acknowledged keys are returned (and recorded with --record).
  private async write(
    report: LoadReport,
    o: {nodes: readonly ClusterNode[]; password?: string; routes?: RouteSpec; durationMs?: number; dataSize?: number; signal: AbortSignal; view: LoadProgressView},
    flags: {clients: number; pipeline: number; workers: number; connections?: number; requests?: number; record?: string},
  ): Promise<LoadResult['workers']> {
    const load = await runLoad({
      nodes: o.nodes,
      password: o.password,
      routes: o.routes,
      clients: flags.clients,
      pipeline: flags.pipeline,
      threads: flags.workers,
      connections: flags.connections,
      durationMs: o.durationMs,
      requests: flags.requests,
      dataSize: o.dataSize,
      signal: o.signal,
      progress: o.view.load,
    })
    o.view.clear()
    const {workers, ...summary} = load
    report.load = summary
    if (load.acked === 0) report.ok = false
    if (flags.record) {
      saveRecord(flags.record, toRecord(workers, o.dataSize))
      report.record = flags.record
    }
    return workers
  }
}

// A Redis Cluster's nodes, or a Sentinel topology's routes (each group one shard: routes.ts).
async function loadTarget(flags: {inventory: string; group: string; limit?: string; 'extra-vars'?: string[]; via?: string}): Promise<{nodes: ClusterNode[]; password?: string; routes?: RouteSpec}> {
  const topo = await topologyOf(flags)
  if (topo.topology !== 'sentinel') {
    if (flags.via) throw new InputError(`--via is for redis_topology: sentinel; the group "${flags.group}" is a Redis Cluster`, {hint: 'leave --via out: a cluster client follows the slots itself'})
    const {nodes, password} = await redisTarget(flags, {})
    return {nodes, password}
  }
  const t = await sentinelTarget(topo)
  const via = (flags.via ?? (t.layout.haproxy.length ? 'haproxy' : 'sentinel')) as 'haproxy' | 'sentinel'
  if (via === 'haproxy' && t.layout.haproxy.length === 0) {
    throw new InputError('--via haproxy, but the inventory has no HAProxy hosts', {
      where: {file: t.inv.file},
      hint: 'use --via sentinel, or list the HAProxy hosts in the group redis_haproxy_hosts_group names (default "haproxy")',
    })
  }
  return {nodes: [], password: t.password, routes: sentinelRoutes(t.layout, via)}
}
