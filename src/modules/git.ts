// git: have a checkout of a repository at a given tag, branch or commit on the host.
// Facts: the checkout's HEAD, its local modifications, and the commit `version` names
// (a local tag, or `git ls-remote` for branches); clone when dest is missing, fetch +
// checkout when at another commit, nothing when already there. One probe for all loop
// items, one script for the clones/updates.
//
// Parameters:
//   repo     URL or path of the repository (https://, ssh, git@host:…, file://)
//   dest     directory of the checkout on the host
//   version  tag, branch, full commit sha, or HEAD (the default: the remote's default branch)
//   depth    shallow clone/fetch with this many commits
//   force    discard local modifications of tracked files (default no: fail instead)
//
// The checkout is left detached at the wanted commit. Result: before, after (commit shas).
//
// Example:
//   - name: redis sources at 5.0.3
//     git:
//       repo: https://github.com/redis/redis.git
//       dest: ~/redis_src
//       version: 5.0.3
//       depth: 1

import {posix} from 'node:path'
import {expandHome, mask, quote} from '../shell.js'
import {defineModule, eachStep, type Todo} from './define.js'
import {failureMessage, kvAll, lastLines, parseKv, str, type Plan, type StepResult} from './remote.js'
import type {ItemResult, ModuleContext, TaskItem} from './types.js'

export interface GitWant {
  repo: string
  dest: string
  version: string
  depth?: number
  force: boolean
}

export interface GitFacts {
  state: 'repo' | 'missing' | 'notrepo' | 'notdir'
  head?: string
  origin?: string
  /** Number of tracked files with local modifications. */
  dirty: number
  /** version resolved in the local checkout (a tag, or an abbreviated sha). */
  local?: string
  /** `git ls-remote repo version` lines ("sha\tref"), when it ran. */
  remote?: string[]
  remoteRc?: number
  remoteErr?: string
}

export type GitPlan = Plan<{commands: string[]; target: string}>

const FULL_SHA = /^[0-9a-f]{40}$/
const SHORT_SHA = /^[0-9a-f]{7,39}$/

const git = (dest: string): string => `git -C ${quote(dest)}`

// One item's fact step: HEAD, origin, local changes, and what version names (locally or remotely).
export function gitFactStep(w: GitWant): string {
  const g = git(w.dest)
  const d = quote(w.dest)
  const lines = [
    'bm_local=',
    `if [ -e ${quote(`${w.dest}/.git`)} ]; then`,
    '  echo state=repo',
    `  printf 'head=%s\\n' "$(${g} rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null)"`,
    `  printf 'origin=%s\\n' "$(${g} config --get remote.origin.url 2>/dev/null)"`,
    `  printf 'dirty=%s\\n' "$(${g} status --porcelain --untracked-files=no 2>/dev/null | wc -l)"`,
  ]
  if (!FULL_SHA.test(w.version) && w.version !== 'HEAD') {
    const ref = SHORT_SHA.test(w.version) ? `${w.version}^{commit}` : `refs/tags/${w.version}^{commit}`
    lines.push(`  bm_local=$(${g} rev-parse -q --verify ${quote(ref)} 2>/dev/null); printf 'local=%s\\n' "$bm_local"`)
  }
  lines.push(`elif [ -d ${d} ] && [ -n "$(ls -A ${d} 2>/dev/null)" ]; then echo state=notrepo`, `elif [ -e ${d} ] && [ ! -d ${d} ]; then echo state=notdir`, 'else echo state=missing', 'fi')
  // Branches move: ask the remote, unless the version is a full sha or a tag we already have.
  if (!FULL_SHA.test(w.version)) {
    lines.push(
      'if [ -z "$bm_local" ]; then',
      // `v2^{}` too: ls-remote prints an annotated tag's commit only when asked for it.
      `  bm_ls=$(git ls-remote ${quote(w.repo)} ${quote(w.version)}${w.version === 'HEAD' ? '' : ` ${quote(`${w.version}^{}`)}`}); printf 'lsrc=%s\\n' "$?"`,
      `  printf '%s\\n' "$bm_ls" | sed 's/^/ls=/'`,
      'fi',
    )
  }
  return lines.join('\n')
}

// Inverse of gitFactStep.
export function parseGitFacts(stdout: string, stderr = ''): GitFacts {
  const kv = parseKv(stdout)
  const state = (['repo', 'notrepo', 'notdir'].includes(kv.state) ? kv.state : 'missing') as GitFacts['state']
  return {
    state,
    head: kv.head || undefined,
    origin: kv.origin || undefined,
    dirty: Number(kv.dirty ?? 0) || 0,
    local: kv.local || undefined,
    remote: kv.lsrc === undefined ? undefined : kvAll(stdout, 'ls').filter(Boolean),
    remoteRc: kv.lsrc === undefined ? undefined : Number(kv.lsrc),
    remoteErr: stderr.trim() || undefined,
  }
}

// The commit `version` names: full sha as is, a local tag, else the remote's refs
// (an annotated tag's peeled commit first, then tag, branch, HEAD).
export function resolveTarget(version: string, f: GitFacts): string | undefined {
  if (FULL_SHA.test(version)) return version
  if (f.local) return f.local
  const refs = new Map<string, string>()
  for (const line of f.remote ?? []) {
    const [sha, ref] = line.split(/\s+/)
    if (sha && ref) refs.set(ref, sha)
  }
  const order = version === 'HEAD' ? ['HEAD'] : [`refs/tags/${version}^{}`, `refs/tags/${version}`, `refs/heads/${version}`, version]
  for (const r of order) {
    const sha = refs.get(r)
    if (sha) return sha
  }
  return undefined
}

// Pure: clone, update, nothing, or why not.
export function planGit(w: GitWant, f: GitFacts): GitPlan {
  if (f.state === 'notdir') return {kind: 'fail', msg: `dest ${w.dest} exists and is not a directory`}
  if (f.state === 'notrepo') return {kind: 'fail', msg: `dest ${w.dest} exists, is not empty and is not a git checkout`}
  const target = resolveTarget(w.version, f)
  if (!target) {
    if (f.remoteRc !== undefined && f.remoteRc !== 0) return {kind: 'fail', msg: `cannot read ${w.repo} (git ls-remote exit ${f.remoteRc})${f.remoteErr ? `: ${lastLines(f.remoteErr, 3)}` : ''}`}
    return {kind: 'fail', msg: `version ${w.version} not found in ${w.repo} (no such tag, branch or commit)`}
  }
  const g = git(w.dest)
  const depth = w.depth ? ` --depth ${w.depth}` : ''
  const isSha = FULL_SHA.test(w.version) || SHORT_SHA.test(w.version)
  const checkout = `${g} -c advice.detachedHead=false checkout -q${w.force ? ' --force' : ''} --detach ${target}`
  const haveOrFetch = `{ ${g} cat-file -e ${target}^{commit} 2>/dev/null || ${g} fetch -q${depth} origin ${target}; }`
  const shortT = target.slice(0, 12)
  if (f.state === 'missing') {
    const branch = isSha || w.version === 'HEAD' ? '' : ` --branch ${quote(w.version)}`
    const commands = [`git -c advice.detachedHead=false clone -q${depth}${branch} ${quote(w.repo)} ${quote(w.dest)}`]
    if (isSha) commands.push(haveOrFetch, checkout)
    return {kind: 'change', commands, target, msg: `cloned ${w.repo} at ${w.version} (${shortT})`, would: `would clone ${w.repo} at ${w.version} (${shortT}) into ${w.dest}`}
  }
  if (f.head === target) return {kind: 'noop', msg: `${w.dest} already at ${w.version} (${shortT})`}
  if (f.dirty > 0 && !w.force) {
    return {kind: 'fail', msg: `${w.dest} has local modifications (${f.dirty} file${f.dirty === 1 ? '' : 's'}): set force: yes to discard them`}
  }
  const commands: string[] = []
  if (f.origin !== w.repo) commands.push(`{ ${g} remote set-url origin ${quote(w.repo)} 2>/dev/null || ${g} remote add origin ${quote(w.repo)}; }`)
  commands.push(isSha ? haveOrFetch : `${g} fetch -q${depth} origin ${quote(w.version)}`, checkout)
  const from = f.head ? f.head.slice(0, 12) : 'no commit'
  return {kind: 'change', commands, target, msg: `updated ${w.dest}: ${from} → ${w.version} (${shortT})`, would: `would update ${w.dest}: ${from} → ${w.version} (${shortT})`}
}

function want(ctx: ModuleContext, item: TaskItem): GitWant | {error: string} {
  const a = item.args
  const repo = str(a.repo)?.trim()
  const destRaw = str(a.dest)
  const version = str(a.version)?.trim() || 'HEAD'
  if (!repo) return {error: 'git: repo is required'}
  if (repo.startsWith('-')) return {error: `git: invalid repo ${JSON.stringify(repo)}`}
  if (version.startsWith('-') || /\s|\.\.|[~^:?*[\\]/.test(version)) return {error: `git: invalid version ${JSON.stringify(version)}`}
  if (!destRaw) return {error: 'git: dest is required'}
  const dest = expandHome(destRaw, ctx.facts.home).replace(/(.)\/+$/, '$1')
  if (!posix.isAbsolute(dest)) return {error: `git: dest must be absolute (or start with ~/): ${destRaw}`}
  const depth = a.depth === undefined || a.depth === null ? undefined : Number(a.depth)
  if (depth !== undefined && !(Number.isInteger(depth) && depth > 0)) return {error: `git: depth must be a positive integer (got ${String(a.depth)})`}
  return {repo, dest, version, depth, force: a.force === true}
}

const PRELUDE = 'GIT_TERMINAL_PROMPT=0; export GIT_TERMINAL_PROMPT'

type GitTodo = Todo<GitWant, GitFacts, {commands: string[]; target: string}>

function gitDone(ctx: ModuleContext, {want: w, facts: f, plan}: GitTodo, s: StepResult): ItemResult {
  const after = parseKv(s.stdout).after
  const data = {before: f.head, after, repo: mask(w.repo, ctx.secrets)}
  if (s.rc !== 0) return {status: 'failed', msg: failureMessage('git', `${mask(w.repo, ctx.secrets)} → ${w.dest}`, s.rc, s.stderr, ctx.secrets), rc: s.rc, stderr: s.stderr, data}
  if (after !== plan.target) return {status: 'failed', msg: `${w.dest} is at ${after ?? 'no commit'} after the update, expected ${plan.target}`, data}
  return {status: 'changed', msg: mask(plan.msg, ctx.secrets), data}
}

export const gitModule = defineModule<GitWant, GitFacts, {commands: string[]; target: string}>({
  name: 'git',
  description: 'Clone or update a git checkout at a tag, branch or commit',
  args: {
    repo: {type: 'string', required: true},
    dest: {type: 'path', required: true},
    version: {type: 'string', default: 'HEAD'},
    depth: {type: 'int'},
    force: {type: 'bool', default: false},
  },
  want,
  ...eachStep(
    gitFactStep,
    (s) => parseGitFacts(s.stdout, s.stderr),
    () => PRELUDE,
  ),
  plan: (w, f) => planGit(w, f),
  data: (ctx, w, f, plan) => ({before: f.head, after: plan.kind === 'change' ? plan.target : f.head, repo: mask(w.repo, ctx.secrets)}),
  apply: {
    prelude: PRELUDE,
    log: (t) => t.plan.would.replace(/^would /, ''),
    step: ({want: w, plan}) => `${plan.commands.join(' &&\n')} &&\nprintf 'after=%s\\n' "$(${git(w.dest)} rev-parse HEAD)"`,
    done: gitDone,
  },
})
