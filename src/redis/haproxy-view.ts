// HAProxy's view of each Sentinel group, as `status` shows it: which server each HAProxy
// host sends the group's writes to now (and which replicas its read backend has up), read
// from its admin socket's `show stat` CSV. Pure: reading the sockets is the caller's edge
// (src/redis/haproxy-read.ts); the write rule mirrors templates/haproxy.cfg.hbs.

/** One server line of `show stat`. */
export interface StatRow {
  backend: string
  server: string
  /** UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (coming up), MAINT, NOLB … */
  status: string
  /** ip:port (the addr column; absent before HAProxy 1.9). */
  addr?: string
  /** check_status and last_chk: why a check fails (L4CON: Connection refused …). */
  check?: string
}

/** What was read from one HAProxy host: its `show stat` output, or why there is none. */
export interface HaproxyReading {
  host: string
  text?: string
  error?: string
  /** How the socket was reached: the SSH connection's stream-local channel, or a command on the host. */
  via?: 'stream-local' | 'command'
}

export interface HaproxyServerView {
  /** s0, s1 … as in the config (the group's members in layout order). */
  id: string
  addr: string
  status: string
  /** Its role:master check passes (HAProxy's srv_is_up). */
  up: boolean
  /** Sentinels HAProxy's checks see naming it master, of how many. */
  named?: number
  sentinels?: number
  check?: string
}

export interface HaproxyHostView {
  host: string
  via?: HaproxyReading['via']
  error?: string
  /** ip:port this HAProxy sends new write connections to now; null: none (it refuses them). */
  writeTo: string | null
  servers: HaproxyServerView[]
  /** The read backend's servers that are up (ip:port), when the group has a read frontend. */
  readUp?: string[]
}

export interface HaproxyGroupView {
  /** The server every answering HAProxy host sends writes to; null when none does, or they disagree. */
  writeTo: string | null
  /** Every answering HAProxy host sends writes to the same server. */
  agree: boolean
  hosts: HaproxyHostView[]
  /** Writes reach, or could reach, a server that is not the one master. */
  split: string[]
  /** Writes (or reads) are refused, or a HAProxy host does not answer. */
  degraded: string[]
}

/** Split a CSV line (HAProxy quotes no field of these columns; a quoted one is still read whole). */
function csvFields(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') ((cur += '"'), i++)
      else if (c === '"') quoted = false
      else cur += c
    } else if (c === '"') quoted = true
    else if (c === ',') (out.push(cur), (cur = ''))
    else cur += c
  }
  out.push(cur)
  return out
}

/** The server rows of `show stat` (frontend and backend totals left out); a string says why the text is not the CSV. */
export function parseShowStat(text: string): StatRow[] | string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '')
  const head = lines.findIndex((l) => l.startsWith('# pxname,'))
  if (head < 0) return `HAProxy answered something other than its stats CSV: ${JSON.stringify((lines[0] ?? '(nothing)').slice(0, 120))}`
  const cols = csvFields(lines[head].slice(2))
  const at = (name: string) => cols.indexOf(name)
  const [px, sv, st, addr, cs, lc] = ['pxname', 'svname', 'status', 'addr', 'check_status', 'last_chk'].map(at)
  if (px < 0 || sv < 0 || st < 0) return 'HAProxy stats CSV without pxname, svname or status columns'
  const rows: StatRow[] = []
  for (const line of lines.slice(head + 1)) {
    const f = csvFields(line)
    if (f[sv] === 'FRONTEND' || f[sv] === 'BACKEND' || f[sv] === undefined) continue
    const check = [f[cs], f[lc]].filter((x) => x !== undefined && x !== '').join(': ')
    rows.push({backend: f[px], server: f[sv], status: f[st], ...(addr >= 0 && f[addr] ? {addr: f[addr]} : {}), ...(check ? {check} : {})})
  }
  return rows
}

// HAProxy's srv_is_up: running, or still running while its checks start to fail.
const isUp = (status: string) => /^(UP|NOLB)\b/.test(status)

/**
 * One host's routing for a group, by the config's rule: the first server (use-server
 * order) whose role:master check passes and, when it lists Sentinels, that a majority of
 * them name; without Sentinels, the one server passing.
 */
export function hostView(group: {name: string; readPort?: number}, reading: HaproxyReading, members: string[] = []): HaproxyHostView {
  const base = {host: reading.host, ...(reading.via ? {via: reading.via} : {})}
  if (reading.text === undefined) return {...base, error: reading.error ?? 'not read', writeTo: null, servers: []}
  const rows = parseShowStat(reading.text)
  if (typeof rows === 'string') return {...base, error: rows, writeTo: null, servers: []}
  const write = rows.filter((r) => r.backend === `${group.name}_write`)
  if (write.length === 0) return {...base, error: `no backend ${group.name}_write in its running configuration`, writeTo: null, servers: []}
  const servers = write.map((r, i): HaproxyServerView => {
    const named = rows.filter((x) => x.backend === `${group.name}_named_${r.server}`)
    return {
      id: r.server,
      addr: r.addr ?? members[i] ?? r.server,
      status: r.status,
      up: isUp(r.status),
      ...(named.length ? {named: named.filter((x) => isUp(x.status)).length, sentinels: named.length} : {}),
      ...(r.check ? {check: r.check} : {}),
    }
  })
  const upCount = servers.filter((s) => s.up).length
  const eligible = (s: HaproxyServerView) => s.up && (s.sentinels ? s.named! >= Math.floor(s.sentinels / 2) + 1 : upCount === 1)
  const view: HaproxyHostView = {...base, writeTo: servers.find(eligible)?.addr ?? null, servers}
  if (group.readPort) {
    view.readUp = rows.filter((x) => x.backend === `${group.name}_read` && isUp(x.status)).map((x, i) => x.addr ?? members[i] ?? x.server)
  }
  return view
}

function describeServer(s: HaproxyServerView): string {
  const named = s.sentinels ? `, named by ${s.named}/${s.sentinels} Sentinels` : ''
  return `${s.addr} ${s.status}${s.up ? '' : s.check ? ` (${s.check})` : ''}${named}`
}

/** Every HAProxy host's view of one group, judged against the master the Sentinels agree on (undefined: they do not). */
export function haproxyGroupView(group: {name: string; readPort?: number}, master: string | undefined, readings: HaproxyReading[], members: string[] = []): HaproxyGroupView {
  const hosts = readings.map((r) => hostView(group, r, members))
  const split: string[] = []
  const degraded: string[] = []
  for (const h of hosts) {
    if (h.error) degraded.push(`HAProxy on ${h.host} does not answer: ${h.error}`)
    else if (h.writeTo === null) degraded.push(`HAProxy on ${h.host} has no server for writes (it refuses them): ${h.servers.map(describeServer).join('; ')}`)
    else if (master && h.writeTo !== master) split.push(`HAProxy on ${h.host} sends writes to ${h.writeTo}, but the Sentinels name ${master}`)
    if (h.readUp && h.readUp.length === 0) degraded.push(`HAProxy on ${h.host} has no replica up for reads`)
  }
  const targets = [...new Set(hosts.filter((h) => h.writeTo).map((h) => h.writeTo!))]
  if (targets.length > 1) {
    split.push(
      `HAProxy hosts disagree on where writes go: ${targets
        .map(
          (t) =>
            `${t} (${hosts
              .filter((h) => h.writeTo === t)
              .map((h) => h.host)
              .join(', ')})`,
        )
        .join(' vs ')}`,
    )
  }
  const answering = hosts.filter((h) => !h.error)
  const agree = targets.length === 1 && answering.every((h) => h.writeTo === targets[0])
  return {writeTo: agree ? targets[0] : null, agree, hosts, split, degraded}
}

/** The status text lines of one group's HAProxy view. */
export function renderHaproxyLines(v: HaproxyGroupView, master: string | undefined): string[] {
  return v.hosts.map((h) => {
    if (h.error) return `  haproxy ${h.host}: not answering (${h.error})`
    const to = h.writeTo === null ? 'no server (writes refused)' : `${h.writeTo}${h.writeTo === master ? ' (the master)' : master ? ` (NOT the master ${master})` : ''}`
    const reads = h.readUp === undefined ? '' : `; reads → ${h.readUp.length ? h.readUp.join(', ') : 'no replica up'}`
    return `  haproxy ${h.host}: writes → ${to}${reads}`
  })
}
