import {Args, Command} from '@oclif/core'
import {executePlaybooks, playFlags} from '../cli/common.js'

export default class Run extends Command {
  static override summary = 'Run a playbook (Ansible YAML) against the inventory'
  static override examples = ['<%= config.bin %> run -i hosts.yml site.yml -e redis_count=10', '<%= config.bin %> run -i hosts.yml site.yml --check --diff']
  static override args = {playbook: Args.string({description: 'playbook file', required: true})}
  static override flags = playFlags

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Run)
    const {code} = await executePlaybooks({playbooks: [args.playbook], flags})
    process.exitCode = code
  }
}
