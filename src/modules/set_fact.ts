// set_fact: set variables for this host, as Ansible's set_fact: visible to every later
// task (and play) of the run on this host, above play vars and registered results of
// earlier tasks; -e still wins over them here. Runs on the controller: no round trip.
//
// Parameters: any `name: value` pairs (values templated, keeping their type:
// "{{ ports | length }}" is a number), or `key=value` on one line.
//   cacheable  accepted and ignored: there is no fact cache between runs
//
// In a loop the items are applied in order, so the last item's value wins.
//
// Example:
//   - name: the first port
//     set_fact:
//       first_port: "{{ redis_ports[0] }}"

import type {ItemResult, ModuleSpec} from './types.js'

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Why these names cannot be variables (at load time), or undefined. */
export function badFactNames(args: Record<string, unknown>): {msg: string; hint: string} | undefined {
  const names = Object.keys(args).filter((k) => k !== 'cacheable')
  if (names.length === 0) return {msg: 'set_fact needs at least one name: value pair', hint: 'write e.g. "set_fact: {first_port: 7000}"'}
  const bad = names.find((k) => !NAME.test(k))
  if (bad) return {msg: `set_fact: "${bad}" is not a valid variable name`, hint: 'use letters, digits and _ (not starting with a digit)'}
  return undefined
}

export const setFactModule: ModuleSpec = {
  name: 'set_fact',
  description: 'Set host variables for the later tasks of the run (on the controller, no round trip)',
  args: {cacheable: {type: 'bool', default: false}},
  freeArgs: badFactNames,
  checkMode: true,
  run: (_ctx, items) =>
    Promise.resolve(
      items.map((it): ItemResult => {
        const facts = Object.fromEntries(Object.entries(it.args).filter(([k]) => k !== 'cacheable'))
        return {status: 'ok', msg: `set ${Object.keys(facts).join(', ')}`, facts, data: {ansible_facts: facts}}
      }),
    ),
}
