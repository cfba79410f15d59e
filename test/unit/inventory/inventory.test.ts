import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {loadInventory, selectHosts} from '../../../src/inventory/inventory.js'

const LEGACY = `redis:
  hosts:
    10.0.0.1:
    10.0.0.2:
`

describe('inventory', () => {
  it('reads the legacy Ansible hosts.yml unchanged (group of bare hosts)', () => {
    const inv = loadInventory('hosts.yml', LEGACY)
    assert.deepEqual([...inv.hosts.keys()], ['10.0.0.1', '10.0.0.2'])
    const h = inv.hosts.get('10.0.0.1')!
    assert.deepEqual(h.groups, ['all', 'redis'])
    assert.equal(h.connection.address, '10.0.0.1')
    assert.equal(h.connection.port, 22)
    assert.equal(h.connection.kind, 'ssh')
  })

  it('merges vars all < parent < child < host and reads connection variables', () => {
    const inv = loadInventory('/srv/inv/hosts.yml', `all:
  vars: {a: all, b: all, c: all, d: all, ansible_user: deploy}
  children:
    dc1:
      vars: {b: dc1, c: dc1}
      children:
        redis:
          vars: {c: redis}
          hosts:
            r1: {d: host, ansible_host: 192.0.2.5, ansible_port: 2222, ansible_ssh_private_key_file: keys/id}
            r2:
    local:
      hosts:
        me: {ansible_connection: local}
`)
    const r1 = inv.hosts.get('r1')!
    assert.deepEqual([r1.vars.a, r1.vars.b, r1.vars.c, r1.vars.d], ['all', 'dc1', 'redis', 'host'])
    assert.equal(r1.connection.address, '192.0.2.5')
    assert.equal(r1.connection.port, 2222)
    assert.equal(r1.connection.user, 'deploy')
    assert.equal(r1.connection.privateKeyFile, '/srv/inv/keys/id')
    assert.deepEqual(r1.groups, ['all', 'dc1', 'redis'])
    assert.equal(inv.hosts.get('me')!.connection.kind, 'local')
  })

  it('reads YAML 1.1 like Ansible: yes is a boolean, 0644 is octal, 1:20 stays a string', () => {
    const inv = loadInventory('i.yml', `all:
  hosts:
    h: {flag: yes, mode: 0644, range: "1:20", plain: 1:20}
`)
    const v = inv.hosts.get('h')!.vars
    assert.equal(v.flag, true)
    assert.equal(v.mode, 0o644)
    assert.equal(v.range, '1:20')
    assert.equal(v.plain, '1:20')
  })

  it('expands host ranges', () => {
    const inv = loadInventory('i.yml', `redis:
  hosts:
    node[01:03].example:
`)
    assert.deepEqual([...inv.hosts.keys()], ['node01.example', 'node02.example', 'node03.example'])
  })

  it('selects hosts by pattern: groups, names, unions, intersection, exclusion, globs', () => {
    const inv = loadInventory('i.yml', `all:
  children:
    redis: {hosts: {a: , b: , c: }}
    old: {hosts: {c: , d: }}
`)
    const names = (p: string) => selectHosts(inv, p).map((h) => h.name)
    assert.deepEqual(names('all'), ['a', 'b', 'c', 'd'])
    assert.deepEqual(names('redis'), ['a', 'b', 'c'])
    assert.deepEqual(names('redis:!old'), ['a', 'b'])
    assert.deepEqual(names('redis:&old'), ['c'])
    assert.deepEqual(names('a,d'), ['a', 'd'])
    assert.deepEqual(names('[ab]*'.replace('[ab]', 'b')), ['b'])
    assert.throws(() => names('nosuch'), (e: unknown) => e instanceof InventoryError && /matches no group or host/.test(e.message) && /known groups/.test(e.hint ?? ''))
  })

  it('points at file:line:col for malformed YAML', () => {
    assert.throws(
      () => loadInventory('bad.yml', 'all:\n  hosts:\n    a: {x: 1\n'),
      (e: unknown) => e instanceof InventoryError && e.where.file === 'bad.yml' && typeof e.where.line === 'number' && e.where.line >= 3 && /invalid YAML/.test(e.message),
    )
  })

  it('names the line and the fix for a wrong key in a group', () => {
    assert.throws(
      () => loadInventory('i.yml', 'redis:\n  host:\n    a:\n'),
      (e: unknown) => e instanceof InventoryError && e.where.line === 2 && /unknown key "host"/.test(e.message) && /hosts, vars, children/.test(e.hint ?? ''),
    )
    assert.throws(
      () => loadInventory('i.yml', 'redis:\n  hosts:\n    - a\n'),
      (e: unknown) => e instanceof InventoryError && /must be a mapping/.test(e.message),
    )
    assert.throws(
      () => loadInventory('i.yml', 'redis:\n  hosts:\n    a: {ansible_port: ssh}\n'),
      (e: unknown) => e instanceof InventoryError && /not a TCP port/.test(e.message) && e.where.line === 3,
    )
  })
})
