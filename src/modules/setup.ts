// setup: gather the host's facts again, as Ansible's setup (typically in a play with
// gather_facts: false): every ansible_* fact and ansible_facts become variables of this
// host for the later tasks. One round trip. gather_subset and filter are not supported
// (refused when the playbook loads): all facts are gathered, they are cheap.
//
// Example:
//   - hosts: all
//     gather_facts: false
//     tasks:
//       - setup:
//       - debug: var=ansible_distribution

import {factVars, FACTS_SCRIPT, parseFacts} from '../play/facts.js'
import {interrupted} from './remote.js'
import type {ItemResult, ModuleSpec} from './types.js'

export const setupModule: ModuleSpec = {
  name: 'setup',
  description: 'Gather the host facts (ansible_*) again, for a play with gather_facts: false; one round trip',
  args: {},
  checkMode: true,
  async run(ctx, items) {
    const stop = interrupted(ctx, items.length)
    if (stop) return stop
    const r = await ctx.transport.exec('sh -s', {stdin: FACTS_SCRIPT, timeoutMs: 30000})
    if (r.failed) return items.map((): ItemResult => ({status: 'failed', msg: `cannot read host facts (exit ${r.exitCode}): ${r.stderr.trim().slice(-300)}`}))
    const facts = factVars(parseFacts(r.stdout))
    return items.map((): ItemResult => ({status: 'ok', msg: `${Object.keys(facts).length - 1} facts`, facts, data: {ansible_facts: facts.ansible_facts}}))
  },
}
