import {Flags} from '@oclif/core'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {extraVarsFlag, inventoryFlag} from '../cli/flags.js'
import {pickGroups, sentinelTarget, topologyOf} from '../cli/sentinel-target.js'
import {ClusterError, EXIT, InputError} from '../errors.js'
import {failoverGroup, failoverRefusal, type FailoverResult} from '../redis/sentinel-failover.js'
import {readSentinelView} from '../redis/sentinel-view.js'

interface FailoverJson {
  ok: boolean
  failovers: FailoverResult[]
}

export default class Failover extends BaseCommand<FailoverJson> {
  static override summary = 'Planned failover of Sentinel groups (redis_topology: sentinel): SENTINEL FAILOVER, waited on until the new master is confirmed everywhere'
  static override description = `Refused (exit 2, nothing changed) while a group has no replica in sync, or its Sentinels disagree on the master, or its master does not confirm it is one.
Groups are failed over one at a time, in port order; all of them are checked before the first starts.
Done when every Sentinel names the new master, it says master (ROLE) and the old master replicates from it.`
  static override examples = ['<%= config.bin %> failover -i hosts.yml --group redis-6379-6379', '<%= config.bin %> failover -i hosts.yml --json']
  static override flags = {
    inventory: inventoryFlag,
    group: Flags.string({description: 'the Sentinel group to fail over: its master name (<redis_cluster_name>-<port>) or its port (default: every group, one at a time)'}),
    'redis-group': Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
    'extra-vars': extraVarsFlag,
    aim: Flags.boolean({
      description: "time each SENTINEL FAILOVER to the Sentinel's INFO of the replicas (waits up to 10.5 s first; the write gap is then ~0.7 s shorter); --no-aim starts at once",
      default: true,
      allowNo: true,
    }),
    timeout: Flags.integer({description: 'seconds to wait for each group to be confirmed (default: redis_sentinel_failover_timeout)', min: 1}),
  }

  protected async work(): Promise<Outcome<FailoverJson>> {
    const {flags} = await this.parse(Failover)
    const topo = await topologyOf({inventory: flags.inventory, group: flags['redis-group'], 'extra-vars': flags['extra-vars']})
    if (topo.topology !== 'sentinel') {
      throw new InputError(`failover is for redis_topology: sentinel; the group "${flags['redis-group']}" is a Redis Cluster`, {
        where: {file: topo.inv.file},
        hint: 'for a Redis Cluster, CLUSTER FAILOVER on a replica moves a shard; baremetal up repairs a cluster',
      })
    }
    const t = await sentinelTarget(topo)
    const groups = pickGroups(t.layout, flags.group)
    const before = await readSentinelView({...t.layout, groups}, {password: t.password})
    const refused = groups.map((g) => ({g, why: failoverRefusal(before, g.name)})).filter((x) => x.why.length)
    if (refused.length) {
      throw new ClusterError(`failover refused, nothing changed: ${refused.map((x) => `${x.g.name}: ${x.why.join('; ')}`).join(' | ')}`, {
        hint: 'baremetal status shows each group; repair (baremetal up) or wait for the replica to catch up, then try again',
      })
    }
    const timeoutMs = (flags.timeout ?? 0) * 1000 || Number(topo.hosts[0]?.vars.redis_sentinel_failover_timeout ?? 60_000) || 60_000
    const done: FailoverResult[] = []
    const lines: string[] = []
    for (const g of groups) {
      if (!this.jsonEnabled()) process.stderr.write(`${g.name}: failing over…\n`)
      const r = await failoverGroup(t.layout, g, {password: t.password, timeoutMs, aim: flags.aim, downAfterMs: Number(topo.hosts[0]?.vars.redis_sentinel_down_after_ms) || undefined})
      done.push(r)
      lines.push(`${r.group}: master ${r.from} → ${r.to} in ${r.ms} ms (first Sentinel switched after ${r.switchedMs} ms; old master demoted by ${r.demotedBy})`)
    }
    return {result: {ok: true, failovers: done}, exitCode: EXIT.ok, text: lines.join('\n')}
  }
}
