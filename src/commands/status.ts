import {Command, Flags} from '@oclif/core'
import {connectionFlags, loadInv, readExtraVars, redisPasswordVars, reportError} from '../cli/common.js'
import {targetCluster, type Transports} from '../cli/cluster-state.js'
import {redisHostVars} from '../cli/redis.js'
import {closeAll} from '../play/runner.js'
import {EXIT} from '../errors.js'
import {checkCluster, clusterNodesFromHosts} from '../redis/cluster.js'
import {problemTexts, renderClusterReport} from '../redis/status.js'

export default class Status extends Command {
  static override summary = 'Check the live cluster like `redis-cli --cluster check`: slots, agreement, open slots, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status -i hosts.yml --json']
  static override flags = {
    ...connectionFlags,
    'extra-vars': Flags.string({char: 'e', description: 'variables as for up (e.g. redis_password=…)', multiple: true}),
    group: Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Status)
    try {
      const inv = loadInv(flags.inventory)
      const extra = readExtraVars(flags['extra-vars'])
      // The cluster up deployed (its record on the hosts) unless the inventory or -e says.
      const transports: Transports = new Map()
      const recorded = await targetCluster({inv, group: flags.group, extra, transports, ssh: {acceptNewHostKeys: flags['accept-new-host-keys']}, warnings: []}).finally(() => closeAll(transports))
      const hosts = await redisHostVars(inv, flags.limit ? `${flags.group}:&${flags.limit}` : flags.group, {...redisPasswordVars(extra, inv, flags.group), ...recorded.vars, ...extra})
      const nodes = await clusterNodesFromHosts(hosts)
      const password = String(hosts[0]?.vars.redis_password ?? '') || undefined
      const report = await checkCluster(nodes, {password})
      process.stdout.write((flags.json ? JSON.stringify({...report, problems: problemTexts(report.problems)}, null, 2) : renderClusterReport(report)) + '\n')
      process.exitCode = report.ok ? EXIT.ok : EXIT.failed
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
    }
  }
}
