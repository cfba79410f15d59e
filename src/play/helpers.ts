// The Handlebars helpers earlier versions documented (`{{ add port 10000 }}`), with their
// old meaning, so templates and playbooks written for them render byte for byte as before.
import {quote} from '../shell.js'
import {ExprError, Float, isUndef, use} from './values.js'

const num = (v: unknown, pos: number): number => {
  const x = use(v, pos)
  const n = Number(x instanceof Float ? x.v : x)
  if (!Number.isFinite(n)) throw new ExprError(`not a number: ${JSON.stringify(x)}`, pos)
  return n
}
const plain = (v: unknown): unknown => (v instanceof Float ? v.v : v)
const same = (x: unknown, y: unknown) => plain(x) === plain(y) || String(plain(x)) === String(plain(y))
// "false"/"no" from -e are strings; these helpers always read them as the booleans users meant.
const loose = (v: unknown): boolean => Boolean(plain(v)) && !['false', 'no', 'off', '0'].includes(String(plain(v)).toLowerCase())

/** `~/x` → the remote user's home, known from facts. */
export function expandUser(p: unknown, vars: Record<string, unknown>): string {
  const home = vars.ansible_user_dir
  const s = String(p)
  if (typeof home !== 'string') return s
  return s === '~' ? home : s.startsWith('~/') ? `${home}/${s.slice(2)}` : s
}

/**
 * Quote a value the way redis.conf reads it (sdssplitargs): plain words as they are,
 * anything else in double quotes with \\, \", \n, \r, \t and \xHH escapes. A value
 * with a newline or quote can never start a second directive.
 */
export function redisArg(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(plain(v))
  if (/^[A-Za-z0-9_.,:\/@+=%*-]+$/.test(s)) return s
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '\\') out += '\\\\'
    else if (ch === '"') out += '\\"'
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return out + '"'
}

/** A list, or a whitespace-separated string, as several redis.conf arguments (bind). */
export function redisArgs(v: unknown): string {
  return (Array.isArray(v) ? v.map(String) : String(v ?? '').split(/\s+/))
    .filter((w) => w !== '')
    .map(redisArg)
    .join(' ')
}

type Helper = (a: unknown[], pos: number, vars: Record<string, unknown>) => unknown

const HELPERS: Record<string, Helper> = {
  add: (a, p) => a.reduce<number>((s, v) => s + num(v, p), 0),
  sub: (a, p) => num(a[0], p) - num(a[1], p),
  mul: (a, p) => a.reduce<number>((s, v) => s * num(v, p), 1),
  div: (a, p) => Math.floor(num(a[0], p) / num(a[1], p)),
  mod: (a, p) => num(a[0], p) % num(a[1], p),
  // The one helper that may look at an undefined name: that is what it is for.
  default: (a, p) => (isUndef(a[0]) || a[0] === null || a[0] === '' ? use(a[1], p) : a[0]),
  eq: (a, p) => same(use(a[0], p), use(a[1], p)),
  ne: (a, p) => !same(use(a[0], p), use(a[1], p)),
  gt: (a, p) => num(a[0], p) > num(a[1], p),
  lt: (a, p) => num(a[0], p) < num(a[1], p),
  and: (a, p) => a.every((v) => loose(use(v, p))),
  or: (a, p) => a.some((v) => loose(use(v, p))),
  not: (a, p) => !loose(use(a[0], p)),
  join: (a, p) => {
    const l = use(a[0], p)
    return Array.isArray(l) ? l.join(typeof a[1] === 'string' ? a[1] : ',') : String(l)
  },
  json: (a, p) => JSON.stringify(plain(use(a[0], p))),
  upper: (a, p) => String(use(a[0], p)).toUpperCase(),
  lower: (a, p) => String(use(a[0], p)).toLowerCase(),
  quote: (a, p) => quote(String(plain(use(a[0], p)))),
  expanduser: (a, p, vars) => expandUser(use(a[0], p), vars),
  yesno: (a, p) => (loose(use(a[0], p)) ? 'yes' : 'no'),
  redisarg: (a, p) => redisArg(use(a[0], p)),
  redisargs: (a, p) => redisArgs(use(a[0], p)),
}

export const LEGACY_HELPERS = new Set(Object.keys(HELPERS))

export function callHelper(name: string, args: unknown[], pos: number, vars: Record<string, unknown>): unknown {
  return HELPERS[name](args, pos, vars)
}
