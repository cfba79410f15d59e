// Pure readers for what Redis Cluster nodes say about themselves and each other.
// The text formats changed across versions (3.x `ip:port`, 4.0+ `ip:port@cport`,
// 7.x `ip:port@cport,hostname`), and the planner, the former and `status` must all
// read them the same way, so the parsing lives here, once, without any I/O.

export const CLUSTER_SLOTS = 16384

/** Inclusive [first, last] slot range. */
export type SlotRange = [number, number]

export interface NodeEntry {
  id: string
  /** Empty for a node whose address is not known yet (`:0@0`). */
  ip: string
  port: number
  busPort: number
  /** Redis 7 `cluster-announce-hostname`, when set. */
  hostname?: string
  /** `ip:port`, the key every other structure uses. */
  addr: string
  flags: string[]
  myself: boolean
  master: boolean
  replica: boolean
  /** Marked failed by a majority of masters. */
  fail: boolean
  /** Suspected failing by the node reporting this line only. */
  pfail: boolean
  handshake: boolean
  noaddr: boolean
  masterId: string | null
  pingSent: number
  pongRecv: number
  configEpoch: number
  linkState: string
  slots: SlotRange[]
  migrating: Array<{slot: number; to: string}>
  importing: Array<{slot: number; from: string}>
}

// The one spelling of a node's identity across plan, check and status (IPv6 bracketed,
// because Redis prints `::1:6379` which is ambiguous).
export function nodeAddr(n: {ip: string; port: number}): string {
  return n.ip.includes(':') ? `[${n.ip}]:${n.port}` : `${n.ip}:${n.port}`
}

// A node line is machine output, but an unexpected token must name the line: a
// silent misparse would make the former act on a wrong slot map.
export function parseClusterNodes(text: string): NodeEntry[] {
  const out: NodeEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line) continue
    const f = line.split(' ')
    if (f.length < 8) throw new Error(`CLUSTER NODES line has ${f.length} fields, expected at least 8: ${line}`)
    const [id, address, flagText, master, ping, pong, epoch, link, ...slotTokens] = f
    const {ip, port, busPort, hostname} = parseNodeAddress(address)
    const flags = flagText === 'noflags' ? [] : flagText.split(',')
    const entry: NodeEntry = {
      id,
      ip,
      port,
      busPort,
      ...(hostname ? {hostname} : {}),
      addr: nodeAddr({ip, port}),
      flags,
      myself: flags.includes('myself'),
      master: flags.includes('master'),
      replica: flags.includes('slave') || flags.includes('replica'),
      fail: flags.includes('fail'),
      pfail: flags.includes('fail?'),
      handshake: flags.includes('handshake'),
      noaddr: flags.includes('noaddr'),
      masterId: master === '-' ? null : master,
      pingSent: Number(ping),
      pongRecv: Number(pong),
      configEpoch: Number(epoch),
      linkState: link,
      slots: [],
      migrating: [],
      importing: [],
    }
    for (const tok of slotTokens) {
      if (tok.startsWith('[')) {
        const m = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/.exec(tok)
        if (!m) throw new Error(`bad open-slot token "${tok}" in CLUSTER NODES line: ${line}`)
        const slot = Number(m[1])
        if (m[2] === '>') entry.migrating.push({slot, to: m[3]})
        else entry.importing.push({slot, from: m[3]})
        continue
      }
      entry.slots.push(parseRange(tok, line))
    }
    out.push(entry)
  }
  return out
}

// Addresses come as `ip:port@cport[,hostname]` (IPv6 ips contain colons, so split at the last one).
export function parseNodeAddress(address: string): {ip: string; port: number; busPort: number; hostname?: string} {
  const comma = address.indexOf(',')
  const hostPart = comma >= 0 ? address.slice(0, comma) : address
  const hostname = comma >= 0 ? address.slice(comma + 1).split(',')[0] || undefined : undefined
  const at = hostPart.indexOf('@')
  const ipPort = at >= 0 ? hostPart.slice(0, at) : hostPart
  const colon = ipPort.lastIndexOf(':')
  if (colon < 0) throw new Error(`bad node address "${address}"`)
  const ip = ipPort.slice(0, colon)
  const port = Number(ipPort.slice(colon + 1))
  // 3.x lines have no bus port: it is port + 10000 there.
  const busPort = at >= 0 ? Number(hostPart.slice(at + 1)) : port === 0 ? 0 : port + 10000
  if (!Number.isInteger(port) || !Number.isInteger(busPort)) throw new Error(`bad node address "${address}"`)
  return {ip, port, busPort, ...(hostname ? {hostname} : {})}
}

function parseRange(tok: string, line: string): SlotRange {
  const m = /^(\d+)(?:-(\d+))?$/.exec(tok)
  if (!m) throw new Error(`bad slot token "${tok}" in CLUSTER NODES line: ${line}`)
  const a = Number(m[1])
  const b = m[2] === undefined ? a : Number(m[2])
  if (a > b || b >= CLUSTER_SLOTS) throw new Error(`slot range "${tok}" out of bounds in CLUSTER NODES line: ${line}`)
  return [a, b]
}

// CLUSTER INFO is `key:value` lines; numbers stay strings so nothing is lost.
export function parseClusterInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    const i = line.indexOf(':')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

// People read "0-5460,10923" faster than 5462 numbers, and it is what redis-cli prints.
export function compressSlots(slots: Iterable<number>): string {
  return rangesToString(rangesFromSlots(slots))
}

// Sorted, merged ranges from any order of slots (duplicates tolerated).
export function rangesFromSlots(slots: Iterable<number>): SlotRange[] {
  const sorted = [...new Set(slots)].sort((a, b) => a - b)
  const out: SlotRange[] = []
  for (const s of sorted) {
    const last = out[out.length - 1]
    if (last && s === last[1] + 1) last[1] = s
    else out.push([s, s])
  }
  return out
}

// Ranges from different lines of one node (or several plan steps) may touch: merge them for display.
export function mergeRanges(ranges: readonly SlotRange[]): SlotRange[] {
  const sorted = ranges.map((r) => [r[0], r[1]] as SlotRange).sort((a, b) => a[0] - b[0])
  const out: SlotRange[] = []
  for (const r of sorted) {
    const last = out[out.length - 1]
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1])
    else out.push(r)
  }
  return out
}

// The one display format for slot ranges everywhere (plan, check, status, JSON).
export function rangesToString(ranges: readonly SlotRange[]): string {
  return mergeRanges(ranges)
    .map(([a, b]) => (a === b ? String(a) : `${a}-${b}`))
    .join(',')
}

// Inverse of rangesToString, for users who pass ranges back (and for tests).
export function parseSlotRanges(text: string): SlotRange[] {
  if (!text.trim()) return []
  return mergeRanges(text.split(',').map((t) => parseRange(t.trim(), text)))
}

// Counting by ranges avoids expanding 16384-element arrays for every node.
export function countSlots(ranges: readonly SlotRange[]): number {
  return mergeRanges(ranges).reduce((n, [a, b]) => n + b - a + 1, 0)
}

// Expanded form for commands that take slot numbers (ADDSLOTS on 5.0.x has no range form).
export function expandRanges(ranges: readonly SlotRange[]): number[] {
  const out: number[] = []
  for (const [a, b] of mergeRanges(ranges)) for (let s = a; s <= b; s++) out.push(s)
  return out
}

// Ids as small integers, shared by all views of one probe round: 1000 views of 1000
// nodes are then 1000 Int32Arrays (4 MB), not a million strings.
export class NodeIds {
  readonly ids: string[] = []
  private readonly index = new Map<string, number>()

  intern(id: string): number {
    let i = this.index.get(id)
    if (i === undefined) {
      i = this.ids.length
      this.ids.push(id)
      this.index.set(id, i)
    }
    return i
  }

  get(id: string): number | undefined {
    return this.index.get(id)
  }
}

/** What the health checks need from one node's CLUSTER NODES, without keeping its lines. */
export interface NodesDigest {
  ids: NodeIds
  /** Lines, handshakes included: 1 means the node knows only itself. */
  lines: number
  myself: NodeEntry
  /** Interned ids of the nodes it knows (handshake and address-less excluded), ascending. */
  known: Int32Array
  /** Order-independent hash of masters with slots and their slots: equal iff same slot map. */
  signature: string
  /** Interned ids it flags as failed (FAIL, agreed by a majority). */
  failed: number[]
}

// Two FNV-1a variants summed over lines: independent of line order, which differs per node.
function lineHashes(text: string): [number, number] {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
  }
  return [a >>> 0, b >>> 0]
}

function signatureOf(parts: Iterable<string>): string {
  let n = 0
  let sa = 0
  let sb = 0
  for (const p of parts) {
    const [a, b] = lineHashes(p)
    sa = (sa + a) >>> 0
    sb = (sb + b) >>> 0
    n++
  }
  return `${n}.${sa.toString(36)}.${sb.toString(36)}`
}

const slotToken = ([a, b]: SlotRange) => (a === b ? String(a) : `${a}-${b}`)

// A parsed view's signature, equal to digestClusterNodes' for the same lines.
export function viewSignature(entries: readonly NodeEntry[]): string {
  return signatureOf(entries.filter((e) => e.master && e.slots.length > 0 && !e.handshake && !e.noaddr).map((e) => `${e.id}:${e.slots.map(slotToken).join(' ')}`))
}

// One pass over the text by index: no per-line strings but the id, no objects except for
// "myself". A 1000-node cluster answers ~110 KB per node and the formation reads all 1000:
// slicing, splitting and hashing copies of each line was most of the controller's CPU
// (and its garbage) there.
export function digestClusterNodes(text: string, ids: NodeIds): NodesDigest {
  let lines = 0
  let myself: NodeEntry | undefined
  const known: number[] = []
  const failed: number[] = []
  const sig = {n: 0, a: 0, b: 0}
  let pos = 0
  while (pos < text.length) {
    let end = text.indexOf('\n', pos)
    if (end < 0) end = text.length
    let s = pos
    let e = end
    pos = end + 1
    while (s < e && text.charCodeAt(s) <= 32) s++
    while (e > s && text.charCodeAt(e - 1) <= 32) e--
    if (s === e) continue
    lines++
    const s1 = spaceIn(text, s, e)
    const s2 = spaceIn(text, s1 + 1, e)
    const s3 = spaceIn(text, s2 + 1, e)
    if (s1 < 0 || s2 < 0 || s3 < 0) throw new Error(`CLUSTER NODES line has too few fields: ${text.slice(s, e)}`)
    const id = text.slice(s, s1)
    const flags = flagBits(text, s2 + 1, s3)
    if (flags & MYSELF) myself = parseClusterNodes(text.slice(s, e))[0]
    if (flags & (HANDSHAKE | NOADDR)) continue
    const idx = ids.intern(id)
    known.push(idx)
    if (flags & FAIL) failed.push(idx)
    if (!(flags & MASTER)) continue
    // Fields 4-8 (master, ping, pong, epoch, link), then slots.
    let f = s3
    for (let k = 0; k < 5 && f >= 0; k++) f = spaceIn(text, f + 1, e)
    if (f >= 0) addSlotsLine(sig, text, s, s1, f + 1, e)
  }
  if (!myself) throw new Error('CLUSTER NODES has no "myself" line')
  return {ids, lines, myself, known: Int32Array.from(known).sort(), signature: `${sig.n}.${sig.a.toString(36)}.${sig.b.toString(36)}`, failed}
}

function spaceIn(text: string, from: number, end: number): number {
  const i = text.indexOf(' ', from)
  return i < 0 || i >= end ? -1 : i
}

const MYSELF = 1
const MASTER = 2
const HANDSHAKE = 4
const NOADDR = 8
const FAIL = 16
const FLAG_BITS: Record<string, number> = {myself: MYSELF, master: MASTER, handshake: HANDSHAKE, noaddr: NOADDR, fail: FAIL}

// The flags in [from, to) that the digest reads, as bits, compared in place: an exact flag
// of the comma-separated list ("fail" is not "fail?").
function flagBits(text: string, from: number, to: number): number {
  let bits = 0
  for (let i = from; i < to;) {
    let j = i
    while (j < to && text.charCodeAt(j) !== 44) j++
    const len = j - i
    if (len === 4 || len === 6 || len === 9) for (const f in FLAG_BITS) if (f.length === len && text.startsWith(f, i)) bits |= FLAG_BITS[f]
    i = j + 1
  }
  return bits
}

// lineHashes of `${id}:${tokens joined by one space}` (importing/migrating "[…]" tokens left
// out), summed into sig, fed from the text in place. A master with no slot token adds nothing.
function addSlotsLine(sig: {n: number; a: number; b: number}, text: string, idFrom: number, idTo: number, from: number, to: number): void {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  // The id, ':', then every kept token with one space before all but the first; the hash
  // step is written out in both loops (a closure per character cost a third of the time).
  let tokens = 0
  for (let i = idFrom, j = idTo, k = from; ;) {
    for (; i < j; i++) {
      const c = text.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
    }
    // The separator before the next token: ':' after the id, ' ' between tokens.
    while (k < to && text.charCodeAt(k) <= 32) k++
    while (k < to && text.charCodeAt(k) === 91) {
      while (k < to && text.charCodeAt(k) > 32) k++
      while (k < to && text.charCodeAt(k) <= 32) k++
    }
    if (k >= to) break
    const c = tokens++ === 0 ? 58 : 32
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
    i = k
    while (k < to && text.charCodeAt(k) > 32) k++
    j = k
  }
  if (tokens === 0) return
  sig.a = (sig.a + (a >>> 0)) >>> 0
  sig.b = (sig.b + (b >>> 0)) >>> 0
  sig.n++
}

// Slot -> owner id as seen by one node ('' = no owner). Used to explain disagreements.
export function slotOwners(entries: readonly NodeEntry[]): string[] {
  const owners = new Array<string>(CLUSTER_SLOTS).fill('')
  for (const e of entries) {
    if (!e.master) continue
    for (const [a, b] of e.slots) for (let s = a; s <= b; s++) owners[s] = e.id
  }
  return owners
}
