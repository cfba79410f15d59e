import {Command} from '@oclif/core'
import {adhocExitCode, pingHosts, renderPing} from '../cli/adhoc.js'
import {connectionFlags, loadInv, reportError} from '../cli/common.js'

export default class Ping extends Command {
  static override summary = 'Connect to every host and print its OS, arch, cores and memory'
  static override examples = ['<%= config.bin %> ping -i hosts.yml', '<%= config.bin %> ping -i hosts.yml -l redis --json']
  static override flags = connectionFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(Ping)
    try {
      const inv = loadInv(flags.inventory)
      const results = await pingHosts(inv, flags.limit ?? 'all', {forks: flags.forks, ssh: {acceptNewHostKeys: flags['accept-new-host-keys']}})
      process.stdout.write((flags.json ? JSON.stringify({hosts: results}, null, 2) : renderPing(results)) + '\n')
      process.exitCode = adhocExitCode(results)
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
    }
  }
}
