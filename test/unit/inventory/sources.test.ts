import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {flagGiven, loadInventorySources} from '../../../src/inventory/sources.js'

const root = mkdtempSync(join(tmpdir(), 'inv-src-'))
after(() => rmSync(root, {recursive: true, force: true}))
let n = 0
const project = (files: Record<string, string>): string => {
  const dir = join(root, `p${n++}`)
  mkdirSync(dir, {recursive: true})
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), {recursive: true})
    writeFileSync(join(dir, p), text)
  }
  return dir
}
const FALLBACK = join(root, 'bundled-local.yml')
writeFileSync(FALLBACK, 'local:\n  hosts:\n    localhost: {ansible_connection: local}\n')
const load = (dir: string, o: {given?: string; argv?: string[]; env?: Record<string, string>} = {}) =>
  loadInventorySources({given: o.given, fallback: FALLBACK, argv: o.argv ?? [], env: o.env ?? {}, cwd: dir, home: join(dir, 'home')})

describe('inventory sources', () => {
  it('-i h1,h2, is a host list in ungrouped (a single host needs the trailing comma), with ports', () => {
    const dir = project({})
    const inv = load(dir, {given: 'h1,10.0.0.2:2222,'}).inventory
    assert.deepEqual([...inv.hosts.keys()], ['h1', '10.0.0.2'])
    assert.deepEqual(inv.hosts.get('h1')!.groups, ['all', 'ungrouped'])
    assert.equal(inv.hosts.get('10.0.0.2')!.connection.port, 2222)
    assert.deepEqual([...load(dir, {given: 'solo,'}).inventory.hosts.keys()], ['solo'])
    assert.throws(() => load(dir, {given: 'solo'}), (e: unknown) => e instanceof InventoryError && e.exitCode === 5 && /cannot read solo: no such file/.test(e.message) && /trailing comma/.test(e.hint ?? ''))
    assert.throws(() => load(dir, {given: 'web[1:3],'}), (e: unknown) => e instanceof InventoryError && /not expanded in a comma list/.test(e.message))
  })

  it("without -i uses ansible.cfg's inventory (relative to the cfg) and says so; else the bundled one", () => {
    const dir = project({'ansible.cfg': '[defaults]\ninventory = inv/hosts.ini\n', 'inv/hosts.ini': '[redis]\nr1\n', 'inv/group_vars/redis.yml': 'port: 7000\n'})
    const r = load(join(dir))
    assert.deepEqual([...r.inventory.hosts.keys()], ['r1'])
    assert.equal(r.inventory.hosts.get('r1')!.vars.port, 7000)
    assert.ok(r.notes.some((m) => m.includes(`inventory: ${join(dir, 'inv/hosts.ini')} (from inventory = in ${join(dir, 'ansible.cfg')}; -i overrides)`)), r.notes.join('\n'))
    // -i wins over the cfg.
    assert.deepEqual([...load(dir, {given: 'other,'}).inventory.hosts.keys()], ['other'])
    // No cfg: the bundled inventory, no note.
    const bare = load(project({}))
    assert.deepEqual([...bare.inventory.hosts.keys()], ['localhost'])
    assert.deepEqual(bare.notes, [])
    // A missing cfg inventory is an error naming it, not a fallback to the controller.
    const missing = project({'ansible.cfg': '[defaults]\ninventory = nope.ini\n'})
    assert.throws(() => load(missing), (e: unknown) => e instanceof InventoryError && e.where.file === join(missing, 'nope.ini') && /no such file/.test(e.message))
  })

  it('reads a directory of inventory files and its group_vars, skipping ignored extensions', () => {
    const dir = project({'inv/a.ini': '[redis]\nr1\n', 'inv/b.yml': 'redis:\n  hosts:\n    r2:\n', 'inv/README.md': 'not inventory', 'inv/group_vars/redis.yml': 'x: 1\n'})
    const inv = load(dir, {given: join(dir, 'inv')}).inventory
    assert.deepEqual([...inv.hosts.keys()], ['r1', 'r2'])
    assert.equal(inv.hosts.get('r2')!.vars.x, 1)
  })

  it('ansible.cfg fills connection defaults the inventory does not set; forks only without -f', () => {
    const dir = project({
      'ansible.cfg': '[defaults]\ninventory = hosts.yml\nremote_user = deploy\nprivate_key_file = keys/id\nforks = 7\ntimeout = 3\nhost_key_checking = False\nremote_port = 2200\n',
      'keys/id': 'not a real key',
      'hosts.yml': 'g:\n  hosts:\n    a:\n    b: {ansible_user: root, ansible_port: 22, ansible_ssh_private_key_file: /k/b, ansible_ssh_timeout: 9}\n',
    })
    const r = load(dir)
    const a = r.inventory.hosts.get('a')!.connection
    assert.deepEqual([a.user, a.privateKeyFile, a.port, a.connectTimeoutMs, a.acceptNewHostKeys], ['deploy', join(dir, 'keys/id'), 2200, 3000, true])
    const b = r.inventory.hosts.get('b')!.connection
    assert.deepEqual([b.user, b.privateKeyFile, b.port, b.connectTimeoutMs], ['root', '/k/b', 22, 9000])
    assert.equal(r.inventory.forks, 7)
    assert.equal(load(dir, {argv: ['run', 'site.yml', '-f', '2']}).inventory.forks, undefined)
    assert.equal(load(dir, {argv: ['run', '--forks=2']}).inventory.forks, undefined)
  })

  it('a private_key_file from ansible.cfg that a host would use must exist, named at its cfg line', () => {
    const dir = project({'ansible.cfg': '[defaults]\ninventory = hosts.ini\n\nprivate_key_file = nokey\n', 'hosts.ini': '[g]\na\n'})
    assert.throws(() => load(dir), (e: unknown) => e instanceof InventoryError && e.exitCode === 5 && e.where.file === join(dir, 'ansible.cfg') && e.where.line === 4 && e.where.col === 1 && /private_key_file .*nokey does not exist \(host a would use it\)/.test(e.message))
    writeFileSync(join(dir, 'hosts.ini'), '[g]\na ansible_ssh_private_key_file=/elsewhere\n')
    assert.equal(load(dir).inventory.hosts.get('a')!.connection.privateKeyFile, '/elsewhere')
  })

  it('flagGiven reads oclif spellings and stops at --', () => {
    assert.equal(flagGiven(['-i', 'x'], 'i', 'inventory'), true)
    assert.equal(flagGiven(['-ix'], 'i', 'inventory'), true)
    assert.equal(flagGiven(['--inventory=x'], 'i', 'inventory'), true)
    assert.equal(flagGiven(['--inventory', 'x'], 'i', 'inventory'), true)
    assert.equal(flagGiven(['run', 'pb.yml', '--', '-i'], 'i', 'inventory'), false)
    assert.equal(flagGiven(['--limit', 'x'], 'i', 'inventory'), false)
  })
})
