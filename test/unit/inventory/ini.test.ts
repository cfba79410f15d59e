import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {loadInventory, selectHosts} from '../../../src/inventory/inventory.js'

const at = (line: number, col: number, re: RegExp, hint?: RegExp) => (e: unknown) =>
  e instanceof InventoryError && e.exitCode === 5 && e.where.file === 'hosts.ini' && e.where.line === line && e.where.col === col && re.test(e.message) && (!hint || hint.test(e.hint ?? ''))

const INI = `# a comment
; another
lonely ansible_host=192.0.2.9

[redis]
r1 ansible_host=10.0.0.1 redis_port=7000 name="a b" flag=True yes=yes mode=0644 quoted='7000'
r2:2222   ansible_user=deploy # trailing comment
web[01:03]
db-[a:c]

[redis:vars]
maxmemory = 1gb
port=7001
list = [1, 2]
str = "7002"
note = text # stays part of the value

[dc1:children]
redis

[dc1:vars]
zone=dc1

[all:vars]
zone=all
port=1
`

describe('INI inventory', () => {
  it('reads groups, :vars, :children, ranges, ports, inline vars and ungrouped hosts', () => {
    const inv = loadInventory('hosts.ini', INI)
    assert.deepEqual([...inv.hosts.keys()], ['lonely', 'r1', 'r2', 'web01', 'web02', 'web03', 'db-a', 'db-b', 'db-c'])
    assert.deepEqual(inv.hosts.get('lonely')!.groups, ['all', 'ungrouped'])
    assert.deepEqual(inv.hosts.get('r1')!.groups, ['all', 'dc1', 'redis'])
    const r1 = inv.hosts.get('r1')!
    assert.equal(r1.connection.address, '10.0.0.1')
    assert.equal(r1.vars.redis_port, 7000)
    assert.equal(r1.vars.name, 'a b')
    assert.equal(r1.vars.flag, true)
    assert.equal(r1.vars.yes, 'yes')
    assert.equal(r1.vars.mode, '0644')
    // shlex removes the quotes first, so literal_eval sees 7000: a number, as in Ansible.
    assert.equal(r1.vars.quoted, 7000)
    const r2 = inv.hosts.get('r2')!
    assert.equal(r2.connection.port, 2222)
    assert.equal(r2.connection.user, 'deploy')
    assert.equal(r2.vars.maxmemory, '1gb')
    assert.equal(r2.vars.port, 7001)
    assert.deepEqual(r2.vars.list, [1, 2])
    assert.equal(r2.vars.str, '7002')
    assert.equal(r2.vars.note, 'text # stays part of the value')
    assert.equal(r2.vars.zone, 'dc1')
    assert.equal(inv.hosts.get('lonely')!.vars.zone, 'all')
    assert.deepEqual(selectHosts(inv, 'dc1').map((h) => h.name).length, 8)
    assert.deepEqual(selectHosts(inv, 'ungrouped').map((h) => h.name), ['lonely'])
  })

  it('accepts children declared before their group, and a group in several parents', () => {
    const inv = loadInventory('hosts.ini', '[top:children]\nmid\n[mid:children]\nleaf\n[other:children]\nleaf\n[leaf]\nh1\n')
    assert.deepEqual(inv.hosts.get('h1')!.groups, ['all', 'other', 'top', 'mid', 'leaf'])
  })

  it('detects INI without the .ini extension, and YAML in a file called hosts', () => {
    assert.deepEqual([...loadInventory('hosts', '[redis]\nh1\n').hosts.keys()], ['h1'])
    assert.deepEqual([...loadInventory('hosts', 'h1\nh2 a=1\n').hosts.keys()], ['h1', 'h2'])
    assert.deepEqual([...loadInventory('hosts', 'redis:\n  hosts:\n    y1:\n').hosts.keys()], ['y1'])
  })

  it('names file:line:col, what is wrong and what to write for every error', () => {
    assert.throws(() => loadInventory('hosts.ini', '[redis]\nh1 novalue\n'), at(2, 4, /expected key=value after host "h1", got "novalue"/, /name=value/))
    assert.throws(() => loadInventory('hosts.ini', '[redis:hosts2]\n'), at(1, 1, /unknown type "hosts2"/, /\[redis:vars\]/))
    assert.throws(() => loadInventory('hosts.ini', '\n[bad name]\n'), at(2, 1, /invalid section header/))
    assert.throws(() => loadInventory('hosts.ini', '[g:vars]\nnovalue\n[g]\n'), at(2, 1, /expected key=value in \[g:vars\]/))
    assert.throws(() => loadInventory('hosts.ini', '[a]\nh\n\n[nogroup:vars]\nx=1\n'), at(4, 1, /\[nogroup:vars\] is for a group that is never defined/))
    assert.throws(() => loadInventory('hosts.ini', '[p:children]\n  ghost\n'), at(2, 3, /\[p:children\] lists "ghost", a group that is never defined/))
    assert.throws(() => loadInventory('hosts.ini', '[g]\n  web[05:01]\n'), at(2, 3, /invalid host "web\[05:01\]": a host range needs begin <= end/))
    assert.throws(() => loadInventory('hosts.ini', '[g]\nweb[01:5]\n'), at(2, 1, /same width/))
    assert.throws(() => loadInventory('hosts.ini', '[g]\nh1 a="open\n'), at(2, 4, /no closing quotation/))
    assert.throws(() => loadInventory('hosts.ini', '[g]\nh1:\n'), at(2, 1, /reserved for a port/))
    assert.throws(() => loadInventory('hosts.ini', '[g]\nh1 ansible_port=ssh\n'), at(2, 4, /ansible_port "ssh" is not a TCP port/))
    assert.throws(() => loadInventory('hosts.ini', '[g:children]\nx y\n'), at(2, 1, /expected a group name/))
  })

  it('refuses a file that is neither YAML nor INI, scripts and TOML, with the fix', () => {
    assert.throws(() => loadInventory('hosts', 'a: b: c\n[x\n'), (e: unknown) => e instanceof InventoryError && /neither a YAML nor an INI inventory/.test(e.message) && e.where.line === 1 && /\.yml or \.ini/.test(e.hint ?? ''))
    assert.throws(() => loadInventory('inv', '#!/usr/bin/env python\nprint(1)\n'), (e: unknown) => e instanceof InventoryError && /dynamic inventory scripts/.test(e.message) && e.where.line === 1)
    assert.throws(() => loadInventory('hosts.toml', '[all]\n'), (e: unknown) => e instanceof InventoryError && /TOML/.test(e.message))
  })
})
