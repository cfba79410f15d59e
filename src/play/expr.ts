// One expression language for `{{ … }}`, `{% … %}` and `when:`/`changed_when:`/`failed_when:`:
// the Jinja subset that playbooks use, hand-written so that every construct outside it is a
// clear error at its column instead of text copied literally or a silently wrong value.
// It also reads the Handlebars helper calls earlier versions documented (`add a 1`,
// `default x "y"`, `quote (expanduser p)`): a helper name followed by a space and an argument
// is never valid Jinja, so the two cannot be confused.
import {callFilter, callTest, FILTERS} from './filters.js'
import {ExprError, Float, isUndef, Undef, use} from './values.js'
import {LEGACY_HELPERS, callHelper} from './helpers.js'

export {ExprError} from './values.js'

type Tok = {t: 'num' | 'str' | 'name' | 'op' | 'end'; v: string; pos: number; space: boolean}

const OPS = ['//', '**', '==', '!=', '<=', '>=', '(', ')', '[', ']', '{', '}', ',', ':', '.', '|', '~', '+', '-', '*', '/', '%', '<', '>', '=']
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else'])

export function tokenize(src: string, base = 0): Tok[] {
  const out: Tok[] = []
  let i = 0
  let space = false
  while (i < src.length) {
    const c = src[i]
    if (/\s/.test(c)) {
      i++
      space = true
      continue
    }
    const at = base + i
    if (c === '"' || c === "'") {
      let j = i + 1
      let s = ''
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[++j]
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '\\' || e === "'" || e === '"' ? e : `\\${e}`
        } else s += src[j]
        j++
      }
      if (j >= src.length) throw new ExprError('unterminated string', at, `close the string with ${c}`)
      out.push({t: 'str', v: s, pos: at, space})
      i = j + 1
      space = false
      continue
    }
    const num = /^\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i))
    if (num) {
      out.push({t: 'num', v: num[0], pos: at, space})
      i += num[0].length
      space = false
      continue
    }
    const name = /^[A-Za-z_][\w]*/.exec(src.slice(i))
    if (name) {
      out.push({t: 'name', v: name[0], pos: at, space})
      i += name[0].length
      space = false
      continue
    }
    const op = OPS.find((o) => src.startsWith(o, i))
    if (op) {
      out.push({t: 'op', v: op, pos: at, space})
      i += op.length
      space = false
      continue
    }
    throw new ExprError(`unexpected character "${c}"`, at)
  }
  out.push({t: 'end', v: '', pos: base + src.length, space})
  return out
}

export type Node =
  | {k: 'lit'; v: unknown}
  | {k: 'name'; n: string; pos: number}
  | {k: 'attr'; o: Node; n: string; pos: number}
  | {k: 'item'; o: Node; i: Node; pos: number}
  | {k: 'slice'; o: Node; a?: Node; b?: Node; pos: number}
  | {k: 'list'; items: Node[]}
  | {k: 'dict'; pairs: Array<[Node, Node]>}
  | {k: 'un'; op: string; x: Node; pos: number}
  | {k: 'bin'; op: string; l: Node; r: Node; pos: number}
  | {k: 'cond'; t: Node; c: Node; e: Node}
  | {k: 'filter'; x: Node; name: string; args: Node[]; kw: Record<string, Node>; pos: number}
  | {k: 'test'; x: Node; name: string; neg: boolean; args: Node[]; pos: number}
  | {k: 'call'; f: Node; args: Node[]; kw: Record<string, Node>; pos: number}
  | {k: 'helper'; name: string; args: Node[]; pos: number}

const CMP = ['==', '!=', '<', '>', '<=', '>=']

/** Parse tokens[from…] into one expression; `stop` ends it early (for `{% for x in … %}`). */
export class Parser {
  p = 0
  constructor(readonly toks: Tok[]) {}

  peek(o = 0): Tok {
    return this.toks[Math.min(this.p + o, this.toks.length - 1)]
  }
  next(): Tok {
    return this.toks[this.p++] ?? this.toks[this.toks.length - 1]
  }
  is(v: string, o = 0): boolean {
    const t = this.peek(o)
    return (t.t === 'op' || t.t === 'name') && t.v === v
  }
  accept(v: string): boolean {
    if (this.is(v)) {
      this.p++
      return true
    }
    return false
  }
  expect(v: string, what = `"${v}"`): Tok {
    if (!this.is(v)) throw new ExprError(`unexpected ${show(this.peek())}: expected ${what}`, this.peek().pos)
    return this.next()
  }
  name(what: string): Tok {
    const t = this.next()
    if (t.t !== 'name') throw new ExprError(`unexpected ${show(t)}: expected ${what}`, t.pos)
    return t
  }
  done(): void {
    if (this.peek().t !== 'end') throw new ExprError(`unexpected ${show(this.peek())}`, this.peek().pos, 'check the expression: an operator or a closing bracket may be missing')
  }

  expr(): Node {
    const t = this.or()
    if (!this.accept('if')) return t
    const c = this.or()
    if (!this.accept('else')) throw new ExprError('an inline "x if cond" needs "else y"', this.peek().pos, "write x if cond else ''")
    return {k: 'cond', t, c, e: this.expr()}
  }
  or(): Node {
    let l = this.and()
    while (this.is('or')) {
      const pos = this.next().pos
      l = {k: 'bin', op: 'or', l, r: this.and(), pos}
    }
    return l
  }
  and(): Node {
    let l = this.not()
    while (this.is('and')) {
      const pos = this.next().pos
      l = {k: 'bin', op: 'and', l, r: this.not(), pos}
    }
    return l
  }
  not(): Node {
    if (this.is('not') && !this.is('in', 1)) {
      const pos = this.next().pos
      return {k: 'un', op: 'not', x: this.not(), pos}
    }
    return this.cmp()
  }
  cmp(): Node {
    let l = this.concat()
    for (;;) {
      const t = this.peek()
      if (t.t === 'op' && CMP.includes(t.v)) {
        this.next()
        l = {k: 'bin', op: t.v, l, r: this.concat(), pos: t.pos}
      } else if (this.is('in')) {
        this.next()
        l = {k: 'bin', op: 'in', l, r: this.concat(), pos: t.pos}
      } else if (this.is('not') && this.is('in', 1)) {
        this.p += 2
        l = {k: 'bin', op: 'not in', l, r: this.concat(), pos: t.pos}
      } else return l
    }
  }
  concat(): Node {
    let l = this.add()
    while (this.is('~')) {
      const pos = this.next().pos
      l = {k: 'bin', op: '~', l, r: this.add(), pos}
    }
    return l
  }
  add(): Node {
    let l = this.mul()
    while (this.is('+') || this.is('-')) {
      const t = this.next()
      l = {k: 'bin', op: t.v, l, r: this.mul(), pos: t.pos}
    }
    return l
  }
  mul(): Node {
    let l = this.pow()
    while (['*', '/', '//', '%'].some((o) => this.is(o))) {
      const t = this.next()
      l = {k: 'bin', op: t.v, l, r: this.pow(), pos: t.pos}
    }
    return l
  }
  pow(): Node {
    let l = this.unary()
    while (this.is('**')) {
      const pos = this.next().pos
      l = {k: 'bin', op: '**', l, r: this.unary(), pos}
    }
    return l
  }
  unary(): Node {
    if (this.is('-') || this.is('+')) {
      const t = this.next()
      return {k: 'un', op: t.v, x: this.unary(), pos: t.pos}
    }
    return this.filters(this.postfix(this.primary()))
  }
  filters(x: Node): Node {
    for (;;) {
      if (this.is('|')) {
        this.next()
        const t = this.name('a filter name after "|"')
        if (!FILTERS.has(t.v)) throw new ExprError(`unknown filter "${t.v}"`, t.pos, `supported filters: ${[...FILTERS.keys()].sort().join(', ')}`)
        const {args, kw} = this.is('(') ? this.args() : {args: [], kw: {}}
        x = {k: 'filter', x, name: t.v, args, kw, pos: t.pos}
      } else if (this.is('is')) {
        this.next()
        const neg = this.accept('not')
        const t = this.name('a test name after "is"')
        let args: Node[] = []
        if (this.is('(')) args = this.args().args
        else if (['num', 'str'].includes(this.peek().t) || (this.peek().t === 'name' && !KEYWORDS.has(this.peek().v))) args = [this.postfix(this.primary())]
        x = {k: 'test', x, name: t.v, neg, args, pos: t.pos}
        callTest(t.v, undefined, [], t.pos, true)
      } else return x
    }
  }
  args(): {args: Node[]; kw: Record<string, Node>} {
    this.expect('(')
    const args: Node[] = []
    const kw: Record<string, Node> = {}
    while (!this.accept(')')) {
      if (this.peek().t === 'name' && this.is('=', 1)) {
        const n = this.next().v
        this.next()
        kw[n] = this.expr()
      } else args.push(this.expr())
      if (!this.is(')')) this.expect(',', '"," or ")"')
    }
    return {args, kw}
  }
  postfix(x: Node): Node {
    for (;;) {
      const t = this.peek()
      if (this.is('.')) {
        this.next()
        const n = this.next()
        if (n.t !== 'name' && n.t !== 'num') throw new ExprError(`expected an attribute name after ".", found ${show(n)}`, n.pos)
        x = {k: 'attr', o: x, n: n.v, pos: n.pos}
      } else if (this.is('[')) {
        this.next()
        const a = this.is(':') ? undefined : this.expr()
        if (this.accept(':')) {
          const b = this.is(']') ? undefined : this.expr()
          x = {k: 'slice', o: x, a, b, pos: t.pos}
        } else x = {k: 'item', o: x, i: a!, pos: t.pos}
        this.expect(']')
      } else if (this.is('(') && !t.space) {
        // No variable holds a function: a bare name that is not a global fails here, at load,
        // not when a host first renders it.
        if (x.k === 'name' && !(x.n in GLOBALS)) throw unknownFunction(x.n, x.pos)
        const {args, kw} = this.args()
        x = {k: 'call', f: x, args, kw, pos: t.pos}
      } else return x
    }
  }
  primary(): Node {
    const t = this.next()
    if (t.t === 'num') return {k: 'lit', v: /[.eE]/.test(t.v) ? new Float(Number(t.v)) : Number(t.v)}
    if (t.t === 'str') {
      let s = t.v
      while (this.peek().t === 'str') s += this.next().v
      return {k: 'lit', v: s}
    }
    if (t.t === 'name') {
      if (t.v === 'true' || t.v === 'True') return {k: 'lit', v: true}
      if (t.v === 'false' || t.v === 'False') return {k: 'lit', v: false}
      if (t.v === 'none' || t.v === 'None') return {k: 'lit', v: null}
      if (LEGACY_HELPERS.has(t.v) && this.startsHelperArg()) return this.helper(t)
      if (KEYWORDS.has(t.v)) throw new ExprError(`unexpected "${t.v}"`, t.pos, 'a value is missing before or after it')
      return {k: 'name', n: t.v, pos: t.pos}
    }
    if (t.v === '(') {
      const first = this.expr()
      if (this.accept(')')) return first
      const items = [first]
      while (this.accept(',')) if (!this.is(')')) items.push(this.expr())
      this.expect(')')
      return {k: 'list', items}
    }
    if (t.v === '[') {
      const items: Node[] = []
      while (!this.accept(']')) {
        items.push(this.expr())
        if (!this.is(']')) this.expect(',', '"," or "]"')
      }
      return {k: 'list', items}
    }
    if (t.v === '{') {
      const pairs: Array<[Node, Node]> = []
      while (!this.accept('}')) {
        const key = this.expr()
        this.expect(':')
        pairs.push([key, this.expr()])
        if (!this.is('}')) this.expect(',', '"," or "}"')
      }
      return {k: 'dict', pairs}
    }
    throw new ExprError(t.t === 'end' ? 'the expression ends too early' : `unexpected ${show(t)}`, t.pos)
  }

  // Handlebars: `helper arg arg…`, each argument a literal, a (dotted) name or a (subexpression).
  startsHelperArg(): boolean {
    const t = this.peek()
    if (!t.space) return false
    if (t.t === 'str' || t.t === 'num') return true
    if (t.t === 'name') return !KEYWORDS.has(t.v) || t.v === 'not'
    return t.v === '(' || (t.v === '-' && this.peek(1).t === 'num' && !this.peek(1).space)
  }
  helper(t: Tok): Node {
    const args: Node[] = []
    while (this.startsHelperArg()) {
      const a = this.peek()
      if (a.v === '-') {
        this.next()
        args.push({k: 'un', op: '-', x: this.primary(), pos: a.pos})
        continue
      }
      if (a.v === '(') {
        this.next()
        const inner = this.expr()
        this.expect(')')
        args.push(inner)
        continue
      }
      let x = this.primary()
      while (this.is('.') && !this.peek().space) {
        this.next()
        const n = this.next()
        x = {k: 'attr', o: x, n: n.v, pos: n.pos}
      }
      args.push(x)
    }
    return {k: 'helper', name: t.v, args, pos: t.pos}
  }
}

function show(t: Tok): string {
  if (t.t === 'end') return 'the end of the expression'
  if (t.t === 'str') return `string ${JSON.stringify(t.v)}`
  return `"${t.v}"`
}

/** Parse a whole expression (positions are offsets into `src`, plus `base`). */
export function parseExpression(src: string, base = 0): Node {
  const p = new Parser(tokenize(src, base))
  if (p.peek().t === 'end') throw new ExprError('empty expression', base)
  const n = p.expr()
  p.done()
  return n
}

export interface Scope {
  vars: Record<string, unknown>
  /** Names set inside a template ({% set %}, {% for %}, loop), looked up first. */
  locals?: Map<string, unknown>
}

const GLOBALS: Record<string, (args: unknown[], pos: number) => unknown> = {
  range: (a, pos) => {
    const n = a.map((x) => use(x, pos)).map((x) => toInt(x, pos))
    const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1]
    if (step === 0) throw new ExprError('range() step must not be 0', pos)
    const out: number[] = []
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) {
      out.push(i)
      if (out.length > 1_000_000) throw new ExprError('range() too long', pos)
    }
    return out
  },
}

function toInt(x: unknown, pos: number): number {
  const v = x instanceof Float ? x.v : x
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ExprError(`expected a whole number, got ${JSON.stringify(v)}`, pos)
  return v
}

function lookupName(n: string, pos: number, s: Scope): unknown {
  if (s.locals?.has(n)) return s.locals.get(n)
  if (Object.prototype.hasOwnProperty.call(s.vars, n)) return s.vars[n]
  if (n in GLOBALS) return {__global: n}
  return new Undef(n, pos)
}

export function pathName(n: Node): string {
  if (n.k === 'name') return n.n
  if (n.k === 'attr') return `${pathName(n.o)}.${n.n}`
  if (n.k === 'item') return `${pathName(n.o)}[${n.i.k === 'lit' ? pyLit(n.i.v) : '…'}]`
  return '(expression)'
}

const pyLit = (v: unknown) => (typeof v === 'string' ? `'${v}'` : String(v))

export function getItem(o: unknown, key: unknown, name: string, pos: number): unknown {
  if (isUndef(o)) return new Undef(name, o.pos)
  if (o === null || o === undefined) return new Undef(name, pos, `${name.replace(/[.[][^.[]*$/, '')} is none`)
  const k = key instanceof Float ? key.v : key
  if (Array.isArray(o) || typeof o === 'string') {
    if (typeof k === 'number' && Number.isInteger(k)) {
      const i = k < 0 ? o.length + k : k
      return i >= 0 && i < o.length ? o[i] : new Undef(name, pos, `index ${k} is out of range (length ${o.length})`)
    }
    if (typeof k === 'string' && /^\d+$/.test(k) && Array.isArray(o)) return getItem(o, Number(k), name, pos)
    return new Undef(name, pos)
  }
  if (typeof o === 'object') {
    const sk = String(k)
    return Object.prototype.hasOwnProperty.call(o, sk) ? (o as Record<string, unknown>)[sk] : new Undef(name, pos)
  }
  return new Undef(name, pos)
}

export function evalNode(n: Node, s: Scope): unknown {
  switch (n.k) {
    case 'lit':
      return n.v
    case 'name':
      return lookupName(n.n, n.pos, s)
    case 'attr':
      return getItem(evalNode(n.o, s), /^\d+$/.test(n.n) ? Number(n.n) : n.n, pathName(n), n.pos)
    case 'item':
      return getItem(evalNode(n.o, s), use(evalNode(n.i, s), n.pos), pathName(n), n.pos)
    case 'slice':
      return slice(n, s)
    case 'list':
      return n.items.map((x) => use(evalNode(x, s), 0))
    case 'dict':
      return Object.fromEntries(n.pairs.map(([k, v]) => [String(use(evalNode(k, s), 0)), use(evalNode(v, s), 0)]))
    case 'un':
      return unary(n.op, evalNode(n.x, s), n.pos)
    case 'bin':
      return binary(n, s)
    case 'cond':
      return truthy(evalNode(n.c, s), 0) ? evalNode(n.t, s) : evalNode(n.e, s)
    case 'filter': {
      const x = evalNode(n.x, s)
      const kw = Object.fromEntries(Object.entries(n.kw).map(([k, v]) => [k, evalNode(v, s)]))
      return callFilter(
        n.name,
        x,
        n.args.map((a) => evalNode(a, s)),
        kw,
        {pos: n.pos, scope: s},
      )
    }
    case 'test': {
      const r = callTest(
        n.name,
        evalNode(n.x, s),
        n.args.map((a) => evalNode(a, s)),
        n.pos,
      )
      return n.neg ? !r : r
    }
    case 'call':
      return call(n, s)
    case 'helper':
      return callHelper(
        n.name,
        n.args.map((a) => evalNode(a, s)),
        n.pos,
        s.vars,
      )
  }
}

function slice(n: Extract<Node, {k: 'slice'}>, s: Scope): unknown {
  const o = use(evalNode(n.o, s), n.pos)
  if (!Array.isArray(o) && typeof o !== 'string') throw new ExprError(`cannot slice ${typeName(o)}`, n.pos)
  const a = n.a ? toInt(use(evalNode(n.a, s), n.pos), n.pos) : undefined
  const b = n.b ? toInt(use(evalNode(n.b, s), n.pos), n.pos) : undefined
  return o.slice(a, b)
}

// Methods Python objects have that playbooks call most (item.split(':'), d.items()).
const METHODS: Record<string, (self: unknown, a: unknown[], pos: number) => unknown> = {
  split: (o, a) => (a[0] === undefined || a[0] === null ? str(o).trim().split(/\s+/).filter(Boolean) : str(o).split(str(a[0]))),
  strip: (o) => str(o).trim(),
  lower: (o) => str(o).toLowerCase(),
  upper: (o) => str(o).toUpperCase(),
  startswith: (o, a) => str(o).startsWith(str(a[0])),
  endswith: (o, a) => str(o).endsWith(str(a[0])),
  replace: (o, a) => str(o).split(str(a[0])).join(str(a[1])),
  items: (o) => Object.entries(dictOf(o)),
  keys: (o) => Object.keys(dictOf(o)),
  values: (o) => Object.values(dictOf(o)),
  get: (o, a) => {
    const d = dictOf(o)
    const k = str(a[0])
    return Object.prototype.hasOwnProperty.call(d, k) ? d[k] : (a[1] ?? null)
  },
}

const str = (v: unknown): string => {
  if (typeof v !== 'string') throw new ExprError(`expected a string, got ${typeName(v)}`, 0)
  return v
}
const dictOf = (v: unknown): Record<string, unknown> => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ExprError(`expected a mapping, got ${typeName(v)}`, 0)
  return v as Record<string, unknown>
}

function call(n: Extract<Node, {k: 'call'}>, s: Scope): unknown {
  const args = n.args.map((a) => use(evalNode(a, s), n.pos))
  if (n.f.k === 'attr' && n.f.n in METHODS) {
    const self = use(evalNode(n.f.o, s), n.pos)
    try {
      return METHODS[n.f.n](self, args, n.pos)
    } catch (error) {
      throw error instanceof ExprError && error.pos === 0 ? new ExprError(`.${n.f.n}(): ${error.message}`, n.pos) : error
    }
  }
  const f = evalNode(n.f, s)
  if (f && typeof f === 'object' && '__global' in f) return GLOBALS[(f as {__global: string}).__global](args, n.pos)
  if (n.f.k === 'name') throw unknownFunction(n.f.n, n.pos)
  throw new ExprError(
    `"${pathName(n.f)}" is not a function this tool knows`,
    n.pos,
    `functions: ${Object.keys(GLOBALS).join(', ')}; methods: ${Object.keys(METHODS).join(', ')}; filters are written x | name(args)`,
  )
}

function unknownFunction(name: string, pos: number): ExprError {
  if (name === 'lookup' || name === 'query' || name === 'q') return new ExprError(`${name}() is not supported`, pos, 'pass the value with -e or a variable file instead')
  return new ExprError(
    `"${name}" is not a function this tool knows`,
    pos,
    `functions: ${Object.keys(GLOBALS).join(', ')}; methods: ${Object.keys(METHODS).join(', ')}; filters are written x | name(args)`,
  )
}

export function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'none'
  if (Array.isArray(v)) return 'a list'
  if (v instanceof Float || typeof v === 'number') return 'a number'
  if (typeof v === 'object') return 'a mapping'
  return `a ${typeof v}`
}

const BOOL_WORD = /^(true|false|yes|no|on|off)$/i

/**
 * Jinja truthiness. A string spelled like a boolean ("false" from `-e x=false`) is true in
 * Jinja but almost never meant so: refuse it rather than guess.
 */
export function truthy(v: unknown, pos: number): boolean {
  use(v, pos)
  if (typeof v === 'string' && BOOL_WORD.test(v)) {
    throw new ExprError(`the string "${v}" used as a condition is true in Jinja (any non-empty string is)`, pos, 'convert it: write x | bool')
  }
  if (v instanceof Float) return v.v !== 0
  if (Array.isArray(v)) return v.length > 0
  if (v && typeof v === 'object') return Object.keys(v).length > 0
  return Boolean(v)
}

function num(v: unknown, pos: number, op: string): number {
  use(v, pos)
  if (v instanceof Float) return v.v
  if (typeof v === 'number') return v
  if (typeof v === 'boolean') return v ? 1 : 0
  throw new ExprError(`"${op}" needs numbers, got ${typeName(v)}${typeof v === 'string' ? ` (${JSON.stringify(v)})` : ''}`, pos, typeof v === 'string' ? 'convert it first: x | int' : undefined)
}

function unary(op: string, v: unknown, pos: number): unknown {
  if (op === 'not') return !truthy(v, pos)
  const x = num(v, pos, op)
  const r = op === '-' ? -x : x
  return v instanceof Float ? new Float(r) : r
}

export function plain(v: unknown): unknown {
  return v instanceof Float ? v.v : v
}

export function equal(a: unknown, b: unknown): boolean {
  const x = plain(a)
  const y = plain(b)
  if (x === y) return true
  if (typeof x === 'boolean' || typeof y === 'boolean') return false
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => equal(v, y[i]))
  if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && !Array.isArray(y)) {
    const kx = Object.keys(x)
    return kx.length === Object.keys(y).length && kx.every((k) => k in y && equal((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]))
  }
  return false
}

export function contains(container: unknown, v: unknown, pos: number): boolean {
  use(container, pos)
  if (Array.isArray(container)) return container.some((x) => equal(x, v))
  if (typeof container === 'string') {
    if (typeof v !== 'string') throw new ExprError(`"in <string>" needs a string on the left, got ${typeName(v)}`, pos)
    return container.includes(v)
  }
  if (container && typeof container === 'object') return Object.prototype.hasOwnProperty.call(container, String(plain(v)))
  throw new ExprError(`"in" needs a list, string or mapping on the right, got ${typeName(container)}`, pos)
}

function binary(n: Extract<Node, {k: 'bin'}>, s: Scope): unknown {
  if (n.op === 'and') {
    const l = evalNode(n.l, s)
    return truthy(l, n.pos) ? evalNode(n.r, s) : l
  }
  if (n.op === 'or') {
    const l = evalNode(n.l, s)
    return truthy(l, n.pos) ? l : evalNode(n.r, s)
  }
  const l = use(evalNode(n.l, s), n.pos)
  const r = use(evalNode(n.r, s), n.pos)
  switch (n.op) {
    case '==':
      return equal(l, r)
    case '!=':
      return !equal(l, r)
    case 'in':
      return contains(r, l, n.pos)
    case 'not in':
      return !contains(r, l, n.pos)
    case '~':
      return toStr(l) + toStr(r)
    case '<':
    case '>':
    case '<=':
    case '>=':
      return compare(n.op, l, r, n.pos)
  }
  if (n.op === '+' && typeof l === 'string' && typeof r === 'string') return l + r
  if (n.op === '+' && Array.isArray(l) && Array.isArray(r)) return [...l, ...r]
  const a = num(l, n.pos, n.op)
  const b = num(r, n.pos, n.op)
  const float = l instanceof Float || r instanceof Float
  if ((n.op === '/' || n.op === '//' || n.op === '%') && b === 0) throw new ExprError('division by zero', n.pos)
  const wrap = (x: number, f = float) => (f ? new Float(x) : x)
  switch (n.op) {
    case '+':
      return wrap(a + b)
    case '-':
      return wrap(a - b)
    case '*':
      return wrap(a * b)
    case '/':
      return new Float(a / b)
    case '//':
      return wrap(Math.floor(a / b))
    case '%':
      return wrap(a - b * Math.floor(a / b))
    default:
      return wrap(a ** b)
  }
}

function compare(op: string, l: unknown, r: unknown, pos: number): boolean {
  const x = plain(l)
  const y = plain(r)
  const ok = (typeof x === 'number' && typeof y === 'number') || (typeof x === 'string' && typeof y === 'string')
  if (!ok) throw new ExprError(`cannot compare ${typeName(l)} with ${typeName(r)} using "${op}"`, pos, typeof x === 'string' || typeof y === 'string' ? 'convert the string first: x | int' : undefined)
  const a = x as number | string
  const b = y as number | string
  return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b
}

/** Python's repr(), which is how Jinja in Ansible prints lists and dicts. */
export function repr(v: unknown, depth = 0): string {
  if (depth > 64) throw new ExprError('the value is nested too deep to print (does it contain itself, like hostvars?)', 0, 'print one part of it: hostvars[h].x')
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (v instanceof Float) return floatText(v.v)
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'"
    let out = q
    for (const ch of v) {
      const c = ch.codePointAt(0)!
      if (ch === '\\') out += '\\\\'
      else if (ch === q) out += `\\${q}`
      else if (ch === '\n') out += '\\n'
      else if (ch === '\r') out += '\\r'
      else if (ch === '\t') out += '\\t'
      else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
      else out += ch
    }
    return out + q
  }
  if (Array.isArray(v)) return `[${v.map((x) => repr(x, depth + 1)).join(', ')}]`
  if (typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${repr(k)}: ${repr(x, depth + 1)}`)
      .join(', ')}}`
  return String(v)
}

function floatText(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`
  if (Number.isNaN(x)) return 'nan'
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf'
  return String(x)
}

/** str() of a value: what `{{ x }}` and `~` print. */
export function toStr(v: unknown): string {
  if (typeof v === 'string') return v
  return repr(v)
}

/** Evaluate a condition against variables; throws ExprError (with a position) on bad input. */
export function evaluate(expr: string | boolean | number, vars: Record<string, unknown>): boolean {
  if (typeof expr === 'boolean') return expr
  if (typeof expr === 'number') return expr !== 0
  let src = expr
  let base = 0
  const wrapped = /^(\s*\{\{)(.*)\}\}\s*$/s.exec(src)
  if (wrapped) {
    src = wrapped[2]
    base = wrapped[1].length
  }
  const node = parseExpression(src, base)
  return truthy(evalNode(node, {vars}), 0)
}

/** Check a condition's syntax (unknown filters, bad operators) without evaluating it. */
export function checkCondition(expr: string): void {
  const wrapped = /^(\s*\{\{)(.*)\}\}\s*$/s.exec(expr)
  if (wrapped) parseExpression(wrapped[2], wrapped[1].length)
  else parseExpression(expr)
}

export {isUndef, Float, Undef}
