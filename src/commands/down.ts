import {Flags} from '@oclif/core'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {clusterNameOf, type ClusterLock, lockCluster, targetCluster, type Transports} from '../cli/cluster-state.js'
import {bundled, executePlaybooks, loadInv, readExtraVars, recapText, redisPasswordVars, sshOptions} from '../cli/common.js'
import {playFlags, redisFlags} from '../cli/flags.js'
import {redisHostVars} from '../cli/redis.js'
import {selectHosts} from '../inventory/inventory.js'
import {closeAll, type RunResult} from '../play/runner.js'
import {refuseLeavingMembers} from '../redis/leave.js'
import {groupSlug} from '../redis/cluster-record.js'
import {loadYaml} from '../yamlfile.js'
import {sentinelTopology} from './up.js'

export default class Down extends BaseCommand<RunResult> {
  static override summary = 'Stop every instance baremetal started, remove their directories and firewall rules'
  static override description = `Stops instances by SHUTDOWN NOSAVE on their port, or by SIGTERM to a PID checked to be that instance (its own pidfile, or the port's listener whose cwd or config is the instance's directory); a redis-server baremetal did not start is never touched, and a host keeps its firewall rules while any port they guard still listens. With --keep-data each instance saves its data first (SHUTDOWN SAVE): an instance whose save fails is left running and the run fails (exit 2) with Redis' reply. Keeps the Redis build unless --purge. Safe to run twice.
Which cluster: redis_cluster_name or redis_port_start when the inventory or -e sets them; otherwise the record up wrote on the hosts (~/.baremetal/clusters/<name>.json) when there is exactly one (several: refused, exit 5, naming them).`
  static override examples = [
    '<%= config.bin %> down',
    '<%= config.bin %> down -i hosts.yml --keep-data',
    '<%= config.bin %> down -i hosts.yml --check',
    '<%= config.bin %> down -i hosts.yml -e redis_cluster_name=redis-7100',
  ]
  static override flags = {
    ...playFlags,
    ...redisFlags,
    'keep-data': Flags.boolean({description: "save each instance's data (SHUTDOWN SAVE) and keep its directory (config, nodes.conf, data, logs)", default: false}),
    purge: Flags.boolean({description: 'also remove the Redis source and build', default: false}),
  }

  protected async work(): Promise<Outcome<RunResult>> {
    const {flags} = await this.parse(Down)
    const transports: Transports = new Map()
    const warnings: string[] = []
    let lock: ClusterLock | undefined
    try {
      const inv = loadInv(flags.inventory)
      const extra = readExtraVars(flags['extra-vars'])
      // The instances are stopped with SHUTDOWN (SAVE with --keep-data): they need the password up used.
      const password = redisPasswordVars(extra, inv, flags.group)
      const ssh = sshOptions(flags)
      // redis_topology: sentinel is read from the inventory (no cluster record): its own teardown.
      const defaults = loadYaml(bundled('playbooks/defaults.yml')).value as Record<string, unknown>
      const topo = sentinelTopology(inv, selectHosts(inv, flags.group), defaults, extra, {whereOf: () => undefined}, flags.group)
      if (topo) return await this.sentinelDown(flags, inv, extra, password, transports, warnings, topo.hosts)
      // What up deployed (its ports, dirs, name) unless the inventory or -e says.
      const recorded = (await targetCluster({inv, group: flags.group, extra, transports, ssh, warnings})).vars
      // A --limit never takes slot holders out of a cluster that keeps running elsewhere.
      await refuseLeavingMembers(inv, flags.group, flags.limit, {...password, ...recorded, ...extra})
      const name = clusterNameOf(await redisHostVars(inv, flags.group, {...password, ...recorded, ...extra}), inv.file)
      if (!flags.check) lock = await lockCluster(selectHosts(inv, flags.group), transports, ssh, name, 'down')
      const result = await executePlaybooks({
        playbooks: [bundled('playbooks/redis-down.yml')],
        flags: {...flags, json: this.jsonEnabled()},
        hosts: flags.group,
        transports,
        warnings,
        vars: {...password, ...recorded, redis_keep_data: flags['keep-data'], redis_purge: flags.purge},
      }).finally(() => lock?.release())
      return {result, exitCode: result.exitCode, text: recapText(result)}
    } finally {
      await closeAll(transports)
    }
  }

  private async sentinelDown(
    flags: Parameters<typeof sshOptions>[0] & Omit<Parameters<typeof executePlaybooks>[0]['flags'], 'json'> & {group: string; 'keep-data': boolean; purge: boolean},
    inv: ReturnType<typeof loadInv>,
    extra: Record<string, unknown>,
    password: Record<string, unknown>,
    transports: Transports,
    warnings: string[],
    hosts: string,
  ): Promise<Outcome<RunResult>> {
    const name = clusterNameOf(await redisHostVars(inv, flags.group, {...password, baremetal_group: groupSlug(flags.group), ...extra}), inv.file)
    const lock = flags.check ? undefined : await lockCluster(selectHosts(inv, hosts), transports, sshOptions(flags), name, 'down')
    const result = await executePlaybooks({
      playbooks: [bundled('playbooks/redis-sentinel-down.yml')],
      flags: {...flags, json: this.jsonEnabled()},
      hosts,
      transports,
      warnings,
      vars: {...password, baremetal_group: groupSlug(flags.group), redis_keep_data: flags['keep-data'], redis_purge: flags.purge},
    }).finally(() => lock?.release())
    return {result, exitCode: result.exitCode, text: recapText(result)}
  }
}
