import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {ansibleSettings, findAnsibleCfg, parseCfg} from '../../../src/inventory/ansible-cfg.js'

const cfgEnv = (files: string[], env: Record<string, string> = {}, cwdWorldWritable = false) => ({
  env, cwd: '/work/proj', home: '/home/u', cwdWorldWritable,
  exists: (p: string) => files.includes(p), isDir: (p: string) => p === '/cfgdir',
})

describe('ansible.cfg', () => {
  it('is found as Ansible finds it: $ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg, /etc/ansible', () => {
    const all = ['/x/my.cfg', '/cfgdir/ansible.cfg', '/work/proj/ansible.cfg', '/home/u/.ansible.cfg', '/etc/ansible/ansible.cfg']
    assert.equal(findAnsibleCfg(cfgEnv(all, {ANSIBLE_CONFIG: '/x/my.cfg'})).file, '/x/my.cfg')
    assert.equal(findAnsibleCfg(cfgEnv(all, {ANSIBLE_CONFIG: '/cfgdir'})).file, '/cfgdir/ansible.cfg')
    assert.equal(findAnsibleCfg(cfgEnv(all)).file, '/work/proj/ansible.cfg')
    assert.equal(findAnsibleCfg(cfgEnv(all.slice(3))).file, '/home/u/.ansible.cfg')
    assert.equal(findAnsibleCfg(cfgEnv(all.slice(4))).file, '/etc/ansible/ansible.cfg')
    assert.equal(findAnsibleCfg(cfgEnv([])).file, undefined)
    const ww = findAnsibleCfg(cfgEnv(all.slice(2), {}, true))
    assert.equal(ww.file, '/home/u/.ansible.cfg')
    assert.match(ww.notes[0], /world-writable/)
    assert.throws(() => findAnsibleCfg(cfgEnv(all, {ANSIBLE_CONFIG: '/nope.cfg'})), (e: unknown) => e instanceof InventoryError && e.exitCode === 5 && /ANSIBLE_CONFIG .*does not exist/.test(e.message))
  })

  it('reads the [defaults] keys; paths relative to the cfg file; unknown keys ignored', () => {
    const s = ansibleSettings({file: '/p/ansible.cfg', text: `# comment
[defaults]
inventory = hosts.ini, /abs/other.yml   ; inline comment
Remote_User: deploy
private_key_file = keys/id_ed25519
forks = 7
host_key_checking = False
timeout = 3
remote_port = 2200
retry_files_enabled = False
gathering = smart
[ssh_connection]
pipelining = True
`}, {}, '/cwd', '/home/u')
    assert.deepEqual(s.inventory, ['/p/hosts.ini', '/abs/other.yml'])
    assert.equal(s.remoteUser, 'deploy')
    assert.equal(s.privateKeyFile, '/p/keys/id_ed25519')
    assert.equal(s.forks, 7)
    assert.equal(s.hostKeyChecking, false)
    assert.equal(s.timeout, 3)
    assert.equal(s.remotePort, 2200)
    assert.deepEqual(s.where.forks, {file: '/p/ansible.cfg', line: 6, col: 1})
  })

  it('lets ANSIBLE_* environment variables override the file, paths from the current directory', () => {
    const s = ansibleSettings({file: '/p/ansible.cfg', text: '[defaults]\nforks = 7\ninventory = a.ini\n'}, {ANSIBLE_FORKS: '3', ANSIBLE_INVENTORY: 'b.yml', ANSIBLE_REMOTE_USER: 'ops'}, '/cwd', '/h')
    assert.equal(s.forks, 3)
    assert.deepEqual(s.inventory, ['/cwd/b.yml'])
    assert.equal(s.remoteUser, 'ops')
    assert.deepEqual(ansibleSettings(undefined, {ANSIBLE_INVENTORY: 'a.ini,/b.yml,'}, '/cwd', '/h').inventory, ['/cwd/a.ini', '/b.yml'])
    assert.equal(ansibleSettings(undefined, {ANSIBLE_PRIVATE_KEY_FILE: '~/k'}, '/cwd', '/h').privateKeyFile, '/h/k')
  })

  it('parses like configparser: continuation lines, %%, duplicate keys refused', () => {
    const m = parseCfg('[defaults]\ninventory = a.ini,\n    b.ini\nx = 100%%\n', 'c.cfg')
    assert.equal(m.get('defaults')!.get('inventory')!.value, 'a.ini,\nb.ini')
    assert.equal(m.get('defaults')!.get('x')!.value, '100%')
    assert.deepEqual(ansibleSettings({file: '/p/c.cfg', text: '[defaults]\ninventory = a.ini,\n    b.ini\n'}, {}, '/', '/').inventory, ['/p/a.ini', '/p/b.ini'])
  })

  it('refuses what it cannot honour or read, at file:line:col with the fix', () => {
    const bad = (text: string, line: number, re: RegExp, hint?: RegExp) =>
      assert.throws(() => ansibleSettings({file: '/p/ansible.cfg', text}, {}, '/', '/'), (e: unknown) =>
        e instanceof InventoryError && e.exitCode === 5 && e.where.file === '/p/ansible.cfg' && e.where.line === line && e.where.col === 1 && re.test(e.message) && (!hint || hint.test(e.hint ?? '')))
    bad('[defaults]\nforks = many\n', 2, /forks = many is not a whole number/, /forks = 10/)
    bad('[defaults]\nforks = 0\n', 2, /not a whole number ≥ 1/)
    bad('[defaults]\n\ntimeout = 1.5\n', 3, /timeout = 1.5/)
    bad('[defaults]\nhost_key_checking = nope\n', 2, /not a boolean/, /True or False/)
    bad('[defaults]\nhash_behaviour = merge\n', 2, /hash_behaviour = merge is not supported/)
    bad('[defaults]\nforks = 1\nforks = 2\n', 3, /set twice/)
    bad('forks = 1\n', 1, /before any \[section\]/)
    bad('[defaults]\njunk line\n', 2, /expected "key = value"/)
    bad('[defaults]\nx = 50%\n', 2, /%-interpolation/, /%%/)
    bad('[defaults]\n[defaults]\n', 2, /appears twice/)
    bad('[defaults]\nforks = 2\n[privilege_escalation]\nbecome = True\n', 4, /become = True is not supported/, /become: true/)
    assert.equal(ansibleSettings({file: '/p/a.cfg', text: '[privilege_escalation]\nbecome = False\n'}, {}, '/', '/').forks, undefined)
  })
})
