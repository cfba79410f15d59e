import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {sshOptions} from '../cli/common.js'
import {connectionFlags, extraVarsFlag, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {EXIT} from '../errors.js'
import {checkCluster} from '../redis/cluster.js'
import {declaredNodeTimeouts} from '../redis/node-timeout.js'
import {type ClusterReport, problemTexts, renderClusterReport} from '../redis/status.js'

// --json prints problems as text, as before they were typed.
type StatusJson = Omit<ClusterReport, 'problems'> & {problems: string[]}

export default class Status extends BaseCommand<StatusJson> {
  static override summary = 'Check the live cluster like `redis-cli --cluster check`: slots, agreement, open slots, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status -i hosts.yml --json']
  static override flags = {
    ...connectionFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
  }

  protected async work(): Promise<Outcome<StatusJson>> {
    const {flags} = await this.parse(Status)
    const {hosts, nodes, password} = await redisTarget(flags, sshOptions(flags))
    const report = await checkCluster(nodes, {password, declaredNodeTimeout: declaredNodeTimeouts(hosts)})
    return {result: {...report, problems: problemTexts(report.problems)}, exitCode: report.ok ? EXIT.ok : EXIT.failed, text: renderClusterReport(report)}
  }
}
