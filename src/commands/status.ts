import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {sshOptions} from '../cli/common.js'
import {connectionFlags, extraVarsFlag, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {EXIT} from '../errors.js'
import {checkCluster} from '../redis/cluster.js'
import {type ClusterReport, renderClusterReport} from '../redis/status.js'

export default class Status extends BaseCommand<ClusterReport> {
  static override summary = 'Check the live cluster like `redis-cli --cluster check`: slots, agreement, open slots, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status -i hosts.yml --json']
  static override flags = {
    ...connectionFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
  }

  protected async work(): Promise<Outcome<ClusterReport>> {
    const {flags} = await this.parse(Status)
    const {nodes, password} = await redisTarget(flags, sshOptions(flags))
    const report = await checkCluster(nodes, {password})
    return {result: report, exitCode: report.ok ? EXIT.ok : EXIT.failed, text: renderClusterReport(report)}
  }
}
