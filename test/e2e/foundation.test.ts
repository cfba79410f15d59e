import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, writeFileSync, readFileSync, rmSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {join, resolve} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet} from '../harness/fleet.js'
import {cli, ROOT, show} from './cli.js'

// Foundation, end to end: the real binary against real sshd hosts in namespaces.

const FIX = resolve(ROOT, 'test/fixtures')
let fleet: Fleet
let server: Server
let vars: Record<string, string>
let work: string

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

before(async () => {
  fleet = await createFleet(4)
  work = join(fleet.dir, 'work')
  mkdirSync(work, {recursive: true})
  // A payload served over HTTP on the controller's bridge address (reachable from the hosts only).
  const payload = Buffer.from('payload '.repeat(1000))
  server = createServer((req, res) => {
    if (req.url === '/payload.bin') res.end(payload)
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, fleet.controllerIp, r))
  const port = (server.address() as {port: number}).port
  // An archive on the controller, and a git repository on the shared /var (visible to every host).
  mkdirSync(join(work, 'arch/top'), {recursive: true})
  writeFileSync(join(work, 'arch/top/inside.txt'), 'inside\n')
  execFileSync('tar', ['-czf', join(work, 'a.tar.gz'), '-C', join(work, 'arch'), 'top'])
  const repo = join(work, 'repo')
  mkdirSync(repo)
  const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a])
  git('init', '-q')
  writeFileSync(join(repo, 'README'), 'v1\n')
  git('add', '.')
  git('commit', '-qm', 'v1')
  git('tag', 'v1')
  vars = {
    http_url: `http://${fleet.controllerIp}:${port}`,
    payload_sha256: sha256(payload),
    archive: join(work, 'a.tar.gz'),
    archive_sha256: sha256(readFileSync(join(work, 'a.tar.gz'))),
    git_repo: `file://${repo}`,
  }
})

after(async () => {
  server?.close()
  await fleet?.destroy()
})

const evars = () => Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`])

describe('foundation e2e (3 hosts + 1 fresh host)', () => {
  it('ping reports every host', async () => {
    const r = await cli(['ping', '-i', fleet.inventoryPath, '--json'])
    assert.equal(r.code, 0, show(r))
    assert.equal(r.json.hosts.length, 4)
    for (const h of r.json.hosts) {
      assert.equal(h.status, 'ok')
      assert.match(h.facts.os, /Debian/)
      assert.ok(h.facts.cores >= 1)
    }
  })

  it('exec groups output per host and reports non-zero exits', async () => {
    const inv = fleet.writeInventory({hosts: fleet.hosts.slice(0, 2), path: join(fleet.dir, 'two.yml')})
    const r = await cli(['exec', '-i', inv, '--', 'hostname; test "$(hostname)" != "' + fleet.hosts[1].netns + '"'])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, new RegExp(`== h1 \\(${fleet.hosts[0].ip.replace(/\./g, '\\.')}\\): ok`))
    assert.match(r.stdout, /== h2 .*exit code 1 \(general error\)/)
  })

  it('every module: first run changes, second run changes nothing, check mode on a fresh host changes nothing', async () => {
    const three = fleet.writeInventory({hosts: fleet.hosts.slice(0, 3), path: join(fleet.dir, 'three.yml')})
    const first = await cli(['run', '-i', three, join(FIX, 'all-modules/site.yml'), ...evars(), '--json'])
    assert.equal(first.code, 0, show(first))
    const changed1 = Object.values(first.json.recap as Record<string, {changed: number; failed: number}>)
    assert.ok(
      changed1.every((r) => r.changed > 5 && r.failed === 0),
      JSON.stringify(first.json.recap),
    )

    const second = await cli(['run', '-i', three, join(FIX, 'all-modules/site.yml'), ...evars(), '--json'])
    assert.equal(second.code, 0, show(second))
    const changedTasks = (second.json.tasks as Array<{task: string; host: string; status: string; msg: string}>).filter((t) => t.status === 'changed')
    assert.deepEqual(changedTasks, [], 'second run must change nothing')

    const h1 = fleet.hosts[0]
    const state = await fleet.nsExec(h1, 'cat ~/bm-e2e/greeting.txt ~/bm-e2e/ports/7003/app.conf ~/bm-e2e/unpacked/inside.txt ~/bm-e2e/repo/README; stat -c %a ~/bm-e2e/ports/7003/app.conf')
    assert.match(state.stdout, /hello from h1\n/)
    assert.match(state.stdout, /port 7003\nbus 17003\n/)
    assert.match(state.stdout, /inside\nv1\n600/)

    // The fourth host has never been touched: --check must report changes and make none.
    const fresh = fleet.hosts[3]
    const one = fleet.writeInventory({hosts: [fresh], path: join(fleet.dir, 'fresh.yml')})
    const before = await fleet.nsExec(fresh, 'ls -A ~ | sort')
    const check = await cli(['run', '-i', one, join(FIX, 'all-modules/site.yml'), ...evars(), '--check', '--json'])
    assert.equal(check.code, 0, show(check))
    assert.equal(check.json.check, true)
    assert.ok(check.json.recap.h4.changed > 0, 'check mode reports what would change')
    const afterCheck = await fleet.nsExec(fresh, 'ls -A ~ | sort')
    assert.equal(afterCheck.stdout, before.stdout, 'check mode changed nothing')
  })

  it('a 100-item loop of file, template and command costs ≤ 3 round trips per task per host', async () => {
    const three = fleet.writeInventory({hosts: fleet.hosts.slice(0, 3), path: join(fleet.dir, 'three.yml')})
    for (const pass of [1, 2]) {
      const r = await cli(['run', '-i', three, join(FIX, 'loops.yml'), '--json'])
      assert.equal(r.code, 0, show(r))
      const tasks = r.json.tasks as Array<{task: string; host: string; status: string; items: number; roundTrips: number}>
      assert.equal(tasks.length, 9)
      for (const t of tasks) {
        assert.equal(t.items, 100)
        assert.ok(t.roundTrips <= 3, `${t.task} on ${t.host}: ${t.roundTrips} round trips (pass ${pass})`)
        assert.equal(t.status, pass === 1 ? 'changed' : 'ok', `${t.task} on ${t.host} pass ${pass}`)
      }
    }
    const count = await fleet.nsExec(fleet.hosts[2], 'ls ~/bm-loops | wc -l; ls ~/bm-loops/*/stamp | wc -l')
    assert.equal(count.stdout, '100\n100\n')
  })

  it('hostile values in command args, file paths and templates never execute', async () => {
    const three = fleet.writeInventory({hosts: fleet.hosts.slice(0, 3), path: join(fleet.dir, 'three.yml')})
    const r = await cli(['run', '-i', three, join(FIX, 'inject.yml'), '-e', 'evil=$(touch /tmp/pwned)`touch /tmp/pwned2`', '-e', 'evil2=\'; touch pwned3; echo "', '--json'])
    assert.equal(r.code, 0, show(r))
    for (const h of fleet.hosts.slice(0, 3)) {
      const m = await fleet.nsExec(h, 'ls /tmp/pwned /tmp/pwned2 ~/pwned3 ~/inject/pwned3 2>/dev/null | wc -l; ls -A ~/inject')
      assert.match(m.stdout, /^0\n/, `marker file appeared on ${h.name}: ${m.stdout}`)
      assert.match(m.stdout, /'; touch pwned3; echo "\.conf/)
    }
    const echoed = (r.json.tasks as Array<{host: string; task: string; data?: {stdout?: string}}>).find((t) => t.task === 'command with a hostile argument')
    assert.equal(echoed?.data?.stdout, '$(touch /tmp/pwned)`touch /tmp/pwned2`\n')
  })
})

describe('foundation e2e: bad input and failures', () => {
  const site = () => join(FIX, 'all-modules/site.yml')

  it('malformed YAML names file:line:col, exit 5', async () => {
    const bad = join(fleet.dir, 'bad.yml')
    writeFileSync(bad, '- hosts: all\n  tasks:\n    - command: [oops\n')
    const r = await cli(['run', '-i', fleet.inventoryPath, bad])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, new RegExp(`${bad.replace(/\//g, '\\/')}:\\d+:\\d+: invalid YAML`))
  })

  it('unknown module and unknown argument name the line and the allowed names', async () => {
    const p = join(fleet.dir, 'unknown.yml')
    writeFileSync(p, '- hosts: all\n  tasks:\n    - name: t\n      copyy: {src: a, dest: b}\n')
    let r = await cli(['run', '-i', fleet.inventoryPath, p])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /unknown\.yml:4:\d+: unknown module "copyy"/)
    assert.match(r.stderr, /did you mean "copy"/)
    writeFileSync(p, '- hosts: all\n  tasks:\n    - file: {path: /x, stat: directory}\n')
    r = await cli(['run', '-i', fleet.inventoryPath, p])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /unknown\.yml:3:\d+: unknown argument "stat" for module file/)
    assert.match(r.stderr, /hint: file takes: path, state/)
  })

  it('an undefined template variable is an error naming it, never an empty string', async () => {
    const p = join(fleet.dir, 'undef.yml')
    writeFileSync(p, '- hosts: all\n  tasks:\n    - name: t\n      file: {path: "~/x-{{ nosuchvar }}", state: directory}\n')
    const r = await cli(['run', '-i', fleet.inventoryPath, p])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /undef\.yml:3:\d+.*undefined variable "nosuchvar"/)
    const m = await fleet.nsExec(fleet.hosts[0], 'ls -d ~/x-* 2>/dev/null | wc -l')
    assert.equal(m.stdout.trim(), '0')
  })

  it('-e that is not key=value is refused before anything runs', async () => {
    const r = await cli(['run', '-i', fleet.inventoryPath, site(), '-e', 'justaword'])
    assert.equal(r.code, 5, show(r))
    assert.match(r.stderr, /-e "justaword" is not key=value/)
  })

  it('an unreachable host is reported while the others finish; exit code says unreachable', async () => {
    const inv = fleet.writeInventory({path: join(fleet.dir, 'unreach.yml'), hosts: fleet.hosts.slice(0, 2)})
    // Add a host at an unused address of the fleet's own subnet: no one answers there.
    const ghost = fleet.hosts[0].ip.replace(/\.\d+$/, '.250')
    writeFileSync(inv, readFileSync(inv, 'utf8').replace(/(\n\s+h1:)/, `\n        ghost: {ansible_host: ${ghost}}$1`))
    const p = join(fleet.dir, 'touch.yml')
    writeFileSync(p, '- hosts: all\n  tasks:\n    - file: {path: ~/reached, state: touch}\n')
    const r = await cli(['run', '-i', inv, p, '--json'], {timeoutMs: 120_000})
    assert.equal(r.code, 4, show(r))
    assert.equal(r.json.recap.ghost.unreachable, 1)
    assert.equal(r.json.recap.h1.changed + r.json.recap.h1.ok, 1)
    assert.equal(r.json.recap.h2.failed, 0)
    const m = await fleet.nsExec(fleet.hosts[1], 'test -e ~/reached && echo yes')
    assert.equal(m.stdout.trim(), 'yes')
  })

  it('a wrong key fails authentication clearly', async () => {
    const other = join(fleet.dir, 'otherkey')
    rmSync(other, {force: true})
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const inv = fleet.writeInventory({hosts: fleet.hosts.slice(0, 1), vars: {ansible_ssh_private_key_file: other}, path: join(fleet.dir, 'wrongkey.yml')})
    const r = await cli(['ping', '-i', inv])
    assert.equal(r.code, 4, show(r))
    assert.match(r.stdout, /authentication failed for root@/)
  })

  it('a changed host key is refused with the command that fixes it', async () => {
    const known = join(fleet.dir, 'known_changed')
    const h = fleet.hosts[0]
    const other = join(fleet.dir, 'hostkey2')
    rmSync(other, {force: true})
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    writeFileSync(
      known,
      `${h.ip} ${readFileSync(other + '.pub', 'utf8')
        .split(' ')
        .slice(0, 2)
        .join(' ')}\n`,
    )
    const inv = fleet.writeInventory({hosts: [h], vars: {ansible_ssh_known_hosts_file: known}, path: join(fleet.dir, 'changedkey.yml')})
    const r = await cli(['ping', '-i', inv])
    assert.equal(r.code, 4, show(r))
    assert.match(r.stdout, /host key for .* CHANGED/)
    assert.match(r.stdout, /ssh-keygen -f .* -R/)
    // An unknown key (empty known_hosts) is also refused, unless the user accepts new keys explicitly.
    writeFileSync(known, '')
    const r2 = await cli(['ping', '-i', inv])
    assert.equal(r2.code, 4, show(r2))
    assert.match(r2.stdout, /not in .*--accept-new-host-keys/)
    const r3 = await cli(['ping', '-i', inv, '--accept-new-host-keys'])
    assert.equal(r3.code, 0, show(r3))
    assert.match(readFileSync(known, 'utf8'), new RegExp(h.ip.replace(/\./g, '\\.') + ' ssh-ed25519 '))
  })

  it('a failing command shows the command, exit code with its meaning and the stderr tail', async () => {
    const p = join(fleet.dir, 'fail.yml')
    writeFileSync(p, '- hosts: h1\n  tasks:\n    - name: boom\n      shell: echo first-line >&2; echo some-detail >&2; nosuchcommand-xyz\n    - name: never\n      command: "true"\n')
    const r = await cli(['run', '-i', fleet.inventoryPath, p])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /failed\s+h1: .*exit code 127 \(command not found\)/)
    assert.match(r.stdout, /nosuchcommand-xyz: not found/)
    assert.match(r.stdout, /some-detail/)
    assert.doesNotMatch(r.stdout, /TASK \[never\]/)
    assert.match(r.stdout, /h1\s+ok=0 changed=0 failed=1/)
  })
})
