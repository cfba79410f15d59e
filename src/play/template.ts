import Handlebars from 'handlebars'
import {TemplateError, type ErrorWhere} from '../errors.js'
import {quote} from '../shell.js'

// Handlebars, configured for config files and Ansible habits:
// - `{{ item }}` with spaces works as users write it today;
// - noEscape: a redis.conf is not HTML;
// - strict: an undefined variable is an error naming it, never an empty string.
// A value is rendered once: text inside a variable's value that looks like `{{…}}`
// is inserted as data and never rendered again (no template injection).

const hb = Handlebars.create()

const num = (v: unknown): number => {
  const n = Number(v)
  if (!Number.isFinite(n)) throw new Error(`not a number: ${JSON.stringify(v)}`)
  return n
}

// Helpers get Handlebars' options hash as their last argument; drop it.
const args = (a: unknown[]): unknown[] => a.slice(0, -1)

hb.registerHelper('add', (...a: unknown[]) => args(a).reduce<number>((s, v) => s + num(v), 0))
hb.registerHelper('sub', (x: unknown, y: unknown) => num(x) - num(y))
hb.registerHelper('mul', (...a: unknown[]) => args(a).reduce<number>((s, v) => s * num(v), 1))
hb.registerHelper('div', (x: unknown, y: unknown) => Math.floor(num(x) / num(y)))
hb.registerHelper('mod', (x: unknown, y: unknown) => num(x) % num(y))
hb.registerHelper('default', (v: unknown, d: unknown) => (v === undefined || v === null || v === '' ? d : v))
hb.registerHelper('eq', (x: unknown, y: unknown) => x === y || String(x) === String(y))
hb.registerHelper('ne', (x: unknown, y: unknown) => !(x === y || String(x) === String(y)))
hb.registerHelper('gt', (x: unknown, y: unknown) => num(x) > num(y))
hb.registerHelper('lt', (x: unknown, y: unknown) => num(x) < num(y))
// "false"/"no" from -e are strings; read them as the booleans users meant.
const truthy = (v: unknown): boolean => Boolean(v) && !['false', 'no', 'off', '0'].includes(String(v).toLowerCase())
hb.registerHelper('and', (...a: unknown[]) => args(a).every(truthy))
hb.registerHelper('or', (...a: unknown[]) => args(a).some(truthy))
hb.registerHelper('not', (x: unknown) => !truthy(x))
hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ',') : String(list)))
hb.registerHelper('json', (v: unknown) => JSON.stringify(v))
hb.registerHelper('upper', (v: unknown) => String(v).toUpperCase())
hb.registerHelper('lower', (v: unknown) => String(v).toLowerCase())
// For `shell:` tasks: insert a variable as one shell word, whatever it contains.
hb.registerHelper('quote', (v: unknown) => quote(String(v)))
// `~/x` → the remote user's home, known from facts (Ansible's expanduser filter).
hb.registerHelper('expanduser', (p: unknown, options: {data?: {root?: Record<string, unknown>}}) => {
  const home = options?.data?.root?.ansible_user_dir
  const s = String(p)
  if (typeof home !== 'string') return s
  return s === '~' ? home : s.startsWith('~/') ? `${home}/${s.slice(2)}` : s
})
hb.registerHelper('yesno', (v: unknown) => (truthy(v) ? 'yes' : 'no'))
// For redis.conf: a value as ONE argument of its directive, whatever it holds.
hb.registerHelper('redisarg', (v: unknown) => redisArg(v))
// For redis.conf: a list, or a whitespace-separated string, as several arguments (bind).
hb.registerHelper('redisargs', (v: unknown) =>
  (Array.isArray(v) ? v.map(String) : String(v ?? '').split(/\s+/)).filter((w) => w !== '').map(redisArg).join(' '))

/**
 * Quote a value the way redis.conf reads it (sdssplitargs): plain words as they are,
 * anything else in double quotes with \\, \", \n, \r, \t and \xHH escapes. A value
 * with a newline or quote can never start a second directive.
 */
export function redisArg(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v)
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

const cache = new Map<string, HandlebarsTemplateDelegate>()

function compile(source: string): HandlebarsTemplateDelegate {
  let t = cache.get(source)
  if (!t) {
    t = hb.compile(source, {strict: true, noEscape: true})
    cache.set(source, t)
  }
  return t
}

export function hasTemplate(s: string): boolean {
  return s.includes('{{')
}

const SINGLE_EXPR = /^\{\{\s*([A-Za-z_][\w]*(?:\.[\w]+)*)\s*\}\}$/

function lookupPath(vars: Record<string, unknown>, path: string): {found: boolean; value: unknown} {
  let cur: unknown = vars
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in (cur as object))) return {found: false, value: undefined}
    cur = (cur as Record<string, unknown>)[part]
  }
  return {found: true, value: cur}
}

function undefinedError(name: string, where: ErrorWhere, extraLine = 0): TemplateError {
  return new TemplateError(`undefined variable "${name}"`, {
    where: {...where, line: where.line ? where.line + extraLine : where.line},
    hint: `define "${name}" in the inventory (host or group vars), the play's vars, or with -e ${name}=VALUE; or write {{ default ${name} "fallback" }}`,
  })
}

/**
 * Render one string. A string that is exactly one `{{ var }}` keeps the variable's type
 * (a list stays a list for `loop:`), as in Ansible.
 */
export function renderString(source: string, vars: Record<string, unknown>, where: ErrorWhere = {}): unknown {
  if (!hasTemplate(source)) return source
  const single = SINGLE_EXPR.exec(source)
  if (single && !hb.helpers[single[1]]) {
    const {found, value} = lookupPath(vars, single[1])
    if (!found) throw undefinedError(single[1], where)
    return value
  }
  return renderText(source, vars, where)
}

/** Render a whole text (a template file); always returns a string. */
export function renderText(source: string, vars: Record<string, unknown>, where: ErrorWhere = {}): string {
  if (!hasTemplate(source)) return source
  try {
    return compile(source)(vars)
  } catch (error) {
    throw translate(error, source, where)
  }
}

function translate(error: unknown, source: string, where: ErrorWhere): TemplateError {
  const msg = error instanceof Error ? error.message : String(error)
  const undef = /^"([^"]+)" not defined in .* - (\d+):(\d+)/.exec(msg)
  if (undef) {
    // Strict mode names only the last path segment; find the full dotted name in the source line.
    const line = Number(undef[2])
    const text = source.split('\n')[line - 1] ?? ''
    const full = new RegExp(`([A-Za-z_][\\w.]*\\.)?${undef[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).exec(text.slice(Number(undef[3])))
    const name = full ? full[0] : undef[1]
    return undefinedError(name, where, line - 1)
  }
  const lineMatch = /line (\d+)/.exec(msg)
  const extra = lineMatch ? Number(lineMatch[1]) - 1 : 0
  const jinja = /\{\{[^}]*\|/.test(source) || /\{%/.test(source)
  return new TemplateError(`template error: ${msg.split('\n')[0]}`, {
    where: {...where, line: where.line ? where.line + extra : where.line},
    hint: jinja
      ? 'templates are Handlebars, not Jinja: write {{ default x "y" }} instead of {{ x | default("y") }}, {{ add port 10000 }} instead of {{ port + 10000 }}, {{#if x}}…{{/if}} instead of {% if %}'
      : 'check the {{ … }} expressions: helpers are add, sub, mul, div, mod, default, eq, ne, gt, lt, and, or, not, join, json, quote, upper, lower, yesno, redisarg, redisargs',
  })
}

/** Render every string inside a value (task arguments), keeping structure. */
export function renderDeep(value: unknown, vars: Record<string, unknown>, where: ErrorWhere = {}): unknown {
  if (typeof value === 'string') return renderString(value, vars, where)
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, vars, where))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, vars, where)
    return out
  }
  return value
}
