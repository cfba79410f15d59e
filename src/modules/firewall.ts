// firewall: open exactly the Redis ports to exactly the cluster's hosts (iptables, IPv4),
// instead of the legacy "flush the firewall" step.
//
// Parameters:
//   ports    list    ports or ranges: 6379, "6379:6478", "16379-16478" (required)
//   sources  list    IPv4 addresses or CIDRs allowed to reach those ports (loopback always is)
//   state    present | absent (default present)
//   tag      string  names our chain (BAREMETAL-<tag>, a hash past 28 characters) and is the comment on every rule
//                    (default baremetal; the playbooks pass redis_cluster_name: one chain per cluster)
//   adopt    list    tags of older chains (BAREMETAL-baremetal, from before clusters had names): their
//                    jumps for exactly these ports go once ours are in, and such a chain is removed when
//                    nothing jumps to it any more (another cluster's ports keep it)
//
// state: absent with ports refuses while anything listens on one of those ports: rules are
// never removed from under an instance that still runs.
//
// Design: a dedicated chain BAREMETAL-<tag> holds ACCEPT for loopback and for each source,
// then DROP; INPUT jumps to it for TCP to each port range (inserted first, so an earlier
// broad ACCEPT cannot bypass it). Every rule carries `-m comment --comment <tag>`. Only
// the difference is applied: missing rules inserted, extra ones deleted, never a flush of
// anything but our own chain on `absent`, never a policy change. No iptables on the host:
// ok, with a warning, ports left as they are.
//
// Example:
//   - name: Redis ports, cluster hosts only
//     firewall:
//       ports: ["6379:6478", "16379:16478"]
//       sources: "{{ groups.redis | map('extract', hostvars, 'ansible_host') | list }}"

import {chainName} from '../redis/cluster-record.js'
import {mask, quote} from '../shell.js'
import {defineItemModule} from './define.js'
import type {ItemResult, ModuleContext} from './types.js'

export const NO_TOOL_MSG = 'no firewall tool found (iptables): ports left as they are'

// Playbooks pass lists of lists ("{{ play_hosts_ips }}" next to single addresses) and
// empty values (no controller address): flatten, split "a, b" strings, drop blanks.
export function flattenList(v: unknown): string[] {
  if (v === undefined || v === null) return []
  if (Array.isArray(v)) return v.flatMap(flattenList)
  const s = String(v).trim()
  if (s.startsWith('[')) {
    try {
      return flattenList(JSON.parse(s))
    } catch {
      // not JSON: fall through to splitting
    }
  }
  return s.split(/[\s,]+/).filter(Boolean)
}

export {chainName}

// "6379:6478" as iptables prints it back, so the planned and the listed rule compare equal.
export function normalizePortRange(p: unknown): {range?: string; error?: string} {
  const s = String(p).trim()
  const m = /^(\d+)(?:\s*[:-]\s*(\d+))?$/.exec(s)
  if (!m) return {error: `not a port or port range: ${JSON.stringify(p)}`}
  const a = Number(m[1])
  const b = m[2] === undefined ? a : Number(m[2])
  if (a < 1 || b > 65535 || a > b) return {error: `not a valid port range: ${s}`}
  return {range: a === b ? String(a) : `${a}:${b}`}
}

// "10.0.0.5/24" → "10.0.0.0/24", "10.0.0.5" → "10.0.0.5/32": the form `iptables -S` shows.
export function normalizeSource(s: unknown): {cidr?: string; error?: string} {
  const str = String(s).trim()
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(str)
  if (!m) return {error: `not an IPv4 address or CIDR (IPv6 and host names are not supported): ${JSON.stringify(s)}`}
  const octets = m.slice(1, 5).map(Number)
  const len = m[5] === undefined ? 32 : Number(m[5])
  if (octets.some((o) => o > 255) || len > 32) return {error: `not a valid IPv4 address or CIDR: ${str}`}
  const ip = octets.reduce((acc, o) => acc * 256 + o, 0)
  const maskBits = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
  const net = (ip & maskBits) >>> 0
  return {cidr: `${[24, 16, 8, 0].map((sh) => (net >>> sh) & 255).join('.')}/${len}`}
}

// `iptables -S` quotes words with spaces in double quotes (\" inside).
export function tokenizeRule(line: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    if (line[i] === ' ' || line[i] === '\t') {
      i++
      continue
    }
    let w = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++
        w += line[i++]
      }
      i++
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') w += line[i++]
    }
    out.push(w)
  }
  return out
}

export interface Rule {
  chain: string
  /** Tokens after `-A CHAIN`: what `iptables -D CHAIN …` needs to delete it. */
  spec: string[]
  target?: string
  comment?: string
  source?: string
  iface?: string
  proto?: string
  dport?: string
  modules: string[]
  /** A match or option we do not generate: never equal to a planned rule. */
  other: boolean
}

// Only the options baremetal writes are understood; any other makes the rule "other", so a
// hand-made rule is never mistaken for ours.
export function parseRule(line: string): Rule | null {
  const t = tokenizeRule(line)
  if (t[0] !== '-A' || !t[1]) return null
  const r: Rule = {chain: t[1], spec: t.slice(2), modules: [], other: false}
  for (let i = 2; i < t.length; i += 2) {
    const v = t[i + 1]
    switch (t[i]) {
      case '-j':
        r.target = v
        break
      case '--comment':
        r.comment = v
        break
      case '-s':
        r.source = v
        break
      case '-i':
        r.iface = v
        break
      case '-p':
        r.proto = v
        break
      case '--dport':
        r.dport = v
        break
      case '-m':
        r.modules.push(v)
        break
      default:
        r.other = true
    }
  }
  return r
}

export interface Listing {
  chains: Set<string>
  rules: Rule[]
}

// One `iptables -S` shows every chain: whether ours exists, its rules, and who jumps to it.
export function parseListing(text: string): Listing {
  const chains = new Set<string>(['INPUT', 'FORWARD', 'OUTPUT'])
  const rules: Rule[] = []
  for (const line of text.split('\n')) {
    if (line.startsWith('-N ')) chains.add(tokenizeRule(line)[1])
    else if (line.startsWith('-A ')) {
      const r = parseRule(line)
      if (r) rules.push(r)
    }
  }
  return {chains, rules}
}

export interface FirewallWant {
  chain: string
  tag: string
  ranges: string[]
  sources: string[]
  /** Older chains whose jumps for our ranges we take over (see adopt). */
  adopt?: string[]
}

const cmt = (tag: string) => ['-m', 'comment', '--comment', tag]
export const specs = {
  jump: (w: FirewallWant, range: string) => ['-p', 'tcp', '-m', 'tcp', '--dport', range, ...cmt(w.tag), '-j', w.chain],
  loopback: (w: FirewallWant) => ['-i', 'lo', ...cmt(w.tag), '-j', 'ACCEPT'],
  // iptables -S omits "-s 0.0.0.0/0": plan it the way it reads back.
  source: (w: FirewallWant, cidr: string) => [...(cidr === '0.0.0.0/0' ? [] : ['-s', cidr]), ...cmt(w.tag), '-j', 'ACCEPT'],
  drop: (w: FirewallWant) => [...cmt(w.tag), '-j', 'DROP'],
}

/** What a rule of our chain means: "accept lo", "accept 10.0.0.0/24", "drop" or "other". */
export function chainRuleKey(r: Rule, tag: string): string {
  const onlyComment = r.modules.every((m) => m === 'comment')
  if (r.other || r.comment !== tag || !onlyComment || r.proto || r.dport) return 'other'
  if (r.target === 'ACCEPT' && r.iface === 'lo' && !r.source) return 'accept lo'
  if (r.target === 'ACCEPT' && !r.iface) return `accept ${r.source ?? '0.0.0.0/0'}`
  if (r.target === 'DROP' && !r.iface && !r.source) return 'drop'
  return 'other'
}

function jumpKey(r: Rule, w: FirewallWant): string {
  const ok = !r.other && r.comment === w.tag && r.proto === 'tcp' && r.dport && !r.source && !r.iface && r.modules.every((m) => m === 'tcp' || m === 'comment')
  return ok ? `jump ${r.dport}` : 'other'
}

export interface FirewallPlan {
  /** iptables argument lists, applied in order. */
  commands: string[][]
  added: string[]
  removed: string[]
}

const show = (chain: string, spec: string[]) => `-A ${chain} ${spec.map(quote).join(' ')}`

// The smallest set of iptables commands from the listed state to the wanted one. Order
// matters only for DROP (last in our chain); ACCEPTs go in at the top, so there is never
// a moment where the ports are open to everyone or closed to a wanted source.
export function planFirewall(state: 'present' | 'absent', listing: Listing, w: FirewallWant): FirewallPlan {
  const plan: FirewallPlan = {commands: [], added: [], removed: []}
  const del = (r: Rule) => {
    plan.commands.push(['-D', r.chain, ...r.spec])
    plan.removed.push(show(r.chain, r.spec))
  }
  const exists = listing.chains.has(w.chain)
  const jumps = listing.rules.filter((r) => r.target === w.chain)

  const dropChain = (chain: string) => {
    plan.commands.push(['-F', chain], ['-X', chain])
    plan.removed.push(...listing.rules.filter((r) => r.chain === chain).map((r) => show(r.chain, r.spec)), `-N ${chain}`)
  }
  if (state === 'absent') {
    jumps.forEach(del)
    if (exists) dropChain(w.chain)
    adoptLegacy(listing, w, del, dropChain)
    return plan
  }

  if (!exists) {
    plan.commands.push(['-N', w.chain])
    plan.added.push(`-N ${w.chain}`)
  }
  const ours = listing.rules.filter((r) => r.chain === w.chain)
  const wantAccepts = new Map<string, string[]>([['accept lo', specs.loopback(w)]])
  for (const s of w.sources) wantAccepts.set(`accept ${s}`, specs.source(w, s))
  const seen = new Set<string>()
  const extra: Rule[] = []
  // The one DROP we keep is the chain's last rule; any other DROP goes.
  const lastIsDrop = ours.length > 0 && chainRuleKey(ours[ours.length - 1], w.tag) === 'drop'
  ours.forEach((r, i) => {
    const key = chainRuleKey(r, w.tag)
    if (key === 'drop') {
      if (!(lastIsDrop && i === ours.length - 1)) extra.push(r)
    } else if (wantAccepts.has(key) && !seen.has(key)) {
      seen.add(key)
    } else {
      extra.push(r)
    }
  })
  for (const [key, spec] of wantAccepts) {
    if (seen.has(key)) continue
    plan.commands.push(['-I', w.chain, '1', ...spec])
    plan.added.push(show(w.chain, spec))
  }
  extra.forEach(del)
  if (!lastIsDrop) {
    plan.commands.push(['-A', w.chain, ...specs.drop(w)])
    plan.added.push(show(w.chain, specs.drop(w)))
  }

  // Jumps last: the chain is complete before any traffic is sent to it.
  const have = new Set<string>()
  const staleJumps: Rule[] = []
  for (const r of jumps) {
    const key = jumpKey(r, w)
    if (r.chain === 'INPUT' && key !== 'other' && w.ranges.includes(key.slice(5)) && !have.has(key)) have.add(key)
    else if (r.chain === 'INPUT') staleJumps.push(r)
  }
  for (const range of w.ranges) {
    if (have.has(`jump ${range}`)) continue
    const spec = specs.jump(w, range)
    plan.commands.push(['-I', 'INPUT', '1', ...spec])
    plan.added.push(show('INPUT', spec))
  }
  staleJumps.forEach(del)
  adoptLegacy(listing, w, del, dropChain)
  return plan
}

// An older chain (one for every cluster of the host) loses its jumps for our ports only
// after ours are in place, and goes when no other cluster's port jumps to it any more.
function adoptLegacy(listing: Listing, w: FirewallWant, del: (r: Rule) => void, dropChain: (chain: string) => void): void {
  for (const legacy of w.adopt ?? []) {
    if (legacy === w.chain || !listing.chains.has(legacy)) continue
    const into = listing.rules.filter((r) => r.target === legacy)
    const ours = into.filter((r) => r.chain === 'INPUT' && r.dport !== undefined && w.ranges.includes(r.dport))
    ours.forEach(del)
    if (ours.length === into.length) dropChain(legacy)
  }
}

/** Listening TCP ports (IPv4 and IPv6) from /proc/net/tcp{,6} lines' local_address field (hex port). */
export function listeningPorts(lines: string[]): Set<number> {
  return new Set(lines.map((l) => parseInt(l.trim(), 16)).filter((n) => Number.isInteger(n) && n > 0))
}

/** The listened ports that fall in one of the ranges ("7000:7003", "17000"). */
export function portsInRanges(ports: Set<number>, ranges: string[]): number[] {
  const within = (p: number) =>
    ranges.some((r) => {
      const [a, b = a] = r.split(':').map(Number)
      return p >= a && p <= b
    })
  return [...ports].filter(within).sort((x, y) => x - y)
}

function factsScript(): string {
  return (
    [
      'PATH="$PATH:/usr/sbin:/sbin"',
      'if ! command -v iptables >/dev/null 2>&1; then echo "@@ NOTOOL"; exit 0; fi',
      'out=$(iptables -w -S 2>&1); rc=$?',
      'echo "@@ RC $rc"',
      `printf '%s\\n' "$out"`,
      // Listening sockets (state 0A): the hex port of each local address, prefixed.
      `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" { n = split($2, a, ":"); print "@@ LISTEN " a[n] }'`,
    ].join('\n') + '\n'
  )
}

function applyScript(commands: string[][]): string {
  return (
    [
      'PATH="$PATH:/usr/sbin:/sbin"',
      'ipt() { if ! o=$(iptables -w "$@" 2>&1); then echo "@@ FAILED iptables $*"; printf \'%s\\n\' "$o"; exit 1; fi; }',
      ...commands.map((c) => `ipt ${c.map(quote).join(' ')}`),
      'echo "@@ DONE"',
    ].join('\n') + '\n'
  )
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const secrets = [...ctx.secrets]
  const tag = String(args.tag ?? 'baremetal')
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tag)) return {status: 'failed', msg: `tag must be 1-64 letters, digits, '_', '.' or '-', got ${JSON.stringify(tag)}`}
  const state = (args.state ?? 'present') as 'present' | 'absent'
  const ranges: string[] = []
  for (const p of flattenList(args.ports)) {
    const r = normalizePortRange(p)
    if (r.error) return {status: 'failed', msg: r.error}
    if (!ranges.includes(r.range!)) ranges.push(r.range!)
  }
  if (state === 'present' && ranges.length === 0) return {status: 'failed', msg: 'no ports given'}
  const sources: string[] = []
  for (const s of flattenList(args.sources)) {
    const c = normalizeSource(s)
    if (c.error) return {status: 'failed', msg: c.error}
    if (!sources.includes(c.cidr!)) sources.push(c.cidr!)
  }
  const adopt = flattenList(args.adopt)
    .filter((t) => t !== tag)
    .map(chainName)
  const want: FirewallWant = {chain: chainName(tag), tag, ranges, sources, adopt}

  const facts = await ctx.transport.exec('sh -s', {stdin: factsScript(), timeoutMs: 60_000})
  const out = mask(facts.stdout, secrets)
  if (out.includes('@@ NOTOOL')) return {status: 'ok', msg: NO_TOOL_MSG, data: {warning: NO_TOOL_MSG, chain: want.chain}}
  const rc = /@@ RC (\d+)/.exec(out)
  const listingText = out
    .split('\n')
    .filter((l) => !l.startsWith('@@ '))
    .join('\n')
  const listening = listeningPorts(
    out
      .split('\n')
      .filter((l) => l.startsWith('@@ LISTEN '))
      .map((l) => l.slice(10)),
  )
  if (!rc || rc[1] !== '0') {
    const why = (listingText + mask(facts.stderr, secrets)).trim().split('\n').slice(-3).join(' ')
    const hint = /permission denied|must be root/i.test(why) ? ' (iptables needs root: connect as root)' : ''
    return {status: 'failed', msg: `iptables -S failed: ${why}${hint}`, rc: facts.exitCode}
  }
  const listing = parseListing(listingText)
  const plan = planFirewall(state, listing, want)
  const data = {chain: want.chain, ports: ranges, sources, added: plan.added, removed: plan.removed}
  // The ports the chain guards now (its jumps), not only the ones asked for: down with a
  // smaller redis_count must not strip the rules from the instances it left running.
  const guarded = [...ranges, ...listing.rules.filter((r) => r.chain === 'INPUT' && r.target === want.chain && r.dport).map((r) => r.dport!)]
  // Check mode: the stop before this task did not happen, so the ports still listen.
  const served = state === 'absent' && !ctx.check && plan.commands.length > 0 ? portsInRanges(listening, guarded) : []
  if (served.length > 0) {
    const list = served.slice(0, 10).join(', ') + (served.length > 10 ? `, … (${served.length})` : '')
    return {status: 'failed', msg: `port(s) ${list} still listening: the rules of chain ${want.chain} protect them and stay (stop those instances first, then run down again)`, data}
  }
  if (plan.commands.length === 0) {
    const msg = state === 'absent' ? `chain ${want.chain} already absent` : `chain ${want.chain} already as wanted (ports ${ranges.join(', ')}; ${sources.length} source(s) + loopback)`
    return {status: 'ok', msg, data}
  }
  const counts = (add: string, rm: string) => [plan.added.length && `${plan.added.length} rule(s) ${add}`, plan.removed.length && `${plan.removed.length} ${rm}`].filter(Boolean).join(', ')
  if (ctx.check) return {status: 'changed', msg: `would change chain ${want.chain}: ${counts('to add', 'to remove')}`, data}
  const r = await ctx.transport.exec('sh -s', {stdin: applyScript(plan.commands), timeoutMs: 120_000})
  const applied = mask(r.stdout, secrets)
  if (r.failed || !applied.includes('@@ DONE')) {
    const why = applied.split('@@ FAILED ')[1]?.trim() ?? mask(r.stderr, secrets).trim()
    return {status: 'failed', msg: `firewall change failed: ${why}`, rc: r.exitCode, data}
  }
  return {status: 'changed', msg: state === 'absent' ? `removed chain ${want.chain} and its jump(s)` : `chain ${want.chain}: ${counts('added', 'removed')}`, data}
}

export const firewallModule = defineItemModule({
  name: 'firewall',
  description: 'Open the Redis ports to the listed sources only, through a dedicated iptables chain (diff-applied)',
  args: {
    ports: {type: 'list', default: []},
    sources: {type: 'list', default: []},
    state: {type: 'string', choices: ['present', 'absent'], default: 'present'},
    tag: {type: 'string', default: 'baremetal'},
    adopt: {type: 'list', default: []},
  },
  runItem,
})
