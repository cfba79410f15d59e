import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {loadInventory, selectHosts} from '../../../src/inventory/inventory.js'

describe('YAML inventory (shared model)', () => {
  it('reads host:port, letter ranges and stepped ranges, as Ansible expands them', () => {
    const inv = loadInventory('i.yml', 'g:\n  hosts:\n    "db:2222":\n    web-[a:c]:\n    n[0:6:3]:\n    "[::1]:2200":\n')
    assert.deepEqual([...inv.hosts.keys()], ['db', 'web-a', 'web-b', 'web-c', 'n0', 'n3', 'n6', '::1'])
    assert.equal(inv.hosts.get('db')!.connection.port, 2222)
    assert.equal(inv.hosts.get('::1')!.connection.port, 2200)
  })

  it('has the implicit ungrouped group, holding hosts only in all', () => {
    const inv = loadInventory('i.yml', 'all:\n  hosts:\n    solo:\n  children:\n    g: {hosts: {member: }}\n')
    assert.deepEqual(selectHosts(inv, 'ungrouped').map((h) => h.name), ['solo'])
    assert.deepEqual(inv.hosts.get('member')!.groups, ['all', 'g'])
    assert.ok(inv.groups.has('ungrouped'))
  })

  it('a host defined twice keeps the last value parsed (Ansible sets host vars in file order)', () => {
    const inv = loadInventory('i.yml', 'b:\n  children:\n    a:\n      hosts: {h: {x: from-a}}\n  hosts: {h: {x: from-b}}\n')
    assert.equal(inv.hosts.get('h')!.vars.x, 'from-b')
  })

  it('points range errors at the host key', () => {
    assert.throws(() => loadInventory('i.yml', 'g:\n  hosts:\n    web[3:1]:\n'), (e: unknown) => e instanceof InventoryError && e.where.line === 3 && e.where.col === 5 && /begin <= end/.test(e.message))
    assert.throws(() => loadInventory('i.yml', 'g:\n  hosts:\n    web[a:3]:\n'), (e: unknown) => e instanceof InventoryError && e.where.line === 3 && /numbers .* or single letters/.test(e.message))
  })
})
