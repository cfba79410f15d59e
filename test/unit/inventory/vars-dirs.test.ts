import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, describe, it} from 'node:test'
import {InventoryError} from '../../../src/errors.js'
import {loadInventorySources} from '../../../src/inventory/sources.js'

const root = mkdtempSync(join(tmpdir(), 'inv-vars-'))
after(() => rmSync(root, {recursive: true, force: true}))
let n = 0
const project = (files: Record<string, string>): string => {
  const dir = join(root, `p${n++}`)
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), {recursive: true})
    writeFileSync(join(dir, p), text)
  }
  return dir
}
const load = (dir: string, inv: string, playbooks: string[] = []) =>
  loadInventorySources({given: join(dir, inv), fallback: '/nonexistent', playbooks: playbooks.map((p) => join(dir, p)), env: {}, cwd: dir, home: join(dir, 'home')})

describe('group_vars and host_vars', () => {
  it("merge in Ansible's order: inventory file < group_vars/all < group_vars/<group> by depth < host; playbook beside wins", () => {
    const dir = project({
      'inv/hosts.ini': '[child]\nh1 k_host_ini=ini_host k_top=ini_host\n[parent:children]\nchild\n[child:vars]\nk_grp=ini_child\nk_all=ini_child\n[all:vars]\nk_all=ini_all\nk_only_ini=ini_all\n',
      'inv/group_vars/all.yml': 'k_all: gv_all\nk_grp: gv_all\nk_pball: inv_all\n',
      'inv/group_vars/parent.yaml': 'k_grp: gv_parent\nk_depth: parent\n',
      'inv/group_vars/child/10-a.yml': 'k_depth: child\nk_dir: a\n',
      'inv/group_vars/child/20-b': 'k_dir: b\n',
      'inv/group_vars/child/notes.txt': 'k_dir: ignored\n',
      'inv/group_vars/child/.hidden.yml': 'k_dir: hidden\n',
      'inv/host_vars/h1.yml': 'k_host_ini: inv_host\nk_top: inv_host\n',
      'pb/group_vars/all.yml': 'k_pball: pb_all\n',
      'pb/group_vars/child.yml': 'k_depth: pb_child\n',
      'pb/host_vars/h1': 'k_top: pb_host\n',
      'pb/site.yml': '- hosts: all\n  tasks: []\n',
    })
    const {inventory} = load(dir, 'inv/hosts.ini', ['pb/site.yml'])
    const h = inventory.hosts.get('h1')!.vars
    assert.equal(h.k_only_ini, 'ini_all')
    assert.equal(h.k_all, 'gv_all') // group_vars/all beats the inventory file's child group vars
    assert.equal(h.k_grp, 'gv_parent')
    assert.equal(h.k_pball, 'pb_all')
    assert.equal(h.k_depth, 'pb_child')
    assert.equal(h.k_dir, 'b')
    assert.equal(h.k_host_ini, 'inv_host')
    assert.equal(h.k_top, 'pb_host')
  })

  it('uses NAME before NAME.yml (the first that exists), like find_vars_files', () => {
    const dir = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'group_vars/g': 'x: plain\n', 'group_vars/g.yml': 'x: yml\ny: 1\n'})
    const v = load(dir, 'hosts.yml').inventory.hosts.get('h')!.vars
    assert.equal(v.x, 'plain')
    assert.equal(v.y, undefined)
  })

  it('a connection error points at the group_vars line that set it; relative key paths are from the inventory file', () => {
    const dir = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'group_vars/g.yml': 'a: 1\nansible_port: nope\n'})
    assert.throws(() => load(dir, 'hosts.yml'), (e: unknown) => e instanceof InventoryError && e.where.file === join(dir, 'group_vars/g.yml') && e.where.line === 2 && e.where.col === 1 && /not a TCP port/.test(e.message))
    const d2 = project({'inv/hosts.yml': 'g: {hosts: {h: }}\n', 'inv/group_vars/all/ssh.yml': 'ansible_ssh_private_key_file: ../keys/id\n'})
    assert.equal(load(d2, 'inv/hosts.yml').inventory.hosts.get('h')!.connection.privateKeyFile, join(d2, 'keys/id'))
  })

  it('errors inside vars files carry their own file:line:col', () => {
    const yamlErr = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'host_vars/h.yml': 'a: 1\nb: [1\n'})
    assert.throws(() => load(yamlErr, 'hosts.yml'), (e: unknown) => e instanceof InventoryError && e.where.file === join(yamlErr, 'host_vars/h.yml') && (e.where.line ?? 0) >= 2 && typeof e.where.col === 'number' && /invalid YAML/.test(e.message))
    const list = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'group_vars/g.yml': '- a\n- b\n'})
    assert.throws(() => load(list, 'hosts.yml'), (e: unknown) => e instanceof InventoryError && e.where.line === 1 && e.where.col === 1 && /must hold a mapping of variables, not a list/.test(e.message))
    const vault = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'group_vars/all.yml': '$ANSIBLE_VAULT;1.1;AES256\n6162\n'})
    assert.throws(() => load(vault, 'hosts.yml'), (e: unknown) => e instanceof InventoryError && e.where.line === 1 && /Vault/.test(e.message) && /ansible-vault decrypt/.test(e.hint ?? ''))
  })

  it('an empty vars file is fine; an entry naming no group or host is reported, not silently dropped', () => {
    const dir = project({'hosts.yml': 'g: {hosts: {h: }}\n', 'group_vars/g.yml': '', 'group_vars/redsi.yml': 'x: 1\n'})
    const r = load(dir, 'hosts.yml')
    assert.equal(r.inventory.hosts.get('h')!.vars.x, undefined)
    assert.ok(r.notes.some((m) => /group_vars\/redsi\.yml names no group or host/.test(m)), r.notes.join('\n'))
  })
})
