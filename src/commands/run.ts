import {Args} from '@oclif/core'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {executePlaybooks, loadBooks, loadInv, recapText} from '../cli/common.js'
import {playbookFlags} from '../cli/flags.js'
import {listPlaybook, type PlaybookListing, renderListing} from '../cli/playbook-info.js'
import {EXIT} from '../errors.js'
import type {RunResult} from '../play/runner.js'

type RunOutcome = RunResult | {syntax: 'ok'; playbook: string} | PlaybookListing

export default class Run extends BaseCommand<RunOutcome> {
  static override summary = 'Run a playbook (Ansible YAML) against the inventory'
  static override examples = [
    '<%= config.bin %> run -i hosts.yml site.yml -e redis_count=10',
    '<%= config.bin %> run -i hosts.yml site.yml --check --diff',
    "<%= config.bin %> run -i hosts.yml site.yml --list-hosts --limit '!h2'",
  ]
  static override args = {playbook: Args.string({description: 'playbook file', required: true})}
  static override flags = playbookFlags

  protected async work(): Promise<Outcome<RunOutcome>> {
    const {args, flags} = await this.parse(Run)
    const json = this.jsonEnabled()
    if (flags['syntax-check'] || flags['list-hosts'] || flags['list-tasks']) {
      // Load and validate only: nothing connects, nothing changes.
      const inv = loadInv(flags.inventory)
      const [book] = loadBooks([args.playbook])
      if (!flags['list-hosts'] && !flags['list-tasks']) return {result: {syntax: 'ok', playbook: book.file}, exitCode: EXIT.ok, text: `\nplaybook: ${book.file}`}
      const listing = listPlaybook(inv, book, {limit: flags.limit, tags: flags.tags?.split(','), skipTags: flags['skip-tags']?.split(',')})
      return {result: listing, exitCode: EXIT.ok, text: renderListing(listing, {hosts: flags['list-hosts'], tasks: flags['list-tasks']})}
    }
    const result = await executePlaybooks({playbooks: [args.playbook], flags: {...flags, json}})
    return {result, exitCode: result.exitCode, text: recapText(result)}
  }
}
