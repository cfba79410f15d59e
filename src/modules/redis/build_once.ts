// Build once, copy everywhere (redis_build with build_once): hosts that share OS release,
// architecture and libc, and want the same binaries (same source identity and make
// arguments: the build marker), get them from one host instead of compiling each. A host
// that already has them is the source; otherwise the first host of the play that needs
// them compiles, and the others wait for it. The binaries go through the controller (base64
// over the provider's SSH connection, then over each receiver's), are checked by sha256 on
// both ends, and each receiver runs its redis-server --version before it moves them into
// place. A host of another platform, or one whose copy does not run, builds itself.
//
// The hosts of one task run concurrently, each in its own module call: they meet in a
// Rendezvous kept per task execution (the playHosts array the runner hands every host of
// it). Nothing waits on a host that has not started: only a host already building is
// ever waited for, so a forks limit below the host count cannot deadlock.

import {createHash} from 'node:crypto'
import {quote} from '../../shell.js'
import type {Transport} from '../../transport/types.js'
import {buildUploadScript} from '../../transport/upload-script.js'

/** The binaries redis_build installs (and build_once copies). */
export const BINARIES = ['redis-server', 'redis-cli'] as const

/** What decides whether a binary built on one host runs on another. */
export interface PlatformFacts {
  /** ID:VERSION_ID from /etc/os-release, e.g. debian:12. */
  os: string
  /** uname -m. */
  arch: string
  /** First line of ldd --version, e.g. "ldd (Debian GLIBC 2.36-9+deb12u14) 2.36". */
  libc: string
}

/** The sharing key of a platform, or null when any part is unknown: such a host builds itself. */
export function platformKey(p: Partial<PlatformFacts>): string | null {
  const os = (p.os ?? '').trim()
  const arch = (p.arch ?? '').trim()
  const libc = (p.libc ?? '').trim()
  if (!/^[^:]+:[^:]+$/.test(os) || !arch || !libc) return null
  return `${os} ${arch} ${libc}`
}

export interface Member {
  host: string
  /** Position in the play's host list: the builder is the first that needs a build. */
  order: number
  /** Has the binaries already (its marker matches): a source, nothing to build. */
  has: boolean
}

/** Who provides a group's binaries: a host that has them, else the first one that needs them builds. */
export function chooseProvider(members: Member[]): {host: string; build: boolean} | undefined {
  const sorted = [...members].sort((a, b) => a.order - b.order)
  const has = sorted.find((m) => m.has)
  if (has) return {host: has.host, build: false}
  return sorted.length ? {host: sorted[0].host, build: true} : undefined
}

export interface Artifact {
  from: string
  files: Array<{name: string; content: Buffer; sha256: string}>
}

interface Group {
  members: Member[]
  provider?: {host: string; build: boolean}
  /** Settles with the binaries, or undefined when the provider could not give them. */
  artifact?: Promise<Artifact | undefined>
  fetchers: Map<string, () => Promise<Artifact | undefined>>
}

export class Rendezvous {
  private groups = new Map<string, Group>()
  private joined = new Set<string>()
  private release: Array<() => void> = []

  constructor(private readonly hosts: string[]) {}

  private group(key: string): Group {
    let g = this.groups.get(key)
    if (!g) this.groups.set(key, (g = {members: [], fetchers: new Map()}))
    return g
  }

  /** A host with the binaries in place: others may fetch them from it (lazily, once). */
  offer(key: string, host: string, fetch: () => Promise<Artifact | undefined>): void {
    const g = this.group(key)
    g.members.push({host, order: this.hosts.indexOf(host), has: true})
    g.fetchers.set(host, fetch)
    this.arrive(host)
  }

  /**
   * A host that needs the binaries: after every host of the play arrived (or waitMs), who
   * provides them. 'build' for the provider itself; otherwise the binaries, or undefined
   * when the provider failed (then the host builds itself).
   */
  async need(key: string, host: string, waitMs: number): Promise<{role: 'build'} | {role: 'copy'; artifact: Artifact | undefined; from: string}> {
    const g = this.group(key)
    g.members.push({host, order: this.hosts.indexOf(host), has: false})
    this.arrive(host)
    if (!g.provider) await this.everyone(waitMs)
    // The first to get past the wait decides for the group; later arrivals follow it.
    g.provider ??= chooseProvider(g.members)!
    const p = g.provider
    if (p.host === host) return {role: 'build'}
    if (!g.artifact) {
      if (p.build) {
        let settle!: (a: Artifact | undefined) => void
        g.artifact = new Promise((r) => (settle = r))
        this.pending.set(`${key}\n${p.host}`, settle)
      } else {
        g.artifact = g.fetchers.get(p.host)!().catch(() => undefined)
      }
    }
    return {role: 'copy', artifact: await g.artifact, from: p.host}
  }

  private pending = new Map<string, (a: Artifact | undefined) => void>()

  /** The builder's outcome for the hosts waiting on it (undefined: they build themselves). */
  built(key: string, host: string, artifact: Promise<Artifact | undefined>): void {
    const g = this.group(key)
    const safe = artifact.catch(() => undefined)
    const settle = this.pending.get(`${key}\n${host}`)
    if (settle) {
      this.pending.delete(`${key}\n${host}`)
      void safe.then(settle)
    } else {
      g.artifact ??= safe
    }
  }

  private arrive(host: string): void {
    this.joined.add(host)
    if (this.hosts.every((h) => this.joined.has(h))) for (const r of this.release.splice(0)) r()
  }

  private everyone(waitMs: number): Promise<void> {
    if (this.hosts.every((h) => this.joined.has(h))) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(resolve, waitMs)
      this.release.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }
}

const sessions = new WeakMap<object, Rendezvous>()

/** The rendezvous of one task execution: the runner hands all its hosts the same playHosts array. */
export function rendezvousFor(playHosts: Array<{host: string}>): Rendezvous {
  let r = sessions.get(playHosts)
  if (!r) sessions.set(playHosts, (r = new Rendezvous(playHosts.map((h) => h.host))))
  return r
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Reads the installed binaries off a host (one round trip), each checked against the sha256 the host computed. */
export async function fetchBinaries(transport: Transport, host: string, bin: string): Promise<Artifact> {
  const script = [
    `bin=${quote(bin)}`,
    `for b in ${BINARIES.join(' ')}; do`,
    `  [ -f "$bin/$b" ] || { echo "@@MISSING $b"; exit 3; }`,
    `  echo "@@F $b $(sha256sum < "$bin/$b" | cut -c1-64)"`,
    `  base64 < "$bin/$b" || exit 4`,
    `done`,
    `echo "@@END"`,
  ].join('\n')
  const r = await transport.exec('sh -s', {stdin: script + '\n', timeoutMs: 10 * 60_000})
  if (r.failed || !r.stdout.includes('@@END'))
    throw new Error(`reading the binaries from ${host} failed (exit ${r.exitCode}): ${(r.stdout.match(/@@MISSING \S+/)?.[0] ?? r.stderr).trim().slice(-300)}`)
  return {from: host, files: parseFetched(r.stdout, host)}
}

// "@@F name sha" then base64 lines, per binary.
export function parseFetched(stdout: string, host: string): Artifact['files'] {
  const files: Artifact['files'] = []
  const parts = stdout.split(/^@@F /m).slice(1)
  for (const part of parts) {
    const nl = part.indexOf('\n')
    const [name, want] = part.slice(0, nl).trim().split(/\s+/)
    const content = Buffer.from(part.slice(nl + 1).replace(/@@END[\s\S]*$/, ''), 'base64')
    const got = sha256(content)
    if (got !== want) throw new Error(`${name} read from ${host} has sha256 ${got}, the host said ${want}: transfer damaged`)
    files.push({name, content, sha256: got})
  }
  if (files.length !== BINARIES.length) throw new Error(`expected ${BINARIES.join(', ')} from ${host}, got ${files.map((f) => f.name).join(', ') || 'nothing'}`)
  return files
}

/**
 * The receiver's one round trip: the binaries it lacks (by sha256) land beside bin_dir's,
 * each is checked by sha256 and by running redis-server --version (it must say `version`),
 * then moved into place with the marker. Prints @@ COPIED, or @@ NOTRUN/@@ BADSHA + why.
 */
export function installScript(bin: string, artifact: Artifact, have: Record<string, string>, version: string | null, marker: string, host: string): string {
  // Per receiver: hosts sharing bin_dir (one /usr/local) must not write one temp file.
  const incoming = (n: string) => `${bin}/.${n}.baremetal-copy.${host.replace(/[^A-Za-z0-9_.-]/g, '_')}`
  const send = artifact.files.filter((f) => have[f.name] !== f.sha256)
  const lines = [`mkdir -p ${quote(bin)} || exit 3`, buildUploadScript(send.map((f) => ({path: incoming(f.name), content: f.content, mode: 0o755}))), 'set +e', `bin=${quote(bin)}`]
  // The file each binary is checked as: the one in place when its sha256 already matched.
  const at = (name: string) => (send.some((f) => f.name === name) ? quote(incoming(name)) : `"$bin/${name}"`)
  for (const f of artifact.files) lines.push(`s=$(sha256sum < ${at(f.name)} | cut -c1-64); [ "$s" = ${quote(f.sha256)} ] || { echo "@@ BADSHA ${f.name} $s"; exit 2; }`)
  lines.push(`v=$(${at('redis-server')} --version 2>&1); case "$v" in *${quote(version ? `v=${version} ` : 'v=')}*) ;; *) echo "@@ NOTRUN $v"; exit 2;; esac`)
  for (const f of send) lines.push(`mv -f ${quote(incoming(f.name))} "$bin/${f.name}" || { echo "@@ NOTRUN could not move ${f.name} into $bin"; exit 3; }`)
  lines.push(`printf '%s\\n' ${quote(marker)} > "$bin/.baremetal-build.tmp.$$" && mv -f "$bin/.baremetal-build.tmp.$$" "$bin/.baremetal-build" || exit 3`, 'echo "@@ COPIED"')
  return lines.join('\n') + '\n'
}
