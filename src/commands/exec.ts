import {Args, Command, Flags} from '@oclif/core'
import {adhocExitCode, execOnHosts, renderExec} from '../cli/adhoc.js'
import {connectionFlags, loadInv, reportError} from '../cli/common.js'

export default class Exec extends Command {
  static override summary = 'Run a shell command on every host; output grouped per host'
  static override examples = ['<%= config.bin %> exec -i hosts.yml -- uptime', '<%= config.bin %> exec -i hosts.yml -l h1 -- "ls ~/redis_cluster | wc -l"']
  static override strict = false
  static override args = {command: Args.string({description: 'command (after --)', required: true})}
  static override flags = {...connectionFlags, timeout: Flags.integer({description: 'seconds before a host\'s command is killed', default: 600})}

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Exec)
    try {
      const inv = loadInv(flags.inventory)
      const command = (argv as string[]).join(' ')
      const results = await execOnHosts(inv, flags.limit ?? 'all', command, {forks: flags.forks, ssh: {acceptNewHostKeys: flags['accept-new-host-keys']}, timeoutMs: flags.timeout * 1000})
      process.stdout.write((flags.json ? JSON.stringify({command, hosts: results}, null, 2) : renderExec(results)) + '\n')
      process.exitCode = adhocExitCode(results)
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
    }
  }
}
