import type {HostFacts} from '../modules/types.js'

// The host facts: one script, one round trip per host per run. It prints `key=value`
// lines, then the environment after a marker; parseFacts turns them into what the
// modules need (home, cores, …) and Ansible's common facts, named as Ansible names them
// without the ansible_ prefix (the runner exposes both ansible_x and ansible_facts.x).
// No probe may ask DNS: `hostname -f` on a host whose resolver does not answer took 10 s,
// on every connection of every command. The fqdn is what /etc/hosts says (the first name
// with a dot on the hostname's line), as getfqdn finds it there.

/** The fact script (POSIX sh; every probe tolerates a missing tool). */
export const FACTS_SCRIPT = `echo "home=$HOME"
echo "user=$(id -un)"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "pw_dir=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f6)"
echo "shell=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f7)"
echo "system=$(uname -s)"
echo "machine=$(uname -m)"
echo "kernel=$(uname -r)"
echo "kernel_version=$(uname -v)"
echo "nodename=$(uname -n)"
echo "hostname=$(hostname 2>/dev/null || uname -n)"
echo "fqdn=$(awk -v h="$(hostname 2>/dev/null || uname -n)" '!/^[[:space:]]*#/ { for (i = 2; i <= NF; i++) if ($i == h) { for (j = 2; j <= NF; j++) if (index($j, ".")) { print $j; exit } print $2; exit } }' /etc/hosts 2>/dev/null)"
echo "vcpus=$(nproc 2>/dev/null || echo 1)"
echo "cpuinfo=$(awk -F': *' '/^physical id/{p[$2]=1} /^cpu cores/{c=$2} /^siblings/{s=$2} END{n=0; for (k in p) n++; print n "|" c "|" s}' /proc/cpuinfo 2>/dev/null)"
echo "mem=$(awk '/^MemTotal/{t=int($2/1024)} /^MemFree/{f=int($2/1024)} /^SwapTotal/{s=int($2/1024)} END{print t "|" f "|" s}' /proc/meminfo 2>/dev/null)"
( . /etc/os-release 2>/dev/null; echo "os_id=$ID"; echo "os_like=$ID_LIKE"; echo "os_name=$NAME"; echo "os_version=$VERSION_ID"; echo "os_codename=$VERSION_CODENAME"; echo "os_ubuntu_codename=$UBUNTU_CODENAME"; echo "os_pretty=$PRETTY_NAME" )
echo "debian_version=$(cat /etc/debian_version 2>/dev/null)"
echo "route=$(ip -4 route get 8.8.8.8 2>/dev/null | head -n 1)"
echo "addrs=$(ip -4 -o addr show 2>/dev/null | awk '{print $2 "/" $4}' | tr '\\n' ' ')"
for bm_p in apt-get dnf yum zypper apk pacman; do if command -v $bm_p >/dev/null 2>&1; then echo "pkg=$bm_p"; break; fi; done
echo "client=\${SSH_CLIENT%% *}"
echo __BM_ENV__
env
`

/** Ansible's os_family for a distribution (OS_FAMILY_MAP in ansible's distribution.py). */
const FAMILY: Record<string, string> = {}
for (const [family, names] of Object.entries({
  RedHat: [
    'RedHat',
    'Fedora',
    'CentOS',
    'Scientific',
    'SLC',
    'Ascendos',
    'CloudLinux',
    'PSBM',
    'OracleLinux',
    'OVS',
    'OEL',
    'Amazon',
    'Virtuozzo',
    'XenServer',
    'Alibaba',
    'EulerOS',
    'openEuler',
    'AlmaLinux',
    'Rocky',
    'TencentOS',
    'EuroLinux',
    'Kylin Linux Advanced Server',
  ],
  Debian: ['Debian', 'Ubuntu', 'Raspbian', 'Neon', 'KDE neon', 'Linux Mint', 'SteamOS', 'Devuan', 'Kali', 'Cumulus Linux', 'Pop!_OS', 'Parrot', 'Pardus GNU/Linux', 'Uos', 'Deepin', 'OSMC'],
  Suse: ['SuSE', 'SLES', 'SLED', 'openSUSE', 'openSUSE Tumbleweed', 'SLES_SAP', 'SUSE_LINUX', 'openSUSE Leap', 'ALP-Dolomite'],
  Archlinux: ['Archlinux', 'Antergos', 'Manjaro'],
  Mandrake: ['Mandrake', 'Mandriva'],
  Solaris: ['Solaris', 'Nexenta', 'OmniOS', 'OpenIndiana', 'SmartOS'],
  Slackware: ['Slackware'],
  Altlinux: ['Altlinux'],
  Gentoo: ['Gentoo', 'Funtoo'],
  Alpine: ['Alpine'],
  AIX: ['AIX'],
  HPUX: ['HPUX'],
  Darwin: ['MacOSX'],
  FreeBSD: ['FreeBSD', 'TrueOS'],
  ClearLinux: ['Clear Linux OS', 'Clear Linux Mix'],
  DragonFly: ['DragonflyBSD', 'DragonFlyBSD', 'Gentoo/DragonflyBSD', 'Gentoo/DragonFlyBSD'],
  NetBSD: ['NetBSD'],
})) {
  for (const n of names) FAMILY[n] = family
}

/** os-release ID → Ansible's distribution name (distro.id() as Ansible's distribution.py maps it). */
const DISTRIBUTION: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  raspbian: 'Raspbian',
  linuxmint: 'Linux Mint',
  neon: 'KDE neon',
  devuan: 'Devuan',
  kali: 'Kali',
  pop: 'Pop!_OS',
  rhel: 'RedHat',
  centos: 'CentOS',
  fedora: 'Fedora',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  ol: 'OracleLinux',
  amzn: 'Amazon',
  cloudlinux: 'CloudLinux',
  scientific: 'Scientific',
  sles: 'SLES',
  sles_sap: 'SLES_SAP',
  sled: 'SLED',
  'opensuse-leap': 'openSUSE Leap',
  'opensuse-tumbleweed': 'openSUSE Tumbleweed',
  opensuse: 'openSUSE',
  arch: 'Archlinux',
  manjaro: 'Manjaro',
  alpine: 'Alpine',
  gentoo: 'Gentoo',
  slackware: 'Slackware',
  clear_linux: 'Clear Linux OS',
}

// Families a derivative's ID_LIKE points to when its own ID is not in the map.
const LIKE: Array<[RegExp, string]> = [
  [/\b(debian|ubuntu)\b/, 'Debian'],
  [/\b(rhel|fedora|centos)\b/, 'RedHat'],
  [/\bsuse\b/, 'Suse'],
  [/\barch\b/, 'Archlinux'],
  [/\bgentoo\b/, 'Gentoo'],
]

/** Pure: os-release ID / ID_LIKE / NAME → Ansible's distribution and os_family. */
export function distributionOf(id: string, like: string, name: string, system = 'Linux'): {distribution: string; os_family: string} {
  const distribution = DISTRIBUTION[id.toLowerCase()] ?? (name ? name.replace(/ (GNU\/)?Linux$/, '') : system)
  const family = FAMILY[distribution] ?? LIKE.find(([re]) => re.test(like.toLowerCase()))?.[1] ?? distribution
  return {distribution, os_family: family}
}

// apt-get → apt, as Ansible's pkg_mgr names them.
const PKG: Record<string, string> = {'apt-get': 'apt', dnf: 'dnf', yum: 'yum', zypper: 'zypper', apk: 'apk', pacman: 'pacman'}

/** `ip -4 route get` → Ansible's default_ipv4 (address, interface, gateway), {} without a route. */
export function defaultIpv4(route: string, addrs: Array<{iface: string; address: string; prefix: number}>): Record<string, unknown> {
  const dev = /\bdev (\S+)/.exec(route)?.[1]
  const src = /\bsrc (\S+)/.exec(route)?.[1]
  if (!dev || !src) return {}
  const gateway = /\bvia (\S+)/.exec(route)?.[1]
  const a = addrs.find((x) => x.address === src)
  const out: Record<string, unknown> = {address: src, interface: dev, alias: dev}
  if (gateway) out.gateway = gateway
  if (a) {
    out.prefix = String(a.prefix)
    out.netmask = netmask(a.prefix)
    out.network = network(a.address, a.prefix)
  }
  return out
}

function netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.')
}

function network(address: string, prefix: number): string {
  const m = netmask(prefix).split('.').map(Number)
  return address
    .split('.')
    .map((o, i) => Number(o) & m[i])
    .join('.')
}

// "eth0/10.0.0.2/24 lo/127.0.0.1/8 " → interfaces and addresses.
function parseAddrs(text: string): Array<{iface: string; address: string; prefix: number}> {
  return text
    .split(' ')
    .filter(Boolean)
    .map((w) => {
      const [iface, address, prefix] = w.split('/')
      return {iface, address, prefix: Number(prefix)}
    })
    .filter((a) => a.address)
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(line.slice(0, i))) env[line.slice(0, i)] = line.slice(i + 1)
  }
  return env
}

// Debian's full version is in /etc/debian_version (12.11); os-release has only 12.
function versionOf(kv: Record<string, string>, distribution: string): string {
  const deb = kv.debian_version ?? ''
  if (distribution === 'Debian' && /^\d+(\.\d+)*$/.test(deb)) return deb
  return kv.os_version ?? ''
}

/** Pure: the fact script's output → HostFacts (with the Ansible facts under `ansible`). */
export function parseFacts(stdout: string): HostFacts {
  const cut = stdout.indexOf('__BM_ENV__\n')
  const head = cut < 0 ? stdout : stdout.slice(0, cut)
  const env = cut < 0 ? {} : parseEnv(stdout.slice(cut + '__BM_ENV__\n'.length))
  const kv: Record<string, string> = {}
  for (const line of head.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1)
  }
  const vcpus = Math.max(1, Number(kv.vcpus) || 1)
  const [sockets, coresPer, siblings] = (kv.cpuinfo ?? '').split('|').map((x) => Number(x) || 0)
  const [memTotal, memFree, swapTotal] = (kv.mem ?? '').split('|').map((x) => Number(x) || 0)
  const {distribution, os_family} = distributionOf(kv.os_id ?? '', kv.os_like ?? '', kv.os_name ?? '', kv.system || 'Linux')
  const version = versionOf(kv, distribution)
  const addrs = parseAddrs(kv.addrs ?? '')
  const home = kv.home || kv.pw_dir || '/root'
  const fqdn = kv.fqdn || kv.hostname || ''
  const hostname = (kv.hostname ?? '').split('.')[0]
  const ansible: Record<string, unknown> = {
    hostname,
    nodename: kv.nodename ?? '',
    fqdn,
    domain: fqdn.includes('.') ? fqdn.slice(fqdn.indexOf('.') + 1) : '',
    system: kv.system ?? '',
    kernel: kv.kernel ?? '',
    kernel_version: kv.kernel_version ?? '',
    architecture: kv.machine ?? '',
    machine: kv.machine ?? '',
    os_family,
    distribution,
    distribution_version: version,
    distribution_major_version: version.split('.')[0] ?? '',
    distribution_release: kv.os_codename || kv.os_ubuntu_codename || '',
    processor_vcpus: vcpus,
    processor_count: sockets || 1,
    processor_cores: coresPer || vcpus,
    processor_threads_per_core: coresPer && siblings ? Math.max(1, Math.round(siblings / coresPer)) : 1,
    processor_nproc: vcpus,
    memtotal_mb: memTotal,
    memfree_mb: memFree,
    swaptotal_mb: swapTotal,
    default_ipv4: defaultIpv4(kv.route ?? '', addrs),
    all_ipv4_addresses: addrs.filter((a) => !a.address.startsWith('127.')).map((a) => a.address),
    interfaces: [...new Set(addrs.map((a) => a.iface))],
    env,
    user_id: kv.user ?? '',
    user_uid: Number(kv.uid) || 0,
    user_gid: Number(kv.gid) || 0,
    user_dir: kv.pw_dir || home,
    user_shell: kv.shell ?? '',
    pkg_mgr: PKG[kv.pkg ?? ''] ?? 'unknown',
  }
  return {
    home,
    user: kv.user ?? '',
    os: kv.os_pretty || kv.system || '',
    arch: kv.machine ?? '',
    cores: vcpus,
    memMb: memTotal,
    controllerIp: kv.client || '127.0.0.1',
    ansible,
  }
}

/** The variables a play with gather_facts sees: ansible_x for every fact, and ansible_facts. */
export function factVars(f: HostFacts): Record<string, unknown> {
  const a = f.ansible ?? {}
  const out: Record<string, unknown> = {ansible_facts: a}
  for (const [k, v] of Object.entries(a)) out[`ansible_${k}`] = v
  return out
}
