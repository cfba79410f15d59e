// Jinja's and Ansible's filters and tests, for the subset playbooks use. Each follows the
// Jinja/Ansible documentation; anything else is refused by name when the expression is parsed.
import {posix} from 'node:path'
import {Document, isMap, isSeq, visit} from 'yaml'
import {quote} from '../shell.js'
import {contains, equal, plain, repr, toStr, truthy, typeName, type Scope} from './expr.js'
import {expandUser} from './helpers.js'
import {ExprError, Float, isUndef, Undef, use} from './values.js'

export interface FilterCtx {
  pos: number
  scope: Scope
}

type Filter = (x: unknown, a: unknown[], kw: Record<string, unknown>, c: FilterCtx) => unknown

// Python truthiness without the "string spelled as a boolean" guard: for default(x, true).
const pyTrue = (v: unknown) =>
  !(
    v === null ||
    v === undefined ||
    v === false ||
    v === 0 ||
    v === '' ||
    (v instanceof Float && v.v === 0) ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Float) && Object.keys(v as object).length === 0)
  )

const list = (v: unknown, c: FilterCtx, what: string): unknown[] => {
  const x = use(v, c.pos)
  if (Array.isArray(x)) return x
  if (typeof x === 'string') return [...x]
  if (x && typeof x === 'object' && !(x instanceof Float)) return Object.keys(x)
  throw new ExprError(`${what} needs a list, got ${typeName(x)}`, c.pos)
}
const text = (v: unknown, c: FilterCtx): string => toStr(use(v, c.pos))
const dict = (v: unknown, c: FilterCtx, what: string): Record<string, unknown> => {
  const x = use(v, c.pos)
  if (!x || typeof x !== 'object' || Array.isArray(x) || x instanceof Float) throw new ExprError(`${what} needs a mapping, got ${typeName(x)}`, c.pos)
  return x as Record<string, unknown>
}
const arg = (a: unknown[], kw: Record<string, unknown>, i: number, name: string, dflt?: unknown): unknown => (name in kw ? kw[name] : i < a.length ? a[i] : dflt)

function toInt(x: unknown, dflt: unknown): unknown {
  const v = plain(x)
  if (typeof v === 'number') return Math.trunc(v)
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'string') {
    const s = v.trim().replace(/_/g, '')
    if (/^[+-]?\d+$/.test(s)) return Number(s)
    if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Math.trunc(Number(s))
  }
  return dflt
}

function toBool(x: unknown): boolean {
  const v = plain(x)
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v === 1
  return typeof v === 'string' && ['yes', 'on', '1', 'true'].includes(v.trim().toLowerCase())
}

// Python's re module and JS's agree on the syntax playbooks use but for named groups.
function pyRegex(p: string, flags: string, c: FilterCtx): RegExp {
  try {
    return new RegExp(p.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>'), flags)
  } catch (error) {
    throw new ExprError(`bad regular expression ${JSON.stringify(p)}: ${(error as Error).message}`, c.pos)
  }
}
const pyReplacement = (r: string) =>
  r
    .replace(/\$/g, '$$$$')
    .replace(/\\g<(\w+)>/g, (_, n) => (/^\d+$/.test(n) ? `$${n}` : `$<${n}>`))
    .replace(/\\(\d)/g, '$$$1')

/** Python json.dumps: ", " and ": " separators, non-ASCII escaped. */
export function pyJson(v: unknown, indent?: number, sortKeys = false, depth = 0): string {
  if (depth > 64) throw new ExprError('the value is nested too deep to convert (does it contain itself, like hostvars?)', 0)
  const x = plain(v)
  const nl = indent === undefined ? '' : `\n${' '.repeat(indent * (depth + 1))}`
  const end = indent === undefined ? '' : `\n${' '.repeat(indent * depth)}`
  const sep = indent === undefined ? ', ' : ','
  if (x === null || x === undefined) return 'null'
  if (v instanceof Float) return repr(v)
  if (typeof x === 'string') return JSON.stringify(x).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (Array.isArray(x)) return x.length === 0 ? '[]' : `[${nl}${x.map((e) => pyJson(e, indent, sortKeys, depth + 1)).join(sep + nl)}${end}]`
  if (typeof x === 'object') {
    const keys = Object.keys(x)
    if (sortKeys) keys.sort()
    if (keys.length === 0) return '{}'
    return `{${nl}${keys.map((k) => `${pyJson(k)}: ${pyJson((x as Record<string, unknown>)[k], indent, sortKeys, depth + 1)}`).join(sep + nl)}${end}}`
  }
  return JSON.stringify(x)
}

/** PyYAML's dump as Ansible calls it: keys sorted, collections of scalars in flow style unless nice. */
function pyYaml(v: unknown, nice: boolean, indent: number): string {
  const doc = new Document(JSON.parse(pyJson(v)), {sortMapEntries: true})
  if (!nice) {
    visit(doc, {
      Map: (_, n) => {
        if (n.items.every((p) => !isMap(p.value) && !isSeq(p.value))) n.flow = true
      },
      Seq: (_, n) => {
        if (n.items.every((i) => !isMap(i) && !isSeq(i))) n.flow = true
      },
    })
  }
  return doc.toString({indent, flowCollectionPadding: false, singleQuote: true, lineWidth: 0, indentSeq: !nice ? false : true})
}

function sortKey(v: unknown, caseSensitive: boolean): unknown {
  const x = plain(v)
  return typeof x === 'string' && !caseSensitive ? x.toLowerCase() : x
}

function attrOf(item: unknown, path: string, c: FilterCtx): unknown {
  let cur = item
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, k)) return new Undef(`item.${path}`, c.pos, `an item has no attribute "${path}"`)
    cur = (cur as Record<string, unknown>)[k]
  }
  return cur
}

function extract(item: unknown, container: unknown, more: unknown, c: FilterCtx): unknown {
  const base = use(container, c.pos)
  let v: unknown =
    base && typeof base === 'object' && Object.prototype.hasOwnProperty.call(base, String(plain(item)))
      ? (base as Record<string, unknown>)[String(plain(item))]
      : Array.isArray(base) && typeof item === 'number'
        ? base[item]
        : new Undef(`[${repr(item)}]`, c.pos, `extract: ${repr(item)} is not in the container`)
  for (const k of more === undefined ? [] : Array.isArray(more) ? more : [more]) {
    const cur = use(v, c.pos)
    v =
      cur && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, String(k))
        ? (cur as Record<string, unknown>)[String(k)]
        : new Undef(`[${repr(item)}][${repr(k)}]`, c.pos, `extract: ${repr(item)} has no key ${repr(k)}`)
  }
  return use(v, c.pos)
}

function selectLike(keep: boolean, attr: boolean): Filter {
  return (x, a, kw, c) => {
    const items = list(x, c, attr ? 'selectattr' : keep ? 'select' : 'reject')
    const [attrName, test, ...rest] = attr ? a : [undefined, ...a]
    return items.filter((it) => {
      const v = attr ? attrOf(it, String(attrName), c) : it
      const r = test === undefined ? (isUndef(v) ? false : pyTrue(v)) : callTest(String(test), v, rest, c.pos)
      return r === keep
    })
  }
}

const FILTER_TABLE: Record<string, Filter> = {
  default: (x, a, kw) => (isUndef(x) || (arg(a, kw, 1, 'boolean', false) === true && !pyTrue(x)) ? arg(a, kw, 0, 'default_value', '') : x),
  mandatory: (x, a, _kw, c) => {
    if (isUndef(x)) throw new ExprError(a[0] !== undefined ? String(a[0]) : `mandatory variable "${x.name}" is not defined`, x.pos || c.pos)
    return x
  },
  join: (x, a, kw, c) =>
    list(x, c, 'join')
      .map((v) => toStr(v))
      .join(text(arg(a, kw, 0, 'd', ''), c)),
  int: (x, a, kw, c) => toInt(use(x, c.pos), arg(a, kw, 0, 'default', 0)),
  float: (x, a, kw, c) => {
    const v = plain(use(x, c.pos))
    const n = typeof v === 'number' ? v : Number(String(v).trim())
    return new Float(Number.isFinite(n) && String(v).trim() !== '' ? n : Number(plain(arg(a, kw, 0, 'default', 0))))
  },
  bool: (x, _a, _kw, c) => toBool(use(x, c.pos)),
  string: (x, _a, _kw, c) => text(x, c),
  length: (x, _a, _kw, c) => {
    const v = use(x, c.pos)
    if (typeof v === 'string' || Array.isArray(v)) return v.length
    if (v && typeof v === 'object' && !(v instanceof Float)) return Object.keys(v).length
    throw new ExprError(`length of ${typeName(v)}`, c.pos)
  },
  lower: (x, _a, _kw, c) => text(x, c).toLowerCase(),
  upper: (x, _a, _kw, c) => text(x, c).toUpperCase(),
  capitalize: (x, _a, _kw, c) => {
    const s = text(x, c)
    return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase()
  },
  trim: (x, _a, _kw, c) => text(x, c).trim(),
  replace: (x, a, kw, c) => {
    const s = text(x, c)
    const n = arg(a, kw, 2, 'count')
    const parts = s.split(text(a[0], c))
    if (n === undefined || n === null) return parts.join(text(a[1], c))
    return parts.slice(0, Number(n) + 1).join(text(a[1], c)) + (parts.length > Number(n) + 1 ? text(a[0], c) + parts.slice(Number(n) + 1).join(text(a[0], c)) : '')
  },
  regex_replace: (x, a, kw, c) => {
    const flags = `g${arg(a, kw, 2, 'ignorecase', false) === true ? 'i' : ''}${arg(a, kw, 3, 'multiline', false) === true ? 'm' : ''}`
    return text(x, c).replace(pyRegex(text(arg(a, kw, 0, 'pattern', ''), c), flags, c), pyReplacement(text(arg(a, kw, 1, 'replacement', ''), c)))
  },
  regex_search: (x, a, kw, c) => {
    const m = pyRegex(text(a[0], c), `${arg(a, kw, 99, 'ignorecase', false) === true ? 'i' : ''}${arg(a, kw, 99, 'multiline', false) === true ? 'm' : ''}`, c).exec(text(x, c))
    return m ? m[0] : null
  },
  map: (x, a, kw, c) => {
    const items = list(x, c, 'map')
    if ('attribute' in kw)
      return items.map((it) => {
        const v = attrOf(it, String(kw.attribute), c)
        return isUndef(v) && 'default' in kw ? kw.default : use(v, c.pos)
      })
    if (a.length === 0) throw new ExprError('map needs a filter name or attribute=…', c.pos, "write map('extract', hostvars, 'ansible_host') or map(attribute='name')")
    const name = String(a[0])
    if (name === 'extract') return items.map((it) => extract(it, a[1], a[2], c))
    if (!FILTERS.has(name)) throw new ExprError(`map: unknown filter "${name}"`, c.pos)
    return items.map((it) => callFilter(name, it, a.slice(1), kw, c))
  },
  select: selectLike(true, false),
  reject: selectLike(false, false),
  selectattr: selectLike(true, true),
  rejectattr: selectLike(false, true),
  list: (x, _a, _kw, c) => [...list(x, c, 'list')],
  first: (x, _a, _kw, c) => {
    const l = list(x, c, 'first')
    return l.length ? l[0] : new Undef('first', c.pos, 'the list is empty')
  },
  last: (x, _a, _kw, c) => {
    const l = list(x, c, 'last')
    return l.length ? l[l.length - 1] : new Undef('last', c.pos, 'the list is empty')
  },
  unique: (x, _a, _kw, c) => list(x, c, 'unique').filter((v, i, all) => all.findIndex((w) => equal(v, w)) === i),
  reverse: (x, _a, _kw, c) => {
    const v = use(x, c.pos)
    return typeof v === 'string' ? [...v].reverse().join('') : [...list(v, c, 'reverse')].reverse()
  },
  sort: (x, a, kw, c) => {
    const attr = arg(a, kw, 2, 'attribute')
    const cs = arg(a, kw, 1, 'case_sensitive', false) === true
    const keyed = list(x, c, 'sort').map((v) => ({v, k: sortKey(attr === undefined || attr === null ? v : use(attrOf(v, String(attr), c), c.pos), cs)}))
    const kinds = new Set(keyed.map((e) => typeof e.k))
    if (kinds.size > 1 || [...kinds].some((k) => k !== 'number' && k !== 'string')) throw new ExprError('sort needs all numbers or all strings', c.pos)
    keyed.sort((p, q) => ((p.k as number) < (q.k as number) ? -1 : (p.k as number) > (q.k as number) ? 1 : 0))
    if (arg(a, kw, 0, 'reverse', false) === true) keyed.reverse()
    return keyed.map((e) => e.v)
  },
  to_json: (x, _a, _kw, c) => pyJson(use(x, c.pos)),
  to_nice_json: (x, a, kw, c) => pyJson(use(x, c.pos), Number(arg(a, kw, 0, 'indent', 4)), true),
  from_json: (x, _a, _kw, c) => {
    try {
      return JSON.parse(text(x, c))
    } catch (error) {
      throw new ExprError(`from_json: ${(error as Error).message}`, c.pos)
    }
  },
  to_yaml: (x, _a, _kw, c) => pyYaml(use(x, c.pos), false, 2),
  to_nice_yaml: (x, a, kw, c) => pyYaml(use(x, c.pos), true, Number(arg(a, kw, 0, 'indent', 4))),
  quote: (x, _a, _kw, c) => quote(text(x, c)),
  ternary: (x, a, _kw, c) => (a.length > 2 && use(x, c.pos) === null ? a[2] : truthy(x, c.pos) ? a[0] : a[1]),
  basename: (x, _a, _kw, c) => posix.basename(text(x, c)),
  dirname: (x, _a, _kw, c) => posix.dirname(text(x, c)),
  expanduser: (x, _a, _kw, c) => expandUser(text(x, c), c.scope.vars),
  abs: (x, _a, _kw, c) => {
    const v = use(x, c.pos)
    return v instanceof Float ? new Float(Math.abs(v.v)) : Math.abs(Number(v))
  },
  min: (x, _a, _kw, c) => list(x, c, 'min').reduce((m, v) => (plain(v)! < plain(m)! ? v : m)),
  max: (x, _a, _kw, c) => list(x, c, 'max').reduce((m, v) => (plain(v)! > plain(m)! ? v : m)),
  sum: (x, a, kw, c) => list(x, c, 'sum').reduce<number>((s, v) => s + Number(plain(v)), Number(plain(arg(a, kw, 1, 'start', 0)))),
  split: (x, a, _kw, c) => (a[0] === undefined ? text(x, c).trim().split(/\s+/).filter(Boolean) : text(x, c).split(text(a[0], c))),
  combine: (x, a, kw, c) => {
    const deep = (p: Record<string, unknown>, q: Record<string, unknown>): Record<string, unknown> => {
      const out = {...p}
      for (const [k, v] of Object.entries(q)) out[k] = kw.recursive === true && isPlainDict(out[k]) && isPlainDict(v) ? deep(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v
      return out
    }
    return a.reduce<Record<string, unknown>>((acc, d) => deep(acc, dict(d, c, 'combine')), {...dict(x, c, 'combine')})
  },
  dict2items: (x, _a, _kw, c) => Object.entries(dict(x, c, 'dict2items')).map(([key, value]) => ({key, value})),
  items2dict: (x, _a, _kw, c) => Object.fromEntries(list(x, c, 'items2dict').map((e) => [String((e as Record<string, unknown>).key), (e as Record<string, unknown>).value])),
  items: (x, _a, _kw, c) => Object.entries(dict(x, c, 'items')),
  flatten: (x, a, kw, c) => list(x, c, 'flatten').flat(arg(a, kw, 0, 'levels') === undefined ? Infinity : Number(arg(a, kw, 0, 'levels'))),
  union: (x, a, _kw, c) => FILTER_TABLE.unique([...list(x, c, 'union'), ...list(a[0], c, 'union')], [], {}, c),
  intersect: (x, a, _kw, c) =>
    FILTER_TABLE.unique(
      list(x, c, 'intersect').filter((v) => list(a[0], c, 'intersect').some((w) => equal(v, w))),
      [],
      {},
      c,
    ),
  difference: (x, a, _kw, c) =>
    FILTER_TABLE.unique(
      list(x, c, 'difference').filter((v) => !list(a[0], c, 'difference').some((w) => equal(v, w))),
      [],
      {},
      c,
    ),
}
FILTER_TABLE.d = FILTER_TABLE.default
FILTER_TABLE.count = FILTER_TABLE.length

const isPlainDict = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Float)

export const FILTERS = new Map(Object.entries(FILTER_TABLE))

export function callFilter(name: string, x: unknown, args: unknown[], kw: Record<string, unknown>, c: FilterCtx): unknown {
  const f = FILTERS.get(name)
  if (!f) throw new ExprError(`unknown filter "${name}"`, c.pos)
  // Arguments are used as values: an undefined one is an error (x | default(y) with y undefined).
  const a = args.map((v) => use(v, c.pos))
  const k = Object.fromEntries(Object.entries(kw).map(([n, v]) => [n, use(v, c.pos)]))
  return f(x, a, k, c)
}

type Test = (x: unknown, a: unknown[], pos: number) => boolean
const n = (x: unknown) => plain(x)
const TESTS: Record<string, Test> = {
  defined: (x) => !isUndef(x),
  undefined: (x) => isUndef(x),
  none: (x) => x === null,
  string: (x) => typeof x === 'string',
  number: (x) => typeof x === 'number' || x instanceof Float,
  integer: (x) => typeof x === 'number' && Number.isInteger(x),
  float: (x) => x instanceof Float,
  boolean: (x) => typeof x === 'boolean',
  mapping: (x) => isPlainDict(x),
  sequence: (x) => Array.isArray(x) || typeof x === 'string' || isPlainDict(x),
  iterable: (x) => Array.isArray(x) || typeof x === 'string' || isPlainDict(x),
  true: (x) => x === true,
  false: (x) => x === false,
  even: (x) => Number(n(x)) % 2 === 0,
  odd: (x) => Math.abs(Number(n(x)) % 2) === 1,
  divisibleby: (x, a) => Number(n(x)) % Number(n(a[0])) === 0,
  eq: (x, a) => equal(x, a[0]),
  ne: (x, a) => !equal(x, a[0]),
  lt: (x, a) => (n(x) as number) < (n(a[0]) as number),
  gt: (x, a) => (n(x) as number) > (n(a[0]) as number),
  le: (x, a) => (n(x) as number) <= (n(a[0]) as number),
  ge: (x, a) => (n(x) as number) >= (n(a[0]) as number),
  in: (x, a, pos) => contains(a[0], x, pos),
  match: (x, a) => new RegExp(`^(?:${String(a[0])})`).test(String(x)),
  search: (x, a) => new RegExp(String(a[0])).test(String(x)),
  regex: (x, a) => new RegExp(String(a[0])).test(String(x)),
}
TESTS.equalto = TESTS.eq
TESTS.sameas = (x, a) => n(x) === n(a[0])

/** Run a test (`x is name(args)`); with checkOnly, only say whether the name exists. */
export function callTest(name: string, x: unknown, args: unknown[], pos: number, checkOnly = false): boolean {
  const t = TESTS[name]
  if (!t) throw new ExprError(`unknown test "is ${name}"`, pos, `supported tests: ${Object.keys(TESTS).sort().join(', ')}`)
  if (checkOnly) return false
  if (name !== 'defined' && name !== 'undefined') use(x, pos)
  return t(
    x,
    args.map((v) => use(v, pos)),
    pos,
  )
}
