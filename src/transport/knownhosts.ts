import {createHash, createHmac} from 'node:crypto'
import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'

// Host keys are checked against OpenSSH's known_hosts (plain and hashed names) so a
// fleet already trusted by `ssh` is trusted here, and a changed key fails closed.

export type HostKeyVerdict = 'match' | 'unknown' | 'changed'

/** The name OpenSSH writes for a host: `addr`, or `[addr]:port` off port 22. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

function nameMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
    return h === hash
  }
  return pattern.split(',').some((p) => {
    if (p.startsWith('!')) return false
    const re = new RegExp(
      '^' +
        p
          .replace(/[.+^${}()|\\]/g, '\\$&')
          .replace(/\[/g, '\\[')
          .replace(/\]/g, '\\]')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.') +
        '$',
    )
    return re.test(name)
  })
}

/** Compare a presented key (ssh wire format) with the file's entries for that host. */
export function verifyHostKey(file: string, address: string, port: number, key: Buffer): HostKeyVerdict {
  if (!existsSync(file)) return 'unknown'
  const name = knownHostsName(address, port)
  const presented = key.toString('base64')
  let sawHost = false
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const parts = line.split(/\s+/)
    if (parts[0].startsWith('@')) continue // @cert-authority / @revoked: not supported, ignore
    const [hosts, , b64] = parts
    if (!hosts || !b64 || !nameMatches(hosts, name)) continue
    if (b64 === presented) return 'match'
    // Same host, another key type is not a change (sshd offers several); only same type is.
    const presentedType = key.subarray(4, 4 + key.readUInt32BE(0)).toString()
    if (parts[1] === presentedType) sawHost = true
  }
  return sawHost ? 'changed' : 'unknown'
}

/** Remember a host's key after the user explicitly allowed new keys. */
export function addHostKey(file: string, address: string, port: number, key: Buffer): void {
  const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString()
  mkdirSync(dirname(file), {recursive: true, mode: 0o700})
  appendFileSync(file, `${knownHostsName(address, port)} ${type} ${key.toString('base64')}\n`, {mode: 0o600})
}

/** SHA256 fingerprint as `ssh-keygen -lf` prints it, for error messages. */
export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '')
}
