import {Flags} from '@oclif/core'
import {bundled} from './paths.js'

// The flag sets commands share, each defined once: which hosts (inventory, limit),
// how to reach them (forks, user, key, host keys, verbosity), how to run a playbook,
// and which Redis hosts (group).

export const inventoryFlag = Flags.string({
  char: 'i',
  description: 'inventory file (Ansible YAML); default: the bundled local cluster inventory/local.yml',
  default: bundled('inventory/local.yml'),
})

export const inventoryFlags = {
  inventory: inventoryFlag,
  limit: Flags.string({char: 'l', description: 'only hosts matching this pattern (group, host, "a:b", "a:&b", "!c", globs; only exclusions: all hosts but those)'}),
}

export const extraVarsFlag = Flags.string({char: 'e', description: 'set variables: key=value (several: "a=1 b=\'x y\'"), @file.yml, or a JSON/YAML mapping (repeatable)', multiple: true})

export const connectionFlags = {
  ...inventoryFlags,
  forks: Flags.integer({char: 'f', description: 'hosts worked on in parallel', default: 100, min: 1}),
  'accept-new-host-keys': Flags.boolean({description: 'add unknown SSH host keys to known_hosts (a changed key is still refused)', default: false}),
  user: Flags.string({char: 'u', description: 'connect as this user where the inventory sets no ansible_user'}),
  'private-key': Flags.string({description: 'SSH private key file for hosts whose inventory sets no ansible_ssh_private_key_file'}),
  verbose: Flags.boolean({
    char: 'v',
    description: "list every host's result, also the ok ones, with the output of changed commands; -vvv: every command run and its output (secrets masked)",
    default: false,
  }),
  verbosity: Flags.integer({description: 'how many -v were given (-vvv is --verbosity 3)', hidden: true, min: 0}),
}

export const playFlags = {
  ...connectionFlags,
  'extra-vars': extraVarsFlag,
  check: Flags.boolean({char: 'C', description: 'gather facts and plan; report what would change; change nothing', default: false}),
  diff: Flags.boolean({char: 'D', description: 'show unified diffs of changed files', default: false}),
  tags: Flags.string({char: 't', description: 'only tasks with these tags (comma separated)'}),
  'skip-tags': Flags.string({description: 'skip tasks with these tags (comma separated)'}),
}

/** ansible-playbook's look-before-you-run flags: they load and validate, and touch no host. */
export const playbookFlags = {
  ...playFlags,
  'list-hosts': Flags.boolean({description: 'print the hosts each play would run on; connect to none', default: false}),
  'list-tasks': Flags.boolean({description: 'print the tasks each play would run (after --tags/--skip-tags); connect to none', default: false}),
  'syntax-check': Flags.boolean({description: 'load and validate the inventory and playbook, then exit; connect to none', default: false}),
  'start-at-task': Flags.string({description: 'skip the tasks before the first one with this name (exact, or a glob)'}),
}

export const redisFlags = {
  group: Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
}

/** What `-vvv` means once parsed: -v alone is 1. */
export function verbosityOf(flags: {verbose?: boolean; verbosity?: number}): number {
  return flags.verbosity ?? (flags.verbose ? 1 : 0)
}

/** `-vv`, `-vvv` … before any `--`, as --verbosity N (oclif takes one -v per boolean flag). */
export function countVerbose(argv: string[]): string[] {
  const end = argv.indexOf('--')
  return argv.map((a, i) => ((end === -1 || i < end) && /^-v{2,}$/.test(a) ? `--verbosity=${a.length - 1}` : a))
}
