import {type AdhocHostResult, adhocExitCode, pingHosts, renderPing} from '../cli/adhoc.js'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {loadInv, sshOptions} from '../cli/common.js'
import {connectionFlags} from '../cli/flags.js'

export default class Ping extends BaseCommand<{hosts: AdhocHostResult[]}> {
  static override summary = 'Connect to every host and print its OS, arch, cores and memory'
  static override examples = ['<%= config.bin %> ping -i hosts.yml', '<%= config.bin %> ping -i hosts.yml -l redis --json']
  static override flags = connectionFlags

  protected async work(): Promise<Outcome<{hosts: AdhocHostResult[]}>> {
    const {flags} = await this.parse(Ping)
    const inv = loadInv(flags.inventory)
    const results = await pingHosts(inv, flags.limit ?? 'all', {forks: flags.forks, ssh: sshOptions(flags)})
    return {result: {hosts: results}, exitCode: adhocExitCode(results), text: renderPing(results)}
  }
}
