// assert: check conditions, as Ansible's assert. Runs on the controller: no round trip.
//
// Parameters:
//   that         a condition or a list of them (the `when:` language, without {{ }});
//                all must hold. Checked for syntax when the playbook loads
//   fail_msg     the failure message (alias msg; default "Assertion failed")
//   success_msg  the message when all hold (default "All assertions passed")
//   quiet        no success message (an empty one)
//
// Example:
//   - name: the host is big enough
//     assert:
//       that:
//         - ansible_memtotal_mb >= 1024
//         - redis_ports | length <= 4
//       fail_msg: "{{ inventory_hostname }} is too small"

import {evaluate} from '../play/expr.js'
import {mask} from '../shell.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

/** `that:` as a list of conditions (a YAML list, or one string). */
export function conditions(that: unknown): Array<string | boolean> {
  const list = Array.isArray(that) ? that : [that]
  return list.map((c) => (typeof c === 'boolean' ? c : typeof c === 'number' ? c !== 0 : String(c)))
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** One item: the first condition that is false fails it, as Ansible reports it. */
export function assertItem(args: Record<string, unknown>, vars: Record<string, unknown>, secrets: Iterable<string>): ItemResult {
  for (const c of conditions(args.that)) {
    let ok: boolean
    try {
      ok = evaluate(c, vars)
    } catch (error) {
      // As Ansible: an undefined variable in a condition fails the task on this host.
      return {status: 'failed', msg: mask(`the conditional check '${String(c)}' failed: ${(error as Error).message}`, secrets), data: {assertion: c}}
    }
    if (!ok) {
      const msg = args.fail_msg ?? 'Assertion failed'
      return {status: 'failed', msg: mask(text(msg), secrets), data: {assertion: c, evaluated_to: false, msg}}
    }
  }
  const msg = args.quiet === true ? '' : (args.success_msg ?? 'All assertions passed')
  return {status: 'ok', msg: mask(text(msg), secrets), data: {msg}}
}

export const assertModule: ModuleSpec = {
  name: 'assert',
  description: 'Check that conditions hold, failing with a message when one does not (on the controller, no round trip)',
  args: {
    that: {type: 'any', required: true},
    fail_msg: {type: 'any', aliases: ['msg']},
    success_msg: {type: 'any'},
    quiet: {type: 'bool', default: false},
  },
  checkMode: true,
  run(ctx: ModuleContext, items: TaskItem[]): Promise<ItemResult[]> {
    return Promise.resolve(items.map((it) => assertItem(it.args, it.vars ?? ctx.vars, ctx.secrets)))
  },
}
