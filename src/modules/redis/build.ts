// redis_build: compile the Redis tree left by redis_source and install redis-server and
// redis-cli into bin_dir.
//
// Parameters:
//   src        path    the source tree (default ~/redis_src)
//   bin_dir    path    where the binaries go (default ~/redis/bin)
//   make_args  string  extra make arguments, e.g. "MALLOC=libc BUILD_TLS=yes"
//   jobs       int     make -j (default: the host's core count)
//   build_once bool    hosts of one platform (OS release, architecture, libc) that want the
//                      same binaries get them from one host: one that has them, else the
//                      first that needs them compiles and the others copy its binaries
//                      through the controller, sha256-checked, each running redis-server
//                      --version before install (default true; playbooks: redis_build_once)
//
// A marker, bin_dir/.baremetal-build, records the source identity and the make arguments
// of the binaries in place: the same source and arguments mean no make at all. Redis
// 5.0.0–5.0.7 get REDIS_CFLAGS=-fcommon added, without which gcc 10 and later cannot
// link them. A failed build reports the last 30 lines of src/.baremetal-build.log.
//
// Example:
//   - name: Build Redis
//     redis_build:
//       src: ~/redis_src
//       bin_dir: ~/redis/bin
//       make_args: "MALLOC=libc"

import {needsFcommon, versionFromHeader} from '../../redis/versions.js'
import {expandHome, mask, quote} from '../../shell.js'
import {splitWords} from '../command.js'
import {defineItemModule} from '../define.js'
import type {ItemResult, ModuleContext} from '../types.js'
import {type Artifact, fetchBinaries, installScript, type PlatformFacts, platformKey, rendezvousFor} from './build_once.js'

const BUILD_TIMEOUT_MS = 2 * 60 * 60_000

// The make arguments actually used: the user's, plus -fcommon where the version needs it.
export function effectiveMakeArgs(version: string | null, userArgs: string[]): string[] {
  if (!needsFcommon(version)) return userArgs
  const i = userArgs.findIndex((a) => a.startsWith('REDIS_CFLAGS='))
  if (i < 0) return [...userArgs, 'REDIS_CFLAGS=-fcommon']
  if (/(^|\s|=)-fcommon(\s|$)/.test(userArgs[i])) return userArgs
  const out = [...userArgs]
  out[i] = `${userArgs[i]} -fcommon`
  return out
}

/** The marker content: which tree and which arguments the installed binaries come from. */
export function buildMarker(sourceIdentity: string, makeArgs: string[]): string {
  return `source ${sourceIdentity}\nmake ${makeArgs.map(quote).join(' ')}`.trim()
}

export interface BuildFacts {
  srcOk: boolean
  /** Content of src/.baremetal-source ('' when the tree was not placed by redis_source). */
  sourceMarker: string
  version: string | null
  /** Content of bin_dir/.baremetal-build ('' when absent). */
  buildMarker: string
  haveServer: boolean
  haveCli: boolean
  haveMake: boolean
  haveCc: boolean
  /** OS release, architecture, libc: whether another host's binaries run here (build_once). */
  platform: Partial<PlatformFacts>
  /** sha256 of the installed binaries, by name. */
  sha: Record<string, string>
}

export type BuildPlan = {action: 'noop'; reason: string; marker: string} | {action: 'fail'; msg: string; missingSource?: boolean} | {action: 'build'; makeArgs: string[]; marker: string}

// Rebuild only when the binaries are missing or come from another tree or other arguments.
export function planBuild(facts: BuildFacts, userArgs: string[], src: string): BuildPlan {
  if (!facts.srcOk) return {action: 'fail', msg: `no Redis source tree at ${src} (run redis_source first)`, missingSource: true}
  const makeArgs = effectiveMakeArgs(facts.version, userArgs)
  // A tree not placed by redis_source is known by its version only.
  const identity = facts.sourceMarker || `unmarked:${facts.version ?? 'unknown'}`
  const marker = buildMarker(identity, makeArgs)
  if (facts.buildMarker === marker && facts.haveServer && facts.haveCli) {
    return {action: 'noop', reason: `redis ${facts.version ?? '(unknown version)'} already built from ${identity.slice(0, 19)} with the same make arguments`, marker}
  }
  if (!facts.haveMake || !facts.haveCc) {
    const missing = [!facts.haveMake && 'make', !facts.haveCc && 'a C compiler (gcc or cc)'].filter(Boolean).join(' and ')
    return {action: 'fail', msg: `${missing} not found on the host: install them first (e.g. apt-get install -y make gcc)`}
  }
  return {action: 'build', makeArgs, marker}
}

// key=value lines; the build marker spans several (bm=…) and is joined back.
export function parseBuildFacts(stdout: string): BuildFacts {
  const f: BuildFacts = {srcOk: false, sourceMarker: '', version: null, buildMarker: '', haveServer: false, haveCli: false, haveMake: false, haveCc: false, platform: {}, sha: {}}
  const bm: string[] = []
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const k = line.slice(0, eq)
    const v = line.slice(eq + 1)
    if (k === 'src') f.srcOk = v === 'yes'
    else if (k === 'sm') f.sourceMarker = v.trim()
    else if (k === 'vh') f.version = versionFromHeader(v) ?? f.version
    else if (k === 'bm') bm.push(v)
    else if (k === 'server') f.haveServer = v === 'yes'
    else if (k === 'cli') f.haveCli = v === 'yes'
    else if (k === 'make') f.haveMake = v === 'yes'
    else if (k === 'cc') f.haveCc = v === 'yes'
    else if (k === 'os' || k === 'arch' || k === 'libc') f.platform[k] = v.trim()
    else if (k === 'sha') {
      const m = /^([0-9a-f]{64})\s+.*\/([^/]+)$/.exec(v.trim())
      if (m) f.sha[m[2]] = m[1]
    }
  }
  f.buildMarker = bm.join('\n').trim()
  return f
}

function factsScript(src: string, bin: string): string {
  return (
    [
      `src=${quote(src)}; bin=${quote(bin)}`,
      `[ -f "$src/Makefile" ] && [ -f "$src/src/version.h" ] && echo src=yes`,
      `echo "sm=$(head -n 1 "$src/.baremetal-source" 2>/dev/null)"`,
      `grep REDIS_VERSION "$src/src/version.h" 2>/dev/null | sed 's/^/vh=/'`,
      `sed 's/^/bm=/' "$bin/.baremetal-build" 2>/dev/null`,
      `[ -x "$bin/redis-server" ] && echo server=yes`,
      `[ -x "$bin/redis-cli" ] && echo cli=yes`,
      `command -v make >/dev/null 2>&1 && echo make=yes`,
      `{ command -v cc || command -v gcc || command -v clang; } >/dev/null 2>&1 && echo cc=yes`,
      `echo "os=$(. /etc/os-release 2>/dev/null; echo "$ID:$VERSION_ID")"`,
      `echo "arch=$(uname -m)"`,
      `echo "libc=$(ldd --version 2>&1 | head -n 1)"`,
      `[ -f "$bin/redis-server" ] && sha256sum "$bin/redis-server" "$bin/redis-cli" 2>/dev/null | sed 's/^/sha=/'`,
      `exit 0`,
    ].join('\n') + '\n'
  )
}

function buildScript(src: string, bin: string, jobs: number, makeArgs: string[], marker: string): string {
  const make = ['make', `-j${jobs}`, ...makeArgs].map(quote).join(' ')
  return (
    [
      `src=${quote(src)}; bin=${quote(bin)}; log="$src/.baremetal-build.log"`,
      `cd "$src" || exit 1`,
      `printf '+ %s\\n' ${quote(make)} > "$log"`,
      `if ! ${make} >> "$log" 2>&1; then echo "@@ BUILD_FAILED"; tail -n 30 "$log"; exit 2; fi`,
      `mkdir -p "$bin" || exit 3`,
      // temp + rename: a running redis-server keeps its old inode, no "Text file busy". The
      // temp name is per process: two hosts that share the bin dir (NFS, one /usr/local)
      // may install at the same time, and one's rename must not pull the other's file away.
      `for b in redis-server redis-cli; do`,
      `  t="$bin/.$b.baremetal-tmp.$$"`,
      `  cp "src/$b" "$t" && chmod 755 "$t" && mv -f "$t" "$bin/$b" || { echo "@@ INSTALL_FAILED $b"; exit 3; }`,
      `done`,
      `printf '%s\\n' ${quote(marker)} > "$bin/.baremetal-build.tmp.$$" && mv -f "$bin/.baremetal-build.tmp.$$" "$bin/.baremetal-build" || exit 3`,
      `echo "@@ DONE"`,
    ].join('\n') + '\n'
  )
}

interface Build {
  src: string
  bin: string
  jobs: number
  userArgs: string[]
  facts: BuildFacts
  plan: Extract<BuildPlan, {action: 'build'}>
  data: Record<string, unknown>
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const src = expandHome(String(args.src ?? '~/redis_src'), ctx.facts.home).replace(/(.)\/+$/, '$1')
  const bin = expandHome(String(args.bin_dir ?? '~/redis/bin'), ctx.facts.home).replace(/(.)\/+$/, '$1')
  const jobs = Math.max(1, Number(args.jobs ?? 0) || ctx.facts.cores || 1)
  let userArgs: string[]
  try {
    userArgs = splitWords(String(args.make_args ?? ''))
  } catch (error) {
    return {status: 'failed', msg: `make_args: ${error instanceof Error ? error.message : String(error)}`}
  }

  const factsRun = await ctx.transport.exec('sh -s', {stdin: factsScript(src, bin), timeoutMs: 60_000})
  const facts = parseBuildFacts(factsRun.stdout)
  const plan = planBuild(facts, userArgs, src)
  const data = {src, bin_dir: bin, version: facts.version}
  if (plan.action === 'fail') {
    if (ctx.check && plan.missingSource) return {status: 'changed', msg: `would build once the source is in ${src}`, data}
    return {status: 'failed', msg: plan.msg, data}
  }
  // Hosts of one platform wanting the same binaries meet here: one compiles, the rest copy.
  const platform = platformKey(facts.platform)
  const shared = args.build_once !== false && !ctx.check && platform !== null && ctx.playHosts.length > 1
  const key = `${platform}\n${plan.marker}`
  if (plan.action === 'noop') {
    if (shared) rendezvousFor(ctx.playHosts).offer(key, ctx.host, () => fetchBinaries(ctx.transport, ctx.host, bin))
    return {status: 'ok', msg: plan.reason, data: {...data, built: false}}
  }
  const b: Build = {src, bin, jobs, userArgs, facts, plan, data}
  if (!shared) return buildHere(ctx, b)
  const rv = rendezvousFor(ctx.playHosts)
  const role = await rv.need(key, ctx.host, 3000)
  if (role.role === 'build') {
    let artifact: Promise<Artifact | undefined> = Promise.resolve(undefined)
    try {
      const res = await buildHere(ctx, b)
      if (res.status === 'changed') artifact = fetchBinaries(ctx.transport, ctx.host, bin)
      return res
    } finally {
      rv.built(key, ctx.host, artifact)
    }
  }
  if (!role.artifact) return buildHere(ctx, b, `${role.from} could not provide the binaries: built here`)
  return copyHere(ctx, b, role.artifact, platform)
}

// The binaries of a host of the same platform, verified here; a copy that does not run builds here.
async function copyHere(ctx: ModuleContext, b: Build, artifact: Artifact, platform: string): Promise<ItemResult> {
  const started = Date.now()
  const r = await ctx.transport.exec('sh -s', {stdin: installScript(b.bin, artifact, b.facts.sha, b.facts.version, b.plan.marker, ctx.host), timeoutMs: 10 * 60_000})
  const out = mask(r.stdout, ctx.secrets)
  const shas = Object.fromEntries(artifact.files.map((f) => [f.name, f.sha256]))
  if (out.includes('@@ COPIED')) {
    const sent = artifact.files.filter((f) => b.facts.sha[f.name] !== f.sha256).length
    const ms = Date.now() - started
    return {
      status: 'changed',
      msg: `redis ${b.facts.version ?? ''} copied from ${artifact.from} (built there; same platform ${platform}), sha256 verified, ${sent ? `installed into ${b.bin}` : 'binaries already in place, marker written'} in ${ms} ms`,
      data: {...b.data, built: false, copied_from: artifact.from, sha256: shas, ms},
    }
  }
  const bad = /@@ BADSHA (.*)/.exec(out)
  if (bad) return {status: 'failed', msg: `the copy of ${bad[1]} from ${artifact.from} arrived damaged (sha256 differs): re-run`, data: b.data}
  const why = (/@@ NOTRUN (.*)/.exec(out)?.[1] ?? `exit ${r.exitCode}: ${mask(r.stderr, ctx.secrets).trim().split('\n').slice(-3).join(' ')}`).trim()
  return buildHere(ctx, b, `the binaries from ${artifact.from} do not run here (${why}): built here`)
}

async function buildHere(ctx: ModuleContext, b: Build, note = ''): Promise<ItemResult> {
  const {src, bin, jobs, userArgs, facts, plan, data} = b
  const secrets = [...ctx.secrets]
  const cmd = `make -j${jobs} ${plan.makeArgs.join(' ')}`.trim()
  if (ctx.check) return {status: 'changed', msg: `would build redis ${facts.version ?? ''} (${cmd}) and install it into ${bin}`, data}
  if (ctx.signal.aborted) return {status: 'failed', msg: 'interrupted before the build started'}

  const added = plan.makeArgs.length > userArgs.length || plan.makeArgs.some((a, i) => a !== userArgs[i])
  ctx.log(`building redis ${facts.version ?? ''} in ${src}: ${cmd}${added ? ' (REDIS_CFLAGS=-fcommon added for gcc >= 10)' : ''}; this takes minutes`)
  const started = Date.now()
  const elapsed = () => Math.round((Date.now() - started) / 1000)
  // One long round trip: say now and then that it is still going.
  const progress = setInterval(() => ctx.log(`still building redis ${facts.version ?? ''} (${elapsed()}s)`), 30_000)
  let r
  try {
    r = await ctx.transport.exec('sh -s', {stdin: buildScript(src, bin, jobs, plan.makeArgs, plan.marker), timeoutMs: BUILD_TIMEOUT_MS})
  } finally {
    clearInterval(progress)
  }
  const seconds = elapsed()
  const out = mask(r.stdout, secrets)
  if (out.includes('@@ BUILD_FAILED')) {
    const tail = out.split('@@ BUILD_FAILED\n')[1] ?? ''
    return {status: 'failed', msg: `${cmd} failed in ${src} after ${seconds}s (exit ${r.exitCode}); last lines of ${src}/.baremetal-build.log:\n${tail.trimEnd()}`, rc: r.exitCode, data}
  }
  if (r.timedOut) return {status: 'failed', msg: `${cmd} did not finish within ${BUILD_TIMEOUT_MS / 60_000} minutes`, rc: r.exitCode, data}
  if (r.failed || !out.includes('@@ DONE')) {
    const why = (out + '\n' + mask(r.stderr, secrets)).trim().split('\n').slice(-10).join('\n')
    return {status: 'failed', msg: `installing the binaries into ${bin} failed (exit ${r.exitCode}): ${why}`, rc: r.exitCode, data}
  }
  ctx.log(`built redis ${facts.version ?? ''} in ${seconds}s`)
  return {
    status: 'changed',
    msg: `${note ? `${note}; ` : ''}built redis ${facts.version ?? ''} in ${seconds}s (${cmd}), installed into ${bin}`,
    data: {...data, built: true, seconds, make_args: plan.makeArgs},
  }
}

export const redisBuildModule = defineItemModule({
  name: 'redis_build',
  description: 'Compile the Redis source tree and install redis-server and redis-cli (skipped when already built)',
  args: {
    src: {type: 'path', default: '~/redis_src'},
    bin_dir: {type: 'path', default: '~/redis/bin'},
    make_args: {type: 'string', default: ''},
    jobs: {type: 'int'},
    build_once: {type: 'bool', default: true},
  },
  runItem,
})
