// Templates: text with `{{ expr }}`, `{% if/elif/else/endif %}`, `{% for %}…{% endfor %}`,
// `{% set %}`, `{% raw %}` and `{# comments #}`, with Ansible's settings (trim_blocks on,
// lstrip_blocks off, trailing newlines kept) and Jinja's `-` whitespace control. The
// Handlebars blocks earlier versions documented (`{{#if x}}…{{else}}…{{/if}}`,
// `{{#each xs}}{{ this }}{{/each}}`) are read too, with Handlebars' own whitespace rule
// (a block tag alone on its line takes the line with it), so old templates render as before.
// Any other tag is an error at its line and column, never text copied through.
import {evalNode, ExprError, Parser, tokenize, toStr, truthy, type Node, type Scope} from './expr.js'
import {Float, use} from './values.js'

type Piece =
  | {k: 'text'; s: string}
  | {k: 'out'; e: Node; pos: number}
  | {k: 'if'; branches: Array<{c: Node | null; body: Piece[]}>; hbs: boolean}
  | {k: 'for'; names: string[]; iter: Node; cond?: Node; body: Piece[]; empty: Piece[]; hbs: boolean; pos: number}
  | {k: 'set'; name: string; e: Node; pos: number}

type Tok =
  | {k: 'text'; s: string}
  | {k: 'expr'; src: string; pos: number; l: boolean; r: boolean}
  | {k: 'tag'; src: string; pos: number; l: boolean; r: boolean; hbs?: 'open' | 'else' | 'close'}
  | {k: 'comment'; l: boolean; r: boolean}

const UNSUPPORTED: Record<string, string> = {
  macro: 'write the text out, or compute the values in vars:',
  call: 'write the text out',
  include: 'copy the included text into this template, or render it with its own template task',
  import: 'copy what you need into this template',
  from: 'copy what you need into this template',
  extends: 'write one whole template per file',
  block: 'write one whole template per file',
  filter: 'apply the filter to an expression: {{ x | name }}',
  with: 'use {% set %}',
  autoescape: 'remove it: config files are not HTML',
  break: 'filter the list instead: {% for x in xs if cond %}',
  continue: 'filter the list instead: {% for x in xs if cond %}',
  do: 'compute the value with {% set %}',
}

/** Find the `}}` (or `%}`/`#}`) that closes a tag opened at `from`, skipping quoted strings and nested braces. */
function closeOf(src: string, from: number, close: string): number {
  if (close === '#}') return src.indexOf('#}', from)
  let depth = 0
  for (let i = from; i < src.length; i++) {
    const c = src[i]
    if (c === '"' || c === "'") {
      for (i++; i < src.length && src[i] !== c; i++) if (src[i] === '\\') i++
      continue
    }
    if (depth === 0 && src.startsWith(close, i)) return i
    if (c === '{') depth++
    else if (c === '}' && depth > 0) depth--
  }
  return -1
}

function lex(src: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  while (i < src.length) {
    const m = /\{[{%#]/g
    m.lastIndex = i
    const hit = m.exec(src)
    if (!hit) {
      out.push({k: 'text', s: src.slice(i)})
      break
    }
    if (hit.index > i) out.push({k: 'text', s: src.slice(i, hit.index)})
    const open = hit[0]
    const close = open === '{{' ? '}}' : open === '{%' ? '%}' : '#}'
    const start = hit.index
    const end = closeOf(src, start + 2, close)
    if (end < 0) throw new ExprError(`"${open}" is never closed with "${close}"`, start, `add "${close}", or write {{ '${open}' }} for the literal text`)
    let inner = src.slice(start + 2, end)
    let innerPos = start + 2
    const l = inner.startsWith('-')
    if (l || inner.startsWith('+')) {
      inner = inner.slice(1)
      innerPos++
    }
    const r = inner.endsWith('-')
    if (r) inner = inner.slice(0, -1)
    i = end + 2
    if (open === '{#') {
      out.push({k: 'comment', l, r})
      continue
    }
    if (open === '{{') {
      const hbs = /^\s*(#|\/|else\s*$)/.exec(inner)
      if (hbs)
        out.push({
          k: 'tag',
          src: inner.trim().replace(/^[#/]/, ''),
          pos: innerPos + inner.indexOf(inner.trim()) + (/^\s*[#/]/.test(inner) ? 1 : 0),
          l,
          r,
          hbs: hbs[1] === '#' ? 'open' : hbs[1] === '/' ? 'close' : 'else',
        })
      else out.push({k: 'expr', src: inner, pos: innerPos, l, r})
      continue
    }
    const word = /^\s*(\w*)/.exec(inner)![1]
    if (word === 'raw') {
      const endRaw = /\{%-?\s*endraw\s*-?%\}/g
      endRaw.lastIndex = i
      const e = endRaw.exec(src)
      if (!e) throw new ExprError('{% raw %} is never closed with {% endraw %}', start)
      out.push({k: 'tag', src: 'raw', pos: innerPos, l, r})
      out.push({k: 'text', s: src.slice(i + (r ? 0 : 0), e.index)})
      out.push({k: 'tag', src: 'endraw', pos: e.index + 2, l: e[0].startsWith('{%-'), r: e[0].endsWith('-%}')})
      i = e.index + e[0].length
      continue
    }
    out.push({k: 'tag', src: inner.trimStart(), pos: innerPos + inner.length - inner.trimStart().length, l, r})
  }
  return whitespace(out)
}

// Apply `-` trimming, trim_blocks, and Handlebars' standalone-line rule to the text pieces.
// Standalone lines are decided on the source as written, before any trimming.
function whitespace(toks: Tok[]): Tok[] {
  const standalone = toks.map((t, i) => {
    if (t.k !== 'tag' || !t.hbs) return false
    const prev = toks[i - 1]
    const next = toks[i + 1]
    const startOk = prev === undefined || (prev.k === 'text' && /(^|\n)[ \t]*$/.test(prev.s) && (prev.s.includes('\n') || i === 1))
    const endOk = next === undefined || (next.k === 'text' && /^[ \t]*(\r?\n|$)/.test(next.s))
    return startOk && endOk
  })
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]
    if (t.k === 'text') continue
    const prev = toks[i - 1]
    const next = toks[i + 1]
    if (standalone[i]) {
      if (prev?.k === 'text') prev.s = prev.s.replace(/[ \t]*$/, '')
      if (next?.k === 'text') next.s = next.s.replace(/^[ \t]*(\r?\n)?/, '')
    }
    if (t.l && prev?.k === 'text') prev.s = prev.s.replace(/\s+$/, '')
    if (next?.k === 'text') {
      if (t.r) next.s = next.s.replace(/^\s+/, '')
      else if ((t.k === 'tag' && !t.hbs) || t.k === 'comment') next.s = next.s.replace(/^\r?\n/, '')
    }
  }
  return toks
}

class TemplateParser {
  i = 0
  constructor(readonly toks: Tok[]) {}

  parse(): Piece[] {
    const body = this.body([])
    if (this.i < this.toks.length) {
      const t = this.toks[this.i] as Extract<Tok, {k: 'tag'}>
      throw new ExprError(`unexpected ${describeTag(t)}: no block is open`, t.pos, 'remove it, or add the {% if %} / {% for %} it closes')
    }
    return body
  }

  // Read pieces until one of `stops` (a tag word such as "endif") is next; leave it unread.
  body(stops: string[]): Piece[] {
    const out: Piece[] = []
    while (this.i < this.toks.length) {
      const t = this.toks[this.i]
      if (t.k === 'text') {
        if (t.s) out.push({k: 'text', s: t.s})
        this.i++
        continue
      }
      if (t.k === 'comment') {
        this.i++
        continue
      }
      if (t.k === 'expr') {
        this.i++
        out.push({k: 'out', e: expression(t.src, t.pos), pos: t.pos})
        continue
      }
      const word = tagWord(t)
      if (stops.includes(word)) return out
      this.i++
      out.push(this.tag(t, word))
    }
    return out
  }

  tag(t: Extract<Tok, {k: 'tag'}>, word: string): Piece {
    const p = new Parser(tokenize(t.src, t.pos))
    if (t.hbs === 'open') return this.hbsBlock(t, p)
    if (t.hbs) throw new ExprError(`unexpected ${describeTag(t)}: no block is open`, t.pos)
    p.next()
    switch (word) {
      case 'if': {
        const branches: Array<{c: Node | null; body: Piece[]}> = [{c: full(p), body: this.body(['elif', 'else', 'endif'])}]
        for (;;) {
          const end = this.closing(t, ['elif', 'else', 'endif'])
          if (end.word === 'endif') break
          if (end.word === 'elif') branches.push({c: full(end.p), body: this.body(['elif', 'else', 'endif'])})
          else {
            end.p.done()
            branches.push({c: null, body: this.body(['endif'])})
            this.closing(t, ['endif']).p.done()
            break
          }
        }
        return {k: 'if', branches, hbs: false}
      }
      case 'for': {
        const names = [p.name('a loop variable').v]
        while (p.accept(',')) names.push(p.name('a loop variable').v)
        p.expect('in')
        const iter = p.or()
        const cond = p.accept('if') ? p.or() : undefined
        if (p.is('recursive')) throw new ExprError('recursive loops are not supported', p.peek().pos)
        p.done()
        const body = this.body(['else', 'endfor'])
        let empty: Piece[] = []
        if (this.closing(t, ['else', 'endfor']).word === 'else') {
          empty = this.body(['endfor'])
          this.closing(t, ['endfor'])
        }
        return {k: 'for', names, iter, cond, body, empty, hbs: false, pos: t.pos}
      }
      case 'set': {
        const name = p.name('a variable name')
        if (!p.is('=')) throw new ExprError('{% set x %}…{% endset %} blocks are not supported', p.peek().pos, "write {% set x = 'value' %}")
        p.next()
        return {k: 'set', name: name.v, e: full(p), pos: t.pos}
      }
      case 'raw': {
        const text = this.toks[this.i]
        this.i += 2
        return {k: 'text', s: text && text.k === 'text' ? text.s : ''}
      }
    }
    if (word in UNSUPPORTED) throw new ExprError(`{% ${word} %} is not supported`, t.pos, UNSUPPORTED[word])
    if (['elif', 'else', 'endif', 'endfor', 'endraw'].includes(word)) throw new ExprError(`unexpected {% ${word} %}: no matching block is open`, t.pos)
    throw new ExprError(`unknown tag {% ${word} %}`, t.pos, 'supported tags: if/elif/else/endif, for/else/endfor, set, raw')
  }

  hbsBlock(t: Extract<Tok, {k: 'tag'}>, p: Parser): Piece {
    const kind = p.name('a block helper').v
    if (kind !== 'if' && kind !== 'each') throw new ExprError(`Handlebars block {{#${kind}}} is not supported`, t.pos, 'write {% if %}…{% endif %} or {% for x in xs %}…{% endfor %}')
    const e = full(p)
    const body = this.body(['else', `/${kind}`])
    let other: Piece[] = []
    if (this.closing(t, ['else', `/${kind}`]).word === 'else') {
      other = this.body([`/${kind}`])
      this.closing(t, [`/${kind}`])
    }
    if (kind === 'if')
      return {
        k: 'if',
        branches: [
          {c: e, body},
          {c: null, body: other},
        ],
        hbs: true,
      }
    return {k: 'for', names: ['this'], iter: e, body, empty: other, hbs: true, pos: t.pos}
  }

  closing(open: Extract<Tok, {k: 'tag'}>, words: string[]): {word: string; p: Parser} {
    const t = this.toks[this.i]
    if (!t || t.k !== 'tag')
      throw new ExprError(`${describeTag(open)} is never closed`, open.pos, `add ${words[words.length - 1].startsWith('/') ? `{{${words[words.length - 1]}}}` : `{% ${words[words.length - 1]} %}`}`)
    this.i++
    const p = new Parser(tokenize(t.src, t.pos))
    p.next()
    return {word: tagWord(t), p}
  }
}

function tagWord(t: Extract<Tok, {k: 'tag'}>): string {
  if (t.hbs === 'else') return 'else'
  if (t.hbs === 'close') return `/${t.src.trim()}`
  if (t.hbs === 'open') return `#${/^\w*/.exec(t.src.trim())![0]}`
  return /^\s*(\w*)/.exec(t.src)![1]
}

function describeTag(t: Extract<Tok, {k: 'tag'}>): string {
  if (t.hbs === 'close') return `{{/${t.src.trim()}}}`
  if (t.hbs === 'else') return '{{else}}'
  if (t.hbs === 'open') return `{{#${t.src.trim()}}}`
  return `{% ${t.src.trim()} %}`
}

function full(p: Parser): Node {
  const e = p.expr()
  p.done()
  return e
}

function expression(src: string, pos: number): Node {
  const p = new Parser(tokenize(src, pos))
  if (p.peek().t === 'end') throw new ExprError('empty {{ }}', pos, 'write a variable or expression inside')
  return full(p)
}

export interface Compiled {
  pieces: Piece[]
  /** The one `{{ expr }}` the source consists of, if so: its value keeps its type. */
  single?: Node
  trailingNewlines: number
}

export function compileTemplate(src: string): Compiled {
  const toks = lex(src)
  const pieces = new TemplateParser(toks).parse()
  const single = pieces.length === 1 && pieces[0].k === 'out' && toks.length === 1 ? pieces[0].e : undefined
  return {pieces, single, trailingNewlines: /\n*$/.exec(src)![0].length}
}

/** What `{{ x }}` prints: strings as they are, none as nothing (Ansible), the rest as Python repr. */
export function display(v: unknown): string {
  if (v === null) return ''
  return toStr(v)
}

// Handlebars' {{#if}}: empty list, '', 0, false and none are false; any string is true.
function hbsTrue(v: unknown, pos: number): boolean {
  const x = use(v, pos)
  if (x instanceof Float) return x.v !== 0
  return Array.isArray(x) ? x.length > 0 : Boolean(x)
}

function iterate(v: unknown, names: string[], pos: number): unknown[][] {
  const x = use(v, pos)
  let items: unknown[]
  if (Array.isArray(x)) items = x
  else if (typeof x === 'string') items = [...x]
  else if (x && typeof x === 'object' && !(x instanceof Float)) items = names.length > 1 ? Object.entries(x) : Object.keys(x)
  else throw new ExprError(`cannot loop over ${x === null ? 'none' : typeof x}`, pos, 'loop over a list or a mapping')
  return items.map((it) => {
    if (names.length === 1) return [it]
    if (!Array.isArray(it) || it.length !== names.length) throw new ExprError(`cannot unpack ${toStr(it)} into ${names.join(', ')}`, pos)
    return it
  })
}

export function renderPieces(pieces: Piece[], s: Scope, out: string[]): void {
  for (const p of pieces) {
    switch (p.k) {
      case 'text':
        out.push(p.s)
        break
      case 'out':
        out.push(display(use(evalAt(p.e, s, p.pos), p.pos)))
        break
      case 'set':
        s.locals!.set(p.name, use(evalAt(p.e, s, p.pos), p.pos))
        break
      case 'if': {
        const b = p.branches.find((br) => br.c === null || (p.hbs ? hbsTrue(evalAt(br.c, s, 0), 0) : truthy(evalAt(br.c, s, 0), 0)))
        if (b) renderPieces(b.body, s, out)
        break
      }
      case 'for':
        renderFor(p, s, out)
        break
    }
  }
}

function renderFor(p: Extract<Piece, {k: 'for'}>, s: Scope, out: string[]): void {
  let rows = iterate(evalAt(p.iter, s, p.pos), p.names, p.pos)
  if (p.cond) {
    const cond = p.cond
    rows = rows.filter((r) => truthy(evalAt(cond, child(s, p.names, r), p.pos), p.pos))
  }
  if (rows.length === 0) {
    renderPieces(p.empty, s, out)
    return
  }
  rows.forEach((r, i) => {
    const inner = child(s, p.names, r)
    const loop = {index: i + 1, index0: i, first: i === 0, last: i === rows.length - 1, length: rows.length, revindex: rows.length - i, revindex0: rows.length - i - 1}
    if (!p.hbs) inner.locals!.set('loop', loop)
    renderPieces(p.body, inner, out)
  })
}

// A loop body sees the loop variables and its own {% set %}s; neither leaks out (Jinja scoping).
function child(s: Scope, names: string[], row: unknown[]): Scope {
  const locals = new Map(s.locals)
  names.forEach((n, i) => locals.set(n, row[i]))
  return {vars: s.vars, locals}
}

// Errors deep in a filter may not know their column: use the expression's.
function evalAt(e: Node, s: Scope, pos: number): unknown {
  try {
    return evalNode(e, s)
  } catch (error) {
    if (error instanceof ExprError && error.pos === 0 && pos > 0) throw new ExprError(error.message, pos, error.hint)
    throw error
  }
}
