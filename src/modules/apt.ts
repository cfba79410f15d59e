// apt: make Debian/Ubuntu packages present, absent or latest. One dpkg-query for all
// names of all loop items, then ONE apt-get call for everything missing (loop items are
// merged), retried once after `apt-get update` when the package lists are missing or
// stale. Already installed → no apt-get at all.
//
// Parameters:
//   name          package name or list of names (aliases: pkg, package); `name=version` is
//                 passed to apt-get when installing (an installed package is not re-versioned)
//   state         present | absent | latest (default present)
//   update_cache  run `apt-get update` first (default no)
//
// apt-get needs root: connect as root (or let the runner's privilege escalation wrap it).
//
// Example:
//   - name: build tools
//     apt:
//       name: [make, gcc]
//       state: present

import {quote} from '../shell.js'
import {failureMessage, interrupted, lastLines, lostStep, runSteps} from './remote.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

export type AptState = 'present' | 'absent' | 'latest'

export interface AptFacts {
  /** Base package name → installed (dpkg status ends in "installed"). */
  installed: Map<string, boolean>
  /** With state latest: names `apt-get -s install` would install or upgrade; undefined when the simulation failed. */
  pending?: Set<string>
}

export interface AptPlan {
  install: string[]
  remove: string[]
  /** Names with nothing to do, and why. */
  ok: Array<{name: string; why: string}>
}

const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold'
const VALID = /^[a-z0-9][a-z0-9+.:-]*(=[A-Za-z0-9.+:~_-]+)?$/

/** `redis-server=5:7.0.15-1` → `redis-server`; `libc6:amd64` → `libc6`. */
export function baseName(spec: string): string {
  return spec.split('=')[0].split(':')[0]
}

// A scalar may be "a, b c"; a list is taken as is.
export function packageNames(v: unknown): string[] {
  const raw = Array.isArray(v) ? v.map(String) : v === undefined || v === null ? [] : String(v).split(/[\s,]+/)
  return raw.map((s) => s.trim()).filter(Boolean)
}

// Parse `dpkg-query -W -f='${Package} ${Status}\n'` output.
export function parseDpkg(stdout: string): Map<string, boolean> {
  const m = new Map<string, boolean>()
  for (const line of stdout.split('\n')) {
    const [pkg, ...status] = line.trim().split(/\s+/)
    if (!pkg) continue
    const inst = status[status.length - 1] === 'installed'
    m.set(pkg, (m.get(pkg) ?? false) || inst)
  }
  return m
}

// Parse `apt-get -s install` output: the packages it would install or upgrade.
export function parseSimulation(stdout: string): Set<string> {
  const s = new Set<string>()
  for (const m of stdout.matchAll(/^Inst (\S+)/gm)) s.add(baseName(m[1]))
  return s
}

// Pure: one merged plan for every name of the task.
export function planApt(state: AptState, names: string[], facts: AptFacts): AptPlan {
  const plan: AptPlan = {install: [], remove: [], ok: []}
  const seen = new Set<string>()
  for (const spec of names) {
    if (seen.has(spec)) continue
    seen.add(spec)
    const base = baseName(spec)
    const installed = facts.installed.get(base) === true
    if (state === 'absent') {
      if (installed) plan.remove.push(base)
      else plan.ok.push({name: spec, why: 'not installed'})
    } else if (state === 'latest') {
      if (!installed || facts.pending === undefined || facts.pending.has(base)) plan.install.push(spec)
      else plan.ok.push({name: spec, why: 'already the latest version'})
    } else if (installed) {
      plan.ok.push({name: spec, why: 'already installed'})
    } else {
      plan.install.push(spec)
    }
  }
  return plan
}

// `apt-get update` takes the package lists' lock without waiting (DPkg::Lock::Timeout
// covers dpkg's lock only), so a host whose /var another apt-get is using (hosts sharing
// /var, an unattended upgrade) failed at once: retried while the error is the lock, for
// at most waitS seconds, then the lock holder's message and ours.
export function aptUpdateStep(waitS = 300, pauseS = 2): string {
  // A subshell: steps share one script, and `exit` must end this step only.
  return [
    '(bm_w=0',
    'while :; do',
    `  bm_out=$(${APT} update 2>&1); bm_urc=$?`,
    '  case "$bm_out" in',
    '    *"Could not get lock"*|*"Unable to lock directory"*)',
    `      if [ "$bm_w" -ge ${waitS} ]; then printf '%s\\n' "$bm_out" >&2; echo "apt-get update: the package lists stayed locked for ${waitS} s (another apt-get or unattended-upgrades running?)" >&2; exit "$bm_urc"; fi`,
    `      sleep ${pauseS}; bm_w=$((bm_w + ${pauseS}));;`,
    // apt-get exits 0 when a list could not be fetched (only a W: line says so); Ansible
    // fails the task then, and installing from stale lists is not what was asked.
    '    *"Failed to fetch"*|*"Some index files failed to download"*)',
    `      printf '%s\\n' "$bm_out" >&2; echo "apt-get update could not fetch every package list (no route to the mirror, or a source that is gone): fix the sources (an offline fleet needs a local mirror), or drop update_cache" >&2; exit 100;;`,
    `    *) if [ "$bm_urc" = 0 ]; then printf '%s\\n' "$bm_out"; else printf '%s\\n' "$bm_out" >&2; fi; exit "$bm_urc";;`,
    '  esac',
    'done)',
  ].join('\n')
}

/** apt-get printed nothing installed, upgraded or removed. */
export function aptNoChange(stdout: string): boolean {
  return /\b0 upgraded, 0 newly installed, 0 to remove\b/.test(stdout)
}

const STALE = /Unable to locate package|has no installation candidate|Failed to fetch|404\s+Not Found|Package .* is not available/

interface Group {
  state: AptState
  update: boolean
  items: Array<{i: number; names: string[]}>
}

export const aptModule: ModuleSpec = {
  name: 'apt',
  description: 'Install, upgrade or remove Debian packages; all names and loop items in one apt-get call',
  checkMode: true,
  args: {
    name: {type: 'list', aliases: ['pkg', 'package']},
    state: {type: 'string', choices: ['present', 'absent', 'latest'], default: 'present'},
    update_cache: {type: 'bool', default: false},
  },
  async run(ctx, items) {
    const stop = interrupted(ctx, items.length)
    if (stop) return stop
    const results: ItemResult[] = items.map(() => ({status: 'failed', msg: 'not planned'}))
    // Items asking the same thing are merged into one group (normally the whole task).
    const groups = new Map<string, Group>()
    items.forEach((it: TaskItem, i) => {
      const names = packageNames(it.args.name ?? it.args.pkg ?? it.args.package)
      const bad = names.find((n) => !VALID.test(n))
      if (bad) {
        results[i] = {status: 'failed', msg: `apt: invalid package name ${JSON.stringify(bad)}`}
        return
      }
      const state = String(it.args.state ?? 'present') as AptState
      const update = it.args.update_cache === true
      if (names.length === 0 && !update) {
        results[i] = {status: 'failed', msg: 'apt: give name (a package or a list) or update_cache: yes'}
        return
      }
      const key = `${state}/${update}`
      const g = groups.get(key) ?? {state, update, items: []}
      g.items.push({i, names})
      groups.set(key, g)
    })
    for (const g of groups.values()) await runGroup(ctx, g, results)
    return results
  },
}

async function runGroup(ctx: ModuleContext, g: Group, results: ItemResult[]): Promise<void> {
  const names = [...new Set(g.items.flatMap((x) => x.names))]
  const bases = [...new Set(names.map(baseName))]
  const failAll = (msg: string, extra: Partial<ItemResult> = {}): void => {
    for (const {i} of g.items) results[i] = {status: 'failed', msg, ...extra}
  }
  // Facts (after the cache update, when asked and not in check mode): one exec.
  const steps: string[] = []
  const doUpdate = g.update && !ctx.check
  if (doUpdate) steps.push(aptUpdateStep())
  if (bases.length > 0) steps.push(`dpkg-query -W -f='\${Package} \${Status}\\n' ${bases.map(quote).join(' ')} 2>/dev/null; :`)
  if (g.state === 'latest' && names.length > 0) steps.push(`LC_ALL=C ${APT} -s install ${names.map(quote).join(' ')}`)
  if (doUpdate) ctx.log('apt-get update')
  const facts = await runSteps(ctx.transport, steps)
  let k = 0
  if (doUpdate) {
    const u = facts.steps[k++]
    if (!u) return failAll(lostStep(facts))
    if (u.rc !== 0) return failAll(failureMessage('apt-get update', '', u.rc, u.stderr || u.stdout, ctx.secrets), {rc: u.rc, stdout: u.stdout, stderr: u.stderr})
  }
  const dq = bases.length > 0 ? facts.steps[k++] : {rc: 0, stdout: '', stderr: '', note: ''}
  if (!dq) return failAll(lostStep(facts))
  let pending: Set<string> | undefined
  if (g.state === 'latest' && names.length > 0) {
    const sim = facts.steps[k++]
    pending = sim && sim.rc === 0 ? parseSimulation(sim.stdout) : undefined
  }
  const plan = planApt(g.state, names, {installed: parseDpkg(dq.stdout), pending})

  const report = (changedNames: Set<string>, verb: string, would: boolean): void => {
    for (const {i, names: mine} of g.items) {
      const changed = mine.filter((n) => changedNames.has(n) || changedNames.has(baseName(n)))
      if (changed.length > 0) {
        results[i] = {status: 'changed', msg: `${would ? 'would ' : ''}${verb} ${changed.join(', ')}`, data: {packages: changed}}
      } else {
        const why = plan.ok.filter((o) => mine.includes(o.name)).map((o) => `${o.name}: ${o.why}`)
        results[i] = {status: 'ok', msg: why.length ? why.join('; ') : doUpdate ? 'package lists updated' : 'nothing to do', data: {packages: []}}
      }
    }
  }
  const verb = g.state === 'absent' ? 'remove' : g.state === 'latest' ? 'install/upgrade' : 'install'
  const pastVerb = g.state === 'absent' ? 'removed' : g.state === 'latest' ? 'installed/upgraded' : 'installed'
  const todo = g.state === 'absent' ? plan.remove : plan.install
  if (todo.length === 0) return report(new Set(), pastVerb, false)
  if (ctx.check) return report(new Set(todo), verb, true)

  const cmd = g.state === 'absent' ? `LC_ALL=C ${APT} remove ${todo.map(quote).join(' ')}` : `LC_ALL=C ${APT} install --no-install-recommends ${todo.map(quote).join(' ')}`
  ctx.log(`apt-get ${g.state === 'absent' ? 'remove' : 'install'} ${todo.join(' ')}`)
  let run = await runSteps(ctx.transport, [cmd])
  let r = run.steps[0]
  // Missing or stale package lists (fresh image, moved mirror): update once, retry.
  if (r && r.rc !== 0 && g.state !== 'absent' && !doUpdate && STALE.test(r.stdout + r.stderr)) {
    ctx.log('apt-get update (package lists missing or stale), then retry')
    run = await runSteps(ctx.transport, [`LC_ALL=C ${APT} update && ${cmd}`])
    r = run.steps[0]
  }
  if (!r) return failAll(lostStep(run))
  if (r.rc !== 0) {
    const what = `apt-get ${g.state === 'absent' ? 'remove' : 'install'}`
    return failAll(failureMessage(what, todo.join(' '), r.rc, r.stderr || lastLines(r.stdout, 5), ctx.secrets), {rc: r.rc, stdout: r.stdout, stderr: r.stderr})
  }
  // `latest` without a usable simulation: apt-get's own summary says whether anything changed.
  if (aptNoChange(r.stdout)) {
    for (const n of todo) plan.ok.push({name: n, why: g.state === 'absent' ? 'not installed' : 'already the latest version'})
    return report(new Set(), pastVerb, false)
  }
  report(new Set(todo), pastVerb, false)
}
