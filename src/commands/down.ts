import {Command, Flags} from '@oclif/core'
import {bundled, executePlaybooks, loadInv, playFlags, readExtraVars, redisPasswordVars, reportError} from '../cli/common.js'
import {refuseLeavingMembers} from '../redis/leave.js'

export default class Down extends Command {
  static override summary = 'Stop every instance baremetal started, remove their directories and firewall rules'
  static override description = `Stops instances by SHUTDOWN NOSAVE on their port, or by the PID in their own pidfile after checking it is that instance; a redis-server baremetal did not start is never touched. With --keep-data each instance saves its data first (SHUTDOWN SAVE): an instance whose save fails is left running and the run fails (exit 2) with Redis' reply. Keeps the Redis build unless --purge. Safe to run twice.`
  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down -i hosts.yml --keep-data', '<%= config.bin %> down -i hosts.yml --check']
  static override flags = {
    ...playFlags,
    group: Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
    'keep-data': Flags.boolean({description: 'save each instance\'s data (SHUTDOWN SAVE) and keep its directory (config, nodes.conf, data, logs)', default: false}),
    purge: Flags.boolean({description: 'also remove the Redis source and build', default: false}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Down)
    let password: Record<string, unknown>
    try {
      // The instances are stopped with SHUTDOWN (SAVE with --keep-data): they need the password up used.
      password = redisPasswordVars(readExtraVars(flags['extra-vars']), loadInv(flags.inventory), flags.group)
      await refuseLeavingMembers(loadInv(flags.inventory), flags.group, flags.limit, {...password, ...readExtraVars(flags['extra-vars'])})
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
      return
    }
    const {code} = await executePlaybooks({
      playbooks: [bundled('playbooks/redis-down.yml')],
      flags,
      hosts: flags.group,
      vars: {...password, redis_keep_data: flags['keep-data'], redis_purge: flags.purge},
    })
    process.exitCode = code
  }
}
