import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {loadInventory} from '../../../src/inventory/inventory.js'
import {allModules} from '../../../src/modules/index.js'
import {loadPlaybook} from '../../../src/play/playbook.js'
import {runPlaybook, type Reporter} from '../../../src/play/runner.js'
import type {ModuleSpec} from '../../../src/modules/types.js'

// The runner on the controller itself (ansible_connection: local): two hosts, harmless commands.
const INV = 'all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {ansible_connection: local}\n  vars:\n    thing: widget\n'
const quiet: Reporter = {playStart() {}, taskStart() {}, hostResult() {}, taskEnd() {}, log() {}, warn() {}}

// A run-once module that fails, as a cluster step refusing to go on does.
const refuse: ModuleSpec = {
  name: 'refuse_once',
  description: 'fails once for the play',
  args: {},
  checkMode: true,
  runOnce: true,
  async run() {
    return [{status: 'failed', msg: 'refused for the whole cluster'}]
  },
}

async function run(yaml: string, opts: {limit?: string} = {}) {
  const modules = new Map([...allModules(), [refuse.name, refuse]])
  return runPlaybook({inventory: loadInventory('inv.yml', INV), playbook: loadPlaybook('/tmp/pb.yml', modules, yaml), reporter: quiet, ...opts})
}

describe('runner', () => {
  it('names each task as its header does, rendered (the recap said "Redis {{ redis_version }} source")', async () => {
    const r = await run('- hosts: all\n  tasks:\n    - name: "make {{ thing }}"\n      command: "true"\n')
    assert.deepEqual(r.tasks.map((t) => `${t.host} ${t.task}`).sort(), ['a make widget', 'b make widget'])
  })

  it('a run-once task that fails stops the play on every host, not only the one it ran on', async () => {
    const r = await run('- hosts: all\n  tasks:\n    - name: cluster step\n      refuse_once: {}\n    - name: after\n      command: "true"\n')
    assert.deepEqual(
      r.tasks.map((t) => `${t.host} ${t.task} ${t.status}`),
      ['a cluster step failed'],
    )
    assert.equal(r.exitCode, 2)
    assert.ok(
      r.warnings.some((w) => /runs once for the play and failed: the play stopped for b too/.test(w)),
      r.warnings.join('\n'),
    )
  })

  it('--limit narrows the hosts a task runs on, not the group a cluster step sees', async () => {
    let seen: string[] = []
    const probe: ModuleSpec = {
      name: 'probe_group',
      description: 'records the group',
      args: {},
      checkMode: true,
      runOnce: true,
      async run(ctx) {
        seen = (ctx.groupHosts ?? []).map((h) => h.host)
        return [{status: 'ok', msg: ctx.playHosts.map((h) => h.host).join(',')}]
      },
    }
    const modules = new Map([...allModules(), [probe.name, probe]])
    const r = await runPlaybook({
      inventory: loadInventory('inv.yml', INV),
      playbook: loadPlaybook('/tmp/pb.yml', modules, '- hosts: all\n  tasks:\n    - name: p\n      probe_group: {}\n'),
      reporter: quiet,
      limit: 'b',
    })
    assert.equal(r.tasks[0].msg, 'b')
    assert.deepEqual(seen, ['a', 'b'])
  })
})
