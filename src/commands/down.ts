import {Command, Flags} from '@oclif/core'
import {clusterNameOf, type ClusterLock, lockCluster, targetCluster, type Transports} from '../cli/cluster-state.js'
import {bundled, executePlaybooks, loadInv, playFlags, readExtraVars, redisPasswordVars, reportError} from '../cli/common.js'
import {redisHostVars} from '../cli/redis.js'
import {selectHosts} from '../inventory/inventory.js'
import {closeAll} from '../play/runner.js'
import {refuseLeavingMembers} from '../redis/leave.js'

export default class Down extends Command {
  static override summary = 'Stop every instance baremetal started, remove their directories and firewall rules'
  static override description = `Stops instances by SHUTDOWN NOSAVE on their port, or by SIGTERM to a PID checked to be that instance (its own pidfile, or the port's listener whose cwd or config is the instance's directory); a redis-server baremetal did not start is never touched, and a host keeps its firewall rules while any port they guard still listens. With --keep-data each instance saves its data first (SHUTDOWN SAVE): an instance whose save fails is left running and the run fails (exit 2) with Redis' reply. Keeps the Redis build unless --purge. Safe to run twice.
Which cluster: redis_cluster_name or redis_port_start when the inventory or -e sets them; otherwise the record up wrote on the hosts (~/.baremetal/clusters/<name>.json) when there is exactly one (several: refused, exit 5, naming them).`
  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down -i hosts.yml --keep-data', '<%= config.bin %> down -i hosts.yml --check', '<%= config.bin %> down -i hosts.yml -e redis_cluster_name=redis-7100']
  static override flags = {
    ...playFlags,
    group: Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
    'keep-data': Flags.boolean({description: 'save each instance\'s data (SHUTDOWN SAVE) and keep its directory (config, nodes.conf, data, logs)', default: false}),
    purge: Flags.boolean({description: 'also remove the Redis source and build', default: false}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Down)
    let password: Record<string, unknown>
    const transports: Transports = new Map()
    const warnings: string[] = []
    let lock: ClusterLock | undefined
    let recorded: Record<string, unknown>
    try {
      const inv = loadInv(flags.inventory)
      const extra = readExtraVars(flags['extra-vars'])
      // The instances are stopped with SHUTDOWN (SAVE with --keep-data): they need the password up used.
      password = redisPasswordVars(extra, inv, flags.group)
      const ssh = {acceptNewHostKeys: flags['accept-new-host-keys']}
      // What up deployed (its ports, dirs, name) unless the inventory or -e says.
      recorded = (await targetCluster({inv, group: flags.group, extra, transports, ssh, warnings})).vars
      // A --limit never takes slot holders out of a cluster that keeps running elsewhere.
      await refuseLeavingMembers(inv, flags.group, flags.limit, {...password, ...recorded, ...extra})
      const name = clusterNameOf(await redisHostVars(inv, flags.group, {...password, ...recorded, ...extra}), inv.file)
      if (!flags.check) lock = await lockCluster(selectHosts(inv, flags.group), transports, ssh, name, 'down')
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
      await closeAll(transports)
      return
    }
    const {code} = await executePlaybooks({
      playbooks: [bundled('playbooks/redis-down.yml')],
      flags,
      hosts: flags.group,
      transports,
      warnings,
      vars: {...password, ...recorded, redis_keep_data: flags['keep-data'], redis_purge: flags.purge},
    }).finally(() => lock?.release())
    process.exitCode = code
  }
}
