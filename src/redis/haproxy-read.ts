import type {SentinelTarget} from '../cli/sentinel-target.js'
import type {Inventory} from '../inventory/model.js'
import {secretForms} from '../modules/haproxy.js'
import {closeAll, type ConnectOptions, transportFor} from '../play/runner.js'
import {mask, quote} from '../shell.js'
import {StreamLocalRefused, type Transport} from '../transport/types.js'
import type {HaproxyReading} from './haproxy-view.js'

// The edge of HAProxy's view in `status`: `show stat` from the admin socket of our HAProxy
// (~/.baremetal/haproxy/<cluster>/admin.sock, mode 600, the login user's: the haproxy task
// runs without become) on every HAProxy host, over the SSH connection, nothing installed.
// First choice, OpenSSH's stream-local channel: sshd connects to the socket itself and no
// command runs. Where sshd refuses it (AllowStreamLocalForwarding no, DisableForwarding
// yes), perl's IO::Socket::UNIX on the host: perl-base is Essential on Debian, so a bare
// host has it (the haproxy module reads `show servers state` the same way before a reload).

const REQUEST = 'show stat\n'
const TIMEOUT_MS = 5000

// One round trip: the home the socket path starts from (sshd opens a stream-local path as
// given, not relative to it), and whether there is a socket at all.
const probe = (name: string) => `d="$HOME/.baremetal/haproxy/"${quote(name)}; printf 'home=%s\\n' "$HOME"; [ -S "$d/admin.sock" ] && echo sock=yes; true`

// die prints the errno text (No such file or directory, Connection refused), the reason shown.
const viaPerl = (sock: string) =>
  `command -v perl >/dev/null 2>&1 || { echo 'no perl on the host' >&2; exit 3; }; perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "$!\\n"; print $s $ARGV[1]; print while <$s>;' ${quote(sock)} ${quote(REQUEST)}`

/** One host's `show stat`: over the stream-local channel, or by perl on the host when sshd refuses it. */
export async function readHaproxyOn(t: Transport, name: string): Promise<Omit<HaproxyReading, 'host'>> {
  await t.connect()
  const p = await t.exec(probe(name), {timeoutMs: TIMEOUT_MS})
  const home = /^home=(.*)$/m.exec(p.stdout)?.[1]
  if (p.failed || !home) return {error: `could not look for its admin socket (exit ${p.exitCode}): ${p.stderr.trim().slice(0, 200)}`}
  const sock = `${home}/.baremetal/haproxy/${name}/admin.sock`
  if (!/^sock=yes$/m.test(p.stdout)) return {error: `no admin socket at ${sock}: our HAProxy of ${name} is not running here`}
  if (t.unixSocket) {
    try {
      return {text: await t.unixSocket(sock, REQUEST, TIMEOUT_MS), via: 'stream-local'}
    } catch (error) {
      if (!(error instanceof StreamLocalRefused)) return {error: `${sock}: ${(error as Error).message}`}
    }
  }
  const r = await t.exec(viaPerl(sock), {timeoutMs: TIMEOUT_MS})
  if (r.failed) return {error: `${sock}: ${r.stderr.trim().split('\n').slice(-1)[0] || `exit ${r.exitCode}`}${/refused/i.test(r.stderr) ? ' (HAProxy is not running)' : ''}`, via: 'command'}
  return {text: r.stdout, via: 'command'}
}

/** `show stat` of every HAProxy host of the layout, in parallel; a host that cannot be read says why. Secrets masked. */
export async function readHaproxyStats(inv: Inventory, hosts: string[], clusterName: string, ssh: ConnectOptions, secrets: string[]): Promise<HaproxyReading[]> {
  const transports = new Map<string, {transport: Transport}>()
  try {
    return await Promise.all(
      hosts.map(async (host): Promise<HaproxyReading> => {
        const h = inv.hosts.get(host)
        if (!h) return {host, error: 'not in the inventory'}
        const transport = transportFor(h, {connectRetries: 1, ...ssh})
        transports.set(host, {transport})
        try {
          const r = await readHaproxyOn(transport, clusterName)
          return {host, ...(r.text !== undefined ? {text: mask(r.text, secrets)} : {}), ...(r.error ? {error: mask(r.error, secrets)} : {}), ...(r.via ? {via: r.via} : {})}
        } catch (error) {
          return {host, error: mask((error as Error).message, secrets)}
        }
      }),
    )
  } finally {
    await closeAll(transports)
  }
}

/** The target's HAProxy hosts read (undefined: the inventory has none), the password and its AUTH bytes masked. */
export function readTargetHaproxy(t: SentinelTarget, ssh: ConnectOptions): Promise<HaproxyReading[]> | undefined {
  if (t.layout.haproxy.length === 0) return undefined
  return readHaproxyStats(
    t.inv,
    t.layout.haproxy.map((h) => h.host),
    t.clusterName,
    ssh,
    secretForms({password: t.password}),
  )
}
