import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {sshOptions} from '../cli/common.js'
import {connectionFlags, extraVarsFlag, redisFlags} from '../cli/flags.js'
import {redisTarget} from '../cli/redis-target.js'
import {sentinelTarget, topologyOf} from '../cli/sentinel-target.js'
import {EXIT} from '../errors.js'
import {checkCluster} from '../redis/cluster.js'
import {declaredNodeTimeouts} from '../redis/node-timeout.js'
import {type ClusterReport, problemTexts, renderClusterReport} from '../redis/status.js'
import {renderSentinelStatus, sentinelStatusReport, type SentinelStatusReport} from '../redis/sentinel-status.js'
import {readSentinelView} from '../redis/sentinel-view.js'
import {readTargetHaproxy} from '../redis/haproxy-read.js'

// --json prints problems as text, as before they were typed.
type StatusJson = Omit<ClusterReport, 'problems'> & {problems: string[]}

export default class Status extends BaseCommand<StatusJson | SentinelStatusReport> {
  static override summary = 'Check the live cluster like `redis-cli --cluster check`: slots, agreement, open slots, nodes'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status -i hosts.yml --json']
  static override flags = {
    ...connectionFlags,
    ...redisFlags,
    'extra-vars': extraVarsFlag,
  }

  protected async work(): Promise<Outcome<StatusJson | SentinelStatusReport>> {
    const {flags} = await this.parse(Status)
    // redis_topology: sentinel: the live view from the Sentinels and ROLE, read from the controller; HAProxy's from its admin socket over SSH, meanwhile.
    const topo = await topologyOf(flags)
    if (topo.topology === 'sentinel') {
      const t = await sentinelTarget(topo)
      const hap = readTargetHaproxy(t, sshOptions(flags))
      const view = await readSentinelView(t.layout, {password: t.password, versions: true})
      const report = sentinelStatusReport(t.layout, view, await hap)
      return {result: report, exitCode: report.ok ? EXIT.ok : EXIT.failed, text: renderSentinelStatus(report, view)}
    }
    const {hosts, nodes, password} = await redisTarget(flags, sshOptions(flags))
    const report = await checkCluster(nodes, {password, declaredNodeTimeout: declaredNodeTimeouts(hosts)})
    return {result: {...report, problems: problemTexts(report.problems)}, exitCode: report.ok ? EXIT.ok : EXIT.failed, text: renderClusterReport(report)}
  }
}
