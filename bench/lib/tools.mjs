// The two tools, driven the way their users drive them, against test hosts from the
// harness (real sshd per host, test/harness/fleet.ts): `baremetal …` and
// `ansible-playbook …`. Each call returns the measurement plus the SSH cost seen from
// both ends: connections accepted by the hosts' sshd (their logs) and round trips
// (baremetal: its --json transport stats; Ansible: one per ssh/sftp process it ran).
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {measure} from './measure.mjs'
import {redisServersOnMachine} from './redis.mjs'

export const BENCH = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = resolve(BENCH, '..')
export const BIN = join(ROOT, 'bin/run.js')
const ANSIBLE_DIR = join(BENCH, 'ansible')
const CACHE = process.env.BAREMETAL_SRC_CACHE ?? '/var/cache/baremetal-src'

/** The same local tarball and build flags as the e2e tests (test/e2e/redis-fleet.ts). */
export function redisSource() {
  const files = existsSync(CACHE)
    ? readdirSync(CACHE)
        .filter((f) => /^redis_[\d.]+\.orig\.tar\.gz$/.test(f))
        .sort()
    : []
  if (files.length === 0) throw new Error(`no Redis source tarball in ${CACHE}: run scripts/redis-source.sh first`)
  const tarball = join(CACHE, files[files.length - 1])
  return {tarball, version: /redis_([\d.]+)\.orig/.exec(tarball)[1], makeArgs: 'MALLOC=libc BUILD_TLS=no'}
}

/** Ansible from Debian's packages, GNU time, redis-cli: installed here, never in CI. */
export function ensurePackages({ansible = true} = {}) {
  const need = []
  if (ansible && !existsSync('/usr/bin/ansible-playbook')) need.push('ansible')
  if (!existsSync('/usr/bin/time')) need.push('time')
  if (!existsSync('/usr/bin/redis-cli')) need.push('redis-tools')
  if (need.length === 0) return
  console.error(`# installing ${need.join(' ')} (apt-get)`)
  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  let r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...need], {stdio: 'inherit', env})
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], {stdio: 'inherit', env})
    r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...need], {stdio: 'inherit', env})
  }
  if (r.status !== 0) throw new Error(`apt-get install ${need.join(' ')} failed`)
}

export function ansibleVersion() {
  try {
    return execFileSync('ansible-playbook', ['--version'], {encoding: 'utf8'}).split('\n')[0]
  } catch {
    return '?'
  }
}

/** Compiled product and harness (dist/) must exist; build them when missing. */
export async function loadHarness() {
  const fleetJs = join(ROOT, 'dist/test/harness/fleet.js')
  if (!existsSync(fleetJs) || !existsSync(join(ROOT, 'dist/src/commands/up.js'))) {
    console.error('# building (npx tsc -p .)')
    execFileSync('npx', ['tsc', '-p', '.'], {cwd: ROOT, stdio: 'inherit'})
  }
  return import(fleetJs)
}

export const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a)

/** parseArgs options every fleet benchmark takes; `defaults` per script. */
export function fleetOptions({hosts, ports, runs = '3'}) {
  return {
    hosts: {type: 'string', default: hosts},
    ports: {type: 'string', default: ports},
    runs: {type: 'string', default: runs},
    'max-nodes': {type: 'string', default: '250'},
    // Reuse test hosts made earlier (`npm run hosts -- up N --name NAME`); kept afterwards.
    fleet: {type: 'string'},
  }
}

/**
 * The test hosts a benchmark runs on, made or reused (`fleet`), once this machine's node
 * budget allows `nodes` more redis-server (everyone's counted): exits 2 otherwise.
 */
export async function openFleet({hosts, nodes, maxNodes, fleet: reuse}) {
  const harness = await loadHarness()
  const others = await redisServersOnMachine()
  if (others + nodes > maxNodes) {
    console.error(`refusing: ${others} redis-server already run on this machine; ${nodes} more would pass ${maxNodes} (the kernel's TCP memory runs out near 300 gossiping nodes)`)
    process.exit(2)
  }
  log(reuse ? `reusing test hosts ${reuse}` : `creating ${hosts} test hosts`)
  const fleet = reuse ? await harness.loadFleet(reuse) : await harness.createFleet(hosts)
  if (fleet.hosts.length < hosts) throw new Error(`fleet ${fleet.name} has ${fleet.hosts.length} hosts, fewer than ${hosts}`)
  return {fleet, hosts: fleet.hosts.slice(0, hosts), others}
}

/** Accepted SSH logins so far on every host of the fleet (sshd logs at INFO). */
export function sshdLogins(fleet) {
  let n = 0
  for (const h of fleet.hosts) {
    try {
      n += (readFileSync(join(fleet.dir, h.name, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length
    } catch {}
  }
  return n
}

/** Inventories for both tools over the same hosts: ours as the harness writes it, Ansible's with its known_hosts. */
export function writeInventories(fleet, {count, portStart = 6379, hosts = fleet.hosts, oursVars = {}, ansibleVars = {}}) {
  const ours = fleet.writeInventory({hosts, path: join(fleet.dir, 'bench-baremetal.yml'), vars: {redis_count: count, redis_port_start: portStart, ...oursVars}})
  const ansible = fleet.writeInventory({
    hosts,
    path: join(fleet.dir, 'bench-ansible.yml'),
    vars: {ansible_ssh_common_args: `-o UserKnownHostsFile=${fleet.knownHostsPath} -o StrictHostKeyChecking=yes`},
  })
  // The playbook's play vars outrank inventory vars in Ansible: the shape goes in as -e.
  const ansibleArgs = Object.entries({port_count: count, port_start: portStart, redis_tarball: redisSource().tarball, ...ansibleVars}).flatMap(([k, v]) => ['-e', `${k}=${v}`])
  return {ours, ansible, ansibleArgs}
}

/** `baremetal <cmd> --json` with the shared -e source arguments; stats from its RunResult. */
export async function baremetal(fleet, inventory, cmd, extraArgs = [], {timeoutS = 1800, extraVars = {}} = {}) {
  const src = redisSource()
  const vars = {redis_version: src.version, redis_source: src.tarball, redis_make_args: src.makeArgs, ...extraVars}
  // BM_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): profile a run in place.
  const args = [
    ...(process.env.BM_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    BIN,
    ...cmd.split(' '),
    '-i',
    inventory,
    '--json',
    ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...extraArgs,
  ]
  const before = sshdLogins(fleet)
  const m = await measure(process.execPath, args, {cwd: ROOT, timeoutS})
  let result
  try {
    result = JSON.parse(m.stdout)
  } catch {}
  const stats = Object.values(result?.stats ?? {})
  return {
    tool: 'baremetal',
    ...m,
    result,
    ok: m.code === 0 && result?.exitCode === 0,
    connections: sshdLogins(fleet) - before,
    clientConnections: stats.reduce((a, s) => a + s.connections, 0),
    roundTrips: stats.reduce((a, s) => a + s.execs + s.uploads, 0),
    tasks: result?.tasks ?? [],
  }
}

export const ANSIBLE_VARIANTS = {
  // Out of the box: forks 5, no pipelining, ControlPersist 60s, facts gathered.
  default: () => ({}),
  // What a tuning guide says first: pipelining on, one fork per host at least.
  tuned: (hosts) => ({ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: String(Math.max(hosts, 10))}),
}

/** `ansible-playbook <playbook>` with ssh/sftp counted; a fresh ControlPath dir per run, closed after. */
export async function ansible(fleet, inventory, playbook, variant, {args = [], timeoutS = 3600, hosts = fleet.hosts.length} = {}) {
  const work = mkdtempSync(join(tmpdir(), 'bm-ansible-'))
  const log = join(work, 'ssh.log')
  const cp = join(work, 'cp')
  mkdirSync(cp)
  const env = {
    ...ANSIBLE_VARIANTS[variant](hosts),
    BENCH_SSH_LOG: log,
    ANSIBLE_SSH_EXECUTABLE: join(ANSIBLE_DIR, 'count-ssh'),
    ANSIBLE_SFTP_EXECUTABLE: join(ANSIBLE_DIR, 'count-sftp'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_CALLBACKS_ENABLED: 'profile_tasks',
  }
  const before = sshdLogins(fleet)
  const m = await measure('ansible-playbook', ['-i', inventory, join(ANSIBLE_DIR, playbook), ...args], {env, cwd: ANSIBLE_DIR, timeoutS})
  // ControlPersist masters outlive the run by 60 s: close ours now (by their sockets).
  for (const s of readdirSync(cp)) spawnSync('/usr/bin/ssh', ['-o', `ControlPath=${join(cp, s)}`, '-O', 'exit', 'x'], {stdio: 'ignore'})
  const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []
  rmSync(work, {recursive: true, force: true})
  const recap = /PLAY RECAP[^\n]*\n([\s\S]*?)\n\n/.exec(m.stdout)?.[1] ?? ''
  const failed = [...recap.matchAll(/(?:failed|unreachable)=(\d+)/g)].some((x) => Number(x[1]) > 0)
  return {
    tool: `ansible-${variant}`,
    ...m,
    ok: m.code === 0 && !failed,
    connections: sshdLogins(fleet) - before,
    roundTrips: lines.length,
    sshExecs: lines.filter((l) => l === 'ssh').length,
    sftp: lines.filter((l) => l === 'sftp').length,
    profile: ansibleProfile(m.stdout),
  }
}

// profile_tasks' summary: "Task name ---- 12.34s" lines at the end of the output.
function ansibleProfile(stdout) {
  const tail = stdout.split('=====').pop() ?? ''
  return [...tail.matchAll(/^(.+?) -{3,} (\d+\.\d+)s$/gm)].map((x) => ({task: x[1].trim(), s: Number(x[2])}))
}

/**
 * Fresh state on the test hosts for the next measurement: every instance stopped at once
 * (SHUTDOWN NOSAVE from here: no reconnect storm), then `baremetal down` for directories
 * and firewall rules, and Ansible's directories removed.
 */
export async function scrubHosts(fleet, hosts, inventory, nodes, {shutdownAll, stillUp}) {
  await shutdownAll(nodes)
  await baremetal(fleet, inventory, 'down', [], {timeoutS: 600})
  for (const h of hosts) await fleet.nsExec(h, 'rm -rf /root/legacy_redis_cluster /root/redis_cluster')
  const left = await stillUp(nodes)
  if (left.length) throw new Error(`still answering after cleanup: ${left.slice(0, 5).join(', ')}`)
}

/** TCP memory in use on this machine (pages) and the kernel's pressure / max thresholds. */
export function tcpMemory() {
  const used = Number(/TCP:.* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? 0)
  const [min, pressure, max] = readFileSync('/proc/sys/net/ipv4/tcp_mem', 'utf8').trim().split(/\s+/).map(Number)
  return {used, min, pressure, max}
}
