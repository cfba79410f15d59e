// fail: fail the task on this host with a message, as Ansible's fail (usually with
// `when:`). Runs on the controller: no round trip.
//
// Parameters:
//   msg   the failure message (default "Failed as requested from task")
//
// Example:
//   - name: refuse too few hosts
//     fail:
//       msg: "a cluster needs 3 hosts, got {{ groups.redis | length }}"
//     when: groups.redis | length < 3

import type {ItemResult, ModuleSpec} from './types.js'

export const failModule: ModuleSpec = {
  name: 'fail',
  description: 'Fail the task with a message (on the controller, no round trip)',
  args: {msg: {type: 'any', default: 'Failed as requested from task'}},
  checkMode: true,
  run: (_ctx, items) =>
    Promise.resolve(
      items.map((it): ItemResult => {
        const m = it.args.msg
        return {status: 'failed', msg: typeof m === 'string' ? m : JSON.stringify(m), data: {msg: m}}
      }),
    ),
}
