import {Args, Flags} from '@oclif/core'
import {type AdhocHostResult, adhocExitCode, execOnHosts, renderExec} from '../cli/adhoc.js'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {loadInv, sshOptions} from '../cli/common.js'
import {connectionFlags} from '../cli/flags.js'

type ExecOutcome = {command: string; hosts: AdhocHostResult[]}

export default class Exec extends BaseCommand<ExecOutcome> {
  static override summary = 'Run a shell command on every host; output grouped per host'
  static override examples = ['<%= config.bin %> exec -i hosts.yml -- uptime', '<%= config.bin %> exec -i hosts.yml -l h1 -- "ls ~/redis_cluster | wc -l"']
  static override strict = false
  static override args = {command: Args.string({description: 'command (after --)', required: true})}
  static override flags = {...connectionFlags, timeout: Flags.integer({description: "seconds before a host's command is killed", default: 600})}

  protected async work(): Promise<Outcome<ExecOutcome>> {
    const {argv, flags} = await this.parse(Exec)
    const inv = loadInv(flags.inventory)
    const command = (argv as string[]).join(' ')
    const results = await execOnHosts(inv, flags.limit ?? 'all', command, {forks: flags.forks, ssh: sshOptions(flags), timeoutMs: flags.timeout * 1000})
    return {result: {command, hosts: results}, exitCode: adhocExitCode(results), text: renderExec(results)}
  }
}
