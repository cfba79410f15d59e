// redis_source: put a Redis source tree on the host, verified, ready for redis_build.
//
// Parameters:
//   version  string  Redis version; with a git source, the tag to clone (default "5.0.3")
//   source   string  where the tree comes from (default: the official release tarball):
//                      ""                     https://download.redis.io/releases/redis-<version>.tar.gz,
//                                             checked against the sha256 Redis publishes
//                      https://…/x.tar.gz     any tarball URL (sha256 required)
//                      git+https://…/redis    git clone at tag <version>
//                      path/to/redis.tar.gz   a tarball on the controller (relative to the
//                                             playbook), pushed unless the host has it already
//   sha256   string  expected sha256 of the tarball
//   dest     path    where the tree is unpacked, top directory stripped (default ~/redis_src)
//
// The tree carries a marker, dest/.baremetal-source, with its identity (sha256:… or git:…);
// the same identity already there means nothing is transferred. A new tree is unpacked next
// to dest and swapped in, so a bad download never damages the tree already in place. The
// verified tarball stays beside it (dest.baremetal-tarball): a re-unpack needs no transfer.
// The new tree's src/version.h must say `version` (checked before the swap and the build;
// a tree already in place is checked too): a URL, tag or tarball holding another version
// fails, naming both, and the tree in place stays as it was.
//
// Example:
//   - name: Redis source
//     redis_source:
//       version: "7.0.15"
//       dest: ~/redis_src
//   - name: Redis source from the controller
//     redis_source:
//       source: files/redis-7.0.15.tar.gz
//       sha256: 98066f5363504b26c34dd20fbcc3c957990d764cdf42576c836fc021073f4341

import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {homedir} from 'node:os'
import {isAbsolute, posix, resolve} from 'node:path'
import {UnreachableError} from '../../errors.js'
import {RELEASE_SHA256, releaseUrl} from '../../redis/versions.js'
import {expandHome, mask, quote} from '../../shell.js'
import type {ExecResult} from '../../transport/types.js'
import {defineItemModule} from '../define.js'
import type {ItemResult, ModuleContext} from '../types.js'

export type SourceKind = {kind: 'release'; url: string} | {kind: 'url'; url: string} | {kind: 'git'; url: string} | {kind: 'controller'; path: string}

// Which of the four ways to get a tree a `source:` string means, decided without I/O.
export function detectSource(source: string, version: string, playbookDir: string): SourceKind {
  const s = source.trim()
  if (s === '') return {kind: 'release', url: releaseUrl(version)}
  if (s.startsWith('git+')) return {kind: 'git', url: s.slice(4)}
  if (/^https?:\/\//i.test(s)) return {kind: 'url', url: s}
  const local = s === '~' || s.startsWith('~/') ? expandHome(s, homedir()) : s
  return {kind: 'controller', path: isAbsolute(local) ? local : resolve(playbookDir, local)}
}

// The sha256 a tarball must have, or why we cannot know it: never unpack an unverified download.
export function expectedSha256(src: SourceKind, version: string, given: string): {sha?: string; error?: string} {
  const sha = given.trim().toLowerCase()
  if (sha && !/^[0-9a-f]{64}$/.test(sha)) return {error: `sha256 must be 64 hex digits, got "${given}"`}
  switch (src.kind) {
    case 'git':
      return sha ? {error: 'sha256 does not apply to a git source (its identity is the commit of the tag)'} : {}
    case 'release': {
      const known = sha || RELEASE_SHA256[version]
      if (!known) {
        return {error: `no published sha256 known for redis ${version}: pass sha256 (see github.com/redis/redis-hashes)`}
      }
      return {sha: known}
    }
    case 'url':
      return sha ? {sha} : {error: `sha256 is required to download ${src.url}`}
    case 'controller':
      return sha ? {sha} : {}
  }
}

/** What the facts script found on the host. */
export interface SourceFacts {
  /** First line of dest/.baremetal-source, '' when absent. */
  marker: string
  /** sha256 of the cached tarball beside dest, '' when absent (or not looked at). */
  stagedSha: string
  fetcher: 'curl' | 'wget' | ''
  git: boolean
  /** `git ls-remote` output lines for the tag (git sources only). */
  remote: string[]
  remoteError: string
  /** REDIS_VERSION of the tree already at dest (its src/version.h), when there is one. */
  treeVersion?: string
}

export type SourcePlan = {action: 'noop'; reason: string; identity: string} | {action: 'fail'; msg: string} | {action: 'fetch'; identity: string; transfer: 'download' | 'push' | 'cached' | 'clone'}

// The commit a tag points to: the peeled `^{}` line of an annotated tag wins over the tag object.
export function remoteCommit(lines: string[], version: string): string | null {
  const refs = new Map<string, string>()
  for (const line of lines) {
    const [sha, ref] = line.trim().split(/\s+/)
    if (sha && ref && /^[0-9a-f]{40,64}$/.test(sha)) refs.set(ref, sha)
  }
  return refs.get(`refs/tags/${version}^{}`) ?? refs.get(`refs/tags/${version}`) ?? refs.get(`refs/heads/${version}`) ?? null
}

// The tree in place is the declared source, but a changed redis_version with the same
// source must not build the old version silently.
function treeNoop(identity: string, version: string, facts: SourceFacts): SourcePlan {
  if (facts.treeVersion && facts.treeVersion !== version) return {action: 'fail', msg: versionMismatch(version, facts.treeVersion, 'the tree already in place')}
  return {action: 'noop', reason: `already at ${identity}`, identity}
}

export function versionMismatch(want: string, got: string, what: string): string {
  return `redis_version is ${want}, but ${what} is Redis ${got} (its src/version.h): nothing built; set redis_version to "${got}", or point redis_source at a redis-${want} source`
}

// Decide, from facts alone, whether the tree is already right and otherwise how to get it.
export function planSource(src: SourceKind, want: {sha?: string; version: string}, facts: SourceFacts): SourcePlan {
  if (src.kind === 'git') {
    const commit = remoteCommit(facts.remote, want.version)
    if (!commit) {
      const why = facts.remoteError.trim() ? `: ${facts.remoteError.trim().split('\n').slice(-3).join(' ')}` : ''
      return {action: 'fail', msg: `tag ${want.version} not found at ${src.url}${why}`}
    }
    const identity = `git:${commit}`
    if (facts.marker === identity) return treeNoop(identity, want.version, facts)
    if (!facts.git) return {action: 'fail', msg: 'git is not installed on the host'}
    return {action: 'fetch', identity, transfer: 'clone'}
  }
  const identity = `sha256:${want.sha}`
  if (facts.marker === identity) return treeNoop(identity, want.version, facts)
  if (facts.stagedSha === want.sha) return {action: 'fetch', identity, transfer: 'cached'}
  if (src.kind === 'controller') return {action: 'fetch', identity, transfer: 'push'}
  if (!facts.fetcher) return {action: 'fail', msg: 'neither curl nor wget is installed on the host: cannot download'}
  return {action: 'fetch', identity, transfer: 'download'}
}

// key=value lines: a stray line of shell noise cannot shift the other facts.
export function parseSourceFacts(stdout: string): SourceFacts {
  const facts: SourceFacts = {marker: '', stagedSha: '', fetcher: '', git: false, remote: [], remoteError: ''}
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1)
    if (key === 'marker') facts.marker = value.trim()
    else if (key === 'staged') facts.stagedSha = value.trim().toLowerCase()
    else if (key === 'fetch' && (value === 'curl' || value === 'wget')) facts.fetcher = value
    else if (key === 'git') facts.git = value === 'yes'
    else if (key === 'ls') facts.remote.push(value)
    else if (key === 'lserr') facts.remoteError += value + '\n'
    else if (key === 'treever' && value.trim()) facts.treeVersion = value.trim()
  }
  return facts
}

// sha256sum is coreutils; shasum and openssl cover BSD-ish hosts.
const SHA_FN = `sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else openssl dgst -sha256 -r "$1" | cut -d' ' -f1; fi
}`

const VERSION_OF = (dir: string) => `sed -n 's/^#define REDIS_VERSION "\\(.*\\)".*$/\\1/p' ${dir}/src/version.h 2>/dev/null | head -n 1`

function factsScript(dest: string, staged: string, src: SourceKind, want: string, version: string): string {
  const lines = [
    SHA_FN,
    `dest=${quote(dest)}; staged=${quote(staged)}; want=${quote(want)}`,
    `marker=$(head -n 1 "$dest/.baremetal-source" 2>/dev/null)`,
    `echo "marker=$marker"`,
    `echo "treever=$(${VERSION_OF('"$dest"')})"`,
    // Hashing the cached tarball costs a read of a few MB: only when it may save a transfer.
    `if [ "$marker" != "$want" ] && [ -f "$staged" ]; then echo "staged=$(sha256_of "$staged")"; fi`,
    `if command -v curl >/dev/null 2>&1; then echo fetch=curl; elif command -v wget >/dev/null 2>&1; then echo fetch=wget; fi`,
    `if command -v git >/dev/null 2>&1; then echo git=yes; fi`,
  ]
  if (src.kind === 'git') {
    const refs = [`refs/tags/${version}`, `refs/tags/${version}^{}`, `refs/heads/${version}`].map(quote).join(' ')
    lines.push(
      `if command -v git >/dev/null 2>&1; then`,
      `  out=$(GIT_TERMINAL_PROMPT=0 git ls-remote ${quote(src.url)} ${refs} 2>&1); rc=$?`,
      `  if [ $rc -eq 0 ]; then printf '%s\\n' "$out" | sed 's/^/ls=/'; else printf '%s\\n' "$out" | sed 's/^/lserr=/'; fi`,
      `else echo "lserr=git is not installed on the host"; fi`,
    )
  }
  return lines.join('\n') + '\n'
}

function applyScript(dest: string, staged: string, src: SourceKind, plan: Extract<SourcePlan, {action: 'fetch'}>, version: string, fetcher: string): string {
  const lines = [SHA_FN, `dest=${quote(dest)}; staged=${quote(staged)}; new="$dest.baremetal-new"; old="$dest.baremetal-old"`, `mkdir -p "$(dirname "$dest")" || exit 1`, `rm -rf "$new" "$old"`]
  if (plan.transfer === 'clone') {
    lines.push(
      `if ! out=$(GIT_TERMINAL_PROMPT=0 git -c advice.detachedHead=false clone -q --depth 1 --branch ${quote(version)} ${quote(src.kind === 'git' ? src.url : '')} "$new" 2>&1); then`,
      `  rm -rf "$new"; echo "@@ CLONE_FAILED"; printf '%s\\n' "$out" | tail -n 10; exit 2; fi`,
      `identity="git:$(git -C "$new" rev-parse HEAD)"`,
    )
  } else {
    const want = plan.identity.slice('sha256:'.length)
    lines.push(`want=${quote(want)}`)
    if (plan.transfer === 'download') {
      const url = src.kind === 'release' || src.kind === 'url' ? src.url : ''
      const get = fetcher === 'curl' ? `curl -fsSL --retry 3 --connect-timeout 30 -o "$part" ${quote(url)}` : `wget -q -O "$part" ${quote(url)}`
      lines.push(
        `part="$staged.part"; rm -f "$part"`,
        `if ! out=$(${get} 2>&1); then rm -f "$part"; echo "@@ FETCH_FAILED"; printf '%s\\n' "$out" | tail -n 5; exit 2; fi`,
        `got=$(sha256_of "$part")`,
        `if [ "$got" != "$want" ]; then rm -f "$part"; echo "@@ SHA_MISMATCH $got"; exit 3; fi`,
        `mv -f "$part" "$staged"`,
      )
    } else {
      lines.push(`got=$(sha256_of "$staged")`, `if [ "$got" != "$want" ]; then rm -f "$staged"; echo "@@ SHA_MISMATCH $got"; exit 3; fi`)
    }
    lines.push(
      `mkdir -p "$new"`,
      // tar -x detects gzip/xz/bzip2 itself; the top directory (redis-x.y.z/) is dropped.
      `if ! out=$(tar -xf "$staged" -C "$new" --strip-components=1 2>&1); then rm -rf "$new"; echo "@@ UNPACK_FAILED"; printf '%s\\n' "$out" | tail -n 5; exit 4; fi`,
      `identity="sha256:$want"`,
    )
  }
  // Checked on the unpacked tree, before the swap and the build: a URL or tag that holds
  // another version than redis_version fails here, leaving the tree in place as it was.
  lines.push(
    `got_version=$(${VERSION_OF('"$new"')})`,
    `if [ "$got_version" != ${quote(version)} ]; then rm -rf "$new"; echo "@@ VERSION_MISMATCH $got_version"; exit 6; fi`,
    `printf '%s\\n' "$identity" > "$new/.baremetal-source" || exit 5`,
    `if [ -e "$dest" ]; then mv "$dest" "$old" || exit 5; fi`,
    `if ! mv "$new" "$dest"; then [ -e "$old" ] && mv "$old" "$dest"; exit 5; fi`,
    `rm -rf "$old"`,
    `echo "@@ DONE $identity"`,
  )
  return lines.join('\n') + '\n'
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

function short(identity: string): string {
  const [k, v] = identity.split(':')
  return v ? `${k}:${v.slice(0, 12)}` : identity
}

interface SourceWant {
  version: string
  src: SourceKind
  dest: string
  staged: string
  /** The tarball's expected sha256 (none for a git tag). */
  want?: string
  localSize: number
}

// Arguments (and a controller tarball's hash) → what this item installs, or why it cannot.
async function sourceWant(ctx: ModuleContext, args: Record<string, unknown>): Promise<SourceWant | ItemResult> {
  const version = String(args.version ?? '5.0.3')
  const src = detectSource(String(args.source ?? ''), version, ctx.playbookDir)
  const dest = posix.normalize(expandHome(String(args.dest ?? '~/redis_src'), ctx.facts.home)).replace(/(.)\/+$/, '$1')
  if (dest === '/' || dest === ctx.facts.home || dest === '.') {
    return {status: 'failed', msg: `dest ${dest} would replace a whole directory tree: give a dedicated directory`}
  }
  const staged = `${dest}.baremetal-tarball`
  const exp = expectedSha256(src, version, String(args.sha256 ?? ''))
  if (exp.error) return {status: 'failed', msg: exp.error}
  if (src.kind !== 'controller') return {version, src, dest, staged, want: exp.sha, localSize: 0}
  let localSize = 0
  try {
    localSize = (await stat(src.path)).size
  } catch {
    return {status: 'failed', msg: `source file not found on the controller: ${src.path}`}
  }
  const actual = await fileSha256(src.path)
  if (exp.sha && exp.sha !== actual) {
    return {status: 'failed', msg: `sha256 mismatch for ${src.path}: expected ${exp.sha}, got ${actual}; nothing pushed, ${dest} left as it was`}
  }
  return {version, src, dest, staged, want: actual, localSize}
}

// A controller tarball goes to the host before the apply script (undefined: it is there).
async function pushTarball(ctx: ModuleContext, w: SourceWant, origin: string): Promise<ItemResult | undefined> {
  if (w.src.kind !== 'controller') return undefined
  ctx.log(`pushing ${origin} to ${w.staged}`)
  const mk = await ctx.transport.exec(`mkdir -p ${quote(posix.dirname(w.staged))}`)
  if (mk.failed) return {status: 'failed', msg: `cannot create ${posix.dirname(w.staged)}: ${mk.stderr.trim()}`, rc: mk.exitCode}
  try {
    await ctx.transport.putFile(w.src.path, w.staged, 0o644)
  } catch (error) {
    if (error instanceof UnreachableError) throw error
    return {status: 'failed', msg: `push of ${origin} failed: ${error instanceof Error ? error.message : String(error)}`}
  }
  return undefined
}

// The apply script's @@ lines → the item's result.
function appliedResult(ctx: ModuleContext, w: SourceWant, plan: Extract<SourcePlan, {action: 'fetch'}>, origin: string, r: ExecResult): ItemResult {
  const secrets = [...ctx.secrets]
  const {dest, version} = w
  const data = {kind: w.src.kind, dest, version}
  const out = mask(r.stdout, secrets)
  const tail = (marker: string) => out.split(marker)[1]?.split('\n').slice(1).join('\n').trim() ?? ''
  const mismatch = /@@ SHA_MISMATCH (\S*)/.exec(out)
  if (mismatch) {
    return {status: 'failed', msg: `sha256 mismatch for ${origin}: expected ${w.want}, got ${mismatch[1]}; nothing unpacked, ${dest} left as it was`, rc: r.exitCode, data}
  }
  if (out.includes('@@ FETCH_FAILED')) return {status: 'failed', msg: `download of ${origin} failed: ${tail('@@ FETCH_FAILED')}`, rc: r.exitCode, data}
  if (out.includes('@@ CLONE_FAILED')) return {status: 'failed', msg: `git clone of ${origin} at ${version} failed: ${tail('@@ CLONE_FAILED')}`, rc: r.exitCode, data}
  const vm = /@@ VERSION_MISMATCH (\S*)/.exec(out)
  if (vm && !vm[1])
    return {
      status: 'failed',
      msg: `${origin} has no src/version.h with REDIS_VERSION: not a Redis source tree, or not redis_version ${version}; nothing built, ${dest} left as it was`,
      rc: r.exitCode,
      data,
    }
  if (vm) return {status: 'failed', msg: versionMismatch(version, vm[1], `${origin} (unpacked, ${dest} left as it was)`), rc: r.exitCode, data}
  if (out.includes('@@ UNPACK_FAILED')) return {status: 'failed', msg: `unpacking ${origin} failed: ${tail('@@ UNPACK_FAILED')}`, rc: r.exitCode, data}
  const done = /@@ DONE (\S+)/.exec(out)
  if (r.failed || !done) {
    return {
      status: 'failed',
      msg: `installing the source into ${dest} failed (exit ${r.exitCode}): ${mask(r.stderr, secrets).trim().split('\n').slice(-5).join('\n')}`,
      rc: r.exitCode,
      stdout: out,
      data,
    }
  }
  const verb = {download: 'downloaded', push: 'pushed', cached: 'reused cached', clone: 'cloned'}[plan.transfer]
  return {
    status: 'changed',
    msg: `${verb} ${plan.transfer === 'cached' ? 'tarball' : origin}, unpacked into ${dest} (${short(done[1])})`,
    data: {...data, identity: done[1], transferred: plan.transfer === 'download' || plan.transfer === 'push' || plan.transfer === 'clone'},
  }
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const w = await sourceWant(ctx, args)
  if ('status' in w) return w
  const {src, dest, staged, want, version} = w
  const factsRun = await ctx.transport.exec('sh -s', {stdin: factsScript(dest, staged, src, want ? `sha256:${want}` : '', version), timeoutMs: 120_000})
  const facts = parseSourceFacts(factsRun.stdout)
  const plan = planSource(src, {sha: want, version}, facts)
  const data = {kind: src.kind, dest, version}
  if (plan.action === 'fail') return {status: 'failed', msg: mask(plan.msg, [...ctx.secrets]), data}
  if (plan.action === 'noop') {
    return {status: 'ok', msg: `redis source ${short(plan.identity)} already in ${dest}`, data: {...data, identity: plan.identity, transferred: false}}
  }
  const origin = src.kind === 'controller' ? src.path : src.url
  const how = {
    download: `download ${origin}`,
    push: `push ${origin} (${(w.localSize / 1048576).toFixed(1)} MB)`,
    cached: `reuse the verified tarball already on the host`,
    clone: `clone ${origin} at ${version}`,
  }[plan.transfer]
  if (ctx.check) return {status: 'changed', msg: `would ${how} and unpack it into ${dest}`, data: {...data, identity: plan.identity}}
  if (plan.transfer === 'push') {
    const failed = await pushTarball(ctx, w, origin)
    if (failed) return failed
  } else if (plan.transfer !== 'cached') {
    ctx.log(`${how} on ${ctx.host}`)
  }
  const r = await ctx.transport.exec('sh -s', {stdin: applyScript(dest, staged, src, plan, version, facts.fetcher), timeoutMs: 30 * 60_000})
  return appliedResult(ctx, w, plan, origin, r)
}

export const redisSourceModule = defineItemModule({
  name: 'redis_source',
  description: 'Put a verified Redis source tree on the host (release tarball, URL, git tag or controller file)',
  args: {
    version: {type: 'string', default: '5.0.3'},
    source: {type: 'string', default: ''},
    sha256: {type: 'string', default: ''},
    dest: {type: 'path', default: '~/redis_src'},
  },
  runItem,
})
