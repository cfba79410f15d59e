import assert from 'node:assert/strict'
import {test} from 'node:test'
import {defaultIpv4, distributionOf, factVars, parseFacts} from '../../../src/play/facts.js'

test('os_family and distribution as Ansible maps os-release', () => {
  const rows: Array<[string, string, string, string, string]> = [
    ['debian', '', 'Debian GNU/Linux', 'Debian', 'Debian'],
    ['ubuntu', 'debian', 'Ubuntu', 'Ubuntu', 'Debian'],
    ['linuxmint', 'ubuntu debian', 'Linux Mint', 'Linux Mint', 'Debian'],
    ['rhel', 'fedora', 'Red Hat Enterprise Linux', 'RedHat', 'RedHat'],
    ['centos', 'rhel fedora', 'CentOS Stream', 'CentOS', 'RedHat'],
    ['rocky', 'rhel centos fedora', 'Rocky Linux', 'Rocky', 'RedHat'],
    ['almalinux', 'rhel centos fedora', 'AlmaLinux', 'AlmaLinux', 'RedHat'],
    ['amzn', 'centos rhel fedora', 'Amazon Linux', 'Amazon', 'RedHat'],
    ['fedora', '', 'Fedora Linux', 'Fedora', 'RedHat'],
    ['opensuse-leap', 'suse opensuse', 'openSUSE Leap', 'openSUSE Leap', 'Suse'],
    ['sles', '', 'SLES', 'SLES', 'Suse'],
    ['arch', '', 'Arch Linux', 'Archlinux', 'Archlinux'],
    ['alpine', '', 'Alpine Linux', 'Alpine', 'Alpine'],
    // An unknown derivative: its own NAME, the family of what it is like.
    ['zorin', 'ubuntu debian', 'Zorin OS', 'Zorin OS', 'Debian'],
  ]
  for (const [id, like, name, dist, family] of rows) assert.deepEqual(distributionOf(id, like, name), {distribution: dist, os_family: family}, id)
})

test('default_ipv4 from ip route get; none without a route', () => {
  const addrs = [
    {iface: 'lo', address: '127.0.0.1', prefix: 8},
    {iface: 'eth0', address: '10.1.2.3', prefix: 24},
  ]
  assert.deepEqual(defaultIpv4('8.8.8.8 via 10.1.2.1 dev eth0 src 10.1.2.3 uid 0', addrs), {
    address: '10.1.2.3',
    interface: 'eth0',
    alias: 'eth0',
    gateway: '10.1.2.1',
    prefix: '24',
    netmask: '255.255.255.0',
    network: '10.1.2.0',
  })
  assert.deepEqual(defaultIpv4('', addrs), {})
})

const OUT = `home=/root
user=root
uid=0
gid=0
pw_dir=/root
shell=/bin/bash
system=Linux
machine=x86_64
kernel=6.1.0-18-amd64
kernel_version=#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1
nodename=h1
hostname=h1
fqdn=h1.lab.example
vcpus=4
cpuinfo=1|2|4
mem=3936|1024|0
os_id=debian
os_like=
os_name=Debian GNU/Linux
os_version=12
os_codename=bookworm
os_ubuntu_codename=
os_pretty=Debian GNU/Linux 12 (bookworm)
debian_version=12.11
route=8.8.8.8 via 10.0.0.1 dev veth0 src 10.0.0.2 uid 0
addrs=lo/127.0.0.1/8 veth0/10.0.0.2/24 
pkg=apt-get
client=10.0.0.1
__BM_ENV__
HOME=/root
PATH=/usr/bin:/bin
`

test("parseFacts: the modules' facts and Ansible's common facts from one script output", () => {
  const f = parseFacts(OUT)
  assert.equal(f.home, '/root')
  assert.equal(f.cores, 4)
  assert.equal(f.memMb, 3936)
  assert.equal(f.os, 'Debian GNU/Linux 12 (bookworm)')
  assert.equal(f.controllerIp, '10.0.0.1')
  const a = f.ansible!
  assert.equal(a.hostname, 'h1')
  assert.equal(a.fqdn, 'h1.lab.example')
  assert.equal(a.domain, 'lab.example')
  assert.equal(a.os_family, 'Debian')
  assert.equal(a.distribution, 'Debian')
  assert.equal(a.distribution_version, '12.11')
  assert.equal(a.distribution_major_version, '12')
  assert.equal(a.distribution_release, 'bookworm')
  assert.equal(a.system, 'Linux')
  assert.equal(a.architecture, 'x86_64')
  assert.equal(a.kernel, '6.1.0-18-amd64')
  assert.equal(a.processor_vcpus, 4)
  assert.equal(a.processor_cores, 2)
  assert.equal(a.processor_count, 1)
  assert.equal(a.processor_threads_per_core, 2)
  assert.equal(a.memtotal_mb, 3936)
  assert.deepEqual(a.all_ipv4_addresses, ['10.0.0.2'])
  assert.equal((a.default_ipv4 as Record<string, unknown>).address, '10.0.0.2')
  assert.equal((a.default_ipv4 as Record<string, unknown>).gateway, '10.0.0.1')
  assert.equal((a.env as Record<string, string>).HOME, '/root')
  assert.equal(a.user_id, 'root')
  assert.equal(a.user_dir, '/root')
  assert.equal(a.pkg_mgr, 'apt')
  const v = factVars(f)
  assert.equal(v.ansible_os_family, 'Debian')
  assert.equal((v.ansible_facts as Record<string, unknown>).os_family, 'Debian')
})

test('parseFacts: Ubuntu keeps os-release VERSION_ID; a bare host still has home and cores', () => {
  const u = parseFacts('os_id=ubuntu\nos_like=debian\nos_name=Ubuntu\nos_version=22.04\nos_codename=jammy\ndebian_version=bookworm/sid\n')
  assert.equal(u.ansible!.distribution_version, '22.04')
  assert.equal(u.ansible!.distribution_major_version, '22')
  assert.equal(u.ansible!.os_family, 'Debian')
  const bare = parseFacts('')
  assert.equal(bare.home, '/root')
  assert.equal(bare.cores, 1)
  assert.deepEqual(bare.ansible!.default_ipv4, {})
})
