// Ansible's INI inventory types every value with Python's ast.literal_eval and keeps
// the raw text when that fails. This is that function for the literals inventories
// hold (numbers, strings, True/False/None, lists, tuples, dicts, sets), so `port=7000`
// is a number, `flag=True` a boolean, and `flag=yes` or `v={{ x }}` stay strings.
// Complex numbers and f-strings are not evaluated (they stay text, like Ansible's
// failure path); a set or tuple becomes a list; a whole float stays text in Python's
// spelling ("7.0"), so it renders as Ansible renders it.

class Fail extends Error {}

export const NOT_A_LITERAL: unique symbol = Symbol('not a literal')

/** The value ast.literal_eval gives for `text`, or NOT_A_LITERAL where Python raises. */
export function pyLiteral(text: string): unknown {
  const p = new Parser(text.replace(/^[ \t]+/, ''))
  try {
    const v = p.expr()
    p.end()
    return v
  } catch (error) {
    if (error instanceof Fail) return NOT_A_LITERAL
    throw error
  }
}

/** Ansible's _parse_value: the literal, else the text unchanged. */
export function iniValue(text: string): unknown {
  const v = pyLiteral(text)
  return v === NOT_A_LITERAL ? text : v
}

const DIGITS = '(?:\\d(?:_?\\d)*)'
const EXP = `(?:[eE][+-]?${DIGITS})`
const NUMBER_RE = new RegExp(
  `^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|${DIGITS}\\.(?:${DIGITS})?${EXP}?|\\.${DIGITS}${EXP}?|${DIGITS}${EXP}|[1-9](?:_?\\d)*|0(?:_?0)*)`,
)
const SIMPLE_ESCAPES: Record<string, string> = {'\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': ''}

class Parser {
  private i = 0
  constructor(private readonly s: string) {}

  private ws(): void {
    while (this.i < this.s.length) {
      const c = this.s[this.i]
      if (c === ' ' || c === '\t' || c === '\f') this.i++
      else if (c === '#') this.i = this.s.length
      else break
    }
  }

  end(): void {
    this.ws()
    if (this.i !== this.s.length) throw new Fail()
  }

  expr(): unknown {
    this.ws()
    const c = this.s[this.i]
    if (c === '+' || c === '-') {
      this.i++
      this.ws()
      const numeric = /[0-9.+-]/.test(this.s[this.i] ?? '')
      const v = this.expr()
      // A string here is a whole float's spelling from number() ("7.0"), never a quoted one.
      if (typeof v === 'string' && numeric) return c === '-' ? (v.startsWith('-') ? v.slice(1) : '-' + v) : v
      if (typeof v !== 'number') throw new Fail()
      return c === '-' ? -v : v
    }
    if (c === '[') return this.seq(']')
    if (c === '(') return this.paren()
    if (c === '{') return this.brace()
    if (c !== undefined && /[0-9.]/.test(c)) return this.number()
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i))?.[0]
    if (word !== undefined && /^(?:[rRuUbB]|[bB][rR]|[rR][bB])$/.test(word) && /['"]/.test(this.s[this.i + word.length] ?? '')) return this.strings()
    if (c === "'" || c === '"') return this.strings()
    if (word === 'True' || word === 'False' || word === 'None') {
      this.i += word.length
      return word === 'True' ? true : word === 'False' ? false : null
    }
    throw new Fail()
  }

  private number(): number | string {
    const m = NUMBER_RE.exec(this.s.slice(this.i))
    if (!m) throw new Fail()
    this.i += m[0].length
    // `1abc`, `1j` (complex) and `01` are SyntaxErrors in Python: the text stays a string.
    if (/^[A-Za-z0-9_.]/.test(this.s.slice(this.i))) throw new Fail()
    const t = m[0].replace(/_/g, '')
    if (/^0[xXoObB]/.test(t)) return Number(t.slice(0, 2).toLowerCase() + t.slice(2))
    const n = Number(t)
    // A whole float (7.0, 1e3) would print as "7" from a JS number where Ansible prints
    // "7.0" (redis_version=7.0 in a config file): keep Python's spelling as text.
    if (/[.eE]/.test(t) && Number.isInteger(n)) return Math.abs(n) < 1e16 ? `${n}.0` : n.toExponential()
    return n
  }

  private strings(): string {
    let out = ''
    let kind: 'b' | 's' | undefined
    for (;;) {
      this.ws()
      const pre = /^([A-Za-z]{0,2})(['"])/.exec(this.s.slice(this.i))
      if (!pre || !/^(?:|[rRuUbB]|[bB][rR]|[rR][bB])$/.test(pre[1])) break
      const k = /b/i.test(pre[1]) ? 'b' : 's'
      if (kind && kind !== k) throw new Fail() // "cannot mix bytes and nonbytes literals"
      kind = k
      this.i += pre[1].length
      out += this.string(/r/i.test(pre[1]))
    }
    if (kind === undefined) throw new Fail()
    return out
  }

  private string(raw: boolean): string {
    const q = this.s[this.i]
    const triple = this.s.startsWith(q.repeat(3), this.i)
    const close = triple ? q.repeat(3) : q
    this.i += close.length
    let out = ''
    for (;;) {
      if (this.i >= this.s.length) throw new Fail()
      if (this.s.startsWith(close, this.i)) {
        this.i += close.length
        return out
      }
      const c = this.s[this.i++]
      if (c !== '\\') {
        out += c
        continue
      }
      const n = this.s[this.i++]
      if (n === undefined) throw new Fail()
      if (raw) out += '\\' + n
      else out += this.escape(n)
    }
  }

  private escape(n: string): string {
    if (n in SIMPLE_ESCAPES) return SIMPLE_ESCAPES[n]
    if (/[0-7]/.test(n)) {
      const m = /^[0-7]{0,2}/.exec(this.s.slice(this.i))![0]
      this.i += m.length
      return String.fromCharCode(parseInt(n + m, 8))
    }
    const hexLen = n === 'x' ? 2 : n === 'u' ? 4 : n === 'U' ? 8 : 0
    if (hexLen) {
      const h = this.s.slice(this.i, this.i + hexLen)
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(h)) throw new Fail()
      this.i += hexLen
      return String.fromCodePoint(parseInt(h, 16))
    }
    if (n === 'N') throw new Fail()
    // Python keeps an unknown escape as written (with a warning Ansible silences).
    return '\\' + n
  }

  private items(close: string, item: () => void): void {
    this.i++
    for (;;) {
      this.ws()
      if (this.s[this.i] === close) break
      item()
      this.ws()
      if (this.s[this.i] === ',') {
        this.i++
        continue
      }
      if (this.s[this.i] !== close) throw new Fail()
      break
    }
    this.i++
  }

  private seq(close: string): unknown[] {
    const out: unknown[] = []
    this.items(close, () => out.push(this.expr()))
    return out
  }

  private paren(): unknown {
    // (x) is x; (x,) and () are tuples.
    const start = this.i
    const out = this.seq(')')
    const inner = this.s.slice(start + 1, this.i - 1)
    if (out.length === 1 && !/,\s*(?:#.*)?$/.test(inner.trim())) return out[0]
    return out
  }

  private brace(): unknown {
    const dict: Record<string, unknown> = {}
    const set: unknown[] = []
    let mode: 'dict' | 'set' | undefined
    this.items('}', () => {
      const k = this.expr()
      this.ws()
      if (this.s[this.i] === ':') {
        if (mode === 'set') throw new Fail()
        mode = 'dict'
        this.i++
        if (k !== null && typeof k === 'object') throw new Fail() // unhashable key
        dict[String(k === true ? 'True' : k === false ? 'False' : k === null ? 'None' : k)] = this.expr()
      } else {
        if (mode === 'dict') throw new Fail()
        mode = 'set'
        if (k !== null && typeof k === 'object') throw new Fail()
        if (!set.includes(k)) set.push(k)
      }
    })
    return mode === 'set' ? set : dict
  }
}
