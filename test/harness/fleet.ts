// Real SSH test hosts on this machine: one network namespace + one sshd (with its own
// /root and /tmp) per host, all on a private bridge, so e2e tests exercise the product
// over genuine SSH, TCP and Redis without touching any other machine.
import {execFile, execFileSync, spawn} from 'node:child_process'
import {chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'

export interface TestHost {
  name: string
  ip: string
  netns: string
  home: string
  tmp: string
}

export interface Fleet {
  name: string
  dir: string
  hosts: TestHost[]
  controllerIp: string
  keyPath: string
  knownHostsPath: string
  inventoryPath: string
  writeInventory(opts?: {hosts?: TestHost[]; vars?: Record<string, unknown>; path?: string; group?: string}): string
  addHosts(n: number): Promise<TestHost[]>
  removeHost(host: TestHost): Promise<void>
  setLink(host: TestHost, up: boolean): Promise<void>
  /** Give a host a new address (same subnet), as a re-IPed machine: sshd moves with it; known_hosts and the inventory follow. */
  readdress(host: TestHost, ip: string): Promise<TestHost>
  nsExec(host: TestHost, cmd: string): Promise<ExecResult>
  destroy(): Promise<void>
}

export interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
}

export const BASE_DIR = '/var/tmp/baremetal-hosts'
// Subnet reservations live outside fleet dirs so concurrent creators cannot pick the same /24.
const SUBNET_DIR = join(BASE_DIR, '.subnets')
const PREFIX = '10.213'
const SSHD = '/usr/sbin/sshd'
const READY_TIMEOUT_MS = 15_000
const PARALLEL = 8

interface HostRecord extends TestHost {
  index: number
  dir: string
  veth: string
}

interface State {
  name: string
  dir: string
  octet: number
  nextIndex: number
  hosts: HostRecord[]
}

// Tests call this to get a ready fleet; any failure on the way leaves nothing behind.
export async function createFleet(n: number, opts: {name?: string; dir?: string} = {}): Promise<Fleet> {
  const {name, dir} = claimName(opts.name, opts.dir)
  const fleet = new FleetImpl({name, dir, octet: 0, nextIndex: 1, hosts: []})
  try {
    await fleet.init()
    await fleet.addHosts(n)
    return fleet
  } catch (error) {
    await fleet.destroy().catch(() => {})
    throw error
  }
}

// The CLI creates fleets in one process and tears them down from another.
export async function loadFleet(name: string): Promise<Fleet> {
  checkName(name)
  const file = join(BASE_DIR, name, 'state.json')
  if (!existsSync(file)) throw new Error(`no fleet named ${name} (${file} not found)`)
  return new FleetImpl(JSON.parse(readFileSync(file, 'utf8')) as State)
}

// `down --all` and `list` need every fleet on the machine, even half-created ones.
export function listFleets(): string[] {
  if (!existsSync(BASE_DIR)) return []
  return readdirSync(BASE_DIR, {withFileTypes: true})
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort()
}

// A crash during creation can leave a fleet dir without state.json; clean it up by name anyway.
export async function destroyFleet(name: string): Promise<void> {
  checkName(name)
  const dir = join(BASE_DIR, name)
  let state: State = {name, dir, octet: 0, nextIndex: 1, hosts: []}
  try {
    state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as State
  } catch {}
  await new FleetImpl(state).destroy()
}

class FleetImpl implements Fleet {
  constructor(private state: State) {}

  get name(): string {
    return this.state.name
  }
  get dir(): string {
    return this.state.dir
  }
  get bridge(): string {
    return `${this.state.name}br`
  }
  get controllerIp(): string {
    return `${PREFIX}.${this.state.octet}.1`
  }
  get keyPath(): string {
    return join(this.dir, 'id_ed25519')
  }
  get knownHostsPath(): string {
    return join(this.dir, 'known_hosts')
  }
  get inventoryPath(): string {
    return join(this.dir, 'inventory.yml')
  }
  get hosts(): TestHost[] {
    return this.state.hosts.map(({name, ip, netns, home, tmp}) => ({name, ip, netns, home, tmp}))
  }
  private get ruleSpec(): string[] {
    return ['FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', `baremetal-test-${this.name}`]
  }

  async init(): Promise<void> {
    mkdirSync('/run/sshd', {recursive: true})
    this.state.octet = reserveSubnet(this.name, this.dir)
    this.save()
    const br = this.bridge
    await must('ip', ['link', 'add', br, 'type', 'bridge'])
    // A bridge takes the lowest port MAC unless pinned; pinning stops it changing as hosts come and go.
    await must('ip', ['link', 'set', br, 'address', `02:62:6d:00:${this.state.octet.toString(16).padStart(2, '0')}:01`])
    await must('ip', ['addr', 'add', `${this.controllerIp}/24`, 'dev', br])
    await must('ip', ['link', 'set', br, 'up'])
    // With br_netfilter, bridged frames traverse FORWARD, which may default to DROP.
    await must('iptables', ['-I', ...this.ruleSpec])
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `baremetal-test-${this.name}`, '-f', this.keyPath])
  }

  async addHosts(n: number): Promise<TestHost[]> {
    const first = this.state.nextIndex
    if (first + n - 1 > 244) throw new Error(`fleet ${this.name}: at most 244 host indexes per fleet`)
    const records: HostRecord[] = []
    for (let index = first; index < first + n; index++) {
      const dir = join(this.dir, `h${index}`)
      records.push({
        name: `h${index}`,
        ip: `${PREFIX}.${this.state.octet}.${10 + index}`,
        netns: `${this.name}-h${index}`,
        home: join(dir, 'home'),
        tmp: join(dir, 'tmp'),
        index,
        dir,
        veth: `${this.name}v${index}`,
      })
    }
    // Recorded before anything exists so destroy() can find whatever a failure leaves half-made.
    this.state.nextIndex = first + n
    this.state.hosts.push(...records)
    this.save()
    try {
      await pool(records, PARALLEL, (r) => this.createHost(r))
    } catch (error) {
      for (const r of records) await this.removeHost(r).catch(() => {})
      throw error
    }
    this.writeFiles()
    return records.map(({name, ip, netns, home, tmp}) => ({name, ip, netns, home, tmp}))
  }

  private async createHost(h: HostRecord): Promise<void> {
    mkdirSync(join(h.home, '.ssh'), {recursive: true})
    mkdirSync(h.tmp, {recursive: true})
    chmodSync(h.tmp, 0o1777)
    copyFileSync(`${this.keyPath}.pub`, join(h.home, '.ssh', 'authorized_keys'))
    const hostKey = join(h.dir, 'ssh_host_ed25519_key')
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${h.netns}`, '-f', hostKey])
    const config = join(h.dir, 'sshd_config')
    writeFileSync(
      config,
      [
        `ListenAddress ${h.ip}`,
        'Port 22',
        `HostKey ${hostKey}`,
        `PidFile ${join(h.dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        `AuthorizedKeysFile ${join(h.home, '.ssh', 'authorized_keys')}`,
        'StrictModes no',
        // ~/.ssh/environment lets a test give one host what the users' servers have and
        // these hosts lack (an init system's tools on PATH); no host has one by default.
        'PermitUserEnvironment yes',
        'PrintMotd no',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
        '',
      ].join('\n'),
    )

    await must('ip', ['netns', 'add', h.netns])
    await must('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns])
    await must('ip', ['link', 'set', h.veth, 'master', this.bridge, 'up'])
    await must('ip', ['-n', h.netns, 'link', 'set', 'lo', 'up'])
    await must('ip', ['-n', h.netns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0'])
    await must('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'up'])
    await must('ip', ['-n', h.netns, 'route', 'add', 'default', 'via', this.controllerIp])

    // Own mount namespace so each host has a private /root and /tmp; own UTS so `hostname` tells hosts apart.
    const script = `mount --bind ${h.home} /root && mount --bind ${h.tmp} /tmp && hostname ${h.netns} && ` + `exec ${SSHD} -f ${config} -E ${join(h.dir, 'sshd.log')}`
    const start = await runToFile('ip', ['netns', 'exec', h.netns, 'unshare', '-m', '-u', '--propagation', 'private', 'sh', '-c', script], join(h.dir, 'start.log'))
    if (start.code !== 0) throw new Error(`${h.netns}: sshd did not start: ${start.stdout}${start.stderr}${readLog(h)}`)
    await waitForSsh(h)
  }

  async removeHost(host: TestHost): Promise<void> {
    const h = this.state.hosts.find((r) => r.name === host.name)
    if (!h) throw new Error(`fleet ${this.name} has no host ${host.name}`)
    await killNetns(h.netns)
    await run('ip', ['netns', 'del', h.netns])
    await run('ip', ['link', 'del', h.veth])
    rmSync(h.dir, {recursive: true, force: true})
    this.state.hosts = this.state.hosts.filter((r) => r !== h)
    this.writeFiles()
  }

  async setLink(host: TestHost, up: boolean): Promise<void> {
    // The bridge-side end: the host keeps its address and routes, it just loses carrier, like a pulled cable.
    await must('ip', ['link', 'set', this.record(host).veth, up ? 'up' : 'down'])
  }

  async readdress(host: TestHost, ip: string): Promise<TestHost> {
    const h = this.record(host)
    const last = Number(ip.slice(`${PREFIX}.${this.state.octet}.`.length))
    if (!ip.startsWith(`${PREFIX}.${this.state.octet}.`) || !(Number.isInteger(last) && last >= 2 && last <= 254) || this.state.hosts.some((r) => r.ip === ip)) {
      throw new Error(`${ip}: not a free host address of ${PREFIX}.${this.state.octet}.0/24`)
    }
    const oldPid = sshdPid(h)
    if (oldPid === undefined) throw new Error(`${h.netns}: sshd is not running`)
    await must('ip', ['-n', h.netns, 'addr', 'del', `${h.ip}/24`, 'dev', 'eth0'])
    await must('ip', ['-n', h.netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    await must('ip', ['-n', h.netns, 'route', 'replace', 'default', 'via', this.controllerIp])
    // A new sshd on the new address joins the old one's namespaces (they live on through it), then the old one goes.
    const config = join(h.dir, 'sshd_config')
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^ListenAddress .*$/m, `ListenAddress ${ip}`))
    const pidFile = join(h.dir, 'sshd.pid')
    unlinkSync(pidFile)
    const start = await runToFile('nsenter', ['-t', String(oldPid), '-n', '-m', '-u', SSHD, '-f', config, '-E', join(h.dir, 'sshd.log')], join(h.dir, 'readdress'))
    if (start.code !== 0) throw new Error(`${h.netns}: sshd on ${ip} did not start: ${start.stdout}${start.stderr}${readLog(h)}`)
    const deadline = Date.now() + READY_TIMEOUT_MS
    while (!existsSync(pidFile) && Date.now() < deadline) await sleep(50)
    const newPid = readFileSync(pidFile, 'utf8')
    try {
      process.kill(oldPid, 'SIGTERM')
    } catch {}
    while (running(oldPid) && Date.now() < deadline) await sleep(50)
    writeFileSync(pidFile, newPid) // in case the old sshd removed it on its way out
    h.ip = ip
    await waitForSsh(h)
    this.writeFiles()
    return {name: h.name, ip, netns: h.netns, home: h.home, tmp: h.tmp}
  }

  async nsExec(host: TestHost, cmd: string): Promise<ExecResult> {
    const h = this.record(host)
    const pid = sshdPid(h)
    if (pid === undefined) throw new Error(`${h.netns}: sshd is not running, so its mount namespace is gone`)
    return runToFile('nsenter', ['-t', String(pid), '-n', '-m', '-u', 'sh', '-c', cmd], join(h.dir, `nsexec-${process.pid}-${++execCounter}`))
  }

  writeInventory(opts: {hosts?: TestHost[]; vars?: Record<string, unknown>; path?: string; group?: string} = {}): string {
    const path = opts.path ?? this.inventoryPath
    const vars: Record<string, unknown> = {
      ansible_user: 'root',
      ansible_ssh_private_key_file: this.keyPath,
      ansible_ssh_known_hosts_file: this.knownHostsPath,
      ...opts.vars,
    }
    const lines = ['all:', '  vars:']
    for (const [k, v] of Object.entries(vars)) lines.push(`    ${yamlScalar(k)}: ${yamlScalar(v)}`)
    lines.push('  children:', `    ${yamlScalar(opts.group ?? 'redis')}:`, '      hosts:')
    const hosts = opts.hosts ?? this.hosts
    if (hosts.length === 0) lines[lines.length - 1] += ' {}'
    for (const h of hosts) lines.push(`        ${yamlScalar(h.name)}: {ansible_host: ${h.ip}}`)
    writeFileSync(path, lines.join('\n') + '\n')
    return path
  }

  async destroy(): Promise<void> {
    const {nsPattern, linkPattern} = patterns(this.name)
    const listed = (await run('ip', ['netns', 'list'])).stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => nsPattern.test(n))
    const namespaces = [...new Set([...this.state.hosts.map((h) => h.netns), ...listed])]
    await Promise.all(
      namespaces.map(async (ns) => {
        await killNetns(ns)
        await run('ip', ['netns', 'del', ns])
      }),
    )
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
      .filter((n) => linkPattern.test(n))
    for (const link of links) await run('ip', ['link', 'del', link])
    while ((await run('iptables', ['-C', ...this.ruleSpec])).code === 0) await must('iptables', ['-D', ...this.ruleSpec])
    releaseSubnet(this.name)
    rmSync(this.dir, {recursive: true, force: true})
    this.state.hosts = []
  }

  private record(host: TestHost): HostRecord {
    const h = this.state.hosts.find((r) => r.name === host.name)
    if (!h) throw new Error(`fleet ${this.name} has no host ${host.name}`)
    return h
  }

  private writeFiles(): void {
    const lines = this.state.hosts
      .filter((h) => existsSync(join(h.dir, 'ssh_host_ed25519_key.pub')))
      .map((h) => `${h.ip} ${readFileSync(join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')}`)
    writeFileSync(this.knownHostsPath, lines.map((l) => l + '\n').join(''))
    this.writeInventory()
    this.save()
  }

  private save(): void {
    const file = join(this.dir, 'state.json')
    writeFileSync(`${file}.tmp`, JSON.stringify(this.state, null, 2) + '\n')
    renameSync(`${file}.tmp`, file)
  }
}

let execCounter = 0

function checkName(name: string): void {
  // ≤10 chars keeps `<name>v<index>` within the kernel's 15-char interface names.
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) throw new Error(`fleet name ${JSON.stringify(name)}: use 1-10 of [a-z0-9], starting with a letter`)
}

function claimName(wanted: string | undefined, dirOpt: string | undefined): {name: string; dir: string} {
  mkdirSync(BASE_DIR, {recursive: true})
  const base = wanted ?? `bm${process.pid % 10000}`
  for (let attempt = 0; attempt < 26; attempt++) {
    const name = attempt === 0 ? base : base + String.fromCharCode(96 + attempt)
    checkName(name)
    const dir = dirOpt ?? join(BASE_DIR, name)
    const taken = leftovers(name) || (dirOpt !== undefined && existsSync(join(BASE_DIR, name)))
    if (!taken) {
      try {
        mkdirSync(dir) // atomic: exactly one creator wins a given dir
        return {name, dir}
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
    }
    if (wanted !== undefined) throw new Error(`fleet ${name} already exists (${dir}, or its namespaces/links); tear it down first`)
  }
  throw new Error(`no free fleet name starting with ${base}`)
}

// destroy() cleans up by name pattern, so a name whose namespaces or links already exist must not be reused.
function leftovers(name: string): boolean {
  const {nsPattern, linkPattern} = patterns(name)
  const list = (d: string) => (existsSync(d) ? readdirSync(d) : [])
  return list('/run/netns').some((n) => nsPattern.test(n)) || list('/sys/class/net').some((n) => linkPattern.test(n))
}

function patterns(name: string): {nsPattern: RegExp; linkPattern: RegExp} {
  return {nsPattern: new RegExp(`^${name}-h\\d+$`), linkPattern: new RegExp(`^(${name}v\\d+|${name}br)$`)}
}

function reserveSubnet(name: string, dir: string): number {
  mkdirSync(SUBNET_DIR, {recursive: true})
  const used = usedPrefixes()
  let hash = 2166136261
  for (const c of name) hash = Math.imul(hash ^ c.charCodeAt(0), 16777619) >>> 0
  for (let i = 0; i < 250; i++) {
    const octet = ((hash + i) % 250) + 1
    const net = ipToInt(`${PREFIX}.${octet}.0`)
    if (used.some(([addr, len]) => overlaps(net, 24, addr, len))) continue
    const file = join(SUBNET_DIR, String(octet))
    for (let tries = 0; tries < 2; tries++) {
      try {
        writeFileSync(file, JSON.stringify({name, dir}), {flag: 'wx'})
        return octet
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        // A reservation whose fleet dir is gone was left by a crash; reclaim it.
        let owner: {dir?: string} = {}
        try {
          owner = JSON.parse(readFileSync(file, 'utf8'))
        } catch {}
        if (owner.dir && existsSync(owner.dir)) break
        try {
          unlinkSync(file)
        } catch {}
      }
    }
  }
  throw new Error(`no free ${PREFIX}.X.0/24 subnet`)
}

function releaseSubnet(name: string): void {
  if (!existsSync(SUBNET_DIR)) return
  for (const f of readdirSync(SUBNET_DIR)) {
    try {
      if (JSON.parse(readFileSync(join(SUBNET_DIR, f), 'utf8')).name === name) unlinkSync(join(SUBNET_DIR, f))
    } catch {}
  }
}

// Every IPv4 prefix this machine already uses (addresses and routes), as [network, length].
function usedPrefixes(): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const text = execFileSync('ip', ['-4', '-o', 'addr', 'show'], {encoding: 'utf8'}) + '\n' + execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], {encoding: 'utf8'})
  for (const m of text.matchAll(/(?:^|\s)(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/gm)) {
    const len = m[2] === undefined ? 32 : Number(m[2])
    if (len >= 8) out.push([ipToInt(m[1]), len])
  }
  return out
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0)
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  const len = Math.min(alen, blen)
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0
  return (a & mask) >>> 0 === (b & mask) >>> 0
}

function yamlScalar(v: unknown): string {
  if (typeof v === 'string' && /^[A-Za-z_/][A-Za-z0-9_./@-]*$/.test(v) && !/^(true|false|yes|no|on|off|null|y|n)$/i.test(v)) return v
  return JSON.stringify(v) ?? 'null' // JSON is valid YAML flow syntax
}

function readLog(h: HostRecord): string {
  try {
    return readFileSync(join(h.dir, 'sshd.log'), 'utf8')
  } catch {
    return ''
  }
}

// The pid is only trusted while that process is still inside the host's network namespace.
function sshdPid(h: HostRecord): number | undefined {
  try {
    const pid = Number(readFileSync(join(h.dir, 'sshd.pid'), 'utf8').trim())
    if (!pid) return undefined
    return statSync(`/proc/${pid}/ns/net`).ino === statSync(`/run/netns/${h.netns}`).ino ? pid : undefined
  } catch {
    return undefined
  }
}

async function waitForSsh(h: HostRecord): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (sshdPid(h) !== undefined && (await sshBanner(h.ip))) return
    await sleep(50)
  }
  throw new Error(`${h.netns}: sshd not answering on ${h.ip}:22 after ${READY_TIMEOUT_MS} ms\n${readLog(h)}`)
}

// Alive and not a zombie waiting to be reaped.
function running(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

function sshBanner(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({host: ip, port: 22, timeout: 1000})
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.once('data', (d) => done(d.toString().startsWith('SSH-')))
    sock.once('timeout', () => done(false))
    sock.once('error', () => done(false))
    sock.once('close', () => done(false))
  })
}

// SIGTERM, then SIGKILL after 3 s. Only pids the kernel reports inside our own namespace.
async function killNetns(ns: string): Promise<void> {
  const pids = async () => {
    const r = await run('ip', ['netns', 'pids', ns])
    return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : []
  }
  const signal = (list: number[], sig: NodeJS.Signals) => {
    for (const pid of list)
      try {
        process.kill(pid, sig)
      } catch {}
  }
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms
    let left = await pids()
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(100)
      left = await pids()
    }
    return left
  }
  let left = await pids()
  if (left.length === 0) return
  signal(left, 'SIGTERM')
  left = await gone(3000)
  if (left.length === 0) return
  signal(left, 'SIGKILL')
  left = await gone(3000)
  if (left.length > 0) throw new Error(`${ns}: processes ${left.join(' ')} survived SIGKILL`)
}

function run(cmd: string, args: string[]): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, {encoding: 'utf8'}, (error, stdout, stderr) => {
      if (!error) resolve({code: 0, stdout, stderr})
      else resolve({code: typeof error.code === 'number' ? error.code : null, stdout, stderr: stderr || error.message})
    })
  })
}

async function must(cmd: string, args: string[]): Promise<ExecResult> {
  const r = await run(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r
}

// Output goes to files, not pipes: a command that leaves a daemon behind (`redis-server &`) must not keep us waiting.
function runToFile(cmd: string, args: string[], prefix: string): Promise<ExecResult> {
  const outPath = `${prefix}.out`
  const errPath = `${prefix}.err`
  const out = openSync(outPath, 'w')
  const err = openSync(errPath, 'w')
  return new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, {stdio: ['ignore', out, err], cwd: '/'})
    child.once('error', reject)
    child.once('exit', (code) => resolve({code, stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8')}))
  }).finally(() => {
    closeSync(out)
    closeSync(err)
    for (const p of [outPath, errPath])
      try {
        unlinkSync(p)
      } catch {}
  })
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  const errors: unknown[] = []
  await Promise.all(
    Array.from({length: Math.min(limit, items.length)}, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        try {
          await fn(item)
        } catch (error) {
          errors.push(error)
        }
      }
    }),
  )
  if (errors.length > 0) throw errors[0]
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
